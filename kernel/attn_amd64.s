//go:build amd64 && !purego

#include "textflag.h"

// Vectorized float32 exp (Cephes expf: n = round(x·log2e), r = x − n·ln2 in
// two parts, degree-5 polynomial, scaled by 2^n with VSCALEFPS; about 1 ulp)
// and the attention/feed-forward loops built on it, plus weighted sums of
// strided rows. Constants live in Z20..Z31.

#define EXPCONSTS \
	MOVL $0x3fb8aa3b, AX; VPBROADCASTD AX, Z20; \
	MOVL $0x3f318000, AX; VPBROADCASTD AX, Z21; \
	MOVL $0xb95e8083, AX; VPBROADCASTD AX, Z22; \
	MOVL $0x39506967, AX; VPBROADCASTD AX, Z23; \
	MOVL $0x3ab743ce, AX; VPBROADCASTD AX, Z24; \
	MOVL $0x3c088908, AX; VPBROADCASTD AX, Z25; \
	MOVL $0x3d2aa9c1, AX; VPBROADCASTD AX, Z26; \
	MOVL $0x3e2aaaaa, AX; VPBROADCASTD AX, Z27; \
	MOVL $0x3f000000, AX; VPBROADCASTD AX, Z28; \
	MOVL $0x3f800000, AX; VPBROADCASTD AX, Z29; \
	MOVL $0xc2b17218, AX; VPBROADCASTD AX, Z30; \
	MOVL $0x42b17218, AX; VPBROADCASTD AX, Z31

// y = exp(x) (x is clobbered; n and r are temporaries).
#define EXPZ(x, y, n, r) \
	VMAXPS       Z30, x, x; \
	VMINPS       Z31, x, x; \
	VMULPS       Z20, x, n; \
	VRNDSCALEPS  $0, n, n; \
	VFNMADD231PS Z21, n, x; \
	VFNMADD231PS Z22, n, x; \
	VMOVAPS      Z23, y; \
	VFMADD213PS  Z24, x, y; \
	VFMADD213PS  Z25, x, y; \
	VFMADD213PS  Z26, x, y; \
	VFMADD213PS  Z27, x, y; \
	VFMADD213PS  Z28, x, y; \
	VMULPS       x, x, r; \
	VFMADD213PS  x, r, y; \
	VADDPS       Z29, y, y; \
	VSCALEFPS    n, y, y

// func expSubAVX512(x []float32, m float32) float32
//
// x[i] = exp(x[i] − m); returns Σ x[i].
TEXT ·expSubAVX512(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS m+24(FP), Z19
	EXPCONSTS
	VPXORD Z0, Z0, Z0

esloop:
	CMPQ CX, $16
	JLT  estail
	VMOVUPS (SI), Z1
	VSUBPS  Z19, Z1, Z1
	EXPZ(Z1, Z2, Z3, Z4)
	VMOVUPS Z2, (SI)
	VADDPS  Z2, Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  esloop

estail:
	TESTQ CX, CX
	JZ    esdone
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K1
	VMOVUPS.Z (SI), K1, Z1
	VSUBPS  Z19, Z1, Z1
	EXPZ(Z1, Z2, Z3, Z4)
	VMOVUPS Z2, K1, (SI)
	VADDPS  Z2, Z0, K1, Z0

esdone:
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func siluMulAVX512(g, u []float32)
//
// g[i] = g[i] / (1 + exp(−g[i])) · u[i].
TEXT ·siluMulAVX512(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), SI
	MOVQ g_len+8(FP), CX
	MOVQ u_base+24(FP), DI
	EXPCONSTS
	VPXORD Z18, Z18, Z18

smloop:
	CMPQ CX, $16
	JLT  smtail
	VMOVUPS (SI), Z1
	VSUBPS  Z1, Z18, Z2
	EXPZ(Z2, Z3, Z4, Z5)
	VADDPS  Z29, Z3, Z3
	VDIVPS  Z3, Z1, Z1
	VMULPS  (DI), Z1, Z1
	VMOVUPS Z1, (SI)
	ADDQ $64, SI
	ADDQ $64, DI
	SUBQ $16, CX
	JMP  smloop

smtail:
	TESTQ CX, CX
	JZ    smdone
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K1
	VMOVUPS.Z (SI), K1, Z1
	VMOVUPS.Z (DI), K1, Z6
	VSUBPS  Z1, Z18, Z2
	EXPZ(Z2, Z3, Z4, Z5)
	VADDPS  Z29, Z3, Z3
	VDIVPS  Z3, Z1, Z1
	VMULPS  Z6, Z1, Z1
	VMOVUPS Z1, K1, (SI)

smdone:
	VZEROUPPER
	RET

// func wsumAVX512(dst, p []float32, v *float32, vs int)
//
// dst[c] = Σ_i p[i]·v[i·vs + c] for c < len(dst), i < len(p).
TEXT ·wsumAVX512(SB), NOSPLIT, $0-64
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), R8   // columns left
	MOVQ p_base+24(FP), R9
	MOVQ p_len+32(FP), R10
	MOVQ v+48(FP), R11
	MOVQ vs+56(FP), R13
	SHLQ $2, R13             // row stride in bytes

ws64:
	CMPQ R8, $64
	JLT  ws16
	VPXORD Z0, Z0, Z0
	VPXORD Z1, Z1, Z1
	VPXORD Z2, Z2, Z2
	VPXORD Z3, Z3, Z3
	MOVQ R11, SI
	MOVQ R9, DX
	MOVQ R10, CX
ws64row:
	TESTQ CX, CX
	JZ    ws64store
	VBROADCASTSS (DX), Z4
	VFMADD231PS 0(SI), Z4, Z0
	VFMADD231PS 64(SI), Z4, Z1
	VFMADD231PS 128(SI), Z4, Z2
	VFMADD231PS 192(SI), Z4, Z3
	ADDQ $4, DX
	ADDQ R13, SI
	DECQ CX
	JMP  ws64row
ws64store:
	VMOVUPS Z0, 0(DI)
	VMOVUPS Z1, 64(DI)
	VMOVUPS Z2, 128(DI)
	VMOVUPS Z3, 192(DI)
	ADDQ $256, DI
	ADDQ $256, R11
	SUBQ $64, R8
	JMP  ws64

ws16:
	TESTQ R8, R8
	JZ    wsdone
	MOVQ  $16, AX
	CMPQ  R8, AX
	CMOVQLT R8, AX
	MOVL  $1, R12
	MOVQ  AX, CX
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K1
	VPXORD Z0, Z0, Z0
	MOVQ R11, SI
	MOVQ R9, DX
	MOVQ R10, CX
ws16row:
	TESTQ CX, CX
	JZ    ws16store
	VBROADCASTSS (DX), Z4
	VMOVUPS.Z (SI), K1, Z5
	VFMADD231PS Z5, Z4, Z0
	ADDQ $4, DX
	ADDQ R13, SI
	DECQ CX
	JMP  ws16row
ws16store:
	VMOVUPS Z0, K1, (DI)
	MOVQ AX, BX
	SHLQ $2, BX
	ADDQ BX, DI
	ADDQ BX, R11
	SUBQ AX, R8
	JMP  ws16

wsdone:
	VZEROUPPER
	RET

// func maxAVX512(x []float32) float32
//
// The largest element of x (len(x) > 0).
TEXT ·maxAVX512(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS (SI), Z0
	VMOVAPS Z0, Z1

mxloop:
	CMPQ CX, $32
	JLT  mx16
	VMAXPS (SI), Z0, Z0
	VMAXPS 64(SI), Z1, Z1
	ADDQ $128, SI
	SUBQ $32, CX
	JMP  mxloop

mx16:
	CMPQ CX, $16
	JLT  mxtail
	VMAXPS (SI), Z0, Z0
	ADDQ $64, SI
	SUBQ $16, CX

mxtail:
	TESTQ CX, CX
	JZ    mxdone
	MOVL  $1, R12
	SHLL  CX, R12
	DECL  R12
	KMOVW R12, K1
	VMOVUPS.Z (SI), K1, Z2
	VMAXPS Z2, Z1, K1, Z1

mxdone:
	VMAXPS Z1, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS  Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS  X1, X0, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS  X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
