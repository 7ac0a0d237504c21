package ggml

import (
	"math"

	"github.com/terse-llm/terse/tensor"
)

// Quantized activations
//
// ggml multiplies a quantized weight row by an activation row that it first
// quantizes to 8 bits, in one of two formats, and sums weight quant ×
// activation quant in integers per block. ActRow keeps those formats as
// parallel arrays rather than ggml's interleaved structs, so that SIMD
// kernels can stream them:
//
//   - Q8_0 (for Q8_0, Q4_0, Q4_1, Q5_0, IQ4_NL weights): blocks of 32, with
//     d = max|x|/127 rounded through binary16 as ggml stores it, quants
//     round-half-even(x·127/max|x|) as ggml's AVX2 quantize_row_q8_0, and
//     s = d·Σq (ggml's block_q8_1 sum, used by Q4_1).
//   - Q8_K (for the k-quants and IQ4_XS): blocks of 256 as ggml's
//     quantize_row_q8_K_ref: the element of largest magnitude maps to -127,
//     d = 1/iscale in float32, and bs holds the sum of each 16 quants.

// ActFormat is the quantized activation layout a weight type's Dot reads.
type ActFormat uint8

// Activation formats.
const (
	ActNone ActFormat = iota // the type has no integer dot product
	ActQ8_0                  // blocks of 32: Q, D, S
	ActQ8_K                  // blocks of 256: Q, D, BS
)

// BlockSize is the number of activations per scale in format f (0 for
// ActNone).
func (f ActFormat) BlockSize() int {
	switch f {
	case ActQ8_0:
		return 32
	case ActQ8_K:
		return qkK
	}
	return 0
}

// String names the format ("Q8_0", "Q8_K", "none").
func (f ActFormat) String() string {
	switch f {
	case ActQ8_0:
		return "Q8_0"
	case ActQ8_K:
		return "Q8_K"
	}
	return "none"
}

// ActRow is one quantized activation row. Its slices are sized by the
// caller: Q one quant per column, D one scale per block, S (Q8_0) one sum
// per block, BS (Q8_K) one sum per 16 quants.
type ActRow struct {
	Q  []int8    // quants, one per column
	D  []float32 // scale per block
	S  []float32 // Q8_0 only: D·Σq per block
	BS []int16   // Q8_K only: sum of each run of 16 quants
}

// Quantize fills a (sized for len(x) columns in format f) from x. It does
// not allocate.
func (f ActFormat) Quantize(a *ActRow, x []float32) {
	switch f {
	case ActQ8_0:
		QuantizeActQ8_0(a, x)
	case ActQ8_K:
		QuantizeActQ8_K(a, x)
	}
}

// QuantizeActQ8_0 fills a (sized for len(x)/32 blocks: Q, D and S) from x
// in the Q8_0 activation format.
func QuantizeActQ8_0(a *ActRow, x []float32) {
	for b := range a.D {
		xb := x[b*32 : (b+1)*32]
		qb := a.Q[b*32 : (b+1)*32]
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
		a.D[b] = dh
		a.S[b] = dh * float32(sum)
	}
}

// QuantizeActQ8_K fills a (sized for len(x)/256 blocks: Q, D and BS) from x
// in the Q8_K activation format.
func QuantizeActQ8_K(a *ActRow, x []float32) {
	for b := range a.D {
		xb := x[b*qkK : (b+1)*qkK]
		qb := a.Q[b*qkK : (b+1)*qkK]
		bs := a.BS[b*16 : (b+1)*16]
		var amax, mx float32
		for _, v := range xb {
			if av := float32(math.Abs(float64(v))); av > amax {
				amax, mx = av, v
			}
		}
		if amax == 0 {
			a.D[b] = 0
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
		a.D[b] = 1 / iscale
	}
}
