//go:build amd64 && !purego

#include "textflag.h"
#include "qk_amd64.h"

// AVX2 dot products of Q2_K and Q3_K weight rows with Q8_K activations
// (qdot_k23_amd64.go). Each super-block's integer sums are formed exactly
// in vectors (2- and 3-bit quants are unsigned bytes for VPMADDUBSW: Q3_K's
// quants carry +4, taken off through the activation block sums) and reduced
// to scalars; the float32 products and the running sum then follow the
// reference dot (quant/ggml dotQ2K, dotQ3K) operation by operation, so the
// result is the reference's bit for bit.

// VPSHUFB masks (also used by pack16Q2_KAVX2): entry k (32 bytes)
// zero-extends byte 2k of each 128-bit
// lane into every int16 of that lane. With the sixteen scale bytes in the
// low lane and the same bytes moved down one in the high lane, entry k
// gives sub-block 2k's scale in the low eight words and 2k+1's in the high.

DATA ·k23Shuf+0x00(SB)/8, $0x8000800080008000
DATA ·k23Shuf+0x08(SB)/8, $0x8000800080008000
DATA ·k23Shuf+0x10(SB)/8, $0x8000800080008000
DATA ·k23Shuf+0x18(SB)/8, $0x8000800080008000
DATA ·k23Shuf+0x20(SB)/8, $0x8002800280028002
DATA ·k23Shuf+0x28(SB)/8, $0x8002800280028002
DATA ·k23Shuf+0x30(SB)/8, $0x8002800280028002
DATA ·k23Shuf+0x38(SB)/8, $0x8002800280028002
DATA ·k23Shuf+0x40(SB)/8, $0x8004800480048004
DATA ·k23Shuf+0x48(SB)/8, $0x8004800480048004
DATA ·k23Shuf+0x50(SB)/8, $0x8004800480048004
DATA ·k23Shuf+0x58(SB)/8, $0x8004800480048004
DATA ·k23Shuf+0x60(SB)/8, $0x8006800680068006
DATA ·k23Shuf+0x68(SB)/8, $0x8006800680068006
DATA ·k23Shuf+0x70(SB)/8, $0x8006800680068006
DATA ·k23Shuf+0x78(SB)/8, $0x8006800680068006
DATA ·k23Shuf+0x80(SB)/8, $0x8008800880088008
DATA ·k23Shuf+0x88(SB)/8, $0x8008800880088008
DATA ·k23Shuf+0x90(SB)/8, $0x8008800880088008
DATA ·k23Shuf+0x98(SB)/8, $0x8008800880088008
DATA ·k23Shuf+0xa0(SB)/8, $0x800a800a800a800a
DATA ·k23Shuf+0xa8(SB)/8, $0x800a800a800a800a
DATA ·k23Shuf+0xb0(SB)/8, $0x800a800a800a800a
DATA ·k23Shuf+0xb8(SB)/8, $0x800a800a800a800a
DATA ·k23Shuf+0xc0(SB)/8, $0x800c800c800c800c
DATA ·k23Shuf+0xc8(SB)/8, $0x800c800c800c800c
DATA ·k23Shuf+0xd0(SB)/8, $0x800c800c800c800c
DATA ·k23Shuf+0xd8(SB)/8, $0x800c800c800c800c
DATA ·k23Shuf+0xe0(SB)/8, $0x800e800e800e800e
DATA ·k23Shuf+0xe8(SB)/8, $0x800e800e800e800e
DATA ·k23Shuf+0xf0(SB)/8, $0x800e800e800e800e
DATA ·k23Shuf+0xf8(SB)/8, $0x800e800e800e800e
GLOBL ·k23Shuf(SB), RODATA|NOPTR, $256

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

// BCAST8 broadcasts byte c into every byte of Y register y (x its low half;
// clobbers AX).
#define BCAST8(c, x, y) \
	MOVL         c, AX; \
	VMOVD        AX, x; \
	VPBROADCASTB x, y

// SCALEPAIRS sets Y6 = [X6, X6 moved down one byte] for the k23Shuf masks
// (clobbers X8).
#define SCALEPAIRS \
	VPSRLDQ     $1, X6, X8; \
	VINSERTI128 $1, X8, Y6, Y6

// HALFSCALE loads binary16 at off(SI) times the activation scale at (DX)
// into X register x (clobbers AX and X register t): dy·d, in that order.
#define HALFSCALE(off, x, t) \
	MOVWLZX   off(SI), AX; \
	VMOVD     AX, x; \
	VCVTPH2PS x, x; \
	VMOVSS    (DX), t; \
	VMULSS    x, t, x

// Q2KSUB adds sub-blocks 8h+2j and 8h+2j+1 to Y5: the quants at shift 2j
// of Y10 (the 32 bytes of half h) times the activations at off(DI), by
// the scales through mask m (Y14: 0x03 bytes; clobbers Y1, Y2).
#define Q2KSUB(sh, off, m) \
	VPSRLW     $sh, Y10, Y1; \
	VPAND      Y14, Y1, Y1; \
	VPMADDUBSW off(DI), Y1, Y1; \
	VPSHUFB    m(R11), Y6, Y2; \
	VPMADDWD   Y2, Y1, Y1; \
	VPADDD     Y1, Y5, Y5

// func dotQ2KAVX2(w []byte, q []int8, d []float32, bs []int16) float32
TEXT ·dotQ2KAVX2(SB), NOSPLIT, $0-100
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ bs_base+72(FP), BX
	LEAQ ·k23Shuf(SB), R11
	VXORPS X0, X0, X0
	BCAST8($0x03, X14, Y14)
	BCAST8($0x0f, X13, Y13)

q2kloop:
	TESTQ CX, CX
	JZ    q2kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)

	// Scales (low nibbles) to Y6, mins (high nibbles) times the block
	// sums to R9.
	VMOVDQU   (SI), X6
	VPSRLW    $4, X6, X7
	VPAND     X13, X7, X7
	VPAND     X13, X6, X6
	SCALEPAIRS
	VPMOVZXBW X7, Y7
	VPMADDWD  (BX), Y7, Y7
	HSUMD(Y7, X7, X8, R9)

	VPXOR   Y5, Y5, Y5
	VMOVDQU 16(SI), Y10

	Q2KSUB(0, 0, 0)
	Q2KSUB(2, 32, 32)
	Q2KSUB(4, 64, 64)
	Q2KSUB(6, 96, 96)
	VMOVDQU 48(SI), Y10
	Q2KSUB(0, 128, 128)
	Q2KSUB(2, 160, 160)
	Q2KSUB(4, 192, 192)
	Q2KSUB(6, 224, 224)
	HSUMD(Y5, X5, X8, R8)

	// sum += dy·d·sumi − dy·dmin·summ, as the reference rounds it.
	HALFSCALE(80, X1, X3)
	HALFSCALE(82, X2, X3)
	VCVTSI2SSL R8, X4, X4
	VMULSS    X4, X1, X1
	VCVTSI2SSL R9, X4, X4
	VMULSS    X4, X2, X2
	VSUBSS    X2, X1, X1
	VADDSS    X1, X0, X0

	ADDQ $84, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q2kloop

q2kdone:
	VMOVSS X0, ret+96(FP)
	VZEROUPPER
	RET

// Q3KSUB adds sub-blocks 8h+2j and 8h+2j+1 (k = 4h+j) to Y5: the low bits
// at shift 2j of Y10 (the 32 bytes of half h) and high bit k of the hmask
// bytes in Y9 at bit 2 (hop $hn: the shift that puts it there), times the
// activations at off(DI), by the scales through mask m less 32 (Y14: 0x03
// bytes, Y12: 0x04 bytes, Y11: int16 32s; clobbers Y1, Y2).
#define Q3KSUB(sh, hop, hn, off, m) \
	VPSRLW     $sh, Y10, Y1; \
	VPAND      Y14, Y1, Y1; \
	hop        $hn, Y9, Y2; \
	VPAND      Y12, Y2, Y2; \
	VPOR       Y2, Y1, Y1; \
	VPMADDUBSW off(DI), Y1, Y1; \
	VPSHUFB    m(R11), Y6, Y2; \
	VPSUBW     Y11, Y2, Y2; \
	VPMADDWD   Y2, Y1, Y1; \
	VPADDD     Y1, Y5, Y5

// func dotQ3KAVX2(w []byte, q []int8, d []float32, bs []int16) float32
//
// A quant is ((qs>>shift)&3 | hbit<<2) − 4 and a scale its 6-bit field
// − 32: with u the unbiased quant, Σ sc·Σ(u−4)·q = Σ sc·Σu·q − 4·Σ sc·bs.
TEXT ·dotQ3KAVX2(SB), NOSPLIT, $0-100
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ bs_base+72(FP), BX
	LEAQ ·k23Shuf(SB), R11
	VXORPS X0, X0, X0
	BCAST8($0x03, X14, Y14)
	BCAST8($0x04, X12, Y12)
	MOVL         $32, AX
	VMOVD        AX, X11
	VPBROADCASTW X11, Y11

q3kloop:
	TESTQ CX, CX
	JZ    q3kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)

	// The sixteen 6-bit scale fields (+32) of the 12 bytes at 96(SI), as
	// bytes in X6: low nibbles from bytes 0-7, high pairs from 8-11.
	Q3KSCALES(96(SI), 100(SI), 104(SI), X6, R8, R9, R10, R12, R13)

	// Σ sc·bs into R9.
	VPMOVZXBW X6, Y7
	VPSUBW    Y11, Y7, Y7
	VPMADDWD  (BX), Y7, Y7
	HSUMD(Y7, X7, X8, R9)
	SCALEPAIRS

	VMOVDQU (SI), Y9
	VPXOR   Y5, Y5, Y5
	VMOVDQU 32(SI), Y10

	Q3KSUB(0, VPSLLW, 2, 0, 0)
	Q3KSUB(2, VPSLLW, 1, 32, 32)
	Q3KSUB(4, VPSRLW, 0, 64, 64)
	Q3KSUB(6, VPSRLW, 1, 96, 96)
	VMOVDQU 64(SI), Y10
	Q3KSUB(0, VPSRLW, 2, 128, 128)
	Q3KSUB(2, VPSRLW, 3, 160, 160)
	Q3KSUB(4, VPSRLW, 4, 192, 192)
	Q3KSUB(6, VPSRLW, 5, 224, 224)
	HSUMD(Y5, X5, X8, R8)
	SHLL $2, R9
	SUBL R9, R8

	// sum += dy·d·sumi, as the reference rounds it.
	HALFSCALE(108, X1, X3)
	VCVTSI2SSL R8, X4, X4
	VMULSS    X4, X1, X1
	VADDSS    X1, X0, X0

	ADDQ $110, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q3kloop

q3kdone:
	VMOVSS X0, ret+96(FP)
	VZEROUPPER
	RET

// Q2KSUB4 is Q2KSUB for row r of a four-row group: the quants at shift sh
// of Y3 times the activations at off(DI), by the scales of s through mask
// m, added to acc (clobbers Y1, Y2).
#define Q2KSUB4(sh, off, m, s, acc) \
	VPSRLW     $sh, Y3, Y1; \
	VPAND      Y14, Y1, Y1; \
	VPMADDUBSW off(DI), Y1, Y1; \
	VPSHUFB    m(R11), s, Y2; \
	VPMADDWD   Y2, Y1, Y1; \
	VPADDD     Y1, acc, acc

// Q2KHALF4 adds half h (quant bytes at q of each row) of the four rows'
// sub-blocks to their accumulators Y10, Y11, Y12, Y5 (scales Y6-Y9).
#define Q2KHALF4(q, a) \
	VMOVDQU q(SI), Y3; \
	Q2KSUB4(0, a+0, a+0, Y6, Y10); \
	Q2KSUB4(2, a+32, a+32, Y6, Y10); \
	Q2KSUB4(4, a+64, a+64, Y6, Y10); \
	Q2KSUB4(6, a+96, a+96, Y6, Y10); \
	VMOVDQU q(SI)(R12*1), Y3; \
	Q2KSUB4(0, a+0, a+0, Y7, Y11); \
	Q2KSUB4(2, a+32, a+32, Y7, Y11); \
	Q2KSUB4(4, a+64, a+64, Y7, Y11); \
	Q2KSUB4(6, a+96, a+96, Y7, Y11); \
	VMOVDQU q(SI)(R12*2), Y3; \
	Q2KSUB4(0, a+0, a+0, Y8, Y12); \
	Q2KSUB4(2, a+32, a+32, Y8, Y12); \
	Q2KSUB4(4, a+64, a+64, Y8, Y12); \
	Q2KSUB4(6, a+96, a+96, Y8, Y12); \
	VMOVDQU q(SI)(R13*1), Y3; \
	Q2KSUB4(0, a+0, a+0, Y9, Y5); \
	Q2KSUB4(2, a+32, a+32, Y9, Y5); \
	Q2KSUB4(4, a+64, a+64, Y9, Y5); \
	Q2KSUB4(6, a+96, a+96, Y9, Y5)

// Q2KMINS4 sets y to the mins (high nibbles of the scale bytes at src)
// times the block sums at (BX), eight int32 partial sums.
#define Q2KMINS4(src, y, x) \
	VMOVDQU   src, x; \
	VPSRLW    $4, x, x; \
	VPAND     X13, x, x; \
	VPMOVZXBW x, y; \
	VPMADDWD  (BX), y, y

// Q2KSCALES4 sets y to the scale pairs (low nibbles of the scale bytes at
// src, SCALEPAIRS' layout; clobbers X1).
#define Q2KSCALES4(src, y, x) \
	VMOVDQU     src, x; \
	VPAND       X13, x, x; \
	VPSRLDQ     $1, x, X1; \
	VINSERTI128 $1, X1, y, y

// func dot4Q2KAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32, bs []int16)
//
// out[r] = dotQ2KAVX2 of row r at w[r*rb:] for r = 0..3, bit for bit: the
// four rows' integer sums are reduced together (VPHADDD) and their float
// epilogues run side by side in the lanes of one vector, each lane the
// reference's operations in its order.
TEXT ·dot4Q2KAVX2(SB), NOSPLIT, $0-112
	MOVQ w_base+8(FP), SI
	MOVQ rb+32(FP), R12
	LEAQ (R12)(R12*2), R13
	LEAQ (SI)(R12*4), R9 // the next four rows, 384 bytes a block (at least 4·84)
	MOVQ q_base+40(FP), DI
	MOVQ d_base+64(FP), DX
	MOVQ d_len+72(FP), CX
	MOVQ bs_base+88(FP), BX
	LEAQ ·k23Shuf(SB), R11
	VXORPS Y0, Y0, Y0
	BCAST8($0x03, X14, Y14)
	BCAST8($0x0f, X13, Y13)

q2k4loop:
	TESTQ CX, CX
	JZ    q2k4done
	PREFETCHT0 0(R9)
	PREFETCHT0 64(R9)
	PREFETCHT0 128(R9)
	PREFETCHT0 192(R9)
	PREFETCHT0 256(R9)
	PREFETCHT0 320(R9)
	ADDQ       $384, R9

	// The four rows' mins times the block sums, reduced to X15.
	Q2KMINS4((SI), Y7, X7)
	Q2KMINS4((SI)(R12*1), Y8, X8)
	Q2KMINS4((SI)(R12*2), Y9, X9)
	Q2KMINS4((SI)(R13*1), Y10, X10)
	VPHADDD      Y8, Y7, Y7
	VPHADDD      Y10, Y9, Y9
	VPHADDD      Y9, Y7, Y7
	VEXTRACTI128 $1, Y7, X8
	VPADDD       X8, X7, X15

	Q2KSCALES4((SI), Y6, X6)
	Q2KSCALES4((SI)(R12*1), Y7, X7)
	Q2KSCALES4((SI)(R12*2), Y8, X8)
	Q2KSCALES4((SI)(R13*1), Y9, X9)
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y5, Y5, Y5
	Q2KHALF4(16, 0)
	Q2KHALF4(48, 128)

	// The sums to X10 = [s0 s1 s2 s3].
	VPHADDD      Y11, Y10, Y10
	VPHADDD      Y5, Y12, Y12
	VPHADDD      Y12, Y10, Y10
	VEXTRACTI128 $1, Y10, X11
	VPADDD       X11, X10, X10

	// Per row, sum += dy·d·sumi − dy·dmin·summ as the reference rounds
	// it: lanes [d0 dmin0 d1 dmin1 | d2 dmin2 d3 dmin3].
	VMOVD        80(SI), X1
	VPINSRD      $1, 80(SI)(R12*1), X1, X1
	VPINSRD      $2, 80(SI)(R12*2), X1, X1
	VPINSRD      $3, 80(SI)(R13*1), X1, X1
	VCVTPH2PS    X1, Y1
	VBROADCASTSS (DX), Y2
	VMULPS       Y1, Y2, Y1
	VPUNPCKLDQ   X15, X10, X2
	VPUNPCKHDQ   X15, X10, X3
	VINSERTI128  $1, X3, Y2, Y2
	VCVTDQ2PS    Y2, Y2
	VMULPS       Y2, Y1, Y1
	VSHUFPS      $0x88, Y1, Y1, Y2
	VSHUFPS      $0xdd, Y1, Y1, Y3
	VSUBPS       Y3, Y2, Y2
	VADDPS       Y2, Y0, Y0

	ADDQ $84, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q2k4loop

q2k4done:
	MOVQ         out+0(FP), AX
	VMOVQ        X0, (AX)
	VEXTRACTF128 $1, Y0, X1
	VMOVQ        X1, 8(AX)
	VZEROUPPER
	RET

// Q3KSUB4 is Q3KSUB for row r of a four-row group: low bits at shift sh of
// Y3, the high bit from the hmask bytes in Y4 (hop $hn), times the
// activations at off(DI), by the scales of s through mask m less 32, added
// to acc (clobbers Y1, Y2).
#define Q3KSUB4(sh, hop, hn, off, m, s, acc) \
	VPSRLW     $sh, Y3, Y1; \
	VPAND      Y14, Y1, Y1; \
	hop        $hn, Y4, Y2; \
	VPAND      Y12, Y2, Y2; \
	VPOR       Y2, Y1, Y1; \
	VPMADDUBSW off(DI), Y1, Y1; \
	VPSHUFB    m(R11), s, Y2; \
	VPSUBW     Y11, Y2, Y2; \
	VPMADDWD   Y2, Y1, Y1; \
	VPADDD     Y1, acc, acc

// Q3KROW0 and Q3KROW1 add the first or second 128-column half of a row
// of a four-row group to acc: its quant bytes at q, the hmask bytes at hm,
// the scales s (Q3KSUB4; clobbers Y1-Y4).
#define Q3KROW0(q, hm, s, acc) \
	VMOVDQU q, Y3; \
	VMOVDQU hm, Y4; \
	Q3KSUB4(0, VPSLLW, 2, 0, 0, s, acc); \
	Q3KSUB4(2, VPSLLW, 1, 32, 32, s, acc); \
	Q3KSUB4(4, VPSRLW, 0, 64, 64, s, acc); \
	Q3KSUB4(6, VPSRLW, 1, 96, 96, s, acc)

#define Q3KROW1(q, hm, s, acc) \
	VMOVDQU q, Y3; \
	VMOVDQU hm, Y4; \
	Q3KSUB4(0, VPSRLW, 2, 128, 128, s, acc); \
	Q3KSUB4(2, VPSRLW, 3, 160, 160, s, acc); \
	Q3KSUB4(4, VPSRLW, 4, 192, 192, s, acc); \
	Q3KSUB4(6, VPSRLW, 5, 224, 224, s, acc)

// Q3KINIT starts the row's accumulator acc at −4·Σ (sc−32)·bs (the +4 on
// the quants taken off) and turns the scale bytes x into scale pairs in y
// (SCALEPAIRS' layout; clobbers Y1).
#define Q3KINIT(x, y, acc) \
	VPMOVZXBW   x, Y1; \
	VPSUBW      Y11, Y1, Y1; \
	VPMADDWD    (BX), Y1, Y1; \
	VPSLLD      $2, Y1, Y1; \
	VPXOR       acc, acc, acc; \
	VPSUBD      Y1, acc, acc; \
	VPSRLDQ     $1, x, X1; \
	VINSERTI128 $1, X1, y, y

// func dot4Q3KAVX2(out *[4]float32, w []byte, rb int, q []int8, d []float32, bs []int16)
//
// out[r] = dotQ3KAVX2 of row r at w[r*rb:] for r = 0..3, bit for bit, as
// dot4Q2KAVX2 does it for Q2_K.
TEXT ·dot4Q3KAVX2(SB), NOSPLIT, $0-112
	MOVQ w_base+8(FP), SI
	MOVQ rb+32(FP), R12
	LEAQ (R12)(R12*2), R13
	LEAQ (SI)(R12*4), R9 // the next four rows, 448 bytes a block (at least 4·110)
	MOVQ q_base+40(FP), DI
	MOVQ d_base+64(FP), DX
	MOVQ d_len+72(FP), CX
	MOVQ bs_base+88(FP), BX
	LEAQ ·k23Shuf(SB), R11
	VXORPS X0, X0, X0
	BCAST8($0x03, X14, Y14)
	BCAST8($0x04, X12, Y12)
	MOVL         $32, AX
	VMOVD        AX, X11
	VPBROADCASTW X11, Y11

q3k4loop:
	TESTQ CX, CX
	JZ    q3k4done
	PREFETCHT0 0(R9)
	PREFETCHT0 64(R9)
	PREFETCHT0 128(R9)
	PREFETCHT0 192(R9)
	PREFETCHT0 256(R9)
	PREFETCHT0 320(R9)
	PREFETCHT0 384(R9)
	ADDQ       $448, R9
	Q3KSCALES(96(SI), 100(SI), 104(SI), X5, R8, R14, R10, R15, AX)
	Q3KINIT(X5, Y5, Y9)
	Q3KSCALES(96(SI)(R12*1), 100(SI)(R12*1), 104(SI)(R12*1), X6, R8, R14, R10, R15, AX)
	Q3KINIT(X6, Y6, Y10)
	Q3KSCALES(96(SI)(R12*2), 100(SI)(R12*2), 104(SI)(R12*2), X7, R8, R14, R10, R15, AX)
	Q3KINIT(X7, Y7, Y13)
	Q3KSCALES(96(SI)(R13*1), 100(SI)(R13*1), 104(SI)(R13*1), X8, R8, R14, R10, R15, AX)
	Q3KINIT(X8, Y8, Y15)
	Q3KROW0(32(SI), (SI), Y5, Y9)
	Q3KROW0(32(SI)(R12*1), (SI)(R12*1), Y6, Y10)
	Q3KROW0(32(SI)(R12*2), (SI)(R12*2), Y7, Y13)
	Q3KROW0(32(SI)(R13*1), (SI)(R13*1), Y8, Y15)
	Q3KROW1(64(SI), (SI), Y5, Y9)
	Q3KROW1(64(SI)(R12*1), (SI)(R12*1), Y6, Y10)
	Q3KROW1(64(SI)(R12*2), (SI)(R12*2), Y7, Y13)
	Q3KROW1(64(SI)(R13*1), (SI)(R13*1), Y8, Y15)
	VPHADDD      Y10, Y9, Y9
	VPHADDD      Y15, Y13, Y13
	VPHADDD      Y13, Y9, Y9
	VEXTRACTI128 $1, Y9, X10
	VPADDD       X10, X9, X9

	// Per row, sum += dy·d·sumi as the reference rounds it.
	VPXOR        X1, X1, X1
	VPINSRW      $0, 108(SI), X1, X1
	VPINSRW      $1, 108(SI)(R12*1), X1, X1
	VPINSRW      $2, 108(SI)(R12*2), X1, X1
	VPINSRW      $3, 108(SI)(R13*1), X1, X1
	VCVTPH2PS    X1, X1
	VBROADCASTSS (DX), X2
	VMULPS       X1, X2, X1
	VCVTDQ2PS    X9, X2
	VMULPS       X2, X1, X1
	VADDPS       X1, X0, X0

	ADDQ $110, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q3k4loop

q3k4done:
	MOVQ    out+0(FP), AX
	VMOVUPS X0, (AX)
	VZEROUPPER
	RET
