package ggml

import "github.com/terse-llm/terse/tensor"

// TQ1_0 is ggml's ternary type at 1.6875 bits per element: super-blocks of
// 256 elements in 54 bytes, five trits per byte.
//
//	offset size  field
//	0      48    qs  trits of elements 0..239: bytes 0..31 hold elements
//	                 0..159 (element 32n + m in byte m), bytes 32..47 hold
//	                 elements 160..239 (element 160 + 16n + m in byte 32+m)
//	48     4     qh  elements 240..255: element 240 + 4n + j in byte 48+j,
//	                 n = 0..3
//	52     2     d   binary16 scale
//
// A byte stores its trits t0..t4 (t0 the first element) as the fixed-point
// fraction ceil(256·(t0·81 + t1·27 + t2·9 + t3·3 + t4)/243): trit n is
// read back by multiplying the byte by 3^n modulo 256 and taking the top
// bits of 3 times that, ((q·3^n mod 256)·3) >> 8. qh bytes hold four trits
// and a zero fifth. element = float32(t-1) * d.
const (
	tq1Elems = 256
	tq1Bytes = 54
)

// tq1Pow3 are the multipliers that bring trit n to the top of a byte.
var tq1Pow3 = [5]uint8{1, 3, 9, 27, 81}

// tq1Trit returns trit n (0..2) of the packed byte q.
func tq1Trit(q uint8, n int) int32 {
	p := q * tq1Pow3[n]
	return int32(uint16(p)*3) >> 8
}

// tq1Index returns, for element e of a block, the byte holding it and
// its trit position.
func tq1Index(e int) (byteIdx, n int) {
	switch {
	case e < 160:
		return e % 32, e / 32
	case e < 240:
		return 32 + (e-160)%16, (e - 160) / 16
	}
	return 48 + (e-240)%4, (e - 240) / 4
}

func dequantTQ1(src []byte, dst []float32) {
	for i := 0; i < len(dst)/tq1Elems; i++ {
		b := src[i*tq1Bytes : (i+1)*tq1Bytes]
		y := dst[i*tq1Elems : (i+1)*tq1Elems]
		d := f16(b[52:])
		for e := range y {
			k, n := tq1Index(e)
			y[e] = float32(tq1Trit(b[k], n)-1) * d
		}
	}
}

// quantTQ1 is quantize_row_tq1_0_ref (ggml ignores importance weights).
func quantTQ1(src []float32, dst []byte) {
	for i := 0; i < len(src)/tq1Elems; i++ {
		x := src[i*tq1Elems : (i+1)*tq1Elems]
		b := dst[i*tq1Bytes : (i+1)*tq1Bytes]
		d, id := ternaryScale(x)
		putF16(b[52:], d)
		// pack accumulates the trits of elements e0, e0+stride, ... (count
		// of them) most significant first and stores the ceiling fraction.
		pack := func(e0, stride, count int) uint8 {
			var q uint8
			for n := 0; n < count; n++ {
				q = q*3 + uint8(roundAway(x[e0+n*stride]*id)+1)
			}
			for n := count; n < 5; n++ {
				q *= 3
			}
			return uint8((uint16(q)*256 + 242) / 243)
		}
		for m := 0; m < 32; m++ {
			b[m] = pack(m, 32, 5)
		}
		for m := 0; m < 16; m++ {
			b[32+m] = pack(160+m, 16, 5)
		}
		for j := 0; j < 4; j++ {
			b[48+j] = pack(240+j, 4, 4)
		}
	}
}

// dotTQ1 is the reference dot product (Type.Dot), as ggml_vec_dot_tq1_0_q8_K.
func dotTQ1(w []byte, a *ActRow) float32 {
	var sum float32
	for bi, dy := range a.D {
		b := w[bi*tq1Bytes : (bi+1)*tq1Bytes]
		q := a.Q[bi*tq1Elems : (bi+1)*tq1Elems]
		var sumi int32
		for e, qe := range q {
			k, n := tq1Index(e)
			sumi += (tq1Trit(b[k], n) - 1) * int32(qe)
		}
		d := f16(b[52:]) * dy
		sum += float32(float32(sumi) * d)
	}
	return sum
}

func init() {
	register(&Type{
		DType: tensor.TQ1_0, BlockSize: tq1Elems, BlockBytes: tq1Bytes, Scales: []int{52},
		Dequantize: dequantTQ1, Quantize: quantTQ1, grid: tq1Grid,
		Act: ActQ8_K, Dot: dotTQ1,
	})
}
