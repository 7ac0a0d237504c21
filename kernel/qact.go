package kernel

import (
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Activation quantization for the integer decode path (qmatmul.go).
//
// An activation row is quantized once per MatMul call into one of two
// formats, both kept as parallel arrays rather than ggml's interleaved
// structs so that the assembly kernels can stream them:
//
//   - Q8_0 (for Q8_0, Q4_0, Q4_1, Q5_0, IQ4_NL weights): blocks of 32, with
//     d = max|x|/127 rounded through binary16 as ggml stores it, quants
//     round-half-even(x·127/max|x|) as ggml's AVX2 quantize_row_q8_0, and
//     s = d·Σq (ggml's block_q8_1 sum, used by Q4_1).
//   - Q8_K (for k-quants and IQ4_XS): blocks of 256 as ggml's
//     quantize_row_q8_K_ref: the element of largest magnitude maps to -127,
//     d = 1/iscale in float32, and bs holds the sum of each 16 quants.

// q8Act is one quantized activation row.
type q8Act struct {
	q  []int8    // quants, one per column
	d  []float32 // scale per block
	s  []float32 // Q8_0 only: d·Σq per block
	bs []int16   // Q8_K only: sum of each run of 16 quants
}

// actFormat is the activation layout a weight type dots against.
type actFormat uint8

const (
	actQ8_0 actFormat = iota
	actQ8_K
)

const (
	q8Block = 32
	qkBlock = 256
)

// nearestInt rounds to the nearest integer, ties to even, as ggml's
// nearest_int (|f| < 2^22).
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// f16 reads the little-endian binary16 at b[0:2] as float32.
func f16(b []byte) float32 {
	return tensor.F16ToF32(uint16(b[0]) | uint16(b[1])<<8)
}

// quantizeQ8_0 fills a (sized for len(x)/32 blocks) from x.
func quantizeQ8_0(a *q8Act, x []float32) {
	for b := range a.d {
		xb := x[b*q8Block : (b+1)*q8Block]
		qb := a.q[b*q8Block : (b+1)*q8Block]
		var amax float32
		for _, v := range xb {
			amax = max(amax, float32(math.Abs(float64(v))))
		}
		d := amax / 127
		var id float32
		if amax != 0 {
			id = 127 / amax
		}
		var sum int32
		for i, v := range xb {
			q := nearestInt(v * id)
			qb[i] = int8(q)
			sum += q
		}
		dh := tensor.F16ToF32(tensor.F32ToF16(d))
		a.d[b] = dh
		a.s[b] = dh * float32(sum)
	}
}

// quantizeQ8_K fills a (sized for len(x)/256 blocks) from x.
func quantizeQ8_K(a *q8Act, x []float32) {
	for b := range a.d {
		xb := x[b*qkBlock : (b+1)*qkBlock]
		qb := a.q[b*qkBlock : (b+1)*qkBlock]
		bs := a.bs[b*16 : (b+1)*16]
		var amax, mx float32
		for _, v := range xb {
			if av := float32(math.Abs(float64(v))); av > amax {
				amax, mx = av, v
			}
		}
		if amax == 0 {
			a.d[b] = 0
			clear(qb)
			clear(bs)
			continue
		}
		iscale := -127 / mx
		for i, v := range xb {
			qb[i] = int8(min(127, nearestInt(iscale*v)))
		}
		for j := range bs {
			var s int16
			for _, q := range qb[16*j : 16*j+16] {
				s += int16(q)
			}
			bs[j] = s
		}
		a.d[b] = 1 / iscale
	}
}
