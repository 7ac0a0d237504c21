//go:build amd64 && !purego

#include "textflag.h"

// Dot products and axpys of float32 rows with packed 2- and 4-bit codes
// (the layout documented in kvq.go), one 32-channel block per iteration:
// VPMOVZXBD widens 8 code bytes into 8 dword lanes, shifts and masks peel
// off each quarter of the block's channels.

// func dotCodes4AVX2(w []float32, codes []byte) float32
TEXT ·dotCodes4AVX2(SB), NOSPLIT, $0-52
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	MOVQ codes_base+24(FP), DI
	MOVL $15, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

d4loop:
	CMPQ CX, $32
	JLT  d4done
	VPMOVZXBD (DI), Y2
	VPMOVZXBD 8(DI), Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $4, Y3, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VFMADD231PS (SI), Y2, Y0
	VFMADD231PS 32(SI), Y3, Y1
	VFMADD231PS 64(SI), Y4, Y0
	VFMADD231PS 96(SI), Y5, Y1
	ADDQ $128, SI
	ADDQ $16, DI
	SUBQ $32, CX
	JMP  d4loop

d4done:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func dotCodes2AVX2(w []float32, codes []byte) float32
TEXT ·dotCodes2AVX2(SB), NOSPLIT, $0-52
	MOVQ w_base+0(FP), SI
	MOVQ w_len+8(FP), CX
	MOVQ codes_base+24(FP), DI
	MOVL $3, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1

d2loop:
	CMPQ CX, $32
	JLT  d2done
	VPMOVZXBD (DI), Y2
	VPSRLD    $2, Y2, Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $6, Y2, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VPAND     Y15, Y4, Y4
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VFMADD231PS (SI), Y2, Y0
	VFMADD231PS 32(SI), Y3, Y1
	VFMADD231PS 64(SI), Y4, Y0
	VFMADD231PS 96(SI), Y5, Y1
	ADDQ $128, SI
	ADDQ $8, DI
	SUBQ $32, CX
	JMP  d2loop

d2done:
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VZEROUPPER
	MOVSS        X0, ret+48(FP)
	RET

// func axpyCodes4AVX2(out []float32, a float32, codes []byte)
TEXT ·axpyCodes4AVX2(SB), NOSPLIT, $0-56
	MOVQ out_base+0(FP), SI
	MOVQ out_len+8(FP), CX
	VBROADCASTSS a+24(FP), Y14
	MOVQ codes_base+32(FP), DI
	MOVL $15, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15

a4loop:
	CMPQ CX, $32
	JLT  a4done
	VPMOVZXBD (DI), Y2
	VPMOVZXBD 8(DI), Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $4, Y3, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VMOVUPS   (SI), Y6
	VMOVUPS   32(SI), Y7
	VMOVUPS   64(SI), Y8
	VMOVUPS   96(SI), Y9
	VFMADD231PS Y14, Y2, Y6
	VFMADD231PS Y14, Y3, Y7
	VFMADD231PS Y14, Y4, Y8
	VFMADD231PS Y14, Y5, Y9
	VMOVUPS   Y6, (SI)
	VMOVUPS   Y7, 32(SI)
	VMOVUPS   Y8, 64(SI)
	VMOVUPS   Y9, 96(SI)
	ADDQ $128, SI
	ADDQ $16, DI
	SUBQ $32, CX
	JMP  a4loop

a4done:
	VZEROUPPER
	RET

// func axpyCodes2AVX2(out []float32, a float32, codes []byte)
TEXT ·axpyCodes2AVX2(SB), NOSPLIT, $0-56
	MOVQ out_base+0(FP), SI
	MOVQ out_len+8(FP), CX
	VBROADCASTSS a+24(FP), Y14
	MOVQ codes_base+32(FP), DI
	MOVL $3, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15

a2loop:
	CMPQ CX, $32
	JLT  a2done
	VPMOVZXBD (DI), Y2
	VPSRLD    $2, Y2, Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $6, Y2, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VPAND     Y15, Y4, Y4
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VMOVUPS   (SI), Y6
	VMOVUPS   32(SI), Y7
	VMOVUPS   64(SI), Y8
	VMOVUPS   96(SI), Y9
	VFMADD231PS Y14, Y2, Y6
	VFMADD231PS Y14, Y3, Y7
	VFMADD231PS Y14, Y4, Y8
	VFMADD231PS Y14, Y5, Y9
	VMOVUPS   Y6, (SI)
	VMOVUPS   Y7, 32(SI)
	VMOVUPS   Y8, 64(SI)
	VMOVUPS   Y9, 96(SI)
	ADDQ $128, SI
	ADDQ $8, DI
	SUBQ $32, CX
	JMP  a2loop

a2done:
	VZEROUPPER
	RET

// func axpyCodesRows4AVX2(out, a []float32, codes []byte)
//
// For each weight a[i] (row r = i / k, block i mod k; k = len(out)/32):
// out[block] += a[i] · codes of that block. The codes' blocks follow each
// other in the same order as the weights.
TEXT ·axpyCodesRows4AVX2(SB), NOSPLIT, $0-72
	MOVQ out_base+0(FP), R8
	MOVQ out_len+8(FP), R9
	SHLQ $2, R9              // bytes of out: one row's span
	MOVQ a_base+24(FP), BX
	MOVQ a_len+32(FP), CX
	MOVQ codes_base+48(FP), DI
	MOVL $15, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	MOVQ R8, SI
	LEAQ (R8)(R9*1), R10     // end of out

ar4loop:
	TESTQ CX, CX
	JZ    ar4done
	VBROADCASTSS (BX), Y14
	VPMOVZXBD (DI), Y2
	VPMOVZXBD 8(DI), Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $4, Y3, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VMOVUPS   (SI), Y6
	VMOVUPS   32(SI), Y7
	VMOVUPS   64(SI), Y8
	VMOVUPS   96(SI), Y9
	VFMADD231PS Y14, Y2, Y6
	VFMADD231PS Y14, Y3, Y7
	VFMADD231PS Y14, Y4, Y8
	VFMADD231PS Y14, Y5, Y9
	VMOVUPS   Y6, (SI)
	VMOVUPS   Y7, 32(SI)
	VMOVUPS   Y8, 64(SI)
	VMOVUPS   Y9, 96(SI)
	ADDQ $4, BX
	ADDQ $16, DI
	ADDQ $128, SI
	CMPQ SI, R10
	JLT  ar4next
	MOVQ R8, SI              // next row: back to out's start

ar4next:
	DECQ CX
	JMP  ar4loop

ar4done:
	VZEROUPPER
	RET

// func axpyCodesRows2AVX2(out, a []float32, codes []byte)
TEXT ·axpyCodesRows2AVX2(SB), NOSPLIT, $0-72
	MOVQ out_base+0(FP), R8
	MOVQ out_len+8(FP), R9
	SHLQ $2, R9
	MOVQ a_base+24(FP), BX
	MOVQ a_len+32(FP), CX
	MOVQ codes_base+48(FP), DI
	MOVL $3, AX
	MOVQ AX, X15
	VPBROADCASTD X15, Y15
	MOVQ R8, SI
	LEAQ (R8)(R9*1), R10

ar2loop:
	TESTQ CX, CX
	JZ    ar2done
	VBROADCASTSS (BX), Y14
	VPMOVZXBD (DI), Y2
	VPSRLD    $2, Y2, Y3
	VPSRLD    $4, Y2, Y4
	VPSRLD    $6, Y2, Y5
	VPAND     Y15, Y2, Y2
	VPAND     Y15, Y3, Y3
	VPAND     Y15, Y4, Y4
	VCVTDQ2PS Y2, Y2
	VCVTDQ2PS Y3, Y3
	VCVTDQ2PS Y4, Y4
	VCVTDQ2PS Y5, Y5
	VMOVUPS   (SI), Y6
	VMOVUPS   32(SI), Y7
	VMOVUPS   64(SI), Y8
	VMOVUPS   96(SI), Y9
	VFMADD231PS Y14, Y2, Y6
	VFMADD231PS Y14, Y3, Y7
	VFMADD231PS Y14, Y4, Y8
	VFMADD231PS Y14, Y5, Y9
	VMOVUPS   Y6, (SI)
	VMOVUPS   Y7, 32(SI)
	VMOVUPS   Y8, 64(SI)
	VMOVUPS   Y9, 96(SI)
	ADDQ $4, BX
	ADDQ $8, DI
	ADDQ $128, SI
	CMPQ SI, R10
	JLT  ar2next
	MOVQ R8, SI

ar2next:
	DECQ CX
	JMP  ar2loop

ar2done:
	VZEROUPPER
	RET
