//go:build amd64 && !purego

#include "textflag.h"

// Row dots of Q8_0 and Q4_0 weights (32-element blocks) with Q8_0
// activations that give the reference dot (ggml.Type.Dot) bit for bit:
// per block, sum += float32(s)·(d·dy) in block order, s being the block's
// exact int32 sum of weight quant × activation quant. Eight blocks at a
// time, each block's 8 int32 partial sums are reduced by a transpose-add
// (VPHADDD) into one vector of eight block sums, which are converted,
// scaled by the eight d·dy products and then added into the row's float32
// sum lane by lane, in block order.

// Int32 sums of 32 weight int8 at woff(SI) (Q8_0) times the activations at
// qoff(DI), as 8 int32 in Y register y (Y15: int16 ones; t, u temporaries).
// |w| ≤ 128 and |q| ≤ 127 keep VPMADDUBSW's int16 pair sums exact.
#define Q8BLK(woff, qoff, y, t, u) \
	VMOVDQU    woff(SI), y; \
	VMOVDQU    qoff(DI), t; \
	VPSIGNB    y, t, t; \
	VPSIGNB    y, y, u; \
	VPMADDUBSW t, u, u; \
	VPMADDWD   Y15, u, y

// Q4_0 quants at woff(SI) (16 bytes) as 32 unsigned nibbles u in y (x its
// low half; Y14: 0x0f bytes, Y13: 8s), times the activations q at
// qoff(DI), as 8 int32 in y: VPMADDUBSW takes the pairs of u·q and of
// 8·q, whose difference is the pairs of (u−8)·q, at most 2048 in
// magnitude, so no int16 saturates and the sums are exact (tx: a
// temporary X register; t unused, u a temporary).
#define Q4BLK(woff, qoff, x, y, tx, t, u) \
	VMOVDQU     woff(SI), x; \
	VPSRLW      $4, x, tx; \
	VINSERTI128 $1, tx, y, y; \
	VPAND       Y14, y, y; \
	VPMADDUBSW  qoff(DI), y, y; \
	VPMADDUBSW  qoff(DI), Y13, u; \
	VPSUBW      u, y, y; \
	VPMADDWD    Y15, y, y

// Add the four float32 lanes of X register x to X0 in lane order (t is a
// temporary).
#define ADD4(x, t) \
	VADDSS    x, X0, X0; \
	VMOVSHDUP x, t; \
	VADDSS    t, X0, X0; \
	VMOVHLPS  x, x, t; \
	VADDSS    t, X0, X0; \
	VPERMILPS $0xff, x, t; \
	VADDSS    t, X0, X0

// The float32 part of eight blocks, blocks of bb bytes with their binary16
// scale first: Y1 and Y2 hold the transpose-added int32 sums
// [s0..3 of blocks 0-3 | s4..7 of blocks 0-3] and the same for blocks 4-7.
// PROD8 converts the eight block sums and scales them by d·dy into Y3 (d
// the binary16 scales at 0, bb, …, 7·bb(SI), read in two halves; clobbers
// AX, Y4-Y6). GROUP8 then adds them: X0 += float32(s_b)·(d_b·dy_b) for
// b = 0..7 in order (clobbers Y3-Y6).
#define PROD8(bb) \
	VPERM2I128   $0x20, Y2, Y1, Y3; \
	VPERM2I128   $0x31, Y2, Y1, Y4; \
	VPADDD       Y4, Y3, Y3; \
	VCVTDQ2PS    Y3, Y3; \
	MOVWLZX      0(SI), AX; \
	VMOVD        AX, X5; \
	VPINSRW      $1, (bb)(SI), X5, X5; \
	VPINSRW      $2, (2*bb)(SI), X5, X5; \
	VPINSRW      $3, (3*bb)(SI), X5, X5; \
	MOVWLZX      (4*bb)(SI), AX; \
	VMOVD        AX, X6; \
	VPINSRW      $1, (5*bb)(SI), X6, X6; \
	VPINSRW      $2, (6*bb)(SI), X6, X6; \
	VPINSRW      $3, (7*bb)(SI), X6, X6; \
	VPUNPCKLQDQ  X6, X5, X5; \
	VCVTPH2PS    X5, Y5; \
	VMULPS       (DX), Y5, Y5; \
	VMULPS       Y5, Y3, Y3

#define GROUP8(bb) \
	PROD8(bb); \
	ADD4(X3, X4); \
	VEXTRACTF128 $1, Y3, X3; \
	ADD4(X3, X4)

// One block's float32 part: the 8 int32 partial sums in Y1 reduce to s,
// X0 += float32(s)·(d·dy) with d the binary16 at (SI) and dy at (DX)
// (clobbers X2, X3).
#define BLOCK1 \
	VEXTRACTI128 $1, Y1, X2; \
	VPADDD       X2, X1, X1; \
	VPSHUFD      $0x4e, X1, X2; \
	VPADDD       X2, X1, X1; \
	VPSHUFD      $0xb1, X1, X2; \
	VPADDD       X2, X1, X1; \
	VCVTDQ2PS    X1, X1; \
	MOVWLZX      (SI), AX; \
	VMOVD        AX, X3; \
	VCVTPH2PS    X3, X3; \
	VMULSS       (DX), X3, X3; \
	VMULSS       X3, X1, X1; \
	VADDSS       X1, X0, X0

// CHAIN8 adds the eight products PROD8 left, held in Y8, into X0 in
// block order (clobbers X7). The AVX2 row loops compute a group's products
// before adding the previous group's, so that the serial chain of float32
// adds overlaps the next group's integer work; the adds stay in block
// order.
#define CHAIN8 \
	ADD4(X8, X7); \
	VEXTRACTF128 $1, Y8, X8; \
	ADD4(X8, X7)

// func rowsQ8_0AVX2(out []float32, w []byte, rb int, q []int8, d []float32)
//
// out[i] = row i · activation for the len(out) rows of rb bytes at w, each
// of len(d) Q8_0 blocks.
//
// Q8_0 has no eight-row AVX2 form, unlike Q4_0: one with rows in lanes
// (as rowsQ8_0VNNIX) took 16% less CPU time on 8192×2048 weights in cache
// on Zen 3, but its eight interleaved row streams read memory no faster
// (one thread, BenchmarkQDecodeDRAM/Q8_0/n=1/rows), with the next group
// prefetched linearly, per row or not at all, and a 1B Q8_0 decode on two
// threads ran about 15% slower. Dropping CHAIN8 altogether (wrong sums)
// did not speed up that read either: from memory this kernel waits on the
// stream, not on its arithmetic.
TEXT ·rowsQ8_0AVX2(SB), NOSPLIT, $0-104
	MOVQ  out_base+0(FP), R8
	MOVQ  out_len+8(FP), R10
	MOVQ  w_base+24(FP), R11
	MOVQ  rb+48(FP), R12
	TESTQ R10, R10
	JZ    r8xnone
	MOVL         $0x00010001, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15

r8xrow:
	MOVQ   R11, SI
	MOVQ   q_base+56(FP), DI
	MOVQ   d_base+80(FP), DX
	MOVQ   d_len+88(FP), CX
	VXORPS X0, X0, X0
	XORQ   R9, R9 // no group's products pending

r8xloop8:
	CMPQ CX, $8
	JLT  r8xflush
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	PREFETCHT0 4288(SI)
	PREFETCHT0 4352(SI)
	Q8BLK(2, 0, Y1, Y9, Y10)
	Q8BLK(36, 32, Y2, Y11, Y12)
	VPHADDD Y2, Y1, Y1
	Q8BLK(70, 64, Y2, Y9, Y10)
	Q8BLK(104, 96, Y3, Y11, Y12)
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y1, Y1
	Q8BLK(138, 128, Y2, Y9, Y10)
	Q8BLK(172, 160, Y3, Y11, Y12)
	VPHADDD Y3, Y2, Y2
	Q8BLK(206, 192, Y3, Y9, Y10)
	Q8BLK(240, 224, Y4, Y11, Y12)
	VPHADDD Y4, Y3, Y3
	VPHADDD Y3, Y2, Y2
	PROD8(34)
	TESTQ R9, R9
	JZ    r8xfirst
	CHAIN8

r8xfirst:
	VMOVAPS Y3, Y8
	MOVQ    $1, R9
	ADDQ    $272, SI
	ADDQ    $256, DI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JMP     r8xloop8

r8xflush:
	TESTQ R9, R9
	JZ    r8xtail
	CHAIN8

r8xtail:
	TESTQ CX, CX
	JZ    r8xdone
	Q8BLK(2, 0, Y1, Y9, Y10)
	BLOCK1
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP  r8xtail

r8xdone:
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   R12, R11
	DECQ   R10
	JNZ    r8xrow
	VZEROUPPER

r8xnone:
	RET

// func rowsQ4_0AVX2(out []float32, w []byte, rb int, q []int8, d []float32)
//
// out[i] = row i · activation for the len(out) rows of rb bytes at w, each
// of len(d) Q4_0 blocks.
TEXT ·rowsQ4_0AVX2(SB), NOSPLIT, $0-104
	MOVQ  out_base+0(FP), R8
	MOVQ  out_len+8(FP), R10
	MOVQ  w_base+24(FP), R11
	MOVQ  rb+48(FP), R12
	TESTQ R10, R10
	JZ    r4xnone
	MOVL         $0x00010001, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14
	MOVL         $0x08080808, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13

r4xrow:
	MOVQ   R11, SI
	MOVQ   q_base+56(FP), DI
	MOVQ   d_base+80(FP), DX
	MOVQ   d_len+88(FP), CX
	VXORPS X0, X0, X0
	XORQ   R9, R9 // no group's products pending

r4xloop8:
	CMPQ CX, $8
	JLT  r4xflush
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	Q4BLK(2, 0, X1, Y1, X9, Y9, Y10)
	Q4BLK(20, 32, X2, Y2, X11, Y11, Y12)
	VPHADDD Y2, Y1, Y1
	Q4BLK(38, 64, X2, Y2, X9, Y9, Y10)
	Q4BLK(56, 96, X3, Y3, X11, Y11, Y12)
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y1, Y1
	Q4BLK(74, 128, X2, Y2, X9, Y9, Y10)
	Q4BLK(92, 160, X3, Y3, X11, Y11, Y12)
	VPHADDD Y3, Y2, Y2
	Q4BLK(110, 192, X3, Y3, X9, Y9, Y10)
	Q4BLK(128, 224, X4, Y4, X11, Y11, Y12)
	VPHADDD Y4, Y3, Y3
	VPHADDD Y3, Y2, Y2
	PROD8(18)
	TESTQ R9, R9
	JZ    r4xfirst
	CHAIN8

r4xfirst:
	VMOVAPS Y3, Y8
	MOVQ    $1, R9
	ADDQ    $144, SI
	ADDQ    $256, DI
	ADDQ    $32, DX
	SUBQ    $8, CX
	JMP     r4xloop8

r4xflush:
	TESTQ R9, R9
	JZ    r4xtail
	CHAIN8

r4xtail:
	TESTQ CX, CX
	JZ    r4xdone
	Q4BLK(2, 0, X1, Y1, X9, Y9, Y10)
	BLOCK1
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, DX
	DECQ CX
	JMP  r4xtail

r4xdone:
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   R12, R11
	DECQ   R10
	JNZ    r4xrow
	VZEROUPPER

r4xnone:
	RET

// The VNNI forms take the weight quants as unsigned bytes for VPDPBUSD:
// Q4_0 nibbles n (0..15), with Σ(n−8)·q = Σn·q − 8·Σq, and Q8_0 quants as
// w+128 (w XOR 0x80), with Σw·q = Σ(w+128)·q − 128·Σq. The activation
// terms −m·Σq (m = 8 or 128) are the same for every row: they are formed
// once per call, one int32 per block in the frame, and seed lane 0 of
// each block's accumulator, so that its 8 lanes sum to the exact block
// sum. At most 1024 blocks (the Go wrappers check).

// Frame words (SP) = −m·Σq per block, m·q summed by VPDPBUSD with Y13
// (m in every byte) over the len(d) activation blocks at q (clobbers
// AX, CX, DI, R9, Y6, Y7).
#define ACTSUMS ACTSUMSWITH(ACTSUMVNNI)

// ACTSUMSWITH is ACTSUMS with sum forming the 8 int32 partial sums of m·q
// for the block at (DI) in Y6.
#define ACTSUMSWITH(sum) \
	MOVQ  q_base+56(FP), DI; \
	MOVQ  d_len+88(FP), CX; \
	LEAQ  (SP), R9; \
	TESTQ CX, CX; \
	JZ    actsumsdone; \
actsumsloop: \
	sum; \
	VEXTRACTI128 $1, Y6, X7; \
	VPADDD       X7, X6, X6; \
	VPSHUFD      $0x4e, X6, X7; \
	VPADDD       X7, X6, X6; \
	VPSHUFD      $0xb1, X6, X7; \
	VPADDD       X7, X6, X6; \
	VPXOR        X7, X7, X7; \
	VPSUBD       X6, X7, X6; \
	VMOVD        X6, (R9); \
	ADDQ         $32, DI; \
	ADDQ         $4, R9; \
	DECQ         CX; \
	JNZ          actsumsloop; \
actsumsdone:

// ACTSUMVNNI: m·q summed by VPDPBUSD (Y13: m in every byte).
#define ACTSUMVNNI \
	VPXOR    Y6, Y6, Y6; \
	VPDPBUSD (DI), Y13, Y6

// ACTSUMAVX2: the same with VPMADDUBSW and VPMADDWD (Y15: int16 ones).
#define ACTSUMAVX2 \
	VPMADDUBSW (DI), Y13, Y6; \
	VPMADDWD   Y15, Y6, Y6

// Block sum of Q4_0 quants at woff(SI) times the activations at qoff(DI)
// as 8 int32 in Y register accy (accx its low half), seeded with the
// frame word at coff(R9); nx/ny, tx are temporaries (Y14: 0x0f bytes).
#define Q4VBLK(woff, qoff, coff, accx, accy, nx, ny, tx) \
	VMOVDQU     woff(SI), nx; \
	VPSRLW      $4, nx, tx; \
	VINSERTI128 $1, tx, ny, ny; \
	VPAND       Y14, ny, ny; \
	VMOVD       coff(R9), accx; \
	VPDPBUSD    qoff(DI), ny, accy

// Block sum of Q8_0 quants at woff(SI) times the activations at qoff(DI)
// as 8 int32 in accy (accx its low half), seeded with the frame word at
// coff(R9); t is a temporary (Y13: 0x80 bytes).
#define Q8VBLK(woff, qoff, coff, accx, accy, t) \
	VPXOR    woff(SI), Y13, t; \
	VMOVD    coff(R9), accx; \
	VPDPBUSD qoff(DI), t, accy

// Eight rows at a time (the VNNI forms): lanes are rows. Row k of the
// group starts at (SI), (SI)(BX*1), (SI)(BX*2), (SI)(R13*1) for k = 0-3
// and at the same offsets from R12 for k = 4-7 (BX = rb, R13 = 3·rb).
// For one block, the 8 rows' block sums are transpose-added into one
// vector, converted, scaled by the rows' d times the block's dy and added
// to Y0: lane k gets the reference dot's operations of row k, in order.

// The float32 part of one block for eight rows: Y1, Y2 as in GROUP8 (here
// rows 0-3 and 4-7), binary16 scales at off from the row starts, dy at
// doff(DX) (clobbers AX, Y3-Y6).
#define ROWS8F(off, doff) \
	ROWS8SUM; \
	ROWS8SCALE(off, doff)

// ROWS8SUM finishes the transpose-add: the eight rows' block sums in Y3
// (clobbers Y4).
#define ROWS8SUM \
	VPERM2I128   $0x20, Y2, Y1, Y3; \
	VPERM2I128   $0x31, Y2, Y1, Y4; \
	VPADDD       Y4, Y3, Y3

// ROWS8SCALE converts the block sums in Y3, scales them and adds them to
// Y0 (clobbers AX, Y3, Y5, Y6).
#define ROWS8SCALE(off, doff) \
	VCVTDQ2PS    Y3, Y3; \
	MOVWLZX      off(SI), AX; \
	VMOVD        AX, X5; \
	VPINSRW      $1, off(SI)(BX*1), X5, X5; \
	VPINSRW      $2, off(SI)(BX*2), X5, X5; \
	VPINSRW      $3, off(SI)(R13*1), X5, X5; \
	VPINSRW      $4, off(R12), X5, X5; \
	VPINSRW      $5, off(R12)(BX*1), X5, X5; \
	VPINSRW      $6, off(R12)(BX*2), X5, X5; \
	VPINSRW      $7, off(R12)(R13*1), X5, X5; \
	VCVTPH2PS    X5, Y5; \
	VBROADCASTSS doff(DX), Y6; \
	VMULPS       Y6, Y5, Y5; \
	VMULPS       Y5, Y3, Y3; \
	VADDPS       Y3, Y0, Y0

// Q4VBLK with the weights at the memory operand m.
#define Q4VBLKM(m, qoff, coff, accx, accy, nx, ny, tx) \
	VMOVDQU     m, nx; \
	VPSRLW      $4, nx, tx; \
	VINSERTI128 $1, tx, ny, ny; \
	VPAND       Y14, ny, ny; \
	VMOVD       coff(R9), accx; \
	VPDPBUSD    qoff(DI), ny, accy

// One Q4_0 block (at off in each row) of eight rows.
#define Q4ROWS8(off, qoff, coff, doff) \
	Q4VBLKM((off+2)(SI), qoff, coff, X1, Y1, X9, Y9, X10); \
	Q4VBLKM((off+2)(SI)(BX*1), qoff, coff, X2, Y2, X11, Y11, X12); \
	VPHADDD Y2, Y1, Y1; \
	Q4VBLKM((off+2)(SI)(BX*2), qoff, coff, X2, Y2, X9, Y9, X10); \
	Q4VBLKM((off+2)(SI)(R13*1), qoff, coff, X3, Y3, X11, Y11, X12); \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y2, Y1, Y1; \
	Q4VBLKM((off+2)(R12), qoff, coff, X2, Y2, X9, Y9, X10); \
	Q4VBLKM((off+2)(R12)(BX*1), qoff, coff, X3, Y3, X11, Y11, X12); \
	VPHADDD Y3, Y2, Y2; \
	Q4VBLKM((off+2)(R12)(BX*2), qoff, coff, X3, Y3, X9, Y9, X10); \
	Q4VBLKM((off+2)(R12)(R13*1), qoff, coff, X4, Y4, X11, Y11, X12); \
	VPHADDD Y4, Y3, Y3; \
	VPHADDD Y3, Y2, Y2; \
	ROWS8F(off, doff)

// Q8VBLK with the weights at the memory operand m.
#define Q8VBLKM(m, qoff, coff, accx, accy, t) \
	VPXOR    m, Y13, t; \
	VMOVD    coff(R9), accx; \
	VPDPBUSD qoff(DI), t, accy

// One Q8_0 block (at off in each row) of eight rows.
#define Q8ROWS8(off, qoff, coff, doff) \
	Q8VBLKM((off+2)(SI), qoff, coff, X1, Y1, Y9); \
	Q8VBLKM((off+2)(SI)(BX*1), qoff, coff, X2, Y2, Y10); \
	VPHADDD Y2, Y1, Y1; \
	Q8VBLKM((off+2)(SI)(BX*2), qoff, coff, X2, Y2, Y11); \
	Q8VBLKM((off+2)(SI)(R13*1), qoff, coff, X3, Y3, Y12); \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y2, Y1, Y1; \
	Q8VBLKM((off+2)(R12), qoff, coff, X2, Y2, Y9); \
	Q8VBLKM((off+2)(R12)(BX*1), qoff, coff, X3, Y3, Y10); \
	VPHADDD Y3, Y2, Y2; \
	Q8VBLKM((off+2)(R12)(BX*2), qoff, coff, X3, Y3, Y11); \
	Q8VBLKM((off+2)(R12)(R13*1), qoff, coff, X4, Y4, Y12); \
	VPHADDD Y4, Y3, Y3; \
	VPHADDD Y3, Y2, Y2; \
	ROWS8F(off, doff)

// Prefetch into L2 the next eight rows' weights at dist bytes on from the
// current offset (clobbers AX): the rows of the group being read are
// streamed by the hardware prefetcher; fetching the next group's ahead
// measured faster than prefetching the current rows (8192×2048 weights,
// BenchmarkQRowsCPU), and into L2 rather than L1 for Q8_0, whose two
// groups together outgrow L1.
#define PREFETCH8(dist) \
	LEAQ       (R12)(BX*4), AX; \
	PREFETCHT1 dist(AX); \
	PREFETCHT1 dist(AX)(BX*1); \
	PREFETCHT1 dist(AX)(BX*2); \
	PREFETCHT1 dist(AX)(R13*1); \
	LEAQ       (AX)(BX*4), AX; \
	PREFETCHT1 dist(AX); \
	PREFETCHT1 dist(AX)(BX*1); \
	PREFETCHT1 dist(AX)(BX*2); \
	PREFETCHT1 dist(AX)(R13*1)

// Q4GROUPS8 runs the eight-row Q4_0 kernels' loop over whole groups of
// eight rows (R10 rows left at R11, rb in BX, 3·rb in R13, output at R8),
// four blocks a step with the prefetch pf and then one at a time, each
// block through blk (Q4ROWS8 or Q4AROWS8, with the frame words at R9), and
// jumps to exit when fewer than eight rows are left.
#define Q4GROUPS8(pf, blk, exit) \
q4g8: \
	CMPQ R10, $8; \
	JLT  exit; \
	MOVQ R11, SI; \
	LEAQ (R11)(BX*4), R12; \
	MOVQ q_base+56(FP), DI; \
	MOVQ d_base+80(FP), DX; \
	MOVQ d_len+88(FP), CX; \
	LEAQ (SP), R9; \
	VXORPS Y0, Y0, Y0; \
q4g8loop4: \
	CMPQ CX, $4; \
	JLT  q4g8tail; \
	pf; \
	blk(0, 0, 0, 0); \
	blk(18, 32, 4, 4); \
	blk(36, 64, 8, 8); \
	blk(54, 96, 12, 12); \
	ADDQ $72, SI; \
	ADDQ $72, R12; \
	ADDQ $128, DI; \
	ADDQ $16, DX; \
	ADDQ $16, R9; \
	SUBQ $4, CX; \
	JMP  q4g8loop4; \
q4g8tail: \
	TESTQ CX, CX; \
	JZ    q4g8done; \
	blk(0, 0, 0, 0); \
	ADDQ $18, SI; \
	ADDQ $18, R12; \
	ADDQ $32, DI; \
	ADDQ $4, DX; \
	ADDQ $4, R9; \
	DECQ CX; \
	JMP  q4g8tail; \
q4g8done: \
	VMOVUPS Y0, (R8); \
	ADDQ    $32, R8; \
	LEAQ    (R11)(BX*8), R11; \
	SUBQ    $8, R10; \
	JMP     q4g8

// func rowsQ4_0VNNIX(out []float32, w []byte, rb int, q []int8, d []float32)
//
// rowsQ4_0AVX2 with VPDPBUSD (AVX512_VNNI on 256-bit registers), bit for
// bit the same; len(d) <= 1024.
TEXT ·rowsQ4_0VNNIX(SB), 0, $4096-104
	MOVQ  out_len+8(FP), R10
	TESTQ R10, R10
	JZ    r4vnone
	MOVL         $0x08080808, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	ACTSUMS
	MOVQ  out_base+0(FP), R8
	MOVQ  w_base+24(FP), R11
	MOVQ  rb+48(FP), BX
	LEAQ  (BX)(BX*2), R13
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14

	Q4GROUPS8(PREFETCH8(0), Q4ROWS8, r4vrow)

r4vrow:
	TESTQ R10, R10
	JZ    r4vend
	MOVQ   R11, SI
	MOVQ   q_base+56(FP), DI
	MOVQ   d_base+80(FP), DX
	MOVQ   d_len+88(FP), CX
	LEAQ   (SP), R9
	VXORPS X0, X0, X0

r4vloop8:
	CMPQ CX, $8
	JLT  r4vtail
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	Q4VBLK(2, 0, 0, X1, Y1, X9, Y9, X10)
	Q4VBLK(20, 32, 4, X2, Y2, X11, Y11, X12)
	VPHADDD Y2, Y1, Y1
	Q4VBLK(38, 64, 8, X2, Y2, X9, Y9, X10)
	Q4VBLK(56, 96, 12, X3, Y3, X11, Y11, X12)
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y1, Y1
	Q4VBLK(74, 128, 16, X2, Y2, X9, Y9, X10)
	Q4VBLK(92, 160, 20, X3, Y3, X11, Y11, X12)
	VPHADDD Y3, Y2, Y2
	Q4VBLK(110, 192, 24, X3, Y3, X9, Y9, X10)
	Q4VBLK(128, 224, 28, X4, Y4, X11, Y11, X12)
	VPHADDD Y4, Y3, Y3
	VPHADDD Y3, Y2, Y2
	GROUP8(18)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, DX
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  r4vloop8

r4vtail:
	TESTQ CX, CX
	JZ    r4vdone
	Q4VBLK(2, 0, 0, X1, Y1, X9, Y9, X10)
	BLOCK1
	ADDQ $18, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R9
	DECQ CX
	JMP  r4vtail

r4vdone:
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   BX, R11
	DECQ   R10
	JMP    r4vrow

r4vend:
	VZEROUPPER

r4vnone:
	RET

// func rowsQ8_0VNNIX(out []float32, w []byte, rb int, q []int8, d []float32)
//
// rowsQ8_0AVX2 with VPDPBUSD (AVX512_VNNI on 256-bit registers), bit for
// bit the same; len(d) <= 1024.
TEXT ·rowsQ8_0VNNIX(SB), 0, $4096-104
	MOVQ  out_len+8(FP), R10
	TESTQ R10, R10
	JZ    r8vnone
	MOVL         $0x80808080, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	ACTSUMS
	MOVQ  out_base+0(FP), R8
	MOVQ  w_base+24(FP), R11
	MOVQ  rb+48(FP), BX
	LEAQ  (BX)(BX*2), R13

r8v8:
	CMPQ R10, $8
	JLT  r8vrow
	MOVQ R11, SI
	LEAQ (R11)(BX*4), R12
	MOVQ q_base+56(FP), DI
	MOVQ d_base+80(FP), DX
	MOVQ d_len+88(FP), CX
	LEAQ (SP), R9
	VXORPS Y0, Y0, Y0

r8v8loop2:
	CMPQ CX, $2
	JLT  r8v8tail
	PREFETCH8(0)
	PREFETCH8(64)
	Q8ROWS8(0, 0, 0, 0)
	Q8ROWS8(34, 32, 4, 4)
	ADDQ $68, SI
	ADDQ $68, R12
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R9
	SUBQ $2, CX
	JMP  r8v8loop2

r8v8tail:
	TESTQ CX, CX
	JZ    r8v8done
	Q8ROWS8(0, 0, 0, 0)

r8v8done:
	VMOVUPS Y0, (R8)
	ADDQ    $32, R8
	LEAQ    (R11)(BX*8), R11
	SUBQ    $8, R10
	JMP     r8v8

r8vrow:
	TESTQ R10, R10
	JZ    r8vend
	MOVQ   R11, SI
	MOVQ   q_base+56(FP), DI
	MOVQ   d_base+80(FP), DX
	MOVQ   d_len+88(FP), CX
	LEAQ   (SP), R9
	VXORPS X0, X0, X0

r8vloop8:
	CMPQ CX, $8
	JLT  r8vtail
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)
	PREFETCHT0 4288(SI)
	PREFETCHT0 4352(SI)
	Q8VBLK(2, 0, 0, X1, Y1, Y9)
	Q8VBLK(36, 32, 4, X2, Y2, Y10)
	VPHADDD Y2, Y1, Y1
	Q8VBLK(70, 64, 8, X2, Y2, Y9)
	Q8VBLK(104, 96, 12, X3, Y3, Y10)
	VPHADDD Y3, Y2, Y2
	VPHADDD Y2, Y1, Y1
	Q8VBLK(138, 128, 16, X2, Y2, Y9)
	Q8VBLK(172, 160, 20, X3, Y3, Y10)
	VPHADDD Y3, Y2, Y2
	Q8VBLK(206, 192, 24, X3, Y3, Y9)
	Q8VBLK(240, 224, 28, X4, Y4, Y10)
	VPHADDD Y4, Y3, Y3
	VPHADDD Y3, Y2, Y2
	GROUP8(34)
	ADDQ $272, SI
	ADDQ $256, DI
	ADDQ $32, DX
	ADDQ $32, R9
	SUBQ $8, CX
	JMP  r8vloop8

r8vtail:
	TESTQ CX, CX
	JZ    r8vdone
	Q8VBLK(2, 0, 0, X1, Y1, Y9)
	BLOCK1
	ADDQ $34, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R9
	DECQ CX
	JMP  r8vtail

r8vdone:
	VMOVSS X0, (R8)
	ADDQ   $4, R8
	ADDQ   BX, R11
	DECQ   R10
	JMP    r8vrow

r8vend:
	VZEROUPPER

r8vnone:
	RET

// The eight-row AVX2 form of the Q4_0 kernel (rowsQ4_0AVX2X) lays rows in
// lanes as the VNNI forms do, with VPMADDUBSW and VPMADDWD for the
// products; each block's activation term is added to the eight rows' block
// sums after the transpose-add, from the frame as ACTSUMSAVX2 leaves it.

// ACTSUMSAVX2 is ACTSUMS without VPDPBUSD: frame words (SP) = −m·Σq per
// block, with Y13 holding m in every byte and Y15 int16 ones (clobbers AX,
// CX, DI, R9, Y6, Y7).
#define ACTSUMSAVX2 ACTSUMSWITH(ACTSUMAVX2)

// Two rows' Q4_0 block at the memory operands m0 and m1 (their 16 quant
// bytes) times the activation block in Y7 (its first 16 quants in both
// halves) and Y8 (its last 16): the low nibbles of both rows pair with Y7,
// the high nibbles with Y8, and the int16 pair sums of the two add into 8
// int32 in acc, the first four lanes summing to row m0's n·q and the last
// four to row m1's (Y14: 0x0f bytes, Y15: int16 ones; clobbers Y9, Y10).
// |n·q| pairs are at most 2·15·128 and two of them add to at most 7680, so
// no int16 saturates.
#define Q4PAIR(m0, m1, acc) \
	VMOVDQU     m0, X9; \
	VINSERTI128 $1, m1, Y9, Y9; \
	VPSRLW      $4, Y9, Y10; \
	VPAND       Y14, Y9, Y9; \
	VPAND       Y14, Y10, Y10; \
	VPMADDUBSW  Y7, Y9, Y9; \
	VPMADDUBSW  Y8, Y10, Y10; \
	VPADDW      Y10, Y9, Y9; \
	VPMADDWD    Y15, Y9, acc

// One Q4_0 block (at off in each row, activations at qoff(DI)) of eight
// rows: rows k and k+4 share a register, so that three VPHADDD leave the
// block sums of rows 0-7 in lane order; the block's frame word at
// coff(R9) completes them.
#define Q4AROWS8(off, qoff, coff, doff) \
	VBROADCASTI128 qoff(DI), Y7; \
	VBROADCASTI128 (qoff+16)(DI), Y8; \
	Q4PAIR((off+2)(SI), (off+2)(R12), Y1); \
	Q4PAIR((off+2)(SI)(BX*1), (off+2)(R12)(BX*1), Y2); \
	VPHADDD Y2, Y1, Y1; \
	Q4PAIR((off+2)(SI)(BX*2), (off+2)(R12)(BX*2), Y2); \
	Q4PAIR((off+2)(SI)(R13*1), (off+2)(R12)(R13*1), Y3); \
	VPHADDD Y3, Y2, Y2; \
	VPHADDD Y2, Y1, Y3; \
	VPBROADCASTD coff(R9), Y4; \
	VPADDD       Y4, Y3, Y3; \
	ROWS8SCALE(off, doff)

// PREFETCHLIN prefetches into L2, of the next eight rows, the bytes that
// match the ones the current loop iteration reads: the group's rows are
// contiguous, so its 8·rb bytes are walked linearly, eight bytes on for
// each byte SI moves on within its row, 576 bytes (nine lines) for the
// four blocks of one iteration (R11: the group's first row; clobbers
// AX). Covering every line of the next group this way measured 15.8 GB/s
// from memory on one Zen 3 core, against 11.1 GB/s for PREFETCH8, which
// fetches 64 of each row's 72 bytes per iteration
// (BenchmarkQDecodeDRAM/Q4_0/n=1/rows).
#define PREFETCHLIN \
	MOVQ       SI, AX; \
	SUBQ       R11, AX; \
	SHLQ       $3, AX; \
	ADDQ       R11, AX; \
	LEAQ       (AX)(BX*8), AX; \
	PREFETCHT1 0(AX); \
	PREFETCHT1 64(AX); \
	PREFETCHT1 128(AX); \
	PREFETCHT1 192(AX); \
	PREFETCHT1 256(AX); \
	PREFETCHT1 320(AX); \
	PREFETCHT1 384(AX); \
	PREFETCHT1 448(AX); \
	PREFETCHT1 512(AX)

// func rowsQ4_0AVX2X(out []float32, w []byte, rb int, q []int8, d []float32)
//
// rowsQ4_0AVX2 eight rows at a time, bit for bit the same; len(out) a
// multiple of 8 and len(d) <= 1024 (the Go wrapper sees to both).
TEXT ·rowsQ4_0AVX2X(SB), 0, $4096-104
	MOVQ  out_len+8(FP), R10
	TESTQ R10, R10
	JZ    r4anone
	MOVL         $0x00010001, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL         $0x08080808, AX
	VMOVD        AX, X13
	VPBROADCASTD X13, Y13
	ACTSUMSAVX2
	MOVQ  out_base+0(FP), R8
	MOVQ  w_base+24(FP), R11
	MOVQ  rb+48(FP), BX
	LEAQ  (BX)(BX*2), R13
	MOVL         $0x0f0f0f0f, AX
	VMOVD        AX, X14
	VPBROADCASTD X14, Y14

	Q4GROUPS8(PREFETCHLIN, Q4AROWS8, r4aend)

r4aend:
	VZEROUPPER

r4anone:
	RET

// Dword order that undoes the lane interleaving of VPACKSSDW/VPACKSSWB on
// four vectors of eight int32 (quantQ8_0AVX2, quantQ8_KAVX2).
DATA ·q8PackPerm+0x00(SB)/8, $0x0000000400000000
DATA ·q8PackPerm+0x08(SB)/8, $0x0000000500000001
DATA ·q8PackPerm+0x10(SB)/8, $0x0000000600000002
DATA ·q8PackPerm+0x18(SB)/8, $0x0000000700000003
GLOBL ·q8PackPerm(SB), RODATA|NOPTR, $32

// func quantQ8_0AVX2(q []int8, d, s []float32, x []float32)
//
// ggml.QuantizeActQ8_0 bit for bit, as quantQ8_0AVX512, for len(d)
// blocks: amax by VMAXPS, d = amax/127 and id = 127/amax by VDIVSS,
// quants rounded to nearest even by VCVTPS2DQ (nearestInt's rounding for
// |x·id| <= 127) and narrowed with saturating packs.
TEXT ·quantQ8_0AVX2(SB), NOSPLIT, $0-96
	MOVQ q_base+0(FP), DI
	MOVQ d_base+24(FP), DX
	MOVQ d_len+32(FP), CX
	MOVQ s_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVL $0x7fffffff, AX
	VMOVD        AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x42fe0000, AX // 127
	VMOVD AX, X14
	VXORPS X13, X13, X13
	VMOVDQU ·q8PackPerm(SB), Y12
	TESTQ CX, CX
	JZ    qa8done

qa8loop:
	VMOVUPS (SI), Y1
	VMOVUPS 32(SI), Y2
	VMOVUPS 64(SI), Y3
	VMOVUPS 96(SI), Y4
	VANDPS  Y15, Y1, Y5
	VANDPS  Y15, Y2, Y6
	VMAXPS  Y6, Y5, Y5
	VANDPS  Y15, Y3, Y6
	VMAXPS  Y6, Y5, Y5
	VANDPS  Y15, Y4, Y6
	VMAXPS  Y6, Y5, Y5
	VEXTRACTF128 $1, Y5, X6
	VMAXPS  X6, X5, X5
	VPERMILPS $0x4e, X5, X6
	VMAXPS  X6, X5, X5
	VPERMILPS $0xb1, X5, X6
	VMAXPS  X6, X5, X5   // amax in every lane
	VDIVSS  X14, X5, X7  // d = amax/127
	VXORPS  X8, X8, X8
	VUCOMISS X13, X5
	JEQ     qa8zero
	VDIVSS  X5, X14, X8  // id = 127/amax

qa8zero:
	VBROADCASTSS X8, Y8
	VMULPS    Y8, Y1, Y1
	VMULPS    Y8, Y2, Y2
	VMULPS    Y8, Y3, Y3
	VMULPS    Y8, Y4, Y4
	VCVTPS2DQ Y1, Y1
	VCVTPS2DQ Y2, Y2
	VCVTPS2DQ Y3, Y3
	VCVTPS2DQ Y4, Y4
	VPADDD    Y2, Y1, Y9
	VPADDD    Y4, Y3, Y10
	VPADDD    Y10, Y9, Y9
	VPACKSSDW Y2, Y1, Y1
	VPACKSSDW Y4, Y3, Y3
	VPACKSSWB Y3, Y1, Y1
	VPERMD    Y1, Y12, Y1
	VMOVDQU   Y1, (DI)
	VEXTRACTI128 $1, Y9, X10
	VPADDD  X10, X9, X9
	VPSHUFD $0x4e, X9, X10
	VPADDD  X10, X9, X9
	VPSHUFD $0xb1, X9, X10
	VPADDD  X10, X9, X9
	VCVTDQ2PS X9, X9
	VCVTPS2PH $0, X7, X7
	VCVTPH2PS X7, X7
	VMOVSS  X7, (DX)
	VMULSS  X9, X7, X9
	VMOVSS  X9, (R9)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R9
	DECQ CX
	JNZ  qa8loop

qa8done:
	VZEROUPPER
	RET
