//go:build amd64 && !purego

#include "textflag.h"

// func f64Tile4x8AVX2(a *float64, lda int, b *float64, ldb int, k int, out *[64]float64)
//
// out[8r+s] = Σ_p a[r·lda+p]·b[p·ldb+s] for r < 4, s < 8, p < k ≥ 1: eight
// YMM accumulators (two per row of the tile), one broadcast of A and two
// loads of B per step, fused multiply-adds in order of p.
TEXT ·f64Tile4x8AVX2(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	SHLQ $3, R8
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R9
	SHLQ $3, R9
	MOVQ k+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (SI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	TESTQ CX, CX
	JZ    done

loop:
	VMOVUPD      (DI), Y8
	VMOVUPD      32(DI), Y9
	VBROADCASTSD (SI), Y10
	VFMADD231PD  Y8, Y10, Y0
	VFMADD231PD  Y9, Y10, Y1
	VBROADCASTSD (R10), Y11
	VFMADD231PD  Y8, Y11, Y2
	VFMADD231PD  Y9, Y11, Y3
	VBROADCASTSD (R11), Y12
	VFMADD231PD  Y8, Y12, Y4
	VFMADD231PD  Y9, Y12, Y5
	VBROADCASTSD (R12), Y13
	VFMADD231PD  Y8, Y13, Y6
	VFMADD231PD  Y9, Y13, Y7
	ADDQ         $8, SI
	ADDQ         $8, R10
	ADDQ         $8, R11
	ADDQ         $8, R12
	ADDQ         R9, DI
	DECQ         CX
	JNZ          loop

done:
	VMOVUPD Y0, (DX)
	VMOVUPD Y1, 32(DX)
	VMOVUPD Y2, 64(DX)
	VMOVUPD Y3, 96(DX)
	VMOVUPD Y4, 128(DX)
	VMOVUPD Y5, 160(DX)
	VMOVUPD Y6, 192(DX)
	VMOVUPD Y7, 224(DX)
	VZEROUPPER
	RET

// func f64SubScaled4AVX2(dst, u0, u1, u2, u3 *float64, n int, e *[4]float64)
//
// dst[j] -= ((e0·u0[j] + e1·u1[j]) + e2·u2[j]) + e3·u3[j], separate
// multiplies and adds (bit-identical with the Go loop), four lanes at a
// time, then one at a time.
TEXT ·f64SubScaled4AVX2(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         u0+8(FP), R8
	MOVQ         u1+16(FP), R9
	MOVQ         u2+24(FP), R10
	MOVQ         u3+32(FP), R11
	MOVQ         n+40(FP), CX
	MOVQ         e+48(FP), AX
	VBROADCASTSD (AX), Y12
	VBROADCASTSD 8(AX), Y13
	VBROADCASTSD 16(AX), Y14
	VBROADCASTSD 24(AX), Y15
	XORQ         BX, BX
	MOVQ         CX, DX
	ANDQ         $-4, DX

vec4:
	CMPQ    BX, DX
	JGE     tail4
	VMULPD  (R8)(BX*8), Y12, Y0
	VMULPD  (R9)(BX*8), Y13, Y1
	VADDPD  Y1, Y0, Y0
	VMULPD  (R10)(BX*8), Y14, Y2
	VADDPD  Y2, Y0, Y0
	VMULPD  (R11)(BX*8), Y15, Y3
	VADDPD  Y3, Y0, Y0
	VMOVUPD (DI)(BX*8), Y4
	VSUBPD  Y0, Y4, Y4
	VMOVUPD Y4, (DI)(BX*8)
	ADDQ    $4, BX
	JMP     vec4

tail4:
	CMPQ   BX, CX
	JGE    done4
	VMOVSD (R8)(BX*8), X0
	VMULSD X12, X0, X0
	VMOVSD (R9)(BX*8), X1
	VMULSD X13, X1, X1
	VADDSD X1, X0, X0
	VMOVSD (R10)(BX*8), X2
	VMULSD X14, X2, X2
	VADDSD X2, X0, X0
	VMOVSD (R11)(BX*8), X3
	VMULSD X15, X3, X3
	VADDSD X3, X0, X0
	VMOVSD (DI)(BX*8), X4
	VSUBSD X0, X4, X4
	VMOVSD X4, (DI)(BX*8)
	INCQ   BX
	JMP    tail4

done4:
	VZEROUPPER
	RET

// func f64SubScaledAVX2(dst, u *float64, n int, e float64)
//
// dst[j] -= e·u[j], multiply then subtract, four lanes at a time.
TEXT ·f64SubScaledAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         u+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSD e+24(FP), Y12
	XORQ         BX, BX
	MOVQ         CX, DX
	ANDQ         $-4, DX

vec1:
	CMPQ    BX, DX
	JGE     tail1
	VMULPD  (SI)(BX*8), Y12, Y0
	VMOVUPD (DI)(BX*8), Y4
	VSUBPD  Y0, Y4, Y4
	VMOVUPD Y4, (DI)(BX*8)
	ADDQ    $4, BX
	JMP     vec1

tail1:
	CMPQ   BX, CX
	JGE    done1
	VMOVSD (SI)(BX*8), X0
	VMULSD X12, X0, X0
	VMOVSD (DI)(BX*8), X4
	VSUBSD X0, X4, X4
	VMOVSD X4, (DI)(BX*8)
	INCQ   BX
	JMP    tail1

done1:
	VZEROUPPER
	RET

// func f64Tile4x16AVX512(a *float64, lda int, b *float64, ldb int, k int, out *[64]float64)
//
// out[16r+s] = Σ_p a[r·lda+p]·b[p·ldb+s] for r < 4, s < 16, p < k ≥ 1:
// the AVX2 kernel's scheme on ZMM registers.
TEXT ·f64Tile4x16AVX512(SB), NOSPLIT, $0-48
	MOVQ a+0(FP), SI
	MOVQ lda+8(FP), R8
	SHLQ $3, R8
	MOVQ b+16(FP), DI
	MOVQ ldb+24(FP), R9
	SHLQ $3, R9
	MOVQ k+32(FP), CX
	MOVQ out+40(FP), DX
	LEAQ (SI)(R8*1), R10
	LEAQ (R10)(R8*1), R11
	LEAQ (R11)(R8*1), R12
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	TESTQ  CX, CX
	JZ     done16

loop16:
	VMOVUPD      (DI), Z8
	VMOVUPD      64(DI), Z9
	VBROADCASTSD (SI), Z10
	VFMADD231PD  Z8, Z10, Z0
	VFMADD231PD  Z9, Z10, Z1
	VBROADCASTSD (R10), Z11
	VFMADD231PD  Z8, Z11, Z2
	VFMADD231PD  Z9, Z11, Z3
	VBROADCASTSD (R11), Z12
	VFMADD231PD  Z8, Z12, Z4
	VFMADD231PD  Z9, Z12, Z5
	VBROADCASTSD (R12), Z13
	VFMADD231PD  Z8, Z13, Z6
	VFMADD231PD  Z9, Z13, Z7
	ADDQ         $8, SI
	ADDQ         $8, R10
	ADDQ         $8, R11
	ADDQ         $8, R12
	ADDQ         R9, DI
	DECQ         CX
	JNZ          loop16

done16:
	VMOVUPD Z0, (DX)
	VMOVUPD Z1, 64(DX)
	VMOVUPD Z2, 128(DX)
	VMOVUPD Z3, 192(DX)
	VMOVUPD Z4, 256(DX)
	VMOVUPD Z5, 320(DX)
	VMOVUPD Z6, 384(DX)
	VMOVUPD Z7, 448(DX)
	VZEROUPPER
	RET

// func f64SubScaled4AVX512(dst, u0, u1, u2, u3 *float64, n int, e *[4]float64)
//
// f64SubScaled4AVX2's arithmetic, eight lanes at a time; n is a multiple
// of 8.
TEXT ·f64SubScaled4AVX512(SB), NOSPLIT, $0-56
	MOVQ         dst+0(FP), DI
	MOVQ         u0+8(FP), R8
	MOVQ         u1+16(FP), R9
	MOVQ         u2+24(FP), R10
	MOVQ         u3+32(FP), R11
	MOVQ         n+40(FP), CX
	MOVQ         e+48(FP), AX
	VBROADCASTSD (AX), Z12
	VBROADCASTSD 8(AX), Z13
	VBROADCASTSD 16(AX), Z14
	VBROADCASTSD 24(AX), Z15
	XORQ         BX, BX

vec8:
	CMPQ    BX, CX
	JGE     done8
	VMULPD  (R8)(BX*8), Z12, Z0
	VMULPD  (R9)(BX*8), Z13, Z1
	VADDPD  Z1, Z0, Z0
	VMULPD  (R10)(BX*8), Z14, Z2
	VADDPD  Z2, Z0, Z0
	VMULPD  (R11)(BX*8), Z15, Z3
	VADDPD  Z3, Z0, Z0
	VMOVUPD (DI)(BX*8), Z4
	VSUBPD  Z0, Z4, Z4
	VMOVUPD Z4, (DI)(BX*8)
	ADDQ    $8, BX
	JMP     vec8

done8:
	VZEROUPPER
	RET
