//go:build amd64 && !purego

#include "textflag.h"

// AVX2 dot product of TQ2_0 weight rows with Q8_K activations
// (qdot_tq_amd64.go). The 2-bit codes v (0..3) are the unsigned operand of
// VPMADDUBSW against the activations q; the same with 0x01 bytes gives the
// pair sums of q, and their difference is the pair sums of (v−1)·q exactly
// for every int8 q. Eight such vectors per super-block are summed in int16
// (at most 8·2·3·128 in size), widened to int32 (VPMADDWD by 1) and
// reduced; the float32 steps follow the reference dot (quant/ggml dotTQ2)
// operation by operation.

// TQ2SUB adds to Y5 the codes at shift sh of Y10 times the activations
// at off(DI) less those activations (Y14: 0x03 bytes, Y13: 0x01 bytes;
// clobbers Y1, Y2).
#define TQ2SUB(sh, off) \
	VPSRLW     $sh, Y10, Y1; \
	VPAND      Y14, Y1, Y1; \
	VPMADDUBSW off(DI), Y1, Y1; \
	VPMADDUBSW off(DI), Y13, Y2; \
	VPSUBW     Y2, Y1, Y1; \
	VPADDW     Y1, Y5, Y5

// func dotTQ2AVX2(w []byte, q []int8, d []float32) float32
TEXT ·dotTQ2AVX2(SB), NOSPLIT, $0-76
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	VXORPS X0, X0, X0
	MOVL         $0x03, AX
	VMOVD        AX, X14
	VPBROADCASTB X14, Y14
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	VMOVD        AX, X12
	VPBROADCASTW X12, Y12 // int16 1s

tq2loop:
	TESTQ CX, CX
	JZ    tq2done
	VPXOR   Y5, Y5, Y5
	VMOVDQU (SI), Y10
	TQ2SUB(0, 0)
	TQ2SUB(2, 32)
	TQ2SUB(4, 64)
	TQ2SUB(6, 96)
	VMOVDQU 32(SI), Y10
	TQ2SUB(0, 128)
	TQ2SUB(2, 160)
	TQ2SUB(4, 192)
	TQ2SUB(6, 224)
	VPMADDWD     Y12, Y5, Y5
	VEXTRACTI128 $1, Y5, X1
	VPADDD       X1, X5, X5
	VPSHUFD      $0x4e, X5, X1
	VPADDD       X1, X5, X5
	VPSHUFD      $0xb1, X5, X1
	VPADDD       X1, X5, X5
	VMOVD        X5, R10

	// sum += float32(sumi) · (dy · d)
	MOVWLZX    64(SI), AX
	VMOVD      AX, X1
	VCVTPH2PS  X1, X1
	VMULSS     (DX), X1, X1
	VCVTSI2SSL R10, X2, X2
	VMULSS     X1, X2, X2
	VADDSS     X2, X0, X0
	ADDQ $66, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  tq2loop

tq2done:
	VMOVSS X0, ret+72(FP)
	VZEROUPPER
	RET
