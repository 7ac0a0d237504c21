package ggml

import (
	"encoding/binary"
	"math"
)

// Legacy 32-element block quantizers: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0.
//
// Without weights (quantize_row_q*_ref): the symmetric types take
// d = max/-8 (Q4_0) or max/-16 (Q5_0), where max is the value of largest
// magnitude, and store trunc(x/d + 8.5) (+16.5) clamped to 15 (31); Q8_0
// takes d = amax/127 and stores round-half-away(x/d); Q4_1 and Q5_1 take
// d = (max-min)/15 (/31), m = min, and store trunc((x-min)/d + 0.5).
//
// With weights (quantize_row_q*_impl): each element's weight is
// qw·√(σ² + x²) with σ² = Σx²/n over the whole row; Q4_0 and Q5_0 search the
// scale with make_qx_quants (nmax 8 and 16), Q4_1 and Q5_1 fit scale and
// offset with make_qkx3_quants (nmax 15 and 31, rmin -0.9, rdelta 0.05, 36
// steps). Q8_0 has no weighted form.

// quantQ8_0Ref is quantize_row_q8_0_ref.
func quantQ8_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q8_0Elems; i++ {
		xb := x[i*q8_0Elems : (i+1)*q8_0Elems]
		b := dst[i*q8_0Bytes : (i+1)*q8_0Bytes]
		var amax float32
		for _, v := range xb {
			if a := abs32(v); !(amax > a) {
				amax = a
			}
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j, v := range xb {
			r := float32(math.Round(float64(v * id)))
			b[2+j] = byte(truncInt32(r))
		}
	}
}

// quantQ4_0Ref is quantize_row_q4_0_ref.
func quantQ4_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q4Elems; i++ {
		xb := x[i*q4Elems : (i+1)*q4Elems]
		b := dst[i*q4_0Bytes : (i+1)*q4_0Bytes]
		var amax, max float32
		for _, v := range xb {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		for j := 0; j < 16; j++ {
			xi0 := min(15, int32(int8(truncInt32(float32(xb[j]*id)+8.5))))
			xi1 := min(15, int32(int8(truncInt32(float32(xb[j+16]*id)+8.5))))
			b[2+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// quantQ4_1Ref is quantize_row_q4_1_ref.
func quantQ4_1Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q4Elems; i++ {
		xb := x[i*q4Elems : (i+1)*q4Elems]
		b := dst[i*q4_1Bytes : (i+1)*q4_1Bytes]
		min, max := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range xb {
			if v < min {
				min = v
			}
			if v > max {
				max = v
			}
		}
		d := (max - min) / 15
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min)
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min) * id)
			x1 := float32((xb[j+16] - min) * id)
			xi0 := minInt32(15, int32(int8(truncInt32(x0+0.5))))
			xi1 := minInt32(15, int32(int8(truncInt32(x1+0.5))))
			b[4+j] = byte(xi0) | byte(xi1)<<4
		}
	}
}

// quantQ5_0Ref is quantize_row_q5_0_ref.
func quantQ5_0Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q5Elems; i++ {
		xb := x[i*q5Elems : (i+1)*q5Elems]
		b := dst[i*q5_0Bytes : (i+1)*q5_0Bytes]
		var amax, max float32
		for _, v := range xb {
			if amax < abs32(v) {
				amax = abs32(v)
				max = v
			}
		}
		d := max / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0 := byte(minInt32(31, int32(int8(truncInt32(float32(xb[j]*id)+16.5)))))
			xi1 := byte(minInt32(31, int32(int8(truncInt32(float32(xb[j+16]*id)+16.5)))))
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// quantQ5_1Ref is quantize_row_q5_1_ref.
func quantQ5_1Ref(x []float32, dst []byte) {
	for i := 0; i < len(x)/q5Elems; i++ {
		xb := x[i*q5Elems : (i+1)*q5Elems]
		b := dst[i*q5_1Bytes : (i+1)*q5_1Bytes]
		min, max := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range xb {
			if v < min {
				min = v
			}
			if v > max {
				max = v
			}
		}
		d := (max - min) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		putF16(b, d)
		putF16(b[2:], min)
		var qh uint32
		for j := 0; j < 16; j++ {
			x0 := float32((xb[j] - min) * id)
			x1 := float32((xb[j+16] - min) * id)
			xi0 := byte(truncInt32(x0 + 0.5))
			xi1 := byte(truncInt32(x1 + 0.5))
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

// rowSigma2 is Σx²/n over a whole row, the σ² of the legacy weighted
// quantizers.
func rowSigma2(x []float32) float32 {
	var s float32
	for _, v := range x {
		s += float32(v * v)
	}
	return s / float32(len(x))
}

// legacyWeights fills w with qw·√(σ² + x²).
func legacyWeights(w, xb, qw []float32, sigma2 float32) {
	for j := range w {
		w[j] = qw[j] * sqrt32(sigma2+float32(xb[j]*xb[j]))
	}
}

// quantQ4_0Impl is quantize_row_q4_0_impl for one row.
func quantQ4_0Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L [32]int8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q4Elems; ib++ {
		xb := x[ib*q4Elems : (ib+1)*q4Elems]
		b := dst[ib*q4_0Bytes : (ib+1)*q4_0Bytes]
		legacyWeights(weight[:], xb, qw[ib*q4Elems:], sigma2)
		d := makeQxQuants(32, 8, xb, L[:], 1, weight[:])
		putF16(b, d)
		for j := 0; j < 16; j++ {
			b[2+j] = byte(L[j]) | byte(L[j+16])<<4
		}
	}
}

// quantQ5_0Impl is quantize_row_q5_0_impl for one row.
func quantQ5_0Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L [32]int8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q5Elems; ib++ {
		xb := x[ib*q5Elems : (ib+1)*q5Elems]
		b := dst[ib*q5_0Bytes : (ib+1)*q5_0Bytes]
		legacyWeights(weight[:], xb, qw[ib*q5Elems:], sigma2)
		d := makeQxQuants(32, 16, xb, L[:], 1, weight[:])
		putF16(b, d)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0, xi1 := byte(L[j]), byte(L[j+16])
			b[6+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[2:], qh)
	}
}

// quantQ4_1Impl is quantize_row_q4_1_impl for one row.
func quantQ4_1Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L, Laux [32]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q4Elems; ib++ {
		xb := x[ib*q4Elems : (ib+1)*q4Elems]
		b := dst[ib*q4_1Bytes : (ib+1)*q4_1Bytes]
		legacyWeights(weight[:], xb, qw[ib*q4Elems:], sigma2)
		d, m := makeQkx3Quants(32, 15, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(b, d)
		putF16(b[2:], -m)
		for j := 0; j < 16; j++ {
			b[4+j] = L[j] | L[j+16]<<4
		}
	}
}

// quantQ5_1Impl is quantize_row_q5_1_impl for one row.
func quantQ5_1Impl(x []float32, dst []byte, qw []float32) {
	var weight [32]float32
	var L, Laux [32]uint8
	sigma2 := rowSigma2(x)
	for ib := 0; ib < len(x)/q5Elems; ib++ {
		xb := x[ib*q5Elems : (ib+1)*q5Elems]
		b := dst[ib*q5_1Bytes : (ib+1)*q5_1Bytes]
		legacyWeights(weight[:], xb, qw[ib*q5Elems:], sigma2)
		d, m := makeQkx3Quants(32, 31, xb, weight[:], L[:], Laux[:], -0.9, 0.05, 36, false)
		putF16(b, d)
		putF16(b[2:], -m)
		var qh uint32
		for j := 0; j < 16; j++ {
			xi0, xi1 := L[j], L[j+16]
			b[8+j] = xi0&0x0f | (xi1&0x0f)<<4
			qh |= uint32(xi0&0x10) >> 4 << uint(j)
			qh |= uint32(xi1&0x10) >> 4 << uint(j+16)
		}
		binary.LittleEndian.PutUint32(b[4:], qh)
	}
}

func minInt32(a, b int32) int32 {
	if a < b {
		return a
	}
	return b
}
