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

// K5V1 adds the products of the quant vector at w(R10) with one token's
// activation dword at a(R14) to the int16 accumulator Y8.
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
// out[t*ostride+r] = row r · token t for the sixteen Q5_K rows packed
// in pack (nb super-blocks, nb > 0) and the group of 4 token(s) at acts.
// The tile is walked once per token pair (BX = 0 or 8) with both
// eight-row halves side by side, so each broadcast feeds two VPMADDUBSW:
// Y0-Y3 are the int32 sums of token t (of the pass), half h in Y(2t+h),
// Y4-Y7 their int16 pairs, folded every 4 vectors by one VPMADDWD by
// the rows' sub-block scales as int16 pairs (Y12, Y13); the mins' sums
// (VPMULLD by the activations' sub-block sums) live in the frame.
TEXT ·gemm16Q5_Kx4AVX2(SB), NOSPLIT, $128-88
	MOVQ ostride+24(FP), R13
	SHLQ $2, R13
	XORQ BX, BX

gemm16Q5_Kx4AVX2pass:
	MOVQ pack_base+32(FP), SI
	MOVQ acts_base+64(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ out_base+0(FP), R8
	MOVQ BX, R9
	SHRQ $2, R9
	IMULQ R13, R9
	ADDQ R9, R8
	VXORPS Y0, Y0, Y0
	VMOVUPS Y0, (R8)
	VMOVUPS Y0, 32(R8)
	VMOVUPS Y0, (R8)(R13*1)
	VMOVUPS Y0, 32(R8)(R13*1)

gemm16Q5_Kx4AVX2blk:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VMOVDQU Y0, 0(SP)
	VMOVDQU Y0, 32(SP)
	VMOVDQU Y0, 64(SP)
	VMOVDQU Y0, 96(SP)
	LEAQ 1152(SI), R10
	LEAQ 128(SI), R11
	MOVQ BX, R14
	SHLQ $6, R14
	ADDQ DI, R14
	MOVQ BX, R15
	SHLQ $4, R15
	LEAQ 1040(DI)(R15*1), R15
	MOVQ $8, DX

gemm16Q5_Kx4AVX2sub:
	VMOVDQU 0(R11), Y12
	VPSLLD $16, Y12, Y14
	VPBLENDW $0xaa, Y14, Y12, Y12
	VMOVDQU 32(R11), Y13
	VPSLLD $16, Y13, Y14
	VPBLENDW $0xaa, Y14, Y13, Y13
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VMOVDQU 0(R10), Y8
	VMOVDQU 32(R10), Y9
	VPBROADCASTD 0(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 256(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 64(R10), Y8
	VMOVDQU 96(R10), Y9
	VPBROADCASTD 4(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 260(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 128(R10), Y8
	VMOVDQU 160(R10), Y9
	VPBROADCASTD 8(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 264(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 192(R10), Y8
	VMOVDQU 224(R10), Y9
	VPBROADCASTD 12(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 268(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VPMADDWD Y12, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDWD Y13, Y5, Y5
	VPADDD Y5, Y1, Y1
	VPMADDWD Y12, Y6, Y6
	VPADDD Y6, Y2, Y2
	VPMADDWD Y13, Y7, Y7
	VPADDD Y7, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VMOVDQU 256(R10), Y8
	VMOVDQU 288(R10), Y9
	VPBROADCASTD 16(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 272(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 320(R10), Y8
	VMOVDQU 352(R10), Y9
	VPBROADCASTD 20(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 276(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 384(R10), Y8
	VMOVDQU 416(R10), Y9
	VPBROADCASTD 24(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 280(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VMOVDQU 448(R10), Y8
	VMOVDQU 480(R10), Y9
	VPBROADCASTD 28(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y4, Y4
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y5, Y5
	VPBROADCASTD 284(R14), Y10
	VPMADDUBSW Y10, Y8, Y11
	VPADDW Y11, Y6, Y6
	VPMADDUBSW Y10, Y9, Y11
	VPADDW Y11, Y7, Y7
	VPMADDWD Y12, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDWD Y13, Y5, Y5
	VPADDD Y5, Y1, Y1
	VPMADDWD Y12, Y6, Y6
	VPADDD Y6, Y2, Y2
	VPMADDWD Y13, Y7, Y7
	VPADDD Y7, Y3, Y3
	VPBROADCASTD 0(R15), Y14
	VPMULLD 512(R11), Y14, Y15
	VPADDD 0(SP), Y15, Y15
	VMOVDQU Y15, 0(SP)
	VPMULLD 544(R11), Y14, Y15
	VPADDD 32(SP), Y15, Y15
	VMOVDQU Y15, 32(SP)
	VPBROADCASTD 64(R15), Y14
	VPMULLD 512(R11), Y14, Y15
	VPADDD 64(SP), Y15, Y15
	VMOVDQU Y15, 64(SP)
	VPMULLD 544(R11), Y14, Y15
	VPADDD 96(SP), Y15, Y15
	VMOVDQU Y15, 96(SP)
	ADDQ $512, R10
	ADDQ $64, R11
	ADDQ $32, R14
	ADDQ $4, R15
	DECQ DX
	JNZ  gemm16Q5_Kx4AVX2sub
	VBROADCASTSS 1024(DI)(BX*1), Y8
	VMULPS 0(SI), Y8, Y9
	VCVTDQ2PS Y0, Y0
	VMULPS Y0, Y9, Y9
	VMULPS 64(SI), Y8, Y10
	VCVTDQ2PS 0(SP), Y11
	VMULPS Y11, Y10, Y10
	VSUBPS Y10, Y9, Y9
	VADDPS (R8), Y9, Y9
	VMOVUPS Y9, (R8)
	VMULPS 32(SI), Y8, Y9
	VCVTDQ2PS Y1, Y1
	VMULPS Y1, Y9, Y9
	VMULPS 96(SI), Y8, Y10
	VCVTDQ2PS 32(SP), Y11
	VMULPS Y11, Y10, Y10
	VSUBPS Y10, Y9, Y9
	VADDPS 32(R8), Y9, Y9
	VMOVUPS Y9, 32(R8)
	VBROADCASTSS 1028(DI)(BX*1), Y8
	VMULPS 0(SI), Y8, Y9
	VCVTDQ2PS Y2, Y2
	VMULPS Y2, Y9, Y9
	VMULPS 64(SI), Y8, Y10
	VCVTDQ2PS 64(SP), Y11
	VMULPS Y11, Y10, Y10
	VSUBPS Y10, Y9, Y9
	VADDPS (R8)(R13*1), Y9, Y9
	VMOVUPS Y9, (R8)(R13*1)
	VMULPS 32(SI), Y8, Y9
	VCVTDQ2PS Y3, Y3
	VMULPS Y3, Y9, Y9
	VMULPS 96(SI), Y8, Y10
	VCVTDQ2PS 96(SP), Y11
	VMULPS Y11, Y10, Y10
	VSUBPS Y10, Y9, Y9
	VADDPS 32(R8)(R13*1), Y9, Y9
	VMOVUPS Y9, 32(R8)(R13*1)
	ADDQ $5248, SI
	ADDQ $1296, DI
	DECQ CX
	JNZ  gemm16Q5_Kx4AVX2blk
	ADDQ $8, BX
	CMPQ BX, $16
	JB   gemm16Q5_Kx4AVX2pass
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
