//go:build amd64 && !purego

#include "textflag.h"

// Fused half-precision GEMM micro-kernels (AVX-512): four weight rows
// stored as binary16 or bfloat16 are widened in registers and multiplied
// against one or four float32 activation vectors, without writing the
// widened rows anywhere. Every (row, token) pair has one 16-lane float32
// accumulator that takes its FMAs in k order, and the same reduction tree
// at the end, in the one-token and the four-token kernels alike: a row's
// result does not depend on how many tokens share the call (hgemm.go).
//
// BF16: the activations come permuted in blocks of 32 (hgemm.go,
// permuteBF16): the block's 16 even-indexed values, then its 16 odd ones,
// zero-padded to a whole block. One 64-byte load of 32 bfloat16 weights
// then widens with two bit operations: the even elements are the dwords
// shifted left by 16, the odd ones the dwords with the low half cleared.
// Each block adds the even products, then the odd ones.
//
// F16: VCVTPH2PS widens 16 weights at a time; the activations are read in
// place, with masked loads in the tail.

// Reduce z (512 bits) to four partial sums in x, using Y31/X31.
#define HZ2X(z, y, x) \
	VEXTRACTF64X4 $1, z, Y31; \
	VADDPS        Y31, y, y; \
	VEXTRACTF32X4 $1, y, X31; \
	VADDPS        X31, x, x

// Sum each of xa..xd horizontally and store the four sums at off(R12).
#define HHADD4(xa, xb, xc, xd, off) \
	VHADDPS xb, xa, xa; \
	VHADDPS xd, xc, xc; \
	VHADDPS xc, xa, xa; \
	VMOVUPS xa, off(R12)

// Four FMAs of weight register wr against activations a..d into acc0..3.
#define HFMA4(wr, a, b, c, d, acc0, acc1, acc2, acc3) \
	VFMADD231PS a, wr, acc0; \
	VFMADD231PS b, wr, acc1; \
	VFMADD231PS c, wr, acc2; \
	VFMADD231PS d, wr, acc3

// Load the four row pointers of w into R8..R11.
#define LOADW \
	MOVQ w+0(FP), AX; \
	MOVQ 0(AX), R8;   \
	MOVQ 8(AX), R9;   \
	MOVQ 16(AX), R10; \
	MOVQ 24(AX), R11

// Load the four activation pointers of x into SI, DI, BX, DX.
#define LOADX \
	MOVQ x+8(FP), AX; \
	MOVQ 0(AX), SI;   \
	MOVQ 8(AX), DI;   \
	MOVQ 16(AX), BX;  \
	MOVQ 24(AX), DX

#define ZERO16 \
	VPXORD Z0, Z0, Z0;    \
	VPXORD Z1, Z1, Z1;    \
	VPXORD Z2, Z2, Z2;    \
	VPXORD Z3, Z3, Z3;    \
	VPXORD Z4, Z4, Z4;    \
	VPXORD Z5, Z5, Z5;    \
	VPXORD Z6, Z6, Z6;    \
	VPXORD Z7, Z7, Z7;    \
	VPXORD Z8, Z8, Z8;    \
	VPXORD Z9, Z9, Z9;    \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15

#define REDUCE16 \
	MOVQ out+24(FP), R12;     \
	HZ2X(Z0, Y0, X0);         \
	HZ2X(Z1, Y1, X1);         \
	HZ2X(Z2, Y2, X2);         \
	HZ2X(Z3, Y3, X3);         \
	HZ2X(Z4, Y4, X4);         \
	HZ2X(Z5, Y5, X5);         \
	HZ2X(Z6, Y6, X6);         \
	HZ2X(Z7, Y7, X7);         \
	HZ2X(Z8, Y8, X8);         \
	HZ2X(Z9, Y9, X9);         \
	HZ2X(Z10, Y10, X10);      \
	HZ2X(Z11, Y11, X11);      \
	HZ2X(Z12, Y12, X12);      \
	HZ2X(Z13, Y13, X13);      \
	HZ2X(Z14, Y14, X14);      \
	HZ2X(Z15, Y15, X15);      \
	HHADD4(X0, X1, X2, X3, 0);     \
	HHADD4(X4, X5, X6, X7, 16);    \
	HHADD4(X8, X9, X10, X11, 32);  \
	HHADD4(X12, X13, X14, X15, 48)

#define REDUCE4 \
	MOVQ out+24(FP), R12; \
	HZ2X(Z0, Y0, X0);     \
	HZ2X(Z1, Y1, X1);     \
	HZ2X(Z2, Y2, X2);     \
	HZ2X(Z3, Y3, X3);     \
	HHADD4(X0, X1, X2, X3, 0)

// One BF16 row step: the 32 weights in Z25 widened into Z26 (even) and
// Z27 (odd) and multiplied against the four tokens' even (Z16..Z19) and odd
// (Z20..Z23) activations.
#define BROW4(acc0, acc1, acc2, acc3) \
	VPSLLD $16, Z25, Z26;                                \
	VPANDD Z24, Z25, Z27;                                \
	HFMA4(Z26, Z16, Z17, Z18, Z19, acc0, acc1, acc2, acc3); \
	HFMA4(Z27, Z20, Z21, Z22, Z23, acc0, acc1, acc2, acc3)

// func hgemmBF16x4AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)
//
// out[4*i+j] = Σ_p bf16(w[i])[p] · x[j][p] over p < k, where x[j] is the
// block-permuted activation vector (zero-padded to a multiple of 32).
TEXT ·hgemmBF16x4AVX512(SB), NOSPLIT, $0-32
	LOADW
	LOADX
	MOVQ         k+16(FP), CX
	XORQ         AX, AX       // activation byte offset
	XORQ         R13, R13     // weight byte offset
	MOVL         $0xFFFF0000, R12
	VPBROADCASTD R12, Z24
	ZERO16

bloop:
	CMPQ    CX, $32
	JLT     btail
	VMOVUPS (SI)(AX*1), Z16
	VMOVUPS (DI)(AX*1), Z17
	VMOVUPS (BX)(AX*1), Z18
	VMOVUPS (DX)(AX*1), Z19
	VMOVUPS 64(SI)(AX*1), Z20
	VMOVUPS 64(DI)(AX*1), Z21
	VMOVUPS 64(BX)(AX*1), Z22
	VMOVUPS 64(DX)(AX*1), Z23
	VMOVDQU32 (R8)(R13*1), Z25
	BROW4(Z0, Z1, Z2, Z3)
	VMOVDQU32 (R9)(R13*1), Z25
	BROW4(Z4, Z5, Z6, Z7)
	VMOVDQU32 (R10)(R13*1), Z25
	BROW4(Z8, Z9, Z10, Z11)
	VMOVDQU32 (R11)(R13*1), Z25
	BROW4(Z12, Z13, Z14, Z15)
	ADDQ    $128, AX
	ADDQ    $64, R13
	SUBQ    $32, CX
	JMP     bloop

btail:
	TESTQ CX, CX
	JEQ   breduce
	MOVQ  $1, R12
	SHLQ  CX, R12
	DECQ  R12
	KMOVD R12, K1
	VMOVUPS (SI)(AX*1), Z16
	VMOVUPS (DI)(AX*1), Z17
	VMOVUPS (BX)(AX*1), Z18
	VMOVUPS (DX)(AX*1), Z19
	VMOVUPS 64(SI)(AX*1), Z20
	VMOVUPS 64(DI)(AX*1), Z21
	VMOVUPS 64(BX)(AX*1), Z22
	VMOVUPS 64(DX)(AX*1), Z23
	VMOVDQU16.Z (R8)(R13*1), K1, Z25
	BROW4(Z0, Z1, Z2, Z3)
	VMOVDQU16.Z (R9)(R13*1), K1, Z25
	BROW4(Z4, Z5, Z6, Z7)
	VMOVDQU16.Z (R10)(R13*1), K1, Z25
	BROW4(Z8, Z9, Z10, Z11)
	VMOVDQU16.Z (R11)(R13*1), K1, Z25
	BROW4(Z12, Z13, Z14, Z15)

breduce:
	REDUCE16
	VZEROUPPER
	RET

// One BF16 row step for one token: Z25's weights against Z16 (even) and
// Z20 (odd) into acc.
#define BROW1(acc) \
	VPSLLD      $16, Z25, Z26; \
	VPANDD      Z24, Z25, Z27; \
	VFMADD231PS Z16, Z26, acc; \
	VFMADD231PS Z20, Z27, acc

// func hgemmBF16x1AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)
//
// out[i] = Σ_p bf16(w[i])[p] · x[0][p] for i < 4 (x[0] block-permuted);
// the rest of out is left alone.
TEXT ·hgemmBF16x1AVX512(SB), NOSPLIT, $0-32
	LOADW
	MOVQ         x+8(FP), AX
	MOVQ         0(AX), SI
	MOVQ         k+16(FP), CX
	XORQ         AX, AX
	XORQ         R13, R13
	MOVL         $0xFFFF0000, R12
	VPBROADCASTD R12, Z24
	VPXORD       Z0, Z0, Z0
	VPXORD       Z1, Z1, Z1
	VPXORD       Z2, Z2, Z2
	VPXORD       Z3, Z3, Z3

b1loop:
	CMPQ      CX, $32
	JLT       b1tail
	VMOVUPS   (SI)(AX*1), Z16
	VMOVUPS   64(SI)(AX*1), Z20
	VMOVDQU32 (R8)(R13*1), Z25
	BROW1(Z0)
	VMOVDQU32 (R9)(R13*1), Z25
	BROW1(Z1)
	VMOVDQU32 (R10)(R13*1), Z25
	BROW1(Z2)
	VMOVDQU32 (R11)(R13*1), Z25
	BROW1(Z3)
	ADDQ      $128, AX
	ADDQ      $64, R13
	SUBQ      $32, CX
	JMP       b1loop

b1tail:
	TESTQ       CX, CX
	JEQ         b1reduce
	MOVQ        $1, R12
	SHLQ        CX, R12
	DECQ        R12
	KMOVD       R12, K1
	VMOVUPS     (SI)(AX*1), Z16
	VMOVUPS     64(SI)(AX*1), Z20
	VMOVDQU16.Z (R8)(R13*1), K1, Z25
	BROW1(Z0)
	VMOVDQU16.Z (R9)(R13*1), K1, Z25
	BROW1(Z1)
	VMOVDQU16.Z (R10)(R13*1), K1, Z25
	BROW1(Z2)
	VMOVDQU16.Z (R11)(R13*1), K1, Z25
	BROW1(Z3)

b1reduce:
	REDUCE4
	VZEROUPPER
	RET

// func hgemmF16x4AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)
//
// out[4*i+j] = Σ_p f16(w[i])[p] · x[j][p] over p < k (x in place).
TEXT ·hgemmF16x4AVX512(SB), NOSPLIT, $0-32
	LOADW
	LOADX
	MOVQ k+16(FP), CX
	XORQ AX, AX
	XORQ R13, R13
	ZERO16

floop:
	CMPQ      CX, $16
	JLT       ftail
	VMOVUPS   (SI)(AX*1), Z16
	VMOVUPS   (DI)(AX*1), Z17
	VMOVUPS   (BX)(AX*1), Z18
	VMOVUPS   (DX)(AX*1), Z19
	VCVTPH2PS (R8)(R13*1), Z20
	VCVTPH2PS (R9)(R13*1), Z21
	HFMA4(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	VCVTPH2PS (R10)(R13*1), Z22
	HFMA4(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	VCVTPH2PS (R11)(R13*1), Z23
	HFMA4(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	HFMA4(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)
	ADDQ      $64, AX
	ADDQ      $32, R13
	SUBQ      $16, CX
	JMP       floop

ftail:
	TESTQ       CX, CX
	JEQ         freduce
	MOVQ        $1, R12
	SHLQ        CX, R12
	DECQ        R12
	KMOVW       R12, K1
	VMOVUPS.Z   (SI)(AX*1), K1, Z16
	VMOVUPS.Z   (DI)(AX*1), K1, Z17
	VMOVUPS.Z   (BX)(AX*1), K1, Z18
	VMOVUPS.Z   (DX)(AX*1), K1, Z19
	VMOVDQU16.Z (R8)(R13*1), K1, Y20
	VMOVDQU16.Z (R9)(R13*1), K1, Y21
	VMOVDQU16.Z (R10)(R13*1), K1, Y22
	VMOVDQU16.Z (R11)(R13*1), K1, Y23
	VCVTPH2PS   Y20, Z20
	VCVTPH2PS   Y21, Z21
	VCVTPH2PS   Y22, Z22
	VCVTPH2PS   Y23, Z23
	HFMA4(Z20, Z16, Z17, Z18, Z19, Z0, Z1, Z2, Z3)
	HFMA4(Z21, Z16, Z17, Z18, Z19, Z4, Z5, Z6, Z7)
	HFMA4(Z22, Z16, Z17, Z18, Z19, Z8, Z9, Z10, Z11)
	HFMA4(Z23, Z16, Z17, Z18, Z19, Z12, Z13, Z14, Z15)

freduce:
	REDUCE16
	VZEROUPPER
	RET

// func hgemmF16x1AVX512(w *[4]*byte, x *[4]*float32, k int, out *[16]float32)
//
// out[i] = Σ_p f16(w[i])[p] · x[0][p] for i < 4; the rest of out is left
// alone.
TEXT ·hgemmF16x1AVX512(SB), NOSPLIT, $0-32
	LOADW
	MOVQ   x+8(FP), AX
	MOVQ   0(AX), SI
	MOVQ   k+16(FP), CX
	XORQ   AX, AX
	XORQ   R13, R13
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3

f1loop:
	CMPQ        CX, $16
	JLT         f1tail
	VMOVUPS     (SI)(AX*1), Z16
	VCVTPH2PS   (R8)(R13*1), Z20
	VCVTPH2PS   (R9)(R13*1), Z21
	VCVTPH2PS   (R10)(R13*1), Z22
	VCVTPH2PS   (R11)(R13*1), Z23
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z16, Z21, Z1
	VFMADD231PS Z16, Z22, Z2
	VFMADD231PS Z16, Z23, Z3
	ADDQ        $64, AX
	ADDQ        $32, R13
	SUBQ        $16, CX
	JMP         f1loop

f1tail:
	TESTQ       CX, CX
	JEQ         f1reduce
	MOVQ        $1, R12
	SHLQ        CX, R12
	DECQ        R12
	KMOVW       R12, K1
	VMOVUPS.Z   (SI)(AX*1), K1, Z16
	VMOVDQU16.Z (R8)(R13*1), K1, Y20
	VMOVDQU16.Z (R9)(R13*1), K1, Y21
	VMOVDQU16.Z (R10)(R13*1), K1, Y22
	VMOVDQU16.Z (R11)(R13*1), K1, Y23
	VCVTPH2PS   Y20, Z20
	VCVTPH2PS   Y21, Z21
	VCVTPH2PS   Y22, Z22
	VCVTPH2PS   Y23, Z23
	VFMADD231PS Z16, Z20, Z0
	VFMADD231PS Z16, Z21, Z1
	VFMADD231PS Z16, Z22, Z2
	VFMADD231PS Z16, Z23, Z3

f1reduce:
	REDUCE4
	VZEROUPPER
	RET
