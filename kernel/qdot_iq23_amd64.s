//go:build amd64 && !purego

#include "textflag.h"

// AVX2 dot products of i-quant weight rows with Q8_K activations
// (qdot_iq23_amd64.go). For IQ3_XXS, IQ2_XXS, IQ2_XS, IQ3_S and IQ2_S (the
// unsigned grids of IQ1_S and IQ1_M are described at IQ1SGROUP), per group
// of 32 weights: the grid entries are loaded one by one by index
// (GATHERB8, GATHERB4, GATHERW4, IQ2SIDX, …: VMOVD/VPINSRD from memory,
// the indices made in general registers, which on Zen 3 runs the dots
// 1.2-1.6× as fast as VPGATHERDD / VPGATHERDQ did) and the four runs' sign
// masks applied to them (VPSIGNB: signed weights w, |w| <= 62): from the
// table iqSignMasks by each run's seven sign bits, or, for IQ2_XS, made in
// vectors for sixteen runs at once (IQ2XSSIGNS: the eighth bit from the
// parity table iqParity). Where scales cover 16 weights or 32, a block's
// are spread into a vector once (SCALES16, SCALES8; for IQ1_M, SCALES1M;
// for IQ3_XXS and IQ2_XXS, SCALESXXS) and each group's VPMADDWD multiplier
// picked from it by one VPSHUFB. The weights then take
// the signs of the activations q too (VPSIGNB), and |q| (VPABSB: 128 for
// −128, as an unsigned byte) is the unsigned operand of VPMADDUBSW:
// |q|·w·sign(q) in int16 pairs (at most 2·128·62 in size, no saturation)
// is q·w exactly for every int8 q, −128 included; applying the signs to q
// instead, as ggml does, would turn a −128 whose weight is negative into
// −128, not 128. Times the group's odd scale 2·ls+1 the pairs are summed
// in int32 (VPMADDWD). The super-block's int32 sum is then reduced to a
// scalar, and the float32 steps follow the reference dot operation by
// operation.

// GATHERB8 sets y (x its low half, t an X temporary) to the eight grid
// dwords (R8) indexed by the bytes at qsoff(SI) (clobbers AX).
#define GATHERB8(qsoff, y, x, t) \
	MOVBLZX     qsoff(SI), AX; \
	VMOVD       (R8)(AX*4), x; \
	MOVBLZX     (qsoff+1)(SI), AX; \
	VPINSRD     $1, (R8)(AX*4), x, x; \
	MOVBLZX     (qsoff+2)(SI), AX; \
	VPINSRD     $2, (R8)(AX*4), x, x; \
	MOVBLZX     (qsoff+3)(SI), AX; \
	VPINSRD     $3, (R8)(AX*4), x, x; \
	MOVBLZX     (qsoff+4)(SI), AX; \
	VMOVD       (R8)(AX*4), t; \
	MOVBLZX     (qsoff+5)(SI), AX; \
	VPINSRD     $1, (R8)(AX*4), t, t; \
	MOVBLZX     (qsoff+6)(SI), AX; \
	VPINSRD     $2, (R8)(AX*4), t, t; \
	MOVBLZX     (qsoff+7)(SI), AX; \
	VPINSRD     $3, (R8)(AX*4), t, t; \
	VINSERTI128 $1, t, y, y

// GATHERB4 sets y (x its low half, t an X temporary) to the four grid
// qwords (R8) indexed by the bytes at qsoff(SI) (clobbers AX).
#define GATHERB4(qsoff, y, x, t) \
	MOVBLZX     qsoff(SI), AX; \
	VMOVQ       (R8)(AX*8), x; \
	MOVBLZX     (qsoff+1)(SI), AX; \
	VPINSRQ     $1, (R8)(AX*8), x, x; \
	MOVBLZX     (qsoff+2)(SI), AX; \
	VMOVQ       (R8)(AX*8), t; \
	MOVBLZX     (qsoff+3)(SI), AX; \
	VPINSRQ     $1, (R8)(AX*8), t, t; \
	VINSERTI128 $1, t, y, y

// GATHERW4 sets y (x its low half, t an X temporary) to the four grid
// qwords (R8) indexed by the low 9 bits of the words at qsoff(SI)
// (clobbers AX).
#define GATHERW4(qsoff, y, x, t) \
	MOVWLZX     qsoff(SI), AX; \
	ANDL        $511, AX; \
	VMOVQ       (R8)(AX*8), x; \
	MOVWLZX     (qsoff+2)(SI), AX; \
	ANDL        $511, AX; \
	VPINSRQ     $1, (R8)(AX*8), x, x; \
	MOVWLZX     (qsoff+4)(SI), AX; \
	ANDL        $511, AX; \
	VMOVQ       (R8)(AX*8), t; \
	MOVWLZX     (qsoff+6)(SI), AX; \
	ANDL        $511, AX; \
	VPINSRQ     $1, (R8)(AX*8), t, t; \
	VINSERTI128 $1, t, y, y

// IQ2SIDX sets y (x its low half, t an X temporary) to the four grid
// qwords (R8) indexed by the bytes at qsoff(SI) with bits 2k, 2k+1 of
// the byte at qhoff(SI) above each (IQ2_S's ten-bit indices) (clobbers AX, R9, R15).
#define IQ2SIDX(qsoff, qhoff, y, x, t) \
	MOVBLZX     qhoff(SI), R15; \
	MOVBLZX     (qsoff+0)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $8, R9; \
	ANDL        $0x300, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), x; \
	MOVBLZX     (qsoff+1)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $6, R9; \
	ANDL        $0x300, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), x, x; \
	MOVBLZX     (qsoff+2)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $4, R9; \
	ANDL        $0x300, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), t; \
	MOVBLZX     (qsoff+3)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $2, R9; \
	ANDL        $0x300, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), t, t; \
	VINSERTI128 $1, t, y, y

// IQ1SIDX sets y (x its low half, t an X temporary) to the four grid
// qwords (R8) indexed by the bytes at qsoff(SI) with bits 3k..3k+2 of
// the word at qhoff(SI) above each (IQ1_S's eleven-bit indices) (clobbers AX, R9, R15).
#define IQ1SIDX(qsoff, qhoff, y, x, t) \
	MOVWLZX     qhoff(SI), R15; \
	MOVBLZX     (qsoff+0)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $8, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), x; \
	MOVBLZX     (qsoff+1)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $5, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), x, x; \
	MOVBLZX     (qsoff+2)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $2, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), t; \
	MOVBLZX     (qsoff+3)(SI), AX; \
	MOVL        R15, R9; \
	SHRL        $1, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), t, t; \
	VINSERTI128 $1, t, y, y

// IQ1MIDX sets y (x its low half, t an X temporary) to the four grid
// qwords (R8) indexed by the bytes at qsoff(SI) with bits 4k..4k+2 of
// the word at qhoff(SI) above each (IQ1_M's eleven-bit indices) (clobbers AX, R9, R15).
#define IQ1MIDX(qsoff, qhoff, y, x, t) \
	MOVWLZX     qhoff(SI), R15; \
	MOVBLZX     (qsoff+0)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $8, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), x; \
	MOVBLZX     (qsoff+1)(SI), AX; \
	MOVL        R15, R9; \
	SHLL        $4, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), x, x; \
	MOVBLZX     (qsoff+2)(SI), AX; \
	MOVL        R15, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VMOVQ       (R8)(AX*8), t; \
	MOVBLZX     (qsoff+3)(SI), AX; \
	MOVL        R15, R9; \
	SHRL        $4, R9; \
	ANDL        $0x700, R9; \
	ORL         R9, AX; \
	VPINSRQ     $1, (R8)(AX*8), t, t; \
	VINSERTI128 $1, t, y, y

// HSUMD reduces the eight int32 of Y register y (x its low half, t an X
// temporary) to the 32-bit register r.
#define HSUMD(y, x, t, r) \
	VEXTRACTI128 $1, y, t; \
	VPADDD       t, x, x; \
	VPSHUFD      $0x4e, x, t; \
	VPADDD       t, x, x; \
	VPSHUFD      $0xb1, x, t; \
	VPADDD       t, x, x; \
	VMOVD        x, r

// SIGNS sets Y4 to the sign masks of the four runs whose 7-bit sign
// fields are the low 28 bits of AX (R9: iqSignMasks; clobbers BX, X6).
#define SIGNS \
	MOVL        AX, BX; \
	ANDL        $127, BX; \
	VMOVQ       (R9)(BX*8), X4; \
	MOVL        AX, BX; \
	SHRL        $7, BX; \
	ANDL        $127, BX; \
	VPINSRQ     $1, (R9)(BX*8), X4, X4; \
	MOVL        AX, BX; \
	SHRL        $14, BX; \
	ANDL        $127, BX; \
	VMOVQ       (R9)(BX*8), X6; \
	MOVL        AX, BX; \
	SHRL        $21, BX; \
	ANDL        $127, BX; \
	VPINSRQ     $1, (R9)(BX*8), X6, X6; \
	VINSERTI128 $1, X6, Y4, Y4

// PAIRS sets Y7 to the int16 pair sums of the signed weights (Y3
// magnitudes, Y4 sign masks) times the activations q at qoff(DI): the
// weights also take q's signs, so that |q| is VPMADDUBSW's unsigned
// operand (clobbers Y3).
#define PAIRS(qoff) \
	VMOVDQU    qoff(DI), Y7; \
	VPSIGNB    Y4, Y3, Y3; \
	VPSIGNB    Y7, Y3, Y3; \
	VPABSB     Y7, Y7; \
	VPMADDUBSW Y3, Y7, Y7

// iqXXSPerm: VPERMD indices: at 0, the odd dwords (an IQ2_XXS group's
// sign word follows its four index bytes) into dwords 0-3 of each lane; at
// 32, dword 0 of each lane then dword 4 (SCALESXXS's packed bytes).
DATA iqXXSPerm<>+0x00(SB)/8, $0x0000000300000001
DATA iqXXSPerm<>+0x08(SB)/8, $0x0000000700000005
DATA iqXXSPerm<>+0x10(SB)/8, $0x0000000300000001
DATA iqXXSPerm<>+0x18(SB)/8, $0x0000000700000005
DATA iqXXSPerm<>+0x20(SB)/8, $0x0000000400000000
DATA iqXXSPerm<>+0x28(SB)/8, $0x0000000000000000
DATA iqXXSPerm<>+0x30(SB)/8, $0x0000000400000000
DATA iqXXSPerm<>+0x38(SB)/8, $0x0000000000000000
GLOBL iqXXSPerm<>(SB), RODATA|NOPTR, $64

// SCALESXXS sets Y14 to the odd scales 2·ls+1 of an IQ3_XXS or IQ2_XXS
// block as bytes, from the top nibbles of the eight sign words in the
// dwords of Y1: byte g of both lanes group g's, for VPSHUFB by iqScaleSel
// as in SCALES16 (Y12: iqXXSPerm+32; Y13: 0x01 bytes; clobbers Y1).
#define SCALESXXS \
	VPSRLD    $28, Y1, Y1; \
	VPACKUSDW Y1, Y1, Y1; \
	VPACKUSWB Y1, Y1, Y1; \
	VPERMD    Y1, Y12, Y14; \
	VPADDB    Y14, Y14, Y14; \
	VPOR      Y13, Y14, Y14

// GROUPSUM adds to Y5 group g, its magnitudes in Y3 and sign fields in AX,
// activations at qoff(DI) (Y14: the block's scales, SCALESXXS; clobbers
// AX, BX, Y3, Y4, Y6-Y8).
#define GROUPSUM(qoff, g) \
	SIGNS; \
	PAIRS(qoff); \
	VPSHUFB  iqScaleSel<>+(32*g)(SB), Y14, Y8; \
	VPMADDWD Y8, Y7, Y7; \
	VPADDD   Y7, Y5, Y5

// IQ3GROUP adds group g of an IQ3_XXS block at SI (R8: the grid).
#define IQ3GROUP(qsoff, ssoff, qoff, g) \
	GATHERB8(qsoff, Y3, X3, X2); \
	MOVL       ssoff(SI), AX; \
	GROUPSUM(qoff, g)

// IQ2GROUP adds group g of an IQ2_XXS block at SI (R8: the grid).
#define IQ2GROUP(qsoff, qoff, g) \
	GATHERB4(qsoff, Y3, X3, X2); \
	MOVL       (qsoff+4)(SI), AX; \
	GROUPSUM(qoff, g)

// BLOCKEND adds dy·d·float32(R10) to X0 as the reference rounds it (d the
// binary16 at (SI), dy at (DX); clobbers AX, X1, X2).
#define BLOCKEND \
	MOVWLZX    (SI), AX; \
	VMOVD      AX, X1; \
	VCVTPH2PS  X1, X1; \
	VMULSS     (DX), X1, X1; \
	VCVTSI2SSL R10, X2, X2; \
	VMULSS     X2, X1, X1; \
	VADDSS     X1, X0, X0

// func dotIQ3XXSAVX2(w []byte, q []int8, d []float32, grid *[256]uint32, signs *[128]uint64) float32
TEXT ·dotIQ3XXSAVX2(SB), NOSPLIT, $0-92
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	MOVQ signs+80(FP), R9
	VXORPS X0, X0, X0
	VMOVDQU      iqXXSPerm<>+32(SB), Y12
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13

iq3loop:
	TESTQ CX, CX
	JZ    iq3done
	VPXOR Y5, Y5, Y5
	VMOVDQU 66(SI), Y1
	SCALESXXS
	IQ3GROUP(2, 66, 0, 0)
	IQ3GROUP(10, 70, 32, 1)
	IQ3GROUP(18, 74, 64, 2)
	IQ3GROUP(26, 78, 96, 3)
	IQ3GROUP(34, 82, 128, 4)
	IQ3GROUP(42, 86, 160, 5)
	IQ3GROUP(50, 90, 192, 6)
	IQ3GROUP(58, 94, 224, 7)
	HSUMD(Y5, X5, X8, R10)
	BLOCKEND
	ADDQ $98, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq3loop

iq3done:
	MOVL   $0x3e800000, AX // 0.25
	VMOVD  AX, X1
	VMULSS X1, X0, X0
	VMOVSS X0, ret+88(FP)
	VZEROUPPER
	RET

// func dotIQ2XXSAVX2(w []byte, q []int8, d []float32, grid *[256]uint64, signs *[128]uint64) float32
TEXT ·dotIQ2XXSAVX2(SB), NOSPLIT, $0-92
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	MOVQ signs+80(FP), R9
	VXORPS X0, X0, X0
	VMOVDQU      iqXXSPerm<>(SB), Y15
	VMOVDQU      iqXXSPerm<>+32(SB), Y12
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13

iq2loop:
	TESTQ CX, CX
	JZ    iq2done
	VPXOR Y5, Y5, Y5
	VPERMD      2(SI), Y15, Y1
	VPERMD      34(SI), Y15, Y9
	VINSERTI128 $1, X9, Y1, Y1
	SCALESXXS
	IQ2GROUP(2, 0, 0)
	IQ2GROUP(10, 32, 1)
	IQ2GROUP(18, 64, 2)
	IQ2GROUP(26, 96, 3)
	IQ2GROUP(34, 128, 4)
	IQ2GROUP(42, 160, 5)
	IQ2GROUP(50, 192, 6)
	IQ2GROUP(58, 224, 7)
	HSUMD(Y5, X5, X8, R10)
	BLOCKEND
	ADDQ $66, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq2loop

iq2done:
	MOVL   $0x3e000000, AX // 0.125
	VMOVD  AX, X1
	VMULSS X1, X0, X0
	VMOVSS X0, ret+88(FP)
	VZEROUPPER
	RET

// iqScaleSel: entry g (32 bytes) is the VPSHUFB control that spreads byte g
// of each lane to all eight words of that lane (0x80: a zero high byte).
DATA iqScaleSel<>+0x00(SB)/8, $0x8000800080008000
DATA iqScaleSel<>+0x08(SB)/8, $0x8000800080008000
DATA iqScaleSel<>+0x10(SB)/8, $0x8000800080008000
DATA iqScaleSel<>+0x18(SB)/8, $0x8000800080008000
DATA iqScaleSel<>+0x20(SB)/8, $0x8001800180018001
DATA iqScaleSel<>+0x28(SB)/8, $0x8001800180018001
DATA iqScaleSel<>+0x30(SB)/8, $0x8001800180018001
DATA iqScaleSel<>+0x38(SB)/8, $0x8001800180018001
DATA iqScaleSel<>+0x40(SB)/8, $0x8002800280028002
DATA iqScaleSel<>+0x48(SB)/8, $0x8002800280028002
DATA iqScaleSel<>+0x50(SB)/8, $0x8002800280028002
DATA iqScaleSel<>+0x58(SB)/8, $0x8002800280028002
DATA iqScaleSel<>+0x60(SB)/8, $0x8003800380038003
DATA iqScaleSel<>+0x68(SB)/8, $0x8003800380038003
DATA iqScaleSel<>+0x70(SB)/8, $0x8003800380038003
DATA iqScaleSel<>+0x78(SB)/8, $0x8003800380038003
DATA iqScaleSel<>+0x80(SB)/8, $0x8004800480048004
DATA iqScaleSel<>+0x88(SB)/8, $0x8004800480048004
DATA iqScaleSel<>+0x90(SB)/8, $0x8004800480048004
DATA iqScaleSel<>+0x98(SB)/8, $0x8004800480048004
DATA iqScaleSel<>+0xa0(SB)/8, $0x8005800580058005
DATA iqScaleSel<>+0xa8(SB)/8, $0x8005800580058005
DATA iqScaleSel<>+0xb0(SB)/8, $0x8005800580058005
DATA iqScaleSel<>+0xb8(SB)/8, $0x8005800580058005
DATA iqScaleSel<>+0xc0(SB)/8, $0x8006800680068006
DATA iqScaleSel<>+0xc8(SB)/8, $0x8006800680068006
DATA iqScaleSel<>+0xd0(SB)/8, $0x8006800680068006
DATA iqScaleSel<>+0xd8(SB)/8, $0x8006800680068006
DATA iqScaleSel<>+0xe0(SB)/8, $0x8007800780078007
DATA iqScaleSel<>+0xe8(SB)/8, $0x8007800780078007
DATA iqScaleSel<>+0xf0(SB)/8, $0x8007800780078007
DATA iqScaleSel<>+0xf8(SB)/8, $0x8007800780078007
GLOBL iqScaleSel<>(SB), RODATA|NOPTR, $256

// SCALES16 sets Y14 to the odd scales 2·ls+1 of an IQ2_XS or IQ2_S block
// as bytes, from its eight scale bytes at scoff(SI): byte g of the low lane
// from byte g's low nibble (group g's runs 0-1), of the high lane from its
// high nibble (runs 2-3), so that VPSHUFB by iqScaleSel's entry g makes a
// group's VPMADDWD multiplier in one instruction (Y12: 0x1f bytes, Y13:
// 0x01 bytes; clobbers X9). (2·b+1) & 0x1f is 2·(b & 15)+1.
#define SCALES16(scoff) \
	VMOVQ       scoff(SI), X14; \
	VPSRLW      $4, X14, X9; \
	VINSERTI128 $1, X9, Y14, Y14; \
	VPADDB      Y14, Y14, Y14; \
	VPOR        Y13, Y14, Y14; \
	VPAND       Y12, Y14, Y14

// SCALES8 sets Y14 to the odd scales 2·ls+1 of an IQ3_S block as bytes,
// from its four scale bytes at scoff(SI): byte g of both lanes from group
// g's nibble (the low nibble of byte g/2 for even g, the high for odd), for
// VPSHUFB by iqScaleSel as in SCALES16 (Y12: 0x1f bytes, Y13: 0x01 bytes;
// clobbers X9).
#define SCALES8(scoff) \
	VMOVD       scoff(SI), X14; \
	VPSRLW      $4, X14, X9; \
	VPUNPCKLBW  X9, X14, X14; \
	VINSERTI128 $1, X14, Y14, Y14; \
	VPADDB      Y14, Y14, Y14; \
	VPOR        Y13, Y14, Y14; \
	VPAND       Y12, Y14, Y14

// iqParity: byte i of each lane is 0x80 where i has an odd number of set
// bits: the eighth sign of an IQ2_XS run (IQ2XSSIGNS, from the parity of
// the seven stored ones folded to four bits), which keeps its count of
// minus signs even, as in iqSignMasks.
DATA iqParity<>+0x00(SB)/8, $0x8000008000808000
DATA iqParity<>+0x08(SB)/8, $0x0080800080000080
DATA iqParity<>+0x10(SB)/8, $0x8000008000808000
DATA iqParity<>+0x18(SB)/8, $0x0080800080000080
GLOBL iqParity<>(SB), RODATA|NOPTR, $32

// iq2xsSel: two VPSHUFB controls (at 0 and 32) that spread the low bytes of
// words 0-3 (at 0) or 4-7 (at 32) of each lane, eight bytes each: a group's
// four runs of sign bits from IQ2XSSIGNS's words, lanes duplicated.
DATA iq2xsSel<>+0x00(SB)/8, $0x0000000000000000
DATA iq2xsSel<>+0x08(SB)/8, $0x0202020202020202
DATA iq2xsSel<>+0x10(SB)/8, $0x0404040404040404
DATA iq2xsSel<>+0x18(SB)/8, $0x0606060606060606
DATA iq2xsSel<>+0x20(SB)/8, $0x0808080808080808
DATA iq2xsSel<>+0x28(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA iq2xsSel<>+0x30(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA iq2xsSel<>+0x38(SB)/8, $0x0e0e0e0e0e0e0e0e
GLOBL iq2xsSel<>(SB), RODATA|NOPTR, $64

// IQ2XSSIGNS makes the sign bits of four groups of an IQ2_XS block, the
// sixteen runs whose uint16 are at qsoff(SI): their 7 sign bits (bits
// 9-15) and the parity bit as the eighth, in the low byte of each word,
// then lanes duplicated: groups 0-1 of the four in Y9, 2-3 in Y6 (Y10:
// iqParity; clobbers Y1).
#define IQ2XSSIGNS(qsoff) \
	VMOVDQU qsoff(SI), Y6; \
	VPSRLW  $9, Y6, Y6; \
	VPSRLW  $4, Y6, Y1; \
	VPXOR   Y6, Y1, Y1; \
	VPSHUFB Y1, Y10, Y1; \
	VPOR    Y1, Y6, Y6; \
	VPERMQ  $0x44, Y6, Y9; \
	VPERMQ  $0xee, Y6, Y6

// IQ2XSGROUP adds group g of an IQ2_XS block at SI to Y5: runs at
// qsoff(SI), their sign bytes in dup (IQ2XSSIGNS) picked by iq2xsSel+sel,
// activations at qoff(DI) (R8: the grid; Y11: iq3sBit; Y13: 0x01 bytes;
// Y14: the block's scales, SCALES16; clobbers AX, Y2-Y4, Y7, Y8).
#define IQ2XSGROUP(qsoff, g, qoff, dup, sel) \
	GATHERW4(qsoff, Y3, X3, X2); \
	VPSHUFB      iq2xsSel<>+(sel)(SB), dup, Y4; \
	VPAND        Y11, Y4, Y4; \
	VPCMPEQB     Y11, Y4, Y4; \
	VPOR         Y13, Y4, Y4; \
	PAIRS(qoff); \
	VPSHUFB      iqScaleSel<>+(32*g)(SB), Y14, Y8; \
	VPMADDWD     Y8, Y7, Y7; \
	VPADDD       Y7, Y5, Y5

// func dotIQ2XSAVX2(w []byte, q []int8, d []float32, grid *[512]uint64) float32
TEXT ·dotIQ2XSAVX2(SB), NOSPLIT, $0-84
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	VXORPS X0, X0, X0
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	MOVL         $0x1f, AX
	VMOVD        AX, X12
	VPBROADCASTB X12, Y12
	VMOVDQU      iqParity<>(SB), Y10
	VMOVDQU      iq3sBit<>(SB), Y11

iq2xsloop:
	TESTQ CX, CX
	JZ    iq2xsdone
	VPXOR Y5, Y5, Y5
	SCALES16(66)
	IQ2XSSIGNS(2)
	IQ2XSGROUP(2, 0, 0, Y9, 0)
	IQ2XSGROUP(10, 1, 32, Y9, 32)
	IQ2XSGROUP(18, 2, 64, Y6, 0)
	IQ2XSGROUP(26, 3, 96, Y6, 32)
	IQ2XSSIGNS(34)
	IQ2XSGROUP(34, 4, 128, Y9, 0)
	IQ2XSGROUP(42, 5, 160, Y9, 32)
	IQ2XSGROUP(50, 6, 192, Y6, 0)
	IQ2XSGROUP(58, 7, 224, Y6, 32)
	HSUMD(Y5, X5, X8, R10)
	BLOCKEND
	ADDQ $74, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq2xsloop

iq2xsdone:
	MOVL   $0x3e000000, AX // 0.125
	VMOVD  AX, X1
	VMULSS X1, X0, X0
	VMOVSS X0, ret+80(FP)
	VZEROUPPER
	RET

// iqBits8: entry v (8 bytes) holds bit i of v in byte i: the high index
// bits of eight IQ3_S weights spread from their qh byte.
DATA iqBits8<>+0x000(SB)/8, $0x0000000000000000
DATA iqBits8<>+0x008(SB)/8, $0x0000000000000001
DATA iqBits8<>+0x010(SB)/8, $0x0000000000000100
DATA iqBits8<>+0x018(SB)/8, $0x0000000000000101
DATA iqBits8<>+0x020(SB)/8, $0x0000000000010000
DATA iqBits8<>+0x028(SB)/8, $0x0000000000010001
DATA iqBits8<>+0x030(SB)/8, $0x0000000000010100
DATA iqBits8<>+0x038(SB)/8, $0x0000000000010101
DATA iqBits8<>+0x040(SB)/8, $0x0000000001000000
DATA iqBits8<>+0x048(SB)/8, $0x0000000001000001
DATA iqBits8<>+0x050(SB)/8, $0x0000000001000100
DATA iqBits8<>+0x058(SB)/8, $0x0000000001000101
DATA iqBits8<>+0x060(SB)/8, $0x0000000001010000
DATA iqBits8<>+0x068(SB)/8, $0x0000000001010001
DATA iqBits8<>+0x070(SB)/8, $0x0000000001010100
DATA iqBits8<>+0x078(SB)/8, $0x0000000001010101
DATA iqBits8<>+0x080(SB)/8, $0x0000000100000000
DATA iqBits8<>+0x088(SB)/8, $0x0000000100000001
DATA iqBits8<>+0x090(SB)/8, $0x0000000100000100
DATA iqBits8<>+0x098(SB)/8, $0x0000000100000101
DATA iqBits8<>+0x0a0(SB)/8, $0x0000000100010000
DATA iqBits8<>+0x0a8(SB)/8, $0x0000000100010001
DATA iqBits8<>+0x0b0(SB)/8, $0x0000000100010100
DATA iqBits8<>+0x0b8(SB)/8, $0x0000000100010101
DATA iqBits8<>+0x0c0(SB)/8, $0x0000000101000000
DATA iqBits8<>+0x0c8(SB)/8, $0x0000000101000001
DATA iqBits8<>+0x0d0(SB)/8, $0x0000000101000100
DATA iqBits8<>+0x0d8(SB)/8, $0x0000000101000101
DATA iqBits8<>+0x0e0(SB)/8, $0x0000000101010000
DATA iqBits8<>+0x0e8(SB)/8, $0x0000000101010001
DATA iqBits8<>+0x0f0(SB)/8, $0x0000000101010100
DATA iqBits8<>+0x0f8(SB)/8, $0x0000000101010101
DATA iqBits8<>+0x100(SB)/8, $0x0000010000000000
DATA iqBits8<>+0x108(SB)/8, $0x0000010000000001
DATA iqBits8<>+0x110(SB)/8, $0x0000010000000100
DATA iqBits8<>+0x118(SB)/8, $0x0000010000000101
DATA iqBits8<>+0x120(SB)/8, $0x0000010000010000
DATA iqBits8<>+0x128(SB)/8, $0x0000010000010001
DATA iqBits8<>+0x130(SB)/8, $0x0000010000010100
DATA iqBits8<>+0x138(SB)/8, $0x0000010000010101
DATA iqBits8<>+0x140(SB)/8, $0x0000010001000000
DATA iqBits8<>+0x148(SB)/8, $0x0000010001000001
DATA iqBits8<>+0x150(SB)/8, $0x0000010001000100
DATA iqBits8<>+0x158(SB)/8, $0x0000010001000101
DATA iqBits8<>+0x160(SB)/8, $0x0000010001010000
DATA iqBits8<>+0x168(SB)/8, $0x0000010001010001
DATA iqBits8<>+0x170(SB)/8, $0x0000010001010100
DATA iqBits8<>+0x178(SB)/8, $0x0000010001010101
DATA iqBits8<>+0x180(SB)/8, $0x0000010100000000
DATA iqBits8<>+0x188(SB)/8, $0x0000010100000001
DATA iqBits8<>+0x190(SB)/8, $0x0000010100000100
DATA iqBits8<>+0x198(SB)/8, $0x0000010100000101
DATA iqBits8<>+0x1a0(SB)/8, $0x0000010100010000
DATA iqBits8<>+0x1a8(SB)/8, $0x0000010100010001
DATA iqBits8<>+0x1b0(SB)/8, $0x0000010100010100
DATA iqBits8<>+0x1b8(SB)/8, $0x0000010100010101
DATA iqBits8<>+0x1c0(SB)/8, $0x0000010101000000
DATA iqBits8<>+0x1c8(SB)/8, $0x0000010101000001
DATA iqBits8<>+0x1d0(SB)/8, $0x0000010101000100
DATA iqBits8<>+0x1d8(SB)/8, $0x0000010101000101
DATA iqBits8<>+0x1e0(SB)/8, $0x0000010101010000
DATA iqBits8<>+0x1e8(SB)/8, $0x0000010101010001
DATA iqBits8<>+0x1f0(SB)/8, $0x0000010101010100
DATA iqBits8<>+0x1f8(SB)/8, $0x0000010101010101
DATA iqBits8<>+0x200(SB)/8, $0x0001000000000000
DATA iqBits8<>+0x208(SB)/8, $0x0001000000000001
DATA iqBits8<>+0x210(SB)/8, $0x0001000000000100
DATA iqBits8<>+0x218(SB)/8, $0x0001000000000101
DATA iqBits8<>+0x220(SB)/8, $0x0001000000010000
DATA iqBits8<>+0x228(SB)/8, $0x0001000000010001
DATA iqBits8<>+0x230(SB)/8, $0x0001000000010100
DATA iqBits8<>+0x238(SB)/8, $0x0001000000010101
DATA iqBits8<>+0x240(SB)/8, $0x0001000001000000
DATA iqBits8<>+0x248(SB)/8, $0x0001000001000001
DATA iqBits8<>+0x250(SB)/8, $0x0001000001000100
DATA iqBits8<>+0x258(SB)/8, $0x0001000001000101
DATA iqBits8<>+0x260(SB)/8, $0x0001000001010000
DATA iqBits8<>+0x268(SB)/8, $0x0001000001010001
DATA iqBits8<>+0x270(SB)/8, $0x0001000001010100
DATA iqBits8<>+0x278(SB)/8, $0x0001000001010101
DATA iqBits8<>+0x280(SB)/8, $0x0001000100000000
DATA iqBits8<>+0x288(SB)/8, $0x0001000100000001
DATA iqBits8<>+0x290(SB)/8, $0x0001000100000100
DATA iqBits8<>+0x298(SB)/8, $0x0001000100000101
DATA iqBits8<>+0x2a0(SB)/8, $0x0001000100010000
DATA iqBits8<>+0x2a8(SB)/8, $0x0001000100010001
DATA iqBits8<>+0x2b0(SB)/8, $0x0001000100010100
DATA iqBits8<>+0x2b8(SB)/8, $0x0001000100010101
DATA iqBits8<>+0x2c0(SB)/8, $0x0001000101000000
DATA iqBits8<>+0x2c8(SB)/8, $0x0001000101000001
DATA iqBits8<>+0x2d0(SB)/8, $0x0001000101000100
DATA iqBits8<>+0x2d8(SB)/8, $0x0001000101000101
DATA iqBits8<>+0x2e0(SB)/8, $0x0001000101010000
DATA iqBits8<>+0x2e8(SB)/8, $0x0001000101010001
DATA iqBits8<>+0x2f0(SB)/8, $0x0001000101010100
DATA iqBits8<>+0x2f8(SB)/8, $0x0001000101010101
DATA iqBits8<>+0x300(SB)/8, $0x0001010000000000
DATA iqBits8<>+0x308(SB)/8, $0x0001010000000001
DATA iqBits8<>+0x310(SB)/8, $0x0001010000000100
DATA iqBits8<>+0x318(SB)/8, $0x0001010000000101
DATA iqBits8<>+0x320(SB)/8, $0x0001010000010000
DATA iqBits8<>+0x328(SB)/8, $0x0001010000010001
DATA iqBits8<>+0x330(SB)/8, $0x0001010000010100
DATA iqBits8<>+0x338(SB)/8, $0x0001010000010101
DATA iqBits8<>+0x340(SB)/8, $0x0001010001000000
DATA iqBits8<>+0x348(SB)/8, $0x0001010001000001
DATA iqBits8<>+0x350(SB)/8, $0x0001010001000100
DATA iqBits8<>+0x358(SB)/8, $0x0001010001000101
DATA iqBits8<>+0x360(SB)/8, $0x0001010001010000
DATA iqBits8<>+0x368(SB)/8, $0x0001010001010001
DATA iqBits8<>+0x370(SB)/8, $0x0001010001010100
DATA iqBits8<>+0x378(SB)/8, $0x0001010001010101
DATA iqBits8<>+0x380(SB)/8, $0x0001010100000000
DATA iqBits8<>+0x388(SB)/8, $0x0001010100000001
DATA iqBits8<>+0x390(SB)/8, $0x0001010100000100
DATA iqBits8<>+0x398(SB)/8, $0x0001010100000101
DATA iqBits8<>+0x3a0(SB)/8, $0x0001010100010000
DATA iqBits8<>+0x3a8(SB)/8, $0x0001010100010001
DATA iqBits8<>+0x3b0(SB)/8, $0x0001010100010100
DATA iqBits8<>+0x3b8(SB)/8, $0x0001010100010101
DATA iqBits8<>+0x3c0(SB)/8, $0x0001010101000000
DATA iqBits8<>+0x3c8(SB)/8, $0x0001010101000001
DATA iqBits8<>+0x3d0(SB)/8, $0x0001010101000100
DATA iqBits8<>+0x3d8(SB)/8, $0x0001010101000101
DATA iqBits8<>+0x3e0(SB)/8, $0x0001010101010000
DATA iqBits8<>+0x3e8(SB)/8, $0x0001010101010001
DATA iqBits8<>+0x3f0(SB)/8, $0x0001010101010100
DATA iqBits8<>+0x3f8(SB)/8, $0x0001010101010101
DATA iqBits8<>+0x400(SB)/8, $0x0100000000000000
DATA iqBits8<>+0x408(SB)/8, $0x0100000000000001
DATA iqBits8<>+0x410(SB)/8, $0x0100000000000100
DATA iqBits8<>+0x418(SB)/8, $0x0100000000000101
DATA iqBits8<>+0x420(SB)/8, $0x0100000000010000
DATA iqBits8<>+0x428(SB)/8, $0x0100000000010001
DATA iqBits8<>+0x430(SB)/8, $0x0100000000010100
DATA iqBits8<>+0x438(SB)/8, $0x0100000000010101
DATA iqBits8<>+0x440(SB)/8, $0x0100000001000000
DATA iqBits8<>+0x448(SB)/8, $0x0100000001000001
DATA iqBits8<>+0x450(SB)/8, $0x0100000001000100
DATA iqBits8<>+0x458(SB)/8, $0x0100000001000101
DATA iqBits8<>+0x460(SB)/8, $0x0100000001010000
DATA iqBits8<>+0x468(SB)/8, $0x0100000001010001
DATA iqBits8<>+0x470(SB)/8, $0x0100000001010100
DATA iqBits8<>+0x478(SB)/8, $0x0100000001010101
DATA iqBits8<>+0x480(SB)/8, $0x0100000100000000
DATA iqBits8<>+0x488(SB)/8, $0x0100000100000001
DATA iqBits8<>+0x490(SB)/8, $0x0100000100000100
DATA iqBits8<>+0x498(SB)/8, $0x0100000100000101
DATA iqBits8<>+0x4a0(SB)/8, $0x0100000100010000
DATA iqBits8<>+0x4a8(SB)/8, $0x0100000100010001
DATA iqBits8<>+0x4b0(SB)/8, $0x0100000100010100
DATA iqBits8<>+0x4b8(SB)/8, $0x0100000100010101
DATA iqBits8<>+0x4c0(SB)/8, $0x0100000101000000
DATA iqBits8<>+0x4c8(SB)/8, $0x0100000101000001
DATA iqBits8<>+0x4d0(SB)/8, $0x0100000101000100
DATA iqBits8<>+0x4d8(SB)/8, $0x0100000101000101
DATA iqBits8<>+0x4e0(SB)/8, $0x0100000101010000
DATA iqBits8<>+0x4e8(SB)/8, $0x0100000101010001
DATA iqBits8<>+0x4f0(SB)/8, $0x0100000101010100
DATA iqBits8<>+0x4f8(SB)/8, $0x0100000101010101
DATA iqBits8<>+0x500(SB)/8, $0x0100010000000000
DATA iqBits8<>+0x508(SB)/8, $0x0100010000000001
DATA iqBits8<>+0x510(SB)/8, $0x0100010000000100
DATA iqBits8<>+0x518(SB)/8, $0x0100010000000101
DATA iqBits8<>+0x520(SB)/8, $0x0100010000010000
DATA iqBits8<>+0x528(SB)/8, $0x0100010000010001
DATA iqBits8<>+0x530(SB)/8, $0x0100010000010100
DATA iqBits8<>+0x538(SB)/8, $0x0100010000010101
DATA iqBits8<>+0x540(SB)/8, $0x0100010001000000
DATA iqBits8<>+0x548(SB)/8, $0x0100010001000001
DATA iqBits8<>+0x550(SB)/8, $0x0100010001000100
DATA iqBits8<>+0x558(SB)/8, $0x0100010001000101
DATA iqBits8<>+0x560(SB)/8, $0x0100010001010000
DATA iqBits8<>+0x568(SB)/8, $0x0100010001010001
DATA iqBits8<>+0x570(SB)/8, $0x0100010001010100
DATA iqBits8<>+0x578(SB)/8, $0x0100010001010101
DATA iqBits8<>+0x580(SB)/8, $0x0100010100000000
DATA iqBits8<>+0x588(SB)/8, $0x0100010100000001
DATA iqBits8<>+0x590(SB)/8, $0x0100010100000100
DATA iqBits8<>+0x598(SB)/8, $0x0100010100000101
DATA iqBits8<>+0x5a0(SB)/8, $0x0100010100010000
DATA iqBits8<>+0x5a8(SB)/8, $0x0100010100010001
DATA iqBits8<>+0x5b0(SB)/8, $0x0100010100010100
DATA iqBits8<>+0x5b8(SB)/8, $0x0100010100010101
DATA iqBits8<>+0x5c0(SB)/8, $0x0100010101000000
DATA iqBits8<>+0x5c8(SB)/8, $0x0100010101000001
DATA iqBits8<>+0x5d0(SB)/8, $0x0100010101000100
DATA iqBits8<>+0x5d8(SB)/8, $0x0100010101000101
DATA iqBits8<>+0x5e0(SB)/8, $0x0100010101010000
DATA iqBits8<>+0x5e8(SB)/8, $0x0100010101010001
DATA iqBits8<>+0x5f0(SB)/8, $0x0100010101010100
DATA iqBits8<>+0x5f8(SB)/8, $0x0100010101010101
DATA iqBits8<>+0x600(SB)/8, $0x0101000000000000
DATA iqBits8<>+0x608(SB)/8, $0x0101000000000001
DATA iqBits8<>+0x610(SB)/8, $0x0101000000000100
DATA iqBits8<>+0x618(SB)/8, $0x0101000000000101
DATA iqBits8<>+0x620(SB)/8, $0x0101000000010000
DATA iqBits8<>+0x628(SB)/8, $0x0101000000010001
DATA iqBits8<>+0x630(SB)/8, $0x0101000000010100
DATA iqBits8<>+0x638(SB)/8, $0x0101000000010101
DATA iqBits8<>+0x640(SB)/8, $0x0101000001000000
DATA iqBits8<>+0x648(SB)/8, $0x0101000001000001
DATA iqBits8<>+0x650(SB)/8, $0x0101000001000100
DATA iqBits8<>+0x658(SB)/8, $0x0101000001000101
DATA iqBits8<>+0x660(SB)/8, $0x0101000001010000
DATA iqBits8<>+0x668(SB)/8, $0x0101000001010001
DATA iqBits8<>+0x670(SB)/8, $0x0101000001010100
DATA iqBits8<>+0x678(SB)/8, $0x0101000001010101
DATA iqBits8<>+0x680(SB)/8, $0x0101000100000000
DATA iqBits8<>+0x688(SB)/8, $0x0101000100000001
DATA iqBits8<>+0x690(SB)/8, $0x0101000100000100
DATA iqBits8<>+0x698(SB)/8, $0x0101000100000101
DATA iqBits8<>+0x6a0(SB)/8, $0x0101000100010000
DATA iqBits8<>+0x6a8(SB)/8, $0x0101000100010001
DATA iqBits8<>+0x6b0(SB)/8, $0x0101000100010100
DATA iqBits8<>+0x6b8(SB)/8, $0x0101000100010101
DATA iqBits8<>+0x6c0(SB)/8, $0x0101000101000000
DATA iqBits8<>+0x6c8(SB)/8, $0x0101000101000001
DATA iqBits8<>+0x6d0(SB)/8, $0x0101000101000100
DATA iqBits8<>+0x6d8(SB)/8, $0x0101000101000101
DATA iqBits8<>+0x6e0(SB)/8, $0x0101000101010000
DATA iqBits8<>+0x6e8(SB)/8, $0x0101000101010001
DATA iqBits8<>+0x6f0(SB)/8, $0x0101000101010100
DATA iqBits8<>+0x6f8(SB)/8, $0x0101000101010101
DATA iqBits8<>+0x700(SB)/8, $0x0101010000000000
DATA iqBits8<>+0x708(SB)/8, $0x0101010000000001
DATA iqBits8<>+0x710(SB)/8, $0x0101010000000100
DATA iqBits8<>+0x718(SB)/8, $0x0101010000000101
DATA iqBits8<>+0x720(SB)/8, $0x0101010000010000
DATA iqBits8<>+0x728(SB)/8, $0x0101010000010001
DATA iqBits8<>+0x730(SB)/8, $0x0101010000010100
DATA iqBits8<>+0x738(SB)/8, $0x0101010000010101
DATA iqBits8<>+0x740(SB)/8, $0x0101010001000000
DATA iqBits8<>+0x748(SB)/8, $0x0101010001000001
DATA iqBits8<>+0x750(SB)/8, $0x0101010001000100
DATA iqBits8<>+0x758(SB)/8, $0x0101010001000101
DATA iqBits8<>+0x760(SB)/8, $0x0101010001010000
DATA iqBits8<>+0x768(SB)/8, $0x0101010001010001
DATA iqBits8<>+0x770(SB)/8, $0x0101010001010100
DATA iqBits8<>+0x778(SB)/8, $0x0101010001010101
DATA iqBits8<>+0x780(SB)/8, $0x0101010100000000
DATA iqBits8<>+0x788(SB)/8, $0x0101010100000001
DATA iqBits8<>+0x790(SB)/8, $0x0101010100000100
DATA iqBits8<>+0x798(SB)/8, $0x0101010100000101
DATA iqBits8<>+0x7a0(SB)/8, $0x0101010100010000
DATA iqBits8<>+0x7a8(SB)/8, $0x0101010100010001
DATA iqBits8<>+0x7b0(SB)/8, $0x0101010100010100
DATA iqBits8<>+0x7b8(SB)/8, $0x0101010100010101
DATA iqBits8<>+0x7c0(SB)/8, $0x0101010101000000
DATA iqBits8<>+0x7c8(SB)/8, $0x0101010101000001
DATA iqBits8<>+0x7d0(SB)/8, $0x0101010101000100
DATA iqBits8<>+0x7d8(SB)/8, $0x0101010101000101
DATA iqBits8<>+0x7e0(SB)/8, $0x0101010101010000
DATA iqBits8<>+0x7e8(SB)/8, $0x0101010101010001
DATA iqBits8<>+0x7f0(SB)/8, $0x0101010101010100
DATA iqBits8<>+0x7f8(SB)/8, $0x0101010101010101
GLOBL iqBits8<>(SB), RODATA|NOPTR, $2048

// Constants of IQ3_S. iq3sSpread: the VPSHUFB mask that
// spreads run k's sign byte (byte k of the broadcast dword) over the run's
// eight bytes; iq3sBit: bit j in byte j of each run.
DATA iq3sSpread<>+0x00(SB)/8, $0x0000000000000000
DATA iq3sSpread<>+0x08(SB)/8, $0x0101010101010101
DATA iq3sSpread<>+0x10(SB)/8, $0x0202020202020202
DATA iq3sSpread<>+0x18(SB)/8, $0x0303030303030303
GLOBL iq3sSpread<>(SB), RODATA|NOPTR, $32

DATA iq3sBit<>+0x00(SB)/8, $0x8040201008040201
DATA iq3sBit<>+0x08(SB)/8, $0x8040201008040201
DATA iq3sBit<>+0x10(SB)/8, $0x8040201008040201
DATA iq3sBit<>+0x18(SB)/8, $0x8040201008040201
GLOBL iq3sBit<>(SB), RODATA|NOPTR, $32

// IQ3SGROUP adds group g of an IQ3_S block at SI to Y5: low index bytes at
// qsoff(SI), high bits in the byte at qhoff(SI), sign bytes at sgoff(SI),
// activations at qoff(DI) (R8: the grid; R12: iqBits8; Y10, Y11:
// iq3sSpread, iq3sBit; Y13: 0x01 bytes; Y14: the block's scales, SCALES8;
// clobbers AX, BX, R11, Y1-Y4, Y6-Y8). The eight 9-bit indices are made as words in a vector (the qh
// bits spread by iqBits8) and taken to general registers two quads at a
// time, and the grid entries loaded one by one (VPINSRD): on Zen 3 1.3×
// the VPGATHERDD on indices made in a vector that it replaces.
#define IQ3SGROUP(qsoff, qhoff, sgoff, g, qoff) \
	MOVBLZX      qhoff(SI), AX; \
	VMOVQ        (R12)(AX*8), X2; \
	VPMOVZXBW    X2, X2; \
	VPSLLW       $8, X2, X2; \
	VPMOVZXBW    qsoff(SI), X1; \
	VPOR         X2, X1, X1; \
	VMOVQ        X1, AX; \
	VPEXTRQ      $1, X1, BX; \
	MOVWLZX      AX, R11; \
	VMOVD        (R8)(R11*4), X3; \
	SHRQ         $16, AX; \
	MOVWLZX      AX, R11; \
	VPINSRD      $1, (R8)(R11*4), X3, X3; \
	SHRQ         $16, AX; \
	MOVWLZX      AX, R11; \
	VPINSRD      $2, (R8)(R11*4), X3, X3; \
	SHRQ         $16, AX; \
	VPINSRD      $3, (R8)(AX*4), X3, X3; \
	MOVWLZX      BX, R11; \
	VMOVD        (R8)(R11*4), X2; \
	SHRQ         $16, BX; \
	MOVWLZX      BX, R11; \
	VPINSRD      $1, (R8)(R11*4), X2, X2; \
	SHRQ         $16, BX; \
	MOVWLZX      BX, R11; \
	VPINSRD      $2, (R8)(R11*4), X2, X2; \
	SHRQ         $16, BX; \
	VPINSRD      $3, (R8)(BX*4), X2, X2; \
	VINSERTI128  $1, X2, Y3, Y3; \
	VPBROADCASTD sgoff(SI), Y4; \
	VPSHUFB      Y10, Y4, Y4; \
	VPAND        Y11, Y4, Y4; \
	VPCMPEQB     Y11, Y4, Y4; \
	VPOR         Y13, Y4, Y4; \
	PAIRS(qoff); \
	VPSHUFB      iqScaleSel<>+(32*g)(SB), Y14, Y8; \
	VPMADDWD     Y8, Y7, Y7; \
	VPADDD       Y7, Y5, Y5

// func dotIQ3SAVX2(w []byte, q []int8, d []float32, grid *[512]uint32) float32
TEXT ·dotIQ3SAVX2(SB), NOSPLIT, $0-84
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	VXORPS X0, X0, X0
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	MOVL         $0x1f, AX
	VMOVD        AX, X12
	VPBROADCASTB X12, Y12
	VMOVDQU      iq3sSpread<>(SB), Y10
	VMOVDQU      iq3sBit<>(SB), Y11
	LEAQ         iqBits8<>(SB), R12

iq3sloop:
	TESTQ CX, CX
	JZ    iq3sdone
	VPXOR Y5, Y5, Y5
	SCALES8(106)
	IQ3SGROUP(2, 66, 74, 0, 0)
	IQ3SGROUP(10, 67, 78, 1, 32)
	IQ3SGROUP(18, 68, 82, 2, 64)
	IQ3SGROUP(26, 69, 86, 3, 96)
	IQ3SGROUP(34, 70, 90, 4, 128)
	IQ3SGROUP(42, 71, 94, 5, 160)
	IQ3SGROUP(50, 72, 98, 6, 192)
	IQ3SGROUP(58, 73, 102, 7, 224)
	HSUMD(Y5, X5, X8, R10)
	BLOCKEND
	ADDQ $110, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq3sloop

iq3sdone:
	VMOVSS X0, ret+80(FP)
	VZEROUPPER
	RET

// IQ2SGROUP adds group g of an IQ2_S block at SI to Y5: low index bytes at
// qsoff(SI), high bits in the byte at qhoff(SI), sign bytes at sgoff(SI),
// activations at qoff(DI) (R8: the grid; Y10, Y11: iq3sSpread, iq3sBit;
// Y13: 0x01 bytes; Y14: the block's scales, SCALES16; clobbers AX, BX, R9,
// R15, Y1-Y4, Y6-Y8).
#define IQ2SGROUP(qsoff, qhoff, sgoff, g, qoff) \
	IQ2SIDX(qsoff, qhoff, Y3, X3, X2); \
	VPBROADCASTD sgoff(SI), Y4; \
	VPSHUFB      Y10, Y4, Y4; \
	VPAND        Y11, Y4, Y4; \
	VPCMPEQB     Y11, Y4, Y4; \
	VPOR         Y13, Y4, Y4; \
	PAIRS(qoff); \
	VPSHUFB      iqScaleSel<>+(32*g)(SB), Y14, Y8; \
	VPMADDWD     Y8, Y7, Y7; \
	VPADDD       Y7, Y5, Y5

// func dotIQ2SAVX2(w []byte, q []int8, d []float32, grid *[1024]uint64) float32
TEXT ·dotIQ2SAVX2(SB), NOSPLIT, $0-84
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	VXORPS X0, X0, X0
	MOVL         $0x1f, AX
	VMOVD        AX, X12
	VPBROADCASTB X12, Y12
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	VMOVDQU      iq3sSpread<>(SB), Y10
	VMOVDQU      iq3sBit<>(SB), Y11

iq2sloop:
	TESTQ CX, CX
	JZ    iq2sdone
	VPXOR Y5, Y5, Y5
	SCALES16(74)
	IQ2SGROUP(2, 66, 34, 0, 0)
	IQ2SGROUP(6, 67, 38, 1, 32)
	IQ2SGROUP(10, 68, 42, 2, 64)
	IQ2SGROUP(14, 69, 46, 3, 96)
	IQ2SGROUP(18, 70, 50, 4, 128)
	IQ2SGROUP(22, 71, 54, 5, 160)
	IQ2SGROUP(26, 72, 58, 6, 192)
	IQ2SGROUP(30, 73, 62, 7, 224)
	HSUMD(Y5, X5, X8, R10)
	BLOCKEND
	ADDQ $82, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq2sloop

iq2sdone:
	MOVL   $0x3e000000, AX // 0.125
	VMOVD  AX, X1
	VMULSS X1, X0, X0
	VMOVSS X0, ret+80(FP)
	VZEROUPPER
	RET

// IQ1SGROUP adds group g of an IQ1_S block at SI to Y5 and its shift term
// ls·±(activation sums) to R14: low index bytes at qsoff(SI), the qh word
// at qhoff(SI), activation 16-sums at bsoff(R13), activations at qoff(DI)
// (R8: the grid of values+1; Y13: 0x01 bytes; clobbers AX, BX, R9, R11,
// R12, R15, Y1-Y3, Y6-Y8). The grid bytes
// v+1 (0..2) are the unsigned operand of VPMADDUBSW: less the pair sums
// of the activations they give v·q exactly.
#define IQ1SGROUP(qsoff, qhoff, bsoff, qoff) \
	IQ1SIDX(qsoff, qhoff, Y3, X3, X2); \
	MOVWLZX      qhoff(SI), AX; \
	VPMADDUBSW   qoff(DI), Y3, Y7; \
	VPMADDUBSW   qoff(DI), Y13, Y6; \
	VPSUBW       Y6, Y7, Y7; \
	MOVL         AX, BX; \
	SHRL         $12, AX; \
	ANDL         $7, AX; \
	LEAL         1(AX)(AX*1), AX; \
	VMOVD        AX, X8; \
	VPBROADCASTW X8, Y8; \
	VPMADDWD     Y8, Y7, Y7; \
	VPADDD       Y7, Y5, Y5; \
	MOVWLSX      bsoff(R13), R11; \
	MOVWLSX      (bsoff+2)(R13), R12; \
	ADDL         R12, R11; \
	IMULL        AX, R11; \
	SHRL         $15, BX; \
	NEGL         BX; \
	XORL         BX, R11; \
	SUBL         BX, R11; \
	ADDL         R11, R14

// func dotIQ1SAVX2(w []byte, q []int8, d []float32, bs []int16, grid *[2048]uint64) float32
TEXT ·dotIQ1SAVX2(SB), NOSPLIT, $0-108
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ bs_base+72(FP), R13
	MOVQ grid+96(FP), R8
	VXORPS X0, X0, X0
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13

iq1sloop:
	TESTQ CX, CX
	JZ    iq1sdone
	VPXOR Y5, Y5, Y5
	XORL  R14, R14
	IQ1SGROUP(2, 34, 0, 0)
	IQ1SGROUP(6, 36, 4, 32)
	IQ1SGROUP(10, 38, 8, 64)
	IQ1SGROUP(14, 40, 12, 96)
	IQ1SGROUP(18, 42, 16, 128)
	IQ1SGROUP(22, 44, 20, 160)
	IQ1SGROUP(26, 46, 24, 192)
	IQ1SGROUP(30, 48, 28, 224)
	HSUMD(Y5, X5, X8, R10)

	// sum += dy·d · (float32(sumi) + 0.125·float32(sumi1)), as the
	// reference rounds it.
	VCVTSI2SSL R14, X3, X3
	MOVL       $0x3e000000, AX // 0.125
	VMOVD      AX, X4
	VMULSS     X4, X3, X3
	VCVTSI2SSL R10, X2, X2
	VADDSS     X3, X2, X2
	MOVWLZX    (SI), AX
	VMOVD      AX, X1
	VCVTPH2PS  X1, X1
	VMULSS     (DX), X1, X1
	VMULSS     X2, X1, X1
	VADDSS     X1, X0, X0
	ADDQ $50, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R13
	DECQ CX
	JMP  iq1sloop

iq1sdone:
	VMOVSS X0, ret+104(FP)
	VZEROUPPER
	RET

// Constants of IQ1_M. iq1mSignShift: dwords 2l and 2l+1 (run l's pair
// sums) bring run l's shift-sign bit to bit 0.
DATA iq1mSignShift<>+0x00(SB)/8, $0x0000000300000003
DATA iq1mSignShift<>+0x08(SB)/8, $0x0000000700000007
DATA iq1mSignShift<>+0x10(SB)/8, $0x0000000b0000000b
DATA iq1mSignShift<>+0x18(SB)/8, $0x0000000f0000000f
GLOBL iq1mSignShift<>(SB), RODATA|NOPTR, $32

// iq1mShift: the VPSRLVD counts that bring IQ1_M's 3-bit scales to the
// bottom of dwords holding scale words 0,0,1,1 | 2,2,3,3: at 0 the first
// sixteen weights' scale of each group (bits 0 and 6), at 32 the second's
// (bits 3 and 9).
DATA iq1mShift<>+0x00(SB)/8, $0x0000000600000000
DATA iq1mShift<>+0x08(SB)/8, $0x0000000600000000
DATA iq1mShift<>+0x10(SB)/8, $0x0000000600000000
DATA iq1mShift<>+0x18(SB)/8, $0x0000000600000000
DATA iq1mShift<>+0x20(SB)/8, $0x0000000900000003
DATA iq1mShift<>+0x28(SB)/8, $0x0000000900000003
DATA iq1mShift<>+0x30(SB)/8, $0x0000000900000003
DATA iq1mShift<>+0x38(SB)/8, $0x0000000900000003
GLOBL iq1mShift<>(SB), RODATA|NOPTR, $64

// iq1mPerm: the VPERMD indices that gather SCALES1M's packed scale bytes,
// the first halves' into the low lane and the second halves' into the high.
DATA iq1mPerm<>+0x00(SB)/8, $0x0000000400000000
DATA iq1mPerm<>+0x08(SB)/8, $0x0000000000000000
DATA iq1mPerm<>+0x10(SB)/8, $0x0000000500000001
DATA iq1mPerm<>+0x18(SB)/8, $0x0000000000000000
GLOBL iq1mPerm<>(SB), RODATA|NOPTR, $32

// iqWord7: 7 in each word.
DATA iqWord7<>+0x00(SB)/8, $0x0007000700070007
DATA iqWord7<>+0x08(SB)/8, $0x0007000700070007
DATA iqWord7<>+0x10(SB)/8, $0x0007000700070007
DATA iqWord7<>+0x18(SB)/8, $0x0007000700070007
GLOBL iqWord7<>(SB), RODATA|NOPTR, $32

// SCALES1M sets Y14 to the odd scales 2·ls+1 of an IQ1_M block as bytes,
// from its four scale words at scoff(SI) (3-bit scales at bits 0, 3, 6 and
// 9 of each; the top nibbles are the super-block scale): byte g of the low
// lane the scale of group g's first sixteen weights, of the high lane its
// second's, for VPSHUFB by iqScaleSel as in SCALES16 (Y12: iq1mPerm; Y13:
// 0x01 bytes; clobbers Y1, Y9).
#define SCALES1M(scoff) \
	VPMOVZXWD   scoff(SI), X1; \
	VPUNPCKHDQ  X1, X1, X9; \
	VPUNPCKLDQ  X1, X1, X1; \
	VINSERTI128 $1, X9, Y1, Y1; \
	VPSRLVD     iq1mShift<>+32(SB), Y1, Y9; \
	VPSRLVD     iq1mShift<>(SB), Y1, Y1; \
	VPACKUSDW   Y9, Y1, Y1; \
	VPAND       iqWord7<>(SB), Y1, Y1; \
	VPACKUSWB   Y1, Y1, Y1; \
	VPERMD      Y1, Y12, Y14; \
	VPADDB      Y14, Y14, Y14; \
	VPOR        Y13, Y14, Y14

// IQ1MGROUP adds group g of an IQ1_M block at SI: the half scales times
// the grid values times the activations to Y5, the half scales times the
// activations signed by each run's shift sign to Y4. Low index bytes at
// qsoff(SI), the qh word at qhoff(SI); activations at qoff(DI) (R8: the
// grid of values+1; Y11: iq1mSignShift; Y10: 1 in each dword; Y13: 0x01
// bytes; Y14: the block's scales, SCALES1M; Y15: 1 in each word; clobbers
// AX, R9, R15, Y2, Y3, Y6-Y8).
#define IQ1MGROUP(qsoff, qhoff, g, qoff) \
	MOVWLZX      qhoff(SI), AX; \
	VMOVD        AX, X2; \
	VPBROADCASTD X2, Y2; \
	VPSRLVD      Y11, Y2, Y2; \
	VPAND        Y10, Y2, Y2; \
	VPCMPEQD     Y10, Y2, Y2; \
	VPOR         Y15, Y2, Y2; \
	IQ1MIDX(qsoff, qhoff, Y6, X6, X3); \
	VMOVDQU      qoff(DI), Y7; \
	VPMADDUBSW   Y7, Y6, Y6; \
	VPMADDUBSW   Y7, Y13, Y7; \
	VPSUBW       Y7, Y6, Y6; \
	VPSIGNW      Y2, Y7, Y7; \
	VPSHUFB      iqScaleSel<>+(32*g)(SB), Y14, Y8; \
	VPMADDWD     Y8, Y6, Y6; \
	VPADDD       Y6, Y5, Y5; \
	VPMADDWD     Y8, Y7, Y7; \
	VPADDD       Y7, Y4, Y4

// func dotIQ1MAVX2(w []byte, q []int8, d []float32, grid *[2048]uint64) float32
TEXT ·dotIQ1MAVX2(SB), NOSPLIT, $0-84
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ grid+72(FP), R8
	VXORPS X0, X0, X0
	MOVL         $0x01, AX
	VMOVD        AX, X13
	VPBROADCASTB X13, Y13
	VMOVD        AX, X10
	VPBROADCASTD X10, Y10
	MOVL         $0x00010001, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU      iq1mSignShift<>(SB), Y11
	VMOVDQU      iq1mPerm<>(SB), Y12

iq1mloop:
	TESTQ CX, CX
	JZ    iq1mdone
	VPXOR Y5, Y5, Y5
	VPXOR Y4, Y4, Y4
	SCALES1M(48)
	IQ1MGROUP(0, 32, 0, 0)
	IQ1MGROUP(4, 34, 1, 32)
	IQ1MGROUP(8, 36, 2, 64)
	IQ1MGROUP(12, 38, 3, 96)
	IQ1MGROUP(16, 40, 4, 128)
	IQ1MGROUP(20, 42, 5, 160)
	IQ1MGROUP(24, 44, 6, 192)
	IQ1MGROUP(28, 46, 7, 224)
	HSUMD(Y5, X5, X8, R10)
	HSUMD(Y4, X4, X8, R14)

	// The binary16 super-block scale from the scale words' top nibbles.
	MOVWLZX 48(SI), AX
	SHRL    $12, AX
	MOVWLZX 50(SI), BX
	SHRL    $8, BX
	ANDL    $0xf0, BX
	ORL     BX, AX
	MOVWLZX 52(SI), BX
	SHRL    $4, BX
	ANDL    $0xf00, BX
	ORL     BX, AX
	MOVWLZX 54(SI), BX
	ANDL    $0xf000, BX
	ORL     BX, AX

	// sum += d·dy · (float32(sumi1) + 0.125·float32(sumi2)), as the
	// reference rounds it.
	VCVTSI2SSL R14, X3, X3
	MOVL       $0x3e000000, BX // 0.125
	VMOVD      BX, X6
	VMULSS     X6, X3, X3
	VCVTSI2SSL R10, X2, X2
	VADDSS     X3, X2, X2
	VMOVD      AX, X1
	VCVTPH2PS  X1, X1
	VMULSS     (DX), X1, X1
	VMULSS     X2, X1, X1
	VADDSS     X1, X0, X0
	ADDQ $56, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq1mloop

iq1mdone:
	VMOVSS X0, ret+80(FP)
	VZEROUPPER
	RET
