//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// AVX2 sixteen-row GEMM micro-kernels for Q5_K on the Q4_K tile layout
// (packQ5Kx16: quants 0..31, the sub-block scales and mins as int32
// vectors) and interleaved activations (gemm16ActsK), the Q4_K kernels of
// qgemm16kavx2_amd64.s but for the wider quants: VPMADDUBSW pairs are at
// most 31·128·2 = 7936 in magnitude, so four vectors' pairs add up in
// int16 (VPADDW, at most 31744), not eight, and each such half sub-block
// meets its rows' scale in one VPMADDWD by the scale as an int16 pair
// (s·p0 + s·p1), added to the row's int32 sum. The mins and the float
// epilogue per super-block are the Q4_K kernels', so results equal the
// generic dot bit for bit.

// K5V4 adds the products of the quant vector at w(R10) with four tokens'
// activation dwords at a(R14) (tokens 256 bytes apart) to the int16
// accumulators Y8-Y11.
#define K5V4(w, a) \
	VMOVDQU      w(R10), Y12; \
	VPBROADCASTD a(R14), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y8, Y8; \
	VPBROADCASTD a+256(R14), Y14; \
	VPMADDUBSW   Y14, Y12, Y14; \
	VPADDW       Y14, Y9, Y9; \
	VPBROADCASTD a+512(R14), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y10, Y10; \
	VPBROADCASTD a+768(R14), Y14; \
	VPMADDUBSW   Y14, Y12, Y14; \
	VPADDW       Y14, Y11, Y11

// K5V1 is K5V4 for one token (Y8).
#define K5V1(w, a) \
	VMOVDQU      w(R10), Y12; \
	VPBROADCASTD a(R14), Y13; \
	VPMADDUBSW   Y13, Y12, Y13; \
	VPADDW       Y13, Y8, Y8

// K5SC sets Y13 to the sub-block's scales at 0(R11) as int16 pairs.
#define K5SC \
	VMOVDQU 0(R11), Y13; \
	VPSLLD  $16, Y13, Y14; \
	VPOR    Y14, Y13, Y13

// K5FOLD adds the int16 accumulator acc times the scales (Y13) to the
// int32 sum sumi and clears acc.
#define K5FOLD(acc, sumi) \
	VPMADDWD Y13, acc, acc; \
	VPADDD   acc, sumi, sumi; \
	VPXOR    acc, acc, acc

// K5MIN adds the sub-block's mins at 512(R11) times a token's sub-block
// sum at a(R15) to summ.
#define K5MIN(a, summ) \
	VPBROADCASTD a(R15), Y13; \
	VPMULLD      512(R11), Y13, Y13; \
	VPADDD       Y13, summ, summ

// K5EPI adds dy·d·float32(sumi) − dy·dmin·float32(summ) to the output row
// at R9, as the Q4_K kernels do (dy at dy(DI), d at 0(SI), dmin at 64(SI)).
#define K5EPI(dy, sumi, summ) \
	VBROADCASTSS dy(DI), Y12; \
	VMULPS       0(SI), Y12, Y13; \
	VCVTDQ2PS    sumi, sumi; \
	VMULPS       sumi, Y13, Y13; \
	VMULPS       64(SI), Y12, Y12; \
	VCVTDQ2PS    summ, summ; \
	VMULPS       summ, Y12, Y12; \
	VSUBPS       Y12, Y13, Y13; \
	VADDPS       (R9), Y13, Y13; \
	VMOVUPS      Y13, (R9)

// func gemm16Q5_Kx4AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q5_K rows packed in
// pack (nb super-blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q5_Kx4AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

q5kx4half:
	HALF8(0)
	VXORPS Y13, Y13, Y13
	MOVQ   R8, R9
	VMOVUPS Y13, (R9)
	ADDQ   R13, R9
	VMOVUPS Y13, (R9)
	ADDQ   R13, R9
	VMOVUPS Y13, (R9)
	ADDQ   R13, R9
	VMOVUPS Y13, (R9)

q5kx4blk:
	VPXOR Y0, Y0, Y0
	VPXOR Y4, Y4, Y4
	VPXOR Y8, Y8, Y8
	VPXOR Y1, Y1, Y1
	VPXOR Y5, Y5, Y5
	VPXOR Y9, Y9, Y9
	VPXOR Y2, Y2, Y2
	VPXOR Y6, Y6, Y6
	VPXOR Y10, Y10, Y10
	VPXOR Y3, Y3, Y3
	VPXOR Y7, Y7, Y7
	VPXOR Y11, Y11, Y11
	LEAQ 1152(SI), R10
	LEAQ 128(SI), R11
	MOVQ DI, R14
	LEAQ 1040(DI), R15
	MOVQ $8, DX

q5kx4sub:
	K5V4(0, 0)
	K5V4(64, 4)
	K5V4(128, 8)
	K5V4(192, 12)
	K5SC
	K5FOLD(Y8, Y0)
	K5FOLD(Y9, Y1)
	K5FOLD(Y10, Y2)
	K5FOLD(Y11, Y3)
	K5V4(256, 16)
	K5V4(320, 20)
	K5V4(384, 24)
	K5V4(448, 28)
	K5SC
	K5FOLD(Y8, Y0)
	K5FOLD(Y9, Y1)
	K5FOLD(Y10, Y2)
	K5FOLD(Y11, Y3)
	K5MIN(0, Y4)
	K5MIN(64, Y5)
	K5MIN(128, Y6)
	K5MIN(192, Y7)
	ADDQ $512, R10
	ADDQ $64, R11
	ADDQ $32, R14
	ADDQ $4, R15
	DECQ DX
	JNZ  q5kx4sub
	MOVQ R8, R9
	K5EPI(1024, Y0, Y4)
	ADDQ R13, R9
	K5EPI(1028, Y1, Y5)
	ADDQ R13, R9
	K5EPI(1032, Y2, Y6)
	ADDQ R13, R9
	K5EPI(1036, Y3, Y7)
	ADDQ $5248, SI
	ADDQ $1296, DI
	DECQ CX
	JNZ  q5kx4blk
	ADDQ $32, BX
	CMPQ BX, $64
	JB   q5kx4half
	VZEROUPPER
	RET

// func gemm16Q5_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q5_K rows packed in
// pack (nb super-blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q5_Kx1AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

q5kx1half:
	HALF8(0)
	VXORPS Y13, Y13, Y13
	MOVQ   R8, R9
	VMOVUPS Y13, (R9)

q5kx1blk:
	VPXOR Y0, Y0, Y0
	VPXOR Y4, Y4, Y4
	VPXOR Y8, Y8, Y8
	LEAQ 1152(SI), R10
	LEAQ 128(SI), R11
	MOVQ DI, R14
	LEAQ 260(DI), R15
	MOVQ $8, DX

q5kx1sub:
	K5V1(0, 0)
	K5V1(64, 4)
	K5V1(128, 8)
	K5V1(192, 12)
	K5SC
	K5FOLD(Y8, Y0)
	K5V1(256, 16)
	K5V1(320, 20)
	K5V1(384, 24)
	K5V1(448, 28)
	K5SC
	K5FOLD(Y8, Y0)
	K5MIN(0, Y4)
	ADDQ $512, R10
	ADDQ $64, R11
	ADDQ $32, R14
	ADDQ $4, R15
	DECQ DX
	JNZ  q5kx1sub
	MOVQ R8, R9
	K5EPI(256, Y0, Y4)
	ADDQ $5248, SI
	ADDQ $324, DI
	DECQ CX
	JNZ  q5kx1blk
	ADDQ $32, BX
	CMPQ BX, $64
	JB   q5kx1half
	VZEROUPPER
	RET
