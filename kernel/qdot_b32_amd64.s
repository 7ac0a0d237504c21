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

// Q4_0 quants at woff(SI) (16 bytes) as 32 int8 in -8..7 in Y register y
// (x its low half; Y14: 0x0f bytes, Y13: 8s), times the activations at
// qoff(DI), as 8 int32 in y (t, u temporaries, tx t's low half).
#define Q4BLK(woff, qoff, x, y, tx, t, u) \
	VMOVDQU     woff(SI), x; \
	VPSRLW      $4, x, tx; \
	VINSERTI128 $1, tx, y, y; \
	VPAND       Y14, y, y; \
	VPSUBB      Y13, y, y; \
	VMOVDQU     qoff(DI), t; \
	VPSIGNB     y, t, t; \
	VPSIGNB     y, y, u; \
	VPMADDUBSW  t, u, u; \
	VPMADDWD    Y15, u, y

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
// X0 += float32(s_b)·(d_b·dy_b) for b = 0..7 in order (clobbers Y3-Y5).
#define GROUP8(bb) \
	VPERM2I128   $0x20, Y2, Y1, Y3; \
	VPERM2I128   $0x31, Y2, Y1, Y4; \
	VPADDD       Y4, Y3, Y3; \
	VCVTDQ2PS    Y3, Y3; \
	MOVWLZX      0(SI), AX; \
	VMOVD        AX, X5; \
	VPINSRW      $1, (bb)(SI), X5, X5; \
	VPINSRW      $2, (2*bb)(SI), X5, X5; \
	VPINSRW      $3, (3*bb)(SI), X5, X5; \
	VPINSRW      $4, (4*bb)(SI), X5, X5; \
	VPINSRW      $5, (5*bb)(SI), X5, X5; \
	VPINSRW      $6, (6*bb)(SI), X5, X5; \
	VPINSRW      $7, (7*bb)(SI), X5, X5; \
	VCVTPH2PS    X5, Y5; \
	VMULPS       (DX), Y5, Y5; \
	VMULPS       Y5, Y3, Y3; \
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

// func rowsQ8_0AVX2(out []float32, w []byte, rb int, q []int8, d []float32)
//
// out[i] = row i · activation for the len(out) rows of rb bytes at w, each
// of len(d) Q8_0 blocks.
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

r8xloop8:
	CMPQ CX, $8
	JLT  r8xtail
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
	GROUP8(34)
	ADDQ $272, SI
	ADDQ $256, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  r8xloop8

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

r4xloop8:
	CMPQ CX, $8
	JLT  r4xtail
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
	GROUP8(18)
	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $32, DX
	SUBQ $8, CX
	JMP  r4xloop8

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
