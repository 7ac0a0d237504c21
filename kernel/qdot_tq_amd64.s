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

// AVX2 dot product of TQ1_0 weight rows with Q8_K activations
// (qdot_tq_amd64.go). A byte's trit n is t = (3·p) >> 8 with
// p = byte·3^n mod 256, that is t = (p > 85) + (p > 170). The byte
// products are formed in int16 lanes, even and odd bytes apart (VPMULLW
// of the even bytes by their multipliers keeps the low byte exact, of the
// odd bytes, in place, the high byte), and t by two signed byte compares
// of p − 128. Then as TQ2_0: t·q less q, in int16 pairs. The tq1M*
// vectors are the per-byte multipliers 3^n of each step: bytes 0..31 at
// n = 1..4; bytes 32..47 at n = 0 and 1, 2 and 3 (a lane each); bytes
// 32..47 at n = 4 beside the four qh bytes at n = 0..3.

DATA tq1M3<>+0x00(SB)/8, $0x0303030303030303
DATA tq1M3<>+0x08(SB)/8, $0x0303030303030303
DATA tq1M3<>+0x10(SB)/8, $0x0303030303030303
DATA tq1M3<>+0x18(SB)/8, $0x0303030303030303
GLOBL tq1M3<>(SB), RODATA|NOPTR, $32

DATA tq1M9<>+0x00(SB)/8, $0x0909090909090909
DATA tq1M9<>+0x08(SB)/8, $0x0909090909090909
DATA tq1M9<>+0x10(SB)/8, $0x0909090909090909
DATA tq1M9<>+0x18(SB)/8, $0x0909090909090909
GLOBL tq1M9<>(SB), RODATA|NOPTR, $32

DATA tq1M27<>+0x00(SB)/8, $0x1b1b1b1b1b1b1b1b
DATA tq1M27<>+0x08(SB)/8, $0x1b1b1b1b1b1b1b1b
DATA tq1M27<>+0x10(SB)/8, $0x1b1b1b1b1b1b1b1b
DATA tq1M27<>+0x18(SB)/8, $0x1b1b1b1b1b1b1b1b
GLOBL tq1M27<>(SB), RODATA|NOPTR, $32

DATA tq1M81<>+0x00(SB)/8, $0x5151515151515151
DATA tq1M81<>+0x08(SB)/8, $0x5151515151515151
DATA tq1M81<>+0x10(SB)/8, $0x5151515151515151
DATA tq1M81<>+0x18(SB)/8, $0x5151515151515151
GLOBL tq1M81<>(SB), RODATA|NOPTR, $32

DATA tq1M01<>+0x00(SB)/8, $0x0101010101010101
DATA tq1M01<>+0x08(SB)/8, $0x0101010101010101
DATA tq1M01<>+0x10(SB)/8, $0x0303030303030303
DATA tq1M01<>+0x18(SB)/8, $0x0303030303030303
GLOBL tq1M01<>(SB), RODATA|NOPTR, $32

DATA tq1M23<>+0x00(SB)/8, $0x0909090909090909
DATA tq1M23<>+0x08(SB)/8, $0x0909090909090909
DATA tq1M23<>+0x10(SB)/8, $0x1b1b1b1b1b1b1b1b
DATA tq1M23<>+0x18(SB)/8, $0x1b1b1b1b1b1b1b1b
GLOBL tq1M23<>(SB), RODATA|NOPTR, $32

DATA tq1MLast<>+0x00(SB)/8, $0x5151515151515151
DATA tq1MLast<>+0x08(SB)/8, $0x5151515151515151
DATA tq1MLast<>+0x10(SB)/8, $0x0303030301010101
DATA tq1MLast<>+0x18(SB)/8, $0x1b1b1b1b09090909
GLOBL tq1MLast<>(SB), RODATA|NOPTR, $32

// TQ1TRITS replaces the packed bytes in Y1 by their trits at the per-byte
// multipliers m (a 32-byte vector; Y8: 0x00ff words, Y9: 0xff00 words,
// Y10: 0x80 bytes, Y11: 0xd5 bytes, Y12: 0x2a bytes, Y14: zero; clobbers
// Y2-Y4, Y6).
#define TQ1TRITS(m) \
	VMOVDQU  m, Y4; \
	VPSRLW   $8, Y4, Y6; \
	VPAND    Y8, Y4, Y4; \
	VPAND    Y8, Y1, Y2; \
	VPAND    Y9, Y1, Y3; \
	VPMULLW  Y4, Y2, Y2; \
	VPMULLW  Y6, Y3, Y3; \
	VPAND    Y8, Y2, Y2; \
	VPOR     Y3, Y2, Y1; \
	TQ1TOP

// TQ1TOP replaces the bytes p in Y1 by (p > 85) + (p > 170).
#define TQ1TOP \
	VPXOR    Y10, Y1, Y1; \
	VPCMPGTB Y11, Y1, Y2; \
	VPCMPGTB Y12, Y1, Y3; \
	VPADDB   Y3, Y2, Y2; \
	VPSUBB   Y2, Y14, Y1

// TQ1SUM adds to Y5 the int16 pair sums of (t−1)·q for the trits t in Y1
// and the activations at off(DI) (Y13: 0x01 bytes; clobbers Y2, Y3).
#define TQ1SUM(off) \
	VPMADDUBSW off(DI), Y1, Y2; \
	VPMADDUBSW off(DI), Y13, Y3; \
	VPSUBW     Y3, Y2, Y2; \
	VPADDW     Y2, Y5, Y5

// func dotTQ1AVX2(w []byte, q []int8, d []float32) float32
TEXT ·dotTQ1AVX2(SB), NOSPLIT, $0-76
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	VXORPS X0, X0, X0
	MOVL         $0x00ff, AX
	VMOVD        AX, X8
	VPBROADCASTW X8, Y8
	VPSLLW       $8, Y8, Y9
	MOVL         $0x80, AX
	VMOVD        AX, X10
	VPBROADCASTB X10, Y10
	MOVL         $0xd5, AX
	VMOVD        AX, X11
	VPBROADCASTB X11, Y11
	MOVL         $0x2a, AX
	VMOVD        AX, X12
	VPBROADCASTB X12, Y12
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	VMOVD        AX, X15
	VPBROADCASTW X15, Y15
	VPXOR        Y14, Y14, Y14

tq1loop:
	TESTQ CX, CX
	JZ    tq1done
	VPXOR   Y5, Y5, Y5
	VMOVDQU (SI), Y7
	VMOVDQA Y7, Y1
	TQ1TOP
	TQ1SUM(0)
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M3<>(SB))
	TQ1SUM(32)
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M9<>(SB))
	TQ1SUM(64)
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M27<>(SB))
	TQ1SUM(96)
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M81<>(SB))
	TQ1SUM(128)
	VBROADCASTI128 32(SI), Y7
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M01<>(SB))
	TQ1SUM(160)
	VMOVDQA Y7, Y1
	TQ1TRITS(tq1M23<>(SB))
	TQ1SUM(192)
	VPBROADCASTD 48(SI), X1
	VINSERTI128  $1, X1, Y7, Y1
	TQ1TRITS(tq1MLast<>(SB))
	TQ1SUM(224)
	VPMADDWD     Y15, Y5, Y5
	VEXTRACTI128 $1, Y5, X1
	VPADDD       X1, X5, X5
	VPSHUFD      $0x4e, X5, X1
	VPADDD       X1, X5, X5
	VPSHUFD      $0xb1, X5, X1
	VPADDD       X1, X5, X5
	VMOVD        X5, R10

	// sum += float32(sumi) · (d · dy)
	MOVWLZX    52(SI), AX
	VMOVD      AX, X1
	VCVTPH2PS  X1, X1
	VMULSS     (DX), X1, X1
	VCVTSI2SSL R10, X2, X2
	VMULSS     X1, X2, X2
	VADDSS     X2, X0, X0
	ADDQ $54, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  tq1loop

tq1done:
	VMOVSS X0, ret+72(FP)
	VZEROUPPER
	RET
