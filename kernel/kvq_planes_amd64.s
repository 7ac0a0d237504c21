//go:build amd64 && !purego

#include "textflag.h"

// Bit-plane code rows (kvq_planes.go), 16 channels at a time: the group's
// bit of each plane is loaded as a 16-bit mask (KMOVW), and the plane's bit
// value is or-ed into the lanes it selects, building the 16 codes as dword
// indices; VPERMT2PS looks them up in a 32-entry table (two registers),
// the hi table replacing the lo table's result in the lanes below nHi.
//
// Registers every kernel sets up (PLANESETUP): R15 the bytes of one plane,
// R12 lo, R10 the hi-lane masks, R14 the scales, Z28:Z29 the lo table,
// Z30:Z31 the hi table, Z20…Z24 the bit values 1…16 and Z26 the value of
// bit lo. Per row, R8 points at its first plane; per group, BX is the
// group's byte offset in a plane (2 per group).

#define PLANESETUP \
	MOVQ hd+64(FP), R15 \
	SHRQ $3, R15 \
	MOVQ lo+72(FP), R12 \
	MOVQ masks+80(FP), R10 \
	MOVQ tabs+88(FP), AX \
	VMOVUPS (AX), Z28 \
	VMOVUPS 64(AX), Z29 \
	VMOVUPS 128(AX), Z30 \
	VMOVUPS 192(AX), Z31 \
	MOVQ scales+96(FP), R14 \
	MOVL $1, AX \
	VPBROADCASTD AX, Z20 \
	VPADDD Z20, Z20, Z21 \
	VPADDD Z21, Z21, Z22 \
	VPADDD Z22, Z22, Z23 \
	VPADDD Z23, Z23, Z24 \
	MOVQ R12, CX \
	SHLL CX, AX \
	VPBROADCASTD AX, Z26

#define PLANE(zbit) \
	KMOVW (R9), K1 \
	VPORD zbit, Z0, K1, Z0 \
	ADDQ  R15, R9

// Each kernel's group step (written out in each, as the assembler's
// macros cannot hold labels) sets Z1 to the unscaled levels of the group
// at BX of the row at R8, clobbering Z0, Z2, K1, K2 and R9.

// func widenPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32)
TEXT ·widenPlanesAVX512(SB), NOSPLIT, $0-104
	PLANESETUP
	MOVQ dst_base+0(FP), DI
	MOVQ rows_base+24(FP), SI
	MOVQ rb+48(FP), R11
	MOVQ n+56(FP), CX

wprow:
	TESTQ CX, CX
	JZ    wpdone
	MOVBLZX (SI), AX
	VBROADCASTSS (R14)(AX*4), Z27
	LEAQ 1(SI), R8
	XORQ BX, BX

wpgroup:
	CMPQ BX, R15
	JGE  wpnext
	LEAQ (R8)(BX*1), R9
	KMOVW (R9), K1
	VMOVDQA32.Z Z20, K1, Z0
	ADDQ R15, R9
	CMPQ R12, $2
	JLT  wpgplanes
	PLANE(Z21)
	CMPQ R12, $3
	JLT  wpgplanes
	PLANE(Z22)
	CMPQ R12, $4
	JLT  wpgplanes
	PLANE(Z23)
	CMPQ R12, $5
	JLT  wpgplanes
	PLANE(Z24)
wpgplanes:
	KMOVW  (R10)(BX*1), K2
	KTESTW K2, K2
	JZ     wpglo
	KMOVW  (R9), K1
	KANDW  K2, K1, K1
	VPORD  Z26, Z0, K1, Z0
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
	VMOVAPS   Z30, Z2
	VPERMT2PS Z31, Z0, Z2
	VMOVAPS   Z2, K2, Z1
	JMP       wpgdone
wpglo:
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
wpgdone:
	VMULPS  Z27, Z1, Z1
	VMOVUPS Z1, (DI)
	ADDQ    $64, DI
	ADDQ    $2, BX
	JMP     wpgroup

wpnext:
	ADDQ R11, SI
	DECQ CX
	JMP  wprow

wpdone:
	VZEROUPPER
	RET

// func dotPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32, q *float32)
//
// dst[r] = scale_r · Σ_i q_i·level_{r,i}: one FMA accumulator per row,
// summed across its lanes at the row's end.
TEXT ·dotPlanesAVX512(SB), NOSPLIT, $0-112
	PLANESETUP
	MOVQ dst_base+0(FP), DI
	MOVQ rows_base+24(FP), SI
	MOVQ rb+48(FP), R11
	MOVQ n+56(FP), CX
	MOVQ q+104(FP), R13

dprow:
	TESTQ CX, CX
	JZ    dpdone
	LEAQ 1(SI), R8
	XORQ BX, BX
	MOVQ R13, DX
	VPXORD Z3, Z3, Z3

dpgroup:
	CMPQ BX, R15
	JGE  dpsum
	LEAQ (R8)(BX*1), R9
	KMOVW (R9), K1
	VMOVDQA32.Z Z20, K1, Z0
	ADDQ R15, R9
	CMPQ R12, $2
	JLT  dpgplanes
	PLANE(Z21)
	CMPQ R12, $3
	JLT  dpgplanes
	PLANE(Z22)
	CMPQ R12, $4
	JLT  dpgplanes
	PLANE(Z23)
	CMPQ R12, $5
	JLT  dpgplanes
	PLANE(Z24)
dpgplanes:
	KMOVW  (R10)(BX*1), K2
	KTESTW K2, K2
	JZ     dpglo
	KMOVW  (R9), K1
	KANDW  K2, K1, K1
	VPORD  Z26, Z0, K1, Z0
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
	VMOVAPS   Z30, Z2
	VPERMT2PS Z31, Z0, Z2
	VMOVAPS   Z2, K2, Z1
	JMP       dpgdone
dpglo:
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
dpgdone:
	VFMADD231PS (DX), Z1, Z3
	ADDQ $64, DX
	ADDQ $2, BX
	JMP  dpgroup

dpsum:
	VEXTRACTF64X4 $1, Z3, Y4
	VADDPS        Y4, Y3, Y3
	VEXTRACTF128  $1, Y3, X4
	VADDPS        X4, X3, X3
	VPERMILPS     $0x4e, X3, X4
	VADDPS        X4, X3, X3
	VPERMILPS     $0xb1, X3, X4
	VADDSS        X4, X3, X3
	MOVBLZX       (SI), AX
	VMULSS        (R14)(AX*4), X3, X3
	VMOVSS        X3, (DI)
	ADDQ          $4, DI
	ADDQ          R11, SI
	DECQ          CX
	JMP           dprow

dpdone:
	VZEROUPPER
	RET

// func axpyPlanesAVX512(out []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32, w *float32)
//
// out[i] += Σ_r w_r·scale_r·level_{r,i}, accumulated in out group by group.
TEXT ·axpyPlanesAVX512(SB), NOSPLIT, $0-112
	PLANESETUP
	MOVQ out_base+0(FP), DI
	MOVQ rows_base+24(FP), SI
	MOVQ rb+48(FP), R11
	MOVQ n+56(FP), CX
	MOVQ w+104(FP), R13

aprow:
	TESTQ CX, CX
	JZ    apdone
	MOVBLZX (SI), AX
	VMOVSS  (R14)(AX*4), X3
	VMULSS  (R13), X3, X3
	VBROADCASTSS X3, Z27
	LEAQ 1(SI), R8
	XORQ BX, BX
	MOVQ DI, DX

apgroup:
	CMPQ BX, R15
	JGE  apnext
	LEAQ (R8)(BX*1), R9
	KMOVW (R9), K1
	VMOVDQA32.Z Z20, K1, Z0
	ADDQ R15, R9
	CMPQ R12, $2
	JLT  apgplanes
	PLANE(Z21)
	CMPQ R12, $3
	JLT  apgplanes
	PLANE(Z22)
	CMPQ R12, $4
	JLT  apgplanes
	PLANE(Z23)
	CMPQ R12, $5
	JLT  apgplanes
	PLANE(Z24)
apgplanes:
	KMOVW  (R10)(BX*1), K2
	KTESTW K2, K2
	JZ     apglo
	KMOVW  (R9), K1
	KANDW  K2, K1, K1
	VPORD  Z26, Z0, K1, Z0
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
	VMOVAPS   Z30, Z2
	VPERMT2PS Z31, Z0, Z2
	VMOVAPS   Z2, K2, Z1
	JMP       apgdone
apglo:
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
apgdone:
	VFMADD213PS (DX), Z27, Z1
	VMOVUPS     Z1, (DX)
	ADDQ $64, DX
	ADDQ $2, BX
	JMP  apgroup

apnext:
	ADDQ $4, R13
	ADDQ R11, SI
	DECQ CX
	JMP  aprow

apdone:
	VZEROUPPER
	RET
