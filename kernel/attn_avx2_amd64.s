//go:build amd64 && !purego

#include "textflag.h"

// AVX2 (with FMA) forms of the exp loops of attn_amd64.s: the same Cephes
// expf, eight lanes at a time. AVX2 has neither VRNDSCALEPS nor
// VSCALEFPS: n = round(x·log2 e) comes from VROUNDPS, and 2^n is applied
// in two factors 2^(n>>1) and 2^(n−n>>1), each a normal float32 built
// from its exponent bits, so that n = 128 (x just below the overflow
// bound) and n down to −128 (subnormal results) scale correctly. The
// loops take whole groups of eight; the Go wrappers do the rest with
// expf32, whose results differ from the lanes' by at most about an ulp.

// The constants of EXPCONSTS, each in eight lanes: log2 e, ln 2 in two
// parts, the polynomial, 1, the clamp bounds, and the exponent bias 127
// (int32).
DATA expTab8<>+0x000(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expTab8<>+0x008(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expTab8<>+0x010(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expTab8<>+0x018(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expTab8<>+0x020(SB)/8, $0x3f3180003f318000
DATA expTab8<>+0x028(SB)/8, $0x3f3180003f318000
DATA expTab8<>+0x030(SB)/8, $0x3f3180003f318000
DATA expTab8<>+0x038(SB)/8, $0x3f3180003f318000
DATA expTab8<>+0x040(SB)/8, $0xb95e8083b95e8083
DATA expTab8<>+0x048(SB)/8, $0xb95e8083b95e8083
DATA expTab8<>+0x050(SB)/8, $0xb95e8083b95e8083
DATA expTab8<>+0x058(SB)/8, $0xb95e8083b95e8083
DATA expTab8<>+0x060(SB)/8, $0x3950696739506967
DATA expTab8<>+0x068(SB)/8, $0x3950696739506967
DATA expTab8<>+0x070(SB)/8, $0x3950696739506967
DATA expTab8<>+0x078(SB)/8, $0x3950696739506967
DATA expTab8<>+0x080(SB)/8, $0x3ab743ce3ab743ce
DATA expTab8<>+0x088(SB)/8, $0x3ab743ce3ab743ce
DATA expTab8<>+0x090(SB)/8, $0x3ab743ce3ab743ce
DATA expTab8<>+0x098(SB)/8, $0x3ab743ce3ab743ce
DATA expTab8<>+0x0a0(SB)/8, $0x3c0889083c088908
DATA expTab8<>+0x0a8(SB)/8, $0x3c0889083c088908
DATA expTab8<>+0x0b0(SB)/8, $0x3c0889083c088908
DATA expTab8<>+0x0b8(SB)/8, $0x3c0889083c088908
DATA expTab8<>+0x0c0(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expTab8<>+0x0c8(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expTab8<>+0x0d0(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expTab8<>+0x0d8(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expTab8<>+0x0e0(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expTab8<>+0x0e8(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expTab8<>+0x0f0(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expTab8<>+0x0f8(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expTab8<>+0x100(SB)/8, $0x3f0000003f000000
DATA expTab8<>+0x108(SB)/8, $0x3f0000003f000000
DATA expTab8<>+0x110(SB)/8, $0x3f0000003f000000
DATA expTab8<>+0x118(SB)/8, $0x3f0000003f000000
DATA expTab8<>+0x120(SB)/8, $0x3f8000003f800000
DATA expTab8<>+0x128(SB)/8, $0x3f8000003f800000
DATA expTab8<>+0x130(SB)/8, $0x3f8000003f800000
DATA expTab8<>+0x138(SB)/8, $0x3f8000003f800000
DATA expTab8<>+0x140(SB)/8, $0xc2b17218c2b17218
DATA expTab8<>+0x148(SB)/8, $0xc2b17218c2b17218
DATA expTab8<>+0x150(SB)/8, $0xc2b17218c2b17218
DATA expTab8<>+0x158(SB)/8, $0xc2b17218c2b17218
DATA expTab8<>+0x160(SB)/8, $0x42b1721842b17218
DATA expTab8<>+0x168(SB)/8, $0x42b1721842b17218
DATA expTab8<>+0x170(SB)/8, $0x42b1721842b17218
DATA expTab8<>+0x178(SB)/8, $0x42b1721842b17218
DATA expTab8<>+0x180(SB)/8, $0x0000007f0000007f
DATA expTab8<>+0x188(SB)/8, $0x0000007f0000007f
DATA expTab8<>+0x190(SB)/8, $0x0000007f0000007f
DATA expTab8<>+0x198(SB)/8, $0x0000007f0000007f
GLOBL expTab8<>(SB), RODATA|NOPTR, $416

// y = exp(x) for Y registers x, y, n, r, s (distinct; x and the others
// are clobbered).
#define EXPY(x, y, n, r, s) \
	VMAXPS       expTab8<>+0x140(SB), x, x; \
	VMINPS       expTab8<>+0x160(SB), x, x; \
	VMULPS       expTab8<>+0x000(SB), x, n; \
	VROUNDPS     $0, n, n; \
	VMOVAPS      expTab8<>+0x020(SB), s; \
	VFNMADD231PS s, n, x; \
	VMOVAPS      expTab8<>+0x040(SB), s; \
	VFNMADD231PS s, n, x; \
	VMOVAPS      expTab8<>+0x060(SB), y; \
	VFMADD213PS  expTab8<>+0x080(SB), x, y; \
	VFMADD213PS  expTab8<>+0x0a0(SB), x, y; \
	VFMADD213PS  expTab8<>+0x0c0(SB), x, y; \
	VFMADD213PS  expTab8<>+0x0e0(SB), x, y; \
	VFMADD213PS  expTab8<>+0x100(SB), x, y; \
	VMULPS       x, x, r; \
	VFMADD213PS  x, r, y; \
	VADDPS       expTab8<>+0x120(SB), y, y; \
	VCVTPS2DQ    n, n; \
	VPSRAD       $1, n, r; \
	VPSUBD       r, n, n; \
	VPADDD       expTab8<>+0x180(SB), r, r; \
	VPADDD       expTab8<>+0x180(SB), n, n; \
	VPSLLD       $23, r, r; \
	VPSLLD       $23, n, n; \
	VMULPS       r, y, y; \
	VMULPS       n, y, y

// func expSubAVX2(x []float32, m float32) float32
//
// x[i] = exp(x[i] − m) for the first len(x) &^ 7 elements; returns their
// sum.
TEXT ·expSubAVX2(SB), NOSPLIT, $0-36
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	SHRQ $3, CX
	VBROADCASTSS m+24(FP), Y3
	VXORPS Y0, Y0, Y0
	TESTQ CX, CX
	JZ    es8done

es8loop:
	VMOVUPS (SI), Y1
	VSUBPS  Y3, Y1, Y1
	EXPY(Y1, Y2, Y4, Y5, Y6)
	VMOVUPS Y2, (SI)
	VADDPS  Y2, Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ  es8loop

es8done:
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VMOVHLPS     X0, X0, X1
	VADDPS       X1, X0, X0
	VMOVSHDUP    X0, X1
	VADDSS       X1, X0, X0
	VMOVSS X0, ret+32(FP)
	VZEROUPPER
	RET

// func siluMulAVX2(g, u []float32)
//
// g[i] = g[i] / (1 + exp(−g[i])) · u[i] for the first len(g) &^ 7
// elements (len(u) >= len(g)).
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-48
	MOVQ g_base+0(FP), SI
	MOVQ g_len+8(FP), CX
	MOVQ u_base+24(FP), DI
	SHRQ $3, CX
	TESTQ CX, CX
	JZ    sm8done
	VXORPS Y7, Y7, Y7

sm8loop:
	VMOVUPS (SI), Y1
	VSUBPS  Y1, Y7, Y2
	EXPY(Y2, Y3, Y4, Y5, Y6)
	VADDPS  expTab8<>+0x120(SB), Y3, Y3
	VDIVPS  Y3, Y1, Y1
	VMULPS  (DI), Y1, Y1
	VMOVUPS Y1, (SI)
	ADDQ $32, SI
	ADDQ $32, DI
	DECQ CX
	JNZ  sm8loop

sm8done:
	VZEROUPPER
	RET

// func maxAVX2(x []float32) float32
//
// The largest element of x (len(x) > 0).
TEXT ·maxAVX2(SB), NOSPLIT, $0-28
	MOVQ x_base+0(FP), SI
	MOVQ x_len+8(FP), CX
	VBROADCASTSS (SI), Y0
	VMOVAPS Y0, Y1

mx8loop16:
	CMPQ CX, $16
	JLT  mx8loop8
	VMAXPS (SI), Y0, Y0
	VMAXPS 32(SI), Y1, Y1
	ADDQ $64, SI
	SUBQ $16, CX
	JMP  mx8loop16

mx8loop8:
	CMPQ CX, $8
	JLT  mx8tail
	VMAXPS (SI), Y0, Y0
	ADDQ $32, SI
	SUBQ $8, CX

mx8tail:
	TESTQ CX, CX
	JZ    mx8done
	VBROADCASTSS (SI), Y2
	VMAXPS       Y2, Y1, Y1
	ADDQ $4, SI
	DECQ CX
	JMP  mx8tail

mx8done:
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4e, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xb1, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSS X0, ret+24(FP)
	VZEROUPPER
	RET
