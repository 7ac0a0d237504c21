//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// AVX2 sixteen-row GEMM micro-kernels for Q4_1 and Q5_1 on the VNNI
// kernels' tiles (packLegacy4x16: the rows' scales and mins as float32,
// then the quants as unsigned bytes, 0..15 or 0..31, in the Q8_0 layout)
// and interleaved activations (gemm16Acts with the tokens' block sums).
// As in qgemm16avx2_amd64.s a 256-bit register holds the same four
// columns of eight rows, and each kernel walks the tile twice, rows 0-7
// and then rows 8-15. VPMADDUBSW pairs are at most 31·128·2 = 7936 in
// magnitude, so four vectors' pairs add up in int16 (VPADDW) before
// VPMADDWD by int16 ones; a block's two halves add in int32. Per block
// the float epilogue is the VNNI kernels' (TOKM in qgemm16l_amd64.s):
// float32(Σ q·y)·(d·dy) + m·s, so results equal ggml's dot bit for bit.

// L1V4 adds the products of the quant vector at w(SI) with four tokens'
// activation dwords at a(DI) (tokens 32 bytes apart) to the int16
// accumulators Y0-Y3.
#define L1V4(w, a) \
	VMOVDQU      w(SI), Y12; \
	VPBROADCASTD a(DI), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y0, Y0; \
	VPBROADCASTD a+32(DI), Y14; \
	VPMADDUBSW   Y14, Y12, Y14; \
	VPADDW       Y14, Y1, Y1; \
	VPBROADCASTD a+64(DI), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y2, Y2; \
	VPBROADCASTD a+96(DI), Y14; \
	VPMADDUBSW   Y14, Y12, Y14; \
	VPADDW       Y14, Y3, Y3

// L1V1 is L1V4 for one token (Y0).
#define L1V1(w, a) \
	VMOVDQU      w(SI), Y12; \
	VPBROADCASTD a(DI), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y0, Y0

// L1FOLD sums the int16 pairs of acc into the int32 sum sumi (Y15: int16
// ones) and clears acc.
#define L1FOLD(acc, sumi) \
	VPMADDWD Y15, acc, acc; \
	VPADDD   acc, sumi, sumi; \
	VPXOR    acc, acc, acc

// L1EPI adds float32(sumi)·(d·dy) + m·s to acc (d at 0(SI), m at 64(SI),
// dy at dy(DI), s at s(DI)) and clears sumi.
#define L1EPI(dy, s, sumi, acc) \
	VCVTDQ2PS    sumi, Y13; \
	VBROADCASTSS dy(DI), Y14; \
	VMULPS       0(SI), Y14, Y14; \
	VMULPS       Y14, Y13, Y13; \
	VBROADCASTSS s(DI), Y14; \
	VMULPS       64(SI), Y14, Y14; \
	VADDPS       Y14, Y13, Y13; \
	VADDPS       Y13, acc, acc; \
	VPXOR        sumi, sumi, sumi

// func gemm16Q4_1x4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_1 or Q5_1 rows
// packed in pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q4_1x4AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

q41x4half:
	HALF8(0)
	VPXOR Y0, Y0, Y0
	VXORPS Y4, Y4, Y4
	VPXOR Y8, Y8, Y8
	VPXOR Y1, Y1, Y1
	VXORPS Y5, Y5, Y5
	VPXOR Y9, Y9, Y9
	VPXOR Y2, Y2, Y2
	VXORPS Y6, Y6, Y6
	VPXOR Y10, Y10, Y10
	VPXOR Y3, Y3, Y3
	VXORPS Y7, Y7, Y7
	VPXOR Y11, Y11, Y11

q41x4blk:
	L1V4(128, 0)
	L1V4(192, 4)
	L1V4(256, 8)
	L1V4(320, 12)
	L1FOLD(Y0, Y8)
	L1FOLD(Y1, Y9)
	L1FOLD(Y2, Y10)
	L1FOLD(Y3, Y11)
	L1V4(384, 16)
	L1V4(448, 20)
	L1V4(512, 24)
	L1V4(576, 28)
	L1FOLD(Y0, Y8)
	L1FOLD(Y1, Y9)
	L1FOLD(Y2, Y10)
	L1FOLD(Y3, Y11)
	L1EPI(128, 144, Y8, Y4)
	L1EPI(132, 148, Y9, Y5)
	L1EPI(136, 152, Y10, Y6)
	L1EPI(140, 156, Y11, Y7)
	ADDQ $640, SI
	ADDQ $160, DI
	DECQ CX
	JNZ  q41x4blk
	STORE8(Y4)
	STORE8(Y5)
	STORE8(Y6)
	STORE8(Y7)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   q41x4half
	VZEROUPPER
	RET

// func gemm16Q4_1x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_1 or Q5_1 rows
// packed in pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q4_1x1AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

q41x1half:
	HALF8(0)
	VPXOR Y0, Y0, Y0
	VXORPS Y4, Y4, Y4
	VPXOR Y8, Y8, Y8

q41x1blk:
	L1V1(128, 0)
	L1V1(192, 4)
	L1V1(256, 8)
	L1V1(320, 12)
	L1FOLD(Y0, Y8)
	L1V1(384, 16)
	L1V1(448, 20)
	L1V1(512, 24)
	L1V1(576, 28)
	L1FOLD(Y0, Y8)
	L1EPI(32, 36, Y8, Y4)
	ADDQ $640, SI
	ADDQ $40, DI
	DECQ CX
	JNZ  q41x1blk
	STORE8(Y4)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   q41x1half
	VZEROUPPER
	RET
