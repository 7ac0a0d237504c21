//go:build amd64 && !purego

#include "textflag.h"

// AMX tile kernels for the sixteen-row prefill GEMM (qgemm16amx.go): one
// TDPBSUD multiplies sixteen tokens' 32 activation quants (tile A, signed)
// by one block of sixteen repacked weight rows (tile B: eight 64-byte
// vectors, each four consecutive columns of all sixteen rows as unsigned
// bytes: the Q8_0 tile layout of qgemm16_amd64.s, which the Q4_0 tiles
// take too when widened), giving the block's 16×16 integer sums at once.
// The sums go through a 1 KiB frame buffer to vectors, where the float
// epilogue of the VNNI kernels (correction, float32(s)·(dw·dy), add, in
// the generic dot's order) runs per token: results equal ggml's dot bit for
// bit. Blocks are taken two at a time on two sets of tiles so that one
// block's tile work overlaps the other's epilogue. The Go assembler has no
// AMX mnemonics: they are spelled in BYTEs (the registers are fixed: A at
// DI/AX+DX, B at AX+CX, C stored at BX/AX+CX).

// amxCfg is the tile configuration: palette 1; tmm0/tmm3 16 rows × 32
// bytes (A), tmm1/tmm4 8 rows × 64 bytes (B), tmm2/tmm5 16 rows × 64
// bytes (C).
DATA ·amxCfg<>+0(SB)/8, $1
DATA ·amxCfg<>+8(SB)/8, $0
DATA ·amxCfg<>+16(SB)/8, $0x0020004000400020
DATA ·amxCfg<>+24(SB)/8, $0x0000000000400040
DATA ·amxCfg<>+32(SB)/8, $0
DATA ·amxCfg<>+40(SB)/8, $0
DATA ·amxCfg<>+48(SB)/8, $0x0000100810100810
DATA ·amxCfg<>+56(SB)/8, $0
GLOBL ·amxCfg<>(SB), RODATA|NOPTR, $64

// One token's share of a block's epilogue: its sixteen row sums at co(BX),
// plus its correction at io(DI), as float32 times dw·dy (Z0: the rows'
// scales, dy at do(DI)), added to acc.
#define EPIAMX(co, io, do, acc) \
	VMOVDQU32   co(BX), Z1; \
	VPADDD.BCST io(DI), Z1, Z1; \
	VCVTDQ2PS   Z1, Z1; \
	VMULPS.BCST do(DI), Z0, Z2; \
	VMULPS      Z2, Z1, Z1; \
	VADDPS      Z1, acc, acc


// func gemm16B32x16AMX(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen rows packed in pack
// (nb blocks of 32 columns in the Q8_0 tile layout, nb > 0) and the group
// of 16 tokens at acts (gemm16Acts).
TEXT ·gemm16B32x16AMX(SB), $2048-88
	MOVQ pack_base+32(FP), SI
	MOVQ nb+56(FP), R10
	MOVQ acts_base+64(FP), DI
	MOVQ out_base+0(FP), R8
	MOVQ ostride+24(FP), R13
	SHLQ $2, R13
	LEAQ c-2048(SP), BX
	LEAQ ·amxCfg<>(SB), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0x00 // LDTILECFG (AX)
	MOVQ $32, DX
	MOVQ $64, CX
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	VPXORD Z24, Z24, Z24
	VPXORD Z25, Z25, Z25
	VPXORD Z26, Z26, Z26
	VPXORD Z27, Z27, Z27
	VPXORD Z28, Z28, Z28
	VPXORD Z29, Z29, Z29
	VPXORD Z30, Z30, Z30
	VPXORD Z31, Z31, Z31

amxpair:
	CMPQ R10, $2
	JLT  amxone
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0 // TILEZERO tmm2
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x17 // TILELOADD tmm0, (DI)(DX*1)
	LEAQ 64(SI), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x0c; BYTE $0x08 // TILELOADD tmm1, (AX)(CX*1)
	BYTE $0xc4; BYTE $0xe2; BYTE $0x72; BYTE $0x5e; BYTE $0xd0 // TDPBSUD tmm2, tmm0, tmm1
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xe8 // TILEZERO tmm5
	LEAQ 640(DI), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x1c; BYTE $0x10 // TILELOADD tmm3, (AX)(DX*1)
	LEAQ 640(SI), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x24; BYTE $0x08 // TILELOADD tmm4, (AX)(CX*1)
	BYTE $0xc4; BYTE $0xe2; BYTE $0x5a; BYTE $0x5e; BYTE $0xeb // TDPBSUD tmm5, tmm3, tmm4
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x0b // TILESTORED tmm2, (BX)(CX*1)
	LEAQ 1024(BX), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x2c; BYTE $0x08 // TILESTORED tmm5, (AX)(CX*1)
	VMOVUPS 0(SI), Z0
	EPIAMX(0, 576, 512, Z16)
	EPIAMX(64, 580, 516, Z17)
	EPIAMX(128, 584, 520, Z18)
	EPIAMX(192, 588, 524, Z19)
	EPIAMX(256, 592, 528, Z20)
	EPIAMX(320, 596, 532, Z21)
	EPIAMX(384, 600, 536, Z22)
	EPIAMX(448, 604, 540, Z23)
	EPIAMX(512, 608, 544, Z24)
	EPIAMX(576, 612, 548, Z25)
	EPIAMX(640, 616, 552, Z26)
	EPIAMX(704, 620, 556, Z27)
	EPIAMX(768, 624, 560, Z28)
	EPIAMX(832, 628, 564, Z29)
	EPIAMX(896, 632, 568, Z30)
	EPIAMX(960, 636, 572, Z31)
	VMOVUPS 576(SI), Z0
	EPIAMX(1024, 1216, 1152, Z16)
	EPIAMX(1088, 1220, 1156, Z17)
	EPIAMX(1152, 1224, 1160, Z18)
	EPIAMX(1216, 1228, 1164, Z19)
	EPIAMX(1280, 1232, 1168, Z20)
	EPIAMX(1344, 1236, 1172, Z21)
	EPIAMX(1408, 1240, 1176, Z22)
	EPIAMX(1472, 1244, 1180, Z23)
	EPIAMX(1536, 1248, 1184, Z24)
	EPIAMX(1600, 1252, 1188, Z25)
	EPIAMX(1664, 1256, 1192, Z26)
	EPIAMX(1728, 1260, 1196, Z27)
	EPIAMX(1792, 1264, 1200, Z28)
	EPIAMX(1856, 1268, 1204, Z29)
	EPIAMX(1920, 1272, 1208, Z30)
	EPIAMX(1984, 1276, 1212, Z31)
	ADDQ $1152, SI
	ADDQ $1280, DI
	SUBQ $2, R10
	JMP  amxpair

amxone:
	TESTQ R10, R10
	JEQ   amxdone
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x49; BYTE $0xd0 // TILEZERO tmm2
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x04; BYTE $0x17 // TILELOADD tmm0, (DI)(DX*1)
	LEAQ 64(SI), AX
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7b; BYTE $0x4b; BYTE $0x0c; BYTE $0x08 // TILELOADD tmm1, (AX)(CX*1)
	BYTE $0xc4; BYTE $0xe2; BYTE $0x72; BYTE $0x5e; BYTE $0xd0 // TDPBSUD tmm2, tmm0, tmm1
	BYTE $0xc4; BYTE $0xe2; BYTE $0x7a; BYTE $0x4b; BYTE $0x14; BYTE $0x0b // TILESTORED tmm2, (BX)(CX*1)
	VMOVUPS 0(SI), Z0
	EPIAMX(0, 576, 512, Z16)
	EPIAMX(64, 580, 516, Z17)
	EPIAMX(128, 584, 520, Z18)
	EPIAMX(192, 588, 524, Z19)
	EPIAMX(256, 592, 528, Z20)
	EPIAMX(320, 596, 532, Z21)
	EPIAMX(384, 600, 536, Z22)
	EPIAMX(448, 604, 540, Z23)
	EPIAMX(512, 608, 544, Z24)
	EPIAMX(576, 612, 548, Z25)
	EPIAMX(640, 616, 552, Z26)
	EPIAMX(704, 620, 556, Z27)
	EPIAMX(768, 624, 560, Z28)
	EPIAMX(832, 628, 564, Z29)
	EPIAMX(896, 632, 568, Z30)
	EPIAMX(960, 636, 572, Z31)

amxdone:
	BYTE $0xc4; BYTE $0xe2; BYTE $0x78; BYTE $0x49; BYTE $0xc0 // TILERELEASE
	VMOVUPS Z16, (R8)
	ADDQ R13, R8
	VMOVUPS Z17, (R8)
	ADDQ R13, R8
	VMOVUPS Z18, (R8)
	ADDQ R13, R8
	VMOVUPS Z19, (R8)
	ADDQ R13, R8
	VMOVUPS Z20, (R8)
	ADDQ R13, R8
	VMOVUPS Z21, (R8)
	ADDQ R13, R8
	VMOVUPS Z22, (R8)
	ADDQ R13, R8
	VMOVUPS Z23, (R8)
	ADDQ R13, R8
	VMOVUPS Z24, (R8)
	ADDQ R13, R8
	VMOVUPS Z25, (R8)
	ADDQ R13, R8
	VMOVUPS Z26, (R8)
	ADDQ R13, R8
	VMOVUPS Z27, (R8)
	ADDQ R13, R8
	VMOVUPS Z28, (R8)
	ADDQ R13, R8
	VMOVUPS Z29, (R8)
	ADDQ R13, R8
	VMOVUPS Z30, (R8)
	ADDQ R13, R8
	VMOVUPS Z31, (R8)
	ADDQ R13, R8
	VZEROUPPER
	RET

// func widenQ4_0Tile(dst []byte, nb int)
//
// widenQ4_0Tile turns nb blocks of sixteen-row Q4_0 tiles (pack16Q4_0
// layout, 320 bytes a block) held at dst[nb*256:] into the Q8_0 tile layout
// (576 bytes a block, quants 0..15) at dst[0:], in place: block b is read
// whole before it is written, and writes never reach an unread block.
TEXT ·widenQ4_0Tile(SB), NOSPLIT, $0-32
	MOVQ dst_base+0(FP), DI
	MOVQ nb+24(FP), CX
	MOVQ CX, SI
	SHLQ $8, SI
	ADDQ DI, SI
	MOVL $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z9

widenloop:
	VMOVUPS   0(SI), Z0
	VMOVDQU32 64(SI), Z1
	VMOVDQU32 128(SI), Z2
	VMOVDQU32 192(SI), Z3
	VMOVDQU32 256(SI), Z4
	VPSRLW    $4, Z1, Z5
	VPSRLW    $4, Z2, Z6
	VPSRLW    $4, Z3, Z7
	VPSRLW    $4, Z4, Z8
	VPANDD    Z9, Z1, Z1
	VPANDD    Z9, Z2, Z2
	VPANDD    Z9, Z3, Z3
	VPANDD    Z9, Z4, Z4
	VPANDD    Z9, Z5, Z5
	VPANDD    Z9, Z6, Z6
	VPANDD    Z9, Z7, Z7
	VPANDD    Z9, Z8, Z8
	VMOVUPS   Z0, 0(DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z2, 128(DI)
	VMOVDQU32 Z3, 192(DI)
	VMOVDQU32 Z4, 256(DI)
	VMOVDQU32 Z5, 320(DI)
	VMOVDQU32 Z6, 384(DI)
	VMOVDQU32 Z7, 448(DI)
	VMOVDQU32 Z8, 512(DI)
	ADDQ $320, SI
	ADDQ $576, DI
	DECQ CX
	JNZ  widenloop
	VZEROUPPER
	RET
