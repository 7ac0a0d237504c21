//go:build amd64 && !purego

#include "textflag.h"
#include "qk_amd64.h"

// AVX2 dot products of IQ4_XS and IQ4_NL weight rows with Q8_K and Q8_0
// activations (see qdot.go). Nibbles index the 16 non-linear levels with
// VPSHUFB; the signed levels times signed activations are formed as
// |w| (unsigned) × sign(w)·q with VPSIGNB and VPMADDUBSW, whose int16 pair
// sums cannot saturate (|w|, |q| <= 127).

// The 16 IQ4 levels (iq4nlValues) as int8, in both 128-bit lanes.
DATA iq4Tab<>+0x00(SB)/8, $0xf6eaddcfbfad9881
DATA iq4Tab<>+0x08(SB)/8, $0x7159453526190d01
DATA iq4Tab<>+0x10(SB)/8, $0xf6eaddcfbfad9881
DATA iq4Tab<>+0x18(SB)/8, $0x7159453526190d01
GLOBL iq4Tab<>(SB), RODATA|NOPTR, $32

// VPSHUFB masks: entry g (32 bytes) broadcasts int16 word g of each
// 128-bit lane to every word of that lane (IQ4_XS group scales).
DATA iq4xsShuf<>+0x00(SB)/8, $0x0100010001000100
DATA iq4xsShuf<>+0x08(SB)/8, $0x0100010001000100
DATA iq4xsShuf<>+0x10(SB)/8, $0x0100010001000100
DATA iq4xsShuf<>+0x18(SB)/8, $0x0100010001000100
DATA iq4xsShuf<>+0x20(SB)/8, $0x0302030203020302
DATA iq4xsShuf<>+0x28(SB)/8, $0x0302030203020302
DATA iq4xsShuf<>+0x30(SB)/8, $0x0302030203020302
DATA iq4xsShuf<>+0x38(SB)/8, $0x0302030203020302
DATA iq4xsShuf<>+0x40(SB)/8, $0x0504050405040504
DATA iq4xsShuf<>+0x48(SB)/8, $0x0504050405040504
DATA iq4xsShuf<>+0x50(SB)/8, $0x0504050405040504
DATA iq4xsShuf<>+0x58(SB)/8, $0x0504050405040504
DATA iq4xsShuf<>+0x60(SB)/8, $0x0706070607060706
DATA iq4xsShuf<>+0x68(SB)/8, $0x0706070607060706
DATA iq4xsShuf<>+0x70(SB)/8, $0x0706070607060706
DATA iq4xsShuf<>+0x78(SB)/8, $0x0706070607060706
DATA iq4xsShuf<>+0x80(SB)/8, $0x0908090809080908
DATA iq4xsShuf<>+0x88(SB)/8, $0x0908090809080908
DATA iq4xsShuf<>+0x90(SB)/8, $0x0908090809080908
DATA iq4xsShuf<>+0x98(SB)/8, $0x0908090809080908
DATA iq4xsShuf<>+0xa0(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf<>+0xa8(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf<>+0xb0(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf<>+0xb8(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf<>+0xc0(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf<>+0xc8(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf<>+0xd0(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf<>+0xd8(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf<>+0xe0(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA iq4xsShuf<>+0xe8(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA iq4xsShuf<>+0xf0(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA iq4xsShuf<>+0xf8(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL iq4xsShuf<>(SB), RODATA|NOPTR, $256

// VPSHUFB masks for rowsIQ4XSAVX2: entry p (32 bytes) broadcasts int16
// word 2p to the low 128-bit lane and word 2p+1 to the high lane (the
// scales of groups 2p and 2p+1, the same eight words in both lanes).
DATA iq4xsShuf2<>+0x00(SB)/8, $0x0100010001000100
DATA iq4xsShuf2<>+0x08(SB)/8, $0x0100010001000100
DATA iq4xsShuf2<>+0x10(SB)/8, $0x0302030203020302
DATA iq4xsShuf2<>+0x18(SB)/8, $0x0302030203020302
DATA iq4xsShuf2<>+0x20(SB)/8, $0x0504050405040504
DATA iq4xsShuf2<>+0x28(SB)/8, $0x0504050405040504
DATA iq4xsShuf2<>+0x30(SB)/8, $0x0706070607060706
DATA iq4xsShuf2<>+0x38(SB)/8, $0x0706070607060706
DATA iq4xsShuf2<>+0x40(SB)/8, $0x0908090809080908
DATA iq4xsShuf2<>+0x48(SB)/8, $0x0908090809080908
DATA iq4xsShuf2<>+0x50(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf2<>+0x58(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA iq4xsShuf2<>+0x60(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf2<>+0x68(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA iq4xsShuf2<>+0x70(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA iq4xsShuf2<>+0x78(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL iq4xsShuf2<>(SB), RODATA|NOPTR, $128

// Word multipliers moving scales_h bits 2g..2g+1 to bits 14..15 of word g.
DATA iq4xsHiMul<>+0x00(SB)/8, $0x0100040010004000
DATA iq4xsHiMul<>+0x08(SB)/8, $0x0001000400100040
GLOBL iq4xsHiMul<>(SB), RODATA|NOPTR, $16

// Horizontal sum of Y0 into the low lane of X0 (clobbers X1).
#define IQHSUM_Y0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// Signed levels in Y register w times the activations at m, as 16 int16
// pair sums in w (t is a temporary).
#define IQ4MUL(w, m, t) \
	VMOVDQU    m, t; \
	VPSIGNB    w, t, t; \
	VPABSB     w, w; \
	VPMADDUBSW t, w, w

// Groups 2p and 2p+1 of an IQ4_XS block at SI: weighted by their scales
// (words of Y6, broadcast with the masks at R11), added to Y5. Y14: 0x0f
// bytes, Y13: the level table.
#define IQ4XSPAIR(p) \
	VMOVDQU    (8+32*p)(SI), Y1; \
	VPSRLW     $4, Y1, Y2; \
	VPAND      Y14, Y1, Y1; \
	VPAND      Y14, Y2, Y2; \
	VPSHUFB    Y1, Y13, Y1; \
	VPSHUFB    Y2, Y13, Y2; \
	VPERM2I128 $0x20, Y2, Y1, Y3; \
	VPERM2I128 $0x31, Y2, Y1, Y4; \
	IQ4MUL(Y3, (64*p)(DI), Y7); \
	IQ4MUL(Y4, (64*p+32)(DI), Y8); \
	VPSHUFB    (64*p)(R11), Y6, Y1; \
	VPSHUFB    (64*p+32)(R11), Y6, Y2; \
	VPMADDWD   Y1, Y3, Y3; \
	VPMADDWD   Y2, Y4, Y4; \
	VPADDD     Y3, Y5, Y5; \
	VPADDD     Y4, Y5, Y5

// X0 += (d·dy)·float32(sumi) for the pending IQ4_XS block, the
// reference dot's order: sumi the exact sum of the 8 int32 lanes of Y9,
// d·dy in X10 (consumed; clobbers X15). Done one block late, in the
// middle of the next block's integer work, so that the float32 chain does
// not hold back that block's loads.
#define IQ4XSBLOCKSUMP \
	VEXTRACTI128 $1, Y9, X15; \
	VPADDD       X15, X9, X9; \
	VPSHUFD      $0x4e, X9, X15; \
	VPADDD       X15, X9, X9; \
	VPSHUFD      $0xb1, X9, X15; \
	VPADDD       X15, X9, X9; \
	VCVTDQ2PS    X9, X9; \
	VMULSS       X10, X9, X9; \
	VADDSS       X9, X0, X0

// IQ4XSSCALES sets the group scales ls-32 of the IQ4_XS block at SI as 8
// int16 in both lanes of Y6: low four bits from the nibbles of the bytes
// at 4(SI), high two from the word at 2(SI) (X14: 0x0f bytes, X12:
// iq4xsHiMul, X11: 32 in every word; clobbers AX, Y1, X2).
#define IQ4XSSCALES \
	VMOVD       4(SI), X1; \
	VPSRLW      $4, X1, X2; \
	VPUNPCKLBW  X2, X1, X1; \
	VPAND       X14, X1, X1; \
	VPMOVZXBW   X1, X1; \
	MOVWLZX     2(SI), AX; \
	VMOVD       AX, X2; \
	VPBROADCASTW X2, X2; \
	VPMULLW     X12, X2, X2; \
	VPSRLW      $14, X2, X2; \
	VPSLLW      $4, X2, X2; \
	VPOR        X2, X1, X1; \
	VPSUBW      X11, X1, X1; \
	VINSERTI128 $1, X1, Y1, Y6

// func dotIQ4XSAVX2(w []byte, q []int8, d []float32) float32
TEXT ·dotIQ4XSAVX2(SB), NOSPLIT, $0-76
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	LEAQ iq4xsShuf<>(SB), R11
	VXORPS  Y0, Y0, Y0
	VPXOR   Y9, Y9, Y9 // pending block: sum partials (none yet: zeros)
	VXORPS  X10, X10, X10
	MOVL    $0x0f0f0f0f, AX
	VMOVD   AX, X14
	VPBROADCASTD X14, Y14
	VMOVDQU iq4Tab<>(SB), Y13
	VMOVDQU iq4xsHiMul<>(SB), X12
	MOVL    $0x00200020, AX
	VMOVD   AX, X11
	VPBROADCASTD X11, X11 // 32 in every word

iq4xsloop:
	TESTQ CX, CX
	JZ    iq4xsdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)

	IQ4XSSCALES

	VPXOR Y5, Y5, Y5
	IQ4XSPAIR(0)
	IQ4XSBLOCKSUMP
	IQ4XSPAIR(1)
	IQ4XSPAIR(2)
	IQ4XSPAIR(3)

	// The block's sums and d·dy wait for IQ4XSBLOCKSUMP.
	MOVWLZX      (SI), AX
	VMOVD        AX, X10
	VCVTPH2PS    X10, X10
	VMULSS       (DX), X10, X10
	VMOVDQA      Y5, Y9

	ADDQ $136, SI
	ADDQ $256, DI
	ADDQ $4, DX
	DECQ CX
	JMP  iq4xsloop

iq4xsdone:
	IQ4XSBLOCKSUMP
	VMOVSS X0, ret+72(FP)
	VZEROUPPER
	RET

// func dotIQ4NLAVX2(w []byte, q []int8, d []float32) float32
TEXT ·dotIQ4NLAVX2(SB), NOSPLIT, $0-76
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	VXORPS  Y0, Y0, Y0
	VXORPS  Y9, Y9, Y9
	MOVL    $0x0f0f0f0f, AX
	VMOVD   AX, X14
	VPBROADCASTD X14, Y14
	MOVL    $0x00010001, AX
	VMOVD   AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU iq4Tab<>(SB), Y13

	// Two blocks per step, two accumulators.
iq4nlloop2:
	CMPQ CX, $2
	JLT  iq4nltail
	PREFETCHT0 4096(SI)
	VMOVDQU     2(SI), X1
	VPSRLW      $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND       Y14, Y1, Y1
	VPSHUFB     Y1, Y13, Y1
	IQ4MUL(Y1, (DI), Y7)
	VPMADDWD    Y15, Y1, Y1
	VMOVDQU     20(SI), X2
	VPSRLW      $4, X2, X3
	VINSERTI128 $1, X3, Y2, Y2
	VPAND       Y14, Y2, Y2
	VPSHUFB     Y2, Y13, Y2
	IQ4MUL(Y2, 32(DI), Y8)
	VPMADDWD    Y15, Y2, Y2
	MOVWLZX      (SI), AX
	VMOVD        AX, X3
	VCVTPH2PS    X3, X3
	VMULSS       (DX), X3, X3
	VBROADCASTSS X3, Y3
	MOVWLZX      18(SI), AX
	VMOVD        AX, X4
	VCVTPH2PS    X4, X4
	VMULSS       4(DX), X4, X4
	VBROADCASTSS X4, Y4
	VCVTDQ2PS    Y1, Y1
	VCVTDQ2PS    Y2, Y2
	VFMADD231PS  Y1, Y3, Y0
	VFMADD231PS  Y2, Y4, Y9
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  iq4nlloop2

iq4nltail:
	TESTQ CX, CX
	JZ    iq4nldone
	VMOVDQU     2(SI), X1
	VPSRLW      $4, X1, X2
	VINSERTI128 $1, X2, Y1, Y1
	VPAND       Y14, Y1, Y1
	VPSHUFB     Y1, Y13, Y1
	IQ4MUL(Y1, (DI), Y7)
	VPMADDWD    Y15, Y1, Y1
	MOVWLZX      (SI), AX
	VMOVD        AX, X3
	VCVTPH2PS    X3, X3
	VMULSS       (DX), X3, X3
	VBROADCASTSS X3, Y3
	VCVTDQ2PS    Y1, Y1
	VFMADD231PS  Y1, Y3, Y0

iq4nldone:
	VADDPS Y9, Y0, Y0
	IQHSUM_Y0
	VMOVSS X0, ret+72(FP)
	VZEROUPPER
	RET

// rowsIQ4XSAVX2 keeps, for every 64 activations, the four vectors its
// pairs of groups need in the frame: q in the order of the weights'
// nibbles (the low nibbles of groups 2p and 2p+1 are elements 0-15 of
// each, the high nibbles elements 16-31) and |q| in the same order. The
// products are then formed with the roles of the sign trick swapped,
// |q| (unsigned) × sign(q)·w, so that a row's weights need one VPSIGNB
// and no VPABSB or lane permutes; |q| ≤ 128 and |w| ≤ 127 keep the int16
// pair sums exact.

// Groups 2p and 2p+1 of an IQ4_XS block at SI against the frame's
// permuted activations at R9, weighted by their scales (Y6, broadcast
// with the masks at R10) and added to Y5 (Y14: 0x0f bytes, Y13: the
// level table; clobbers Y1-Y4, Y7).
#define IQ4XSRPAIR(p) \
	VMOVDQU    (8+32*p)(SI), Y1; \
	VPSRLW     $4, Y1, Y2; \
	VPAND      Y14, Y1, Y1; \
	VPAND      Y14, Y2, Y2; \
	VPSHUFB    Y1, Y13, Y1; \
	VPSHUFB    Y2, Y13, Y2; \
	VPSIGNB    (128*p)(R9), Y1, Y1; \
	VPSIGNB    (128*p+32)(R9), Y2, Y2; \
	VMOVDQU    (128*p+64)(R9), Y3; \
	VMOVDQU    (128*p+96)(R9), Y4; \
	VPMADDUBSW Y1, Y3, Y3; \
	VPMADDUBSW Y2, Y4, Y4; \
	VPSHUFB    (32*p)(R10), Y6, Y7; \
	VPMADDWD   Y7, Y3, Y3; \
	VPMADDWD   Y7, Y4, Y4; \
	VPADDD     Y3, Y5, Y5; \
	VPADDD     Y4, Y5, Y5

// func rowsIQ4XSAVX2(out []float32, w []byte, rb int, q []int8, d []float32)
//
// out[i] = row i · activation for the len(out) rows of rb bytes at w, each
// of len(d) IQ4_XS blocks, bit for bit dotIQ4XSAVX2; len(q) <= 16384 (the
// Go wrapper sees to it).
TEXT ·rowsIQ4XSAVX2(SB), 0, $32768-104
	MOVQ  out_len+8(FP), R12
	MOVQ  d_len+88(FP), CX
	TESTQ R12, R12
	JZ    iq4xsrnone
	TESTQ CX, CX
	JZ    iq4xsrzero

	// The permuted activations, 128 frame bytes per 64.
	MOVQ q_base+56(FP), DI
	SHLQ $2, CX
	LEAQ (SP), R9

iq4xsrperm:
	VMOVDQU    (DI), Y1
	VMOVDQU    32(DI), Y2
	VPERM2I128 $0x20, Y2, Y1, Y3
	VPERM2I128 $0x31, Y2, Y1, Y4
	VMOVDQU    Y3, (R9)
	VMOVDQU    Y4, 32(R9)
	VPABSB     Y3, Y3
	VPABSB     Y4, Y4
	VMOVDQU    Y3, 64(R9)
	VMOVDQU    Y4, 96(R9)
	ADDQ       $64, DI
	ADDQ       $128, R9
	DECQ       CX
	JNZ        iq4xsrperm

	MOVQ out_base+0(FP), R8
	MOVQ w_base+24(FP), R11
	MOVQ rb+48(FP), BX
	LEAQ iq4xsShuf2<>(SB), R10
	MOVL    $0x0f0f0f0f, AX
	VMOVD   AX, X14
	VPBROADCASTD X14, Y14
	VMOVDQU iq4Tab<>(SB), Y13
	VMOVDQU iq4xsHiMul<>(SB), X12
	MOVL    $0x00200020, AX
	VMOVD   AX, X11
	VPBROADCASTD X11, X11

iq4xsrrow:
	MOVQ    R11, SI
	LEAQ    (SP), R9
	MOVQ    d_base+80(FP), DX
	MOVQ    d_len+88(FP), CX
	VXORPS  Y0, Y0, Y0
	VPXOR   Y9, Y9, Y9
	VXORPS  X10, X10, X10

iq4xsrloop:
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	IQ4XSSCALES
	VPXOR Y5, Y5, Y5
	IQ4XSRPAIR(0)
	IQ4XSBLOCKSUMP
	IQ4XSRPAIR(1)
	IQ4XSRPAIR(2)
	IQ4XSRPAIR(3)
	MOVWLZX      (SI), AX
	VMOVD        AX, X10
	VCVTPH2PS    X10, X10
	VMULSS       (DX), X10, X10
	VMOVDQA      Y5, Y9
	ADDQ $136, SI
	ADDQ $512, R9
	ADDQ $4, DX
	DECQ CX
	JNZ  iq4xsrloop

	IQ4XSBLOCKSUMP
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   BX, R11
	DECQ   R12
	JNZ    iq4xsrrow
	VZEROUPPER

iq4xsrnone:
	RET

iq4xsrzero:
	// No blocks: every dot is 0.
	MOVQ out_base+0(FP), R8
	XORL AX, AX

iq4xsrzloop:
	MOVL AX, (R8)
	ADDQ $4, R8
	DECQ R12
	JNZ  iq4xsrzloop
	RET

// IQ4NLR adds one IQ4_NL block of a row of a four-row group to acc: the
// quant bytes at q (levels through the table Y13, Y14: 0x0f bytes) times
// the activations at m, as IQ4MUL and VPMADDWD by Y15 (int16 ones) give
// them, converted and fused-multiplied by the scale broadcast from s, as
// dotIQ4NLAVX2 does (clobbers Y10, Y11).
#define IQ4NLR(q, m, s, acc) \
	VMOVDQU      q, X10; \
	VPSRLW       $4, X10, X11; \
	VINSERTI128  $1, X11, Y10, Y10; \
	VPAND        Y14, Y10, Y10; \
	VPSHUFB      Y10, Y13, Y10; \
	IQ4MUL(Y10, m, Y11); \
	VPMADDWD     Y15, Y10, Y10; \
	VCVTDQ2PS    Y10, Y10; \
	VBROADCASTSS s, Y11; \
	VFMADD231PS  Y10, Y11, acc

// func dot4IQ4NLAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32)
//
// out[r] = dotIQ4NLAVX2 of row r at w[r*rb:] for r = 0..3, bit for bit:
// each row keeps its two accumulators (even and odd blocks) and the same
// operations; the rows share the activation loads and the scales, which
// are converted and multiplied by dy eight at a time (two blocks of four
// rows) into the frame, and the next four rows are prefetched linearly.
TEXT ·dot4IQ4NLAVX2(SB), NOSPLIT, $32-88
	MOVQ w_base+8(FP), SI
	MOVQ rb+32(FP), R12
	LEAQ (R12)(R12*2), R13
	LEAQ (SI)(R12*4), R9 // the next four rows, 192 bytes every two blocks (at least 4·36)
	MOVQ q_base+40(FP), DI
	MOVQ d_base+64(FP), DX
	MOVQ d_len+72(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVL    $0x0f0f0f0f, AX
	VMOVD   AX, X14
	VPBROADCASTD X14, Y14
	MOVL    $0x00010001, AX
	VMOVD   AX, X15
	VPBROADCASTD X15, Y15
	VMOVDQU iq4Tab<>(SB), Y13

iq4nl4loop2:
	CMPQ CX, $2
	JLT  iq4nl4tail
	PREFETCHT0 0(R9)
	PREFETCHT0 64(R9)
	PREFETCHT0 128(R9)
	ADDQ       $192, R9
	VPXOR X8, X8, X8
	VPINSRW $0, 0(SI), X8, X8
	VPINSRW $1, 0(SI)(R12*1), X8, X8
	VPINSRW $2, 0(SI)(R12*2), X8, X8
	VPINSRW $3, 0(SI)(R13*1), X8, X8
	VPINSRW $4, 18(SI), X8, X8
	VPINSRW $5, 18(SI)(R12*1), X8, X8
	VPINSRW $6, 18(SI)(R12*2), X8, X8
	VPINSRW $7, 18(SI)(R13*1), X8, X8
	VCVTPH2PS    X8, Y8
	VBROADCASTSS (DX), X9
	VBROADCASTSS 4(DX), X10
	VINSERTF128  $1, X10, Y9, Y9
	VMULPS       Y9, Y8, Y8
	VMOVUPS      Y8, s-32(SP)
	IQ4NLR(2(SI), (DI), s-32(SP), Y0)
	IQ4NLR(20(SI), 32(DI), s-16(SP), Y4)
	IQ4NLR(2(SI)(R12*1), (DI), s-28(SP), Y1)
	IQ4NLR(20(SI)(R12*1), 32(DI), s-12(SP), Y5)
	IQ4NLR(2(SI)(R12*2), (DI), s-24(SP), Y2)
	IQ4NLR(20(SI)(R12*2), 32(DI), s-8(SP), Y6)
	IQ4NLR(2(SI)(R13*1), (DI), s-20(SP), Y3)
	IQ4NLR(20(SI)(R13*1), 32(DI), s-4(SP), Y7)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $8, DX
	SUBQ $2, CX
	JMP  iq4nl4loop2

iq4nl4tail:
	TESTQ CX, CX
	JZ    iq4nl4done
	VPXOR X8, X8, X8
	VPINSRW $0, 0(SI), X8, X8
	VPINSRW $1, 0(SI)(R12*1), X8, X8
	VPINSRW $2, 0(SI)(R12*2), X8, X8
	VPINSRW $3, 0(SI)(R13*1), X8, X8
	VCVTPH2PS    X8, X8
	VBROADCASTSS (DX), X9
	VMULPS       X9, X8, X8
	VMOVUPS      X8, s-32(SP)
	IQ4NLR(2(SI), (DI), s-32(SP), Y0)
	IQ4NLR(2(SI)(R12*1), (DI), s-28(SP), Y1)
	IQ4NLR(2(SI)(R12*2), (DI), s-24(SP), Y2)
	IQ4NLR(2(SI)(R13*1), (DI), s-20(SP), Y3)

iq4nl4done:
	MOVQ out+0(FP), AX
	VADDPS Y4, Y0, Y0
	HSUMSTORE(Y0, X0, X10, 0(AX))
	VADDPS Y5, Y1, Y1
	HSUMSTORE(Y1, X1, X10, 4(AX))
	VADDPS Y6, Y2, Y2
	HSUMSTORE(Y2, X2, X10, 8(AX))
	VADDPS Y7, Y3, Y3
	HSUMSTORE(Y3, X3, X10, 12(AX))
	VZEROUPPER
	RET
