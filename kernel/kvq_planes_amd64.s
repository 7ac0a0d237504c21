//go:build amd64 && !purego

#include "textflag.h"

// func widenPlanesAVX512(dst []float32, rows []byte, rb, n, hd, lo int, masks *[16]uint16, tabs *[64]float32, scales *[256]float32)
//
// Per row and 16-channel group: the group's bit of each plane is loaded
// as a 16-bit mask (KMOVW), and the plane's bit value is or-ed into the
// lanes it selects, building the 16 codes as dword indices; VPERMT2PS looks
// them up in a 32-entry table (two registers), the hi table replacing the
// lo table's result in the lanes below nHi; the levels are scaled by the
// row's scale and stored.
TEXT ·widenPlanesAVX512(SB), NOSPLIT, $0-104
	MOVQ dst_base+0(FP), DI
	MOVQ rows_base+24(FP), SI
	MOVQ rb+48(FP), R11
	MOVQ n+56(FP), CX
	MOVQ hd+64(FP), R15
	SHRQ $3, R15 // bytes of one plane
	MOVQ lo+72(FP), R12
	MOVQ masks+80(FP), R10
	MOVQ tabs+88(FP), AX
	VMOVUPS (AX), Z28
	VMOVUPS 64(AX), Z29
	VMOVUPS 128(AX), Z30
	VMOVUPS 192(AX), Z31
	MOVQ scales+96(FP), R14
	MOVL $1, AX
	VPBROADCASTD AX, Z25

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
	VPXORD    Z0, Z0, Z0
	VMOVDQA32 Z25, Z26
	LEAQ      (R8)(BX*1), R9
	MOVQ      R12, DX

wpbit:
	KMOVW  (R9), K1
	VPORD  Z26, Z0, K1, Z0
	VPSLLD $1, Z26, Z26
	ADDQ   R15, R9
	DECQ   DX
	JNZ    wpbit

	KMOVW  (R10)(BX*1), K2
	KTESTW K2, K2
	JZ     wplo
	KMOVW  (R9), K1
	KANDW  K2, K1, K1
	VPORD  Z26, Z0, K1, Z0
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1
	VMOVAPS   Z30, Z2
	VPERMT2PS Z31, Z0, Z2
	VMOVAPS   Z2, K2, Z1
	JMP       wpstore

wplo:
	VMOVAPS   Z28, Z1
	VPERMT2PS Z29, Z0, Z1

wpstore:
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
