//go:build amd64 && !purego

#include "textflag.h"

// Integer GEMM micro-kernel for the prefill path (qgemm.go): one Q4_0
// weight row against four Q8_0 activations per step, so each weight block
// is loaded, unpacked and its scale widened once for four tokens.
// VPDPBUSD multiplies the unsigned nibbles (0..15) by the signed quants;
// the -8 offset is applied at the end from the activations' D·Σq sums, as
// in rowsQ4_0VNNI.

// Horizontal sum of float register z (16 lanes) into the low lane of X8
// (clobbers Y8, X9).
#define GHSUM(z, y) \
	VEXTRACTF64X4 $1, z, Y8; \
	VADDPS        y, Y8, Y8; \
	VEXTRACTF128  $1, Y8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVHLPS      X8, X8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVSHDUP     X8, X9; \
	VADDSS        X9, X8, X8

// X8 -= 8·Σ x (four lanes of correction register x; clobbers X9, X10).
#define GCORR(x) \
	VMOVAPS      x, X10; \
	VMOVHLPS     X10, X10, X9; \
	VADDPS       X9, X10, X10; \
	VMOVSHDUP    X10, X9; \
	VADDSS       X9, X10, X10; \
	VFNMADD231SS X15, X10, X8

// One token's share of a two-block step: q at qa, the scale pair at da and
// the D·Σq pair at sa; acc and corr are its accumulators. X1 holds the two
// weight scales, Z4 the unpacked nibbles.
#define GTOK(qa, da, sa, acc, corr) \
	VMOVQ       da, X6; \
	VMULPS      X6, X1, X6; \
	VPERMPS     Z6, Z13, Z6; \
	VMOVQ       sa, X7; \
	VFMADD231PS X7, X1, corr; \
	VPXORD      Z8, Z8, Z8; \
	VPDPBUSD    qa, Z4, Z8; \
	VCVTDQ2PS   Z8, Z8; \
	VFMADD231PS Z8, Z6, acc

// func gemm4Q4_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, qstride int, d, s []float32, dstride, nb int)
//
// For rows weight rows of rb bytes from w and the four activations at q
// (quants qstride bytes apart) with scales d and sums s (dstride floats
// apart), out[j*ostride+i] = row i · activation j. nb (the block count) is
// even and positive.
TEXT ·gemm4Q4_0VNNI(SB), NOSPLIT, $0-168
	MOVQ out_base+0(FP), R8
	MOVQ rows+24(FP), R10
	MOVQ w_base+40(FP), R11
	MOVQ rb+64(FP), R12
	TESTQ R10, R10
	JZ   g4none
	MOVL   $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z14
	MOVL   $0x41000000, AX // 8.0
	VMOVD  AX, X15
	VMOVDQU64 gemmIdx<>(SB), Z13
	VMOVDQU64 gemmShift<>(SB), Z11

g4row:
	MOVQ R11, SI
	MOVQ q_base+72(FP), DI
	MOVQ qstride+96(FP), R13
	LEAQ (R13)(R13*2), R14
	MOVQ d_base+104(FP), DX
	MOVQ s_base+128(FP), R9
	MOVQ dstride+152(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), AX
	MOVQ nb+160(FP), CX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23

g4loop:
	PREFETCHT0 4096(SI)
	// Weight scales: X1 = [f16(b0.d), f16(b1.d), 0, 0].
	VPXOR   X1, X1, X1
	VPINSRW $0, 0(SI), X1, X1
	VPINSRW $1, 18(SI), X1, X1
	VCVTPH2PS X1, X1
	// Nibbles: Z4 = [b0 lo, b0 hi, b1 lo, b1 hi] as 16-byte lanes.
	VBROADCASTI32X4 2(SI), Y4
	VBROADCASTI32X4 20(SI), Y5
	VINSERTI64X4 $1, Y5, Z4, Z4
	VPSRLVD Z11, Z4, Z4
	VPANDD  Z14, Z4, Z4
	GTOK((DI), (DX), (R9), Z16, X20)
	GTOK((DI)(R13*1), (DX)(BX*1), (R9)(BX*1), Z17, X21)
	GTOK((DI)(R13*2), (DX)(BX*2), (R9)(BX*2), Z18, X22)
	GTOK((DI)(R14*1), (DX)(AX*1), (R9)(AX*1), Z19, X23)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R9
	SUBQ $2, CX
	JNZ  g4loop

	MOVQ ostride+32(FP), CX
	SHLQ $2, CX
	LEAQ (CX)(CX*2), DX
	GHSUM(Z16, Y16)
	GCORR(X20)
	VMOVSS X8, (R8)
	GHSUM(Z17, Y17)
	GCORR(X21)
	VMOVSS X8, (R8)(CX*1)
	GHSUM(Z18, Y18)
	GCORR(X22)
	VMOVSS X8, (R8)(CX*2)
	GHSUM(Z19, Y19)
	GCORR(X23)
	VMOVSS X8, (R8)(DX*1)
	ADDQ $4, R8
	ADDQ R12, R11
	DECQ R10
	JNZ  g4row
	VZEROUPPER
	RET

g4none:
	RET

// Permutation indices [0 ×8, 1 ×8] and dword shift counts [0 ×4, 4 ×4] ×2.
DATA gemmIdx<>+0x00(SB)/8, $0
DATA gemmIdx<>+0x08(SB)/8, $0
DATA gemmIdx<>+0x10(SB)/8, $0
DATA gemmIdx<>+0x18(SB)/8, $0
DATA gemmIdx<>+0x20(SB)/8, $0x0000000100000001
DATA gemmIdx<>+0x28(SB)/8, $0x0000000100000001
DATA gemmIdx<>+0x30(SB)/8, $0x0000000100000001
DATA gemmIdx<>+0x38(SB)/8, $0x0000000100000001
GLOBL gemmIdx<>(SB), RODATA|NOPTR, $64

DATA gemmShift<>+0x00(SB)/8, $0
DATA gemmShift<>+0x08(SB)/8, $0
DATA gemmShift<>+0x10(SB)/8, $0x0000000400000004
DATA gemmShift<>+0x18(SB)/8, $0x0000000400000004
DATA gemmShift<>+0x20(SB)/8, $0
DATA gemmShift<>+0x28(SB)/8, $0
DATA gemmShift<>+0x30(SB)/8, $0x0000000400000004
DATA gemmShift<>+0x38(SB)/8, $0x0000000400000004
GLOBL gemmShift<>(SB), RODATA|NOPTR, $64

// One token's share of a two-block Q8_0 step: the activation quants at qa
// get the weights' signs (mask K1; Z4 holds the weights' magnitudes), the
// scale pair at da times the weight scales X1 spreads over the two
// 256-bit halves; acc accumulates. Clobbers Z6-Z8.
#define G8TOK(qa, da, acc) \
	VMOVDQU8    qa, Z6; \
	VPSUBB      Z6, Z12, K1, Z6; \
	VMOVQ       da, X7; \
	VMULPS      X7, X1, X7; \
	VPERMPS     Z7, Z13, Z7; \
	VPXORD      Z8, Z8, Z8; \
	VPDPBUSD    Z6, Z4, Z8; \
	VCVTDQ2PS   Z8, Z8; \
	VFMADD231PS Z8, Z7, acc

// func gemm4Q8_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, qstride int, d, s []float32, dstride, nb int)
//
// gemm4Q4_0VNNI for Q8_0 weights (s is unused): each pair of weight
// blocks is loaded, split into signs and magnitudes (VPDPBUSD multiplies
// unsigned by signed bytes) and its scales widened once for four tokens.
TEXT ·gemm4Q8_0VNNI(SB), NOSPLIT, $0-168
	MOVQ out_base+0(FP), R8
	MOVQ rows+24(FP), R10
	MOVQ w_base+40(FP), R11
	MOVQ rb+64(FP), R12
	TESTQ R10, R10
	JZ   g8none
	VPXORD Z12, Z12, Z12
	VMOVDQU64 gemmIdx<>(SB), Z13

g8row:
	MOVQ R11, SI
	MOVQ q_base+72(FP), DI
	MOVQ qstride+96(FP), R13
	LEAQ (R13)(R13*2), R14
	MOVQ d_base+104(FP), DX
	MOVQ dstride+152(FP), BX
	SHLQ $2, BX
	LEAQ (BX)(BX*2), AX
	MOVQ nb+160(FP), CX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19

g8loop:
	PREFETCHT0 4096(SI)
	// Weight scales: X1 = [f16(b0.d), f16(b1.d), 0, 0].
	VPXOR   X1, X1, X1
	VPINSRW $0, 0(SI), X1, X1
	VPINSRW $1, 34(SI), X1, X1
	VCVTPH2PS X1, X1
	// Quants: Z4 = |b0 quants|, |b1 quants| with their signs in K1.
	VMOVDQU 2(SI), Y4
	VINSERTI64X4 $1, 36(SI), Z4, Z4
	VPMOVB2M Z4, K1
	VPABSB   Z4, Z4
	G8TOK((DI), (DX), Z16)
	G8TOK((DI)(R13*1), (DX)(BX*1), Z17)
	G8TOK((DI)(R13*2), (DX)(BX*2), Z18)
	G8TOK((DI)(R14*1), (DX)(AX*1), Z19)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	JNZ  g8loop

	MOVQ ostride+32(FP), CX
	SHLQ $2, CX
	LEAQ (CX)(CX*2), DX
	GHSUM(Z16, Y16)
	VMOVSS X8, (R8)
	GHSUM(Z17, Y17)
	VMOVSS X8, (R8)(CX*1)
	GHSUM(Z18, Y18)
	VMOVSS X8, (R8)(CX*2)
	GHSUM(Z19, Y19)
	VMOVSS X8, (R8)(DX*1)
	ADDQ $4, R8
	ADDQ R12, R11
	DECQ R10
	JNZ  g8row
	VZEROUPPER
	RET

g8none:
	RET
