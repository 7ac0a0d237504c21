//go:build amd64 && !purego

#include "textflag.h"

// Integer dot products of quantized weight rows with quantized activations
// (see qdot.go). Products of unsigned by signed bytes use VPMADDUBSW (pairs
// summed to int16 without saturation for the value ranges involved), then
// VPMADDWD to int32. The AVX2 k-quant kernels (Q4_K, Q6_K) reduce each
// block's int32 partial sums to the block sum exactly and then do the
// reference dot's float32 operations in its order, so that their results
// equal ggml.Type.Dot bit for bit (the one-token decode on the rows then
// equals the batched decode on the sixteen-row tiles); the VNNI kernels
// of this file (Q4_1) convert the int32 partial sums to float32 and scale
// them with fused multiply-adds, which rounds differently. The exact
// Q8_0 and Q4_0 kernels are in qdot_b32_amd64.s.
//
// The row loops prefetch the weights 4 KiB ahead: rows are read once per
// token, from memory for models larger than the caches, and the prefetches
// measured 30-120% faster decode on the random 134M model (2-core
// development machine).

// Horizontal sum of Y0 into the low lane of X0 (clobbers X1).
#define QHSUM_Y0 \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVHLPS     X0, X0, X1; \
	VADDPS       X1, X0, X0; \
	VMOVSHDUP    X0, X1; \
	VADDSS       X1, X0, X0

// Broadcast the 32-bit constant c to every lane of Y register y (clobbers AX).
#define BCAST32(c, x, y) \
	MOVL         c, AX; \
	VMOVD        AX, x; \
	VPBROADCASTD x, y

// VPSHUFB masks: entry 2c+k (32 bytes) zero-extends byte 2c+k of each
// 128-bit lane into every int16 of that lane (Q4_K scale broadcast).
DATA q4kShuf<>+0x00(SB)/8, $0x8000800080008000
DATA q4kShuf<>+0x08(SB)/8, $0x8000800080008000
DATA q4kShuf<>+0x10(SB)/8, $0x8000800080008000
DATA q4kShuf<>+0x18(SB)/8, $0x8000800080008000
DATA q4kShuf<>+0x20(SB)/8, $0x8001800180018001
DATA q4kShuf<>+0x28(SB)/8, $0x8001800180018001
DATA q4kShuf<>+0x30(SB)/8, $0x8001800180018001
DATA q4kShuf<>+0x38(SB)/8, $0x8001800180018001
DATA q4kShuf<>+0x40(SB)/8, $0x8002800280028002
DATA q4kShuf<>+0x48(SB)/8, $0x8002800280028002
DATA q4kShuf<>+0x50(SB)/8, $0x8002800280028002
DATA q4kShuf<>+0x58(SB)/8, $0x8002800280028002
DATA q4kShuf<>+0x60(SB)/8, $0x8003800380038003
DATA q4kShuf<>+0x68(SB)/8, $0x8003800380038003
DATA q4kShuf<>+0x70(SB)/8, $0x8003800380038003
DATA q4kShuf<>+0x78(SB)/8, $0x8003800380038003
DATA q4kShuf<>+0x80(SB)/8, $0x8004800480048004
DATA q4kShuf<>+0x88(SB)/8, $0x8004800480048004
DATA q4kShuf<>+0x90(SB)/8, $0x8004800480048004
DATA q4kShuf<>+0x98(SB)/8, $0x8004800480048004
DATA q4kShuf<>+0xa0(SB)/8, $0x8005800580058005
DATA q4kShuf<>+0xa8(SB)/8, $0x8005800580058005
DATA q4kShuf<>+0xb0(SB)/8, $0x8005800580058005
DATA q4kShuf<>+0xb8(SB)/8, $0x8005800580058005
DATA q4kShuf<>+0xc0(SB)/8, $0x8006800680068006
DATA q4kShuf<>+0xc8(SB)/8, $0x8006800680068006
DATA q4kShuf<>+0xd0(SB)/8, $0x8006800680068006
DATA q4kShuf<>+0xd8(SB)/8, $0x8006800680068006
DATA q4kShuf<>+0xe0(SB)/8, $0x8007800780078007
DATA q4kShuf<>+0xe8(SB)/8, $0x8007800780078007
DATA q4kShuf<>+0xf0(SB)/8, $0x8007800780078007
DATA q4kShuf<>+0xf8(SB)/8, $0x8007800780078007
GLOBL q4kShuf<>(SB), RODATA|NOPTR, $256

// One 64-element chunk c of a Q4_K block: low nibbles of qs bytes
// 16+32c.. times activations 64c.., high nibbles times 64c+32.., weighted
// by scales 2c and 2c+1 (bytes of Y6, broadcast with the masks at R11),
// added to Y5.
#define Q4KCHUNK(c) \
	VMOVDQU      (16+32*c)(SI), Y1; \
	VPSRLW       $4, Y1, Y2; \
	VPAND        Y14, Y1, Y1; \
	VPAND        Y14, Y2, Y2; \
	VPMADDUBSW   (64*c)(DI), Y1, Y1; \
	VPMADDUBSW   (64*c+32)(DI), Y2, Y2; \
	VPSHUFB      (64*c)(R11), Y6, Y3; \
	VPSHUFB      (64*c+32)(R11), Y6, Y4; \
	VPMADDWD     Y3, Y1, Y1; \
	VPMADDWD     Y4, Y2, Y2; \
	VPADDD       Y1, Y5, Y5; \
	VPADDD       Y2, Y5, Y5

// The float32 part of one Q4_K block, in the reference dot's order
// (ggml.Type.Dot): Y5's 8 int32 partial sums of scale·quant·activation
// and X7's 4 int32 partial sums of min·bs reduce exactly to sumi and
// summ; then X0 += (d·dy)·float32(sumi) − (dmin·dy)·float32(summ), X11
// holding [d·dy, dmin·dy] (clobbers X1, X5).
#define Q4KBLOCKSUM \
	VEXTRACTI128 $1, Y5, X1; \
	VPADDD       X1, X5, X5; \
	VPHADDD      X7, X5, X5; \
	VPHADDD      X5, X5, X5; \
	VCVTDQ2PS    X5, X5; \
	VMULPS       X11, X5, X5; \
	VMOVSHDUP    X5, X1; \
	VSUBSS       X1, X5, X5; \
	VADDSS       X5, X0, X0

// Q4KBLOCKSUM for the pending block of the multi-row kernel, whose sums
// and scales wait in Y15, X10 and X12 (consumed; clobbers X13): done one
// block late, in the middle of the next block's integer work, so that the
// float32 chain does not hold back that block's loads.
#define Q4KBLOCKSUMP \
	VEXTRACTI128 $1, Y15, X13; \
	VPADDD       X13, X15, X15; \
	VPHADDD      X10, X15, X15; \
	VPHADDD      X15, X15, X15; \
	VCVTDQ2PS    X15, X15; \
	VMULPS       X12, X15, X15; \
	VMOVSHDUP    X15, X13; \
	VSUBSS       X13, X15, X15; \
	VADDSS       X15, X0, X0

// func dotQ4KAVX2(w []byte, q []int8, d []float32, bs []int16) float32
TEXT ·dotQ4KAVX2(SB), NOSPLIT, $0-100
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ bs_base+72(FP), BX
	LEAQ q4kShuf<>(SB), R11
	VXORPS X0, X0, X0
	BCAST32($0x0f0f0f0f, X14, Y14)

q4kloop:
	TESTQ CX, CX
	JZ    q4kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)

	// Scales and mins: 6-bit fields of the 12 bytes at 4(SI), unpacked to
	// X6 = 8 scale bytes then 8 min bytes.
	MOVL 4(SI), AX  // u0
	MOVL 8(SI), R8  // u1
	MOVL 12(SI), R9 // u2
	MOVL AX, R10
	ANDL $0x3f3f3f3f, R10 // scales 0-3
	MOVL R9, R12
	ANDL $0x0f0f0f0f, R12
	SHRL $2, AX
	ANDL $0x30303030, AX
	ORL  AX, R12          // scales 4-7
	SHLQ $32, R12
	ORQ  R12, R10
	MOVL R8, AX
	ANDL $0x3f3f3f3f, AX  // mins 0-3
	SHRL $4, R9
	ANDL $0x0f0f0f0f, R9
	SHRL $2, R8
	ANDL $0x30303030, R8
	ORL  R8, R9           // mins 4-7
	SHLQ $32, R9
	ORQ  R9, AX
	VMOVQ        R10, X6
	VPINSRQ      $1, AX, X6, X6
	VPMOVZXBW    X6, Y9
	VINSERTI128  $1, X6, Y6, Y6

	// d and dmin times the activation scale: X1 = [d, dmin].
	MOVL         (SI), AX
	VMOVD        AX, X1
	VCVTPH2PS    X1, X1
	VBROADCASTSS (DX), X2
	VMULPS       X2, X1, X11

	// Mins: Σ m[s]·(bs[2s]+bs[2s+1]) into X10, weighted by dmin.
	VMOVDQU      (BX), X7
	VMOVDQU      16(BX), X8
	VPHADDW      X8, X7, X7
	VEXTRACTI128 $1, Y9, X9
	VPMADDWD     X9, X7, X7

	VPXOR Y5, Y5, Y5
	Q4KCHUNK(0)
	Q4KCHUNK(1)
	Q4KCHUNK(2)
	Q4KCHUNK(3)
	Q4KBLOCKSUM

	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q4kloop

q4kdone:
	VMOVSS X0, ret+96(FP)
	VZEROUPPER
	RET

// VPSHUFB masks picking Q6_K scale bytes 2g (×8) then 2g+1 (×8).
DATA q6kShuf<>+0x00(SB)/8, $0x0000000000000000
DATA q6kShuf<>+0x08(SB)/8, $0x0101010101010101
DATA q6kShuf<>+0x10(SB)/8, $0x0202020202020202
DATA q6kShuf<>+0x18(SB)/8, $0x0303030303030303
DATA q6kShuf<>+0x20(SB)/8, $0x0404040404040404
DATA q6kShuf<>+0x28(SB)/8, $0x0505050505050505
DATA q6kShuf<>+0x30(SB)/8, $0x0606060606060606
DATA q6kShuf<>+0x38(SB)/8, $0x0707070707070707
DATA q6kShuf<>+0x40(SB)/8, $0x0808080808080808
DATA q6kShuf<>+0x48(SB)/8, $0x0909090909090909
DATA q6kShuf<>+0x50(SB)/8, $0x0a0a0a0a0a0a0a0a
DATA q6kShuf<>+0x58(SB)/8, $0x0b0b0b0b0b0b0b0b
DATA q6kShuf<>+0x60(SB)/8, $0x0c0c0c0c0c0c0c0c
DATA q6kShuf<>+0x68(SB)/8, $0x0d0d0d0d0d0d0d0d
DATA q6kShuf<>+0x70(SB)/8, $0x0e0e0e0e0e0e0e0e
DATA q6kShuf<>+0x78(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q6kShuf<>(SB), RODATA|NOPTR, $128

// Scale-weight the 16 int16 pair sums in Y register p with Q6_K scale pair
// g (X12 holds the 16 int8 scales, R8 points at q6kShuf) and add them to
// Y5 (clobbers Y7).
#define Q6KSCALE(g, p) \
	VPSHUFB   (16*(g))(R8), X12, X7; \
	VPMOVSXBW X7, Y7; \
	VPMADDWD  Y7, p, p; \
	VPADDD    p, Y5, Y5

// Half h (0, 1) of a Q6_K block (Y14: 0x0f bytes, Y13: 0x30 bytes).
#define Q6KHALF(h) \
	VMOVDQU    (64*h)(SI), Y1; \
	VMOVDQU    (64*h+32)(SI), Y2; \
	VMOVDQU    (128+32*h)(SI), Y3; \
	VPAND      Y14, Y1, Y6; \
	VPSLLW     $4, Y3, Y7; \
	VPAND      Y13, Y7, Y7; \
	VPOR       Y7, Y6, Y6; \
	VPAND      Y14, Y2, Y8; \
	VPSLLW     $2, Y3, Y7; \
	VPAND      Y13, Y7, Y7; \
	VPOR       Y7, Y8, Y8; \
	VPSRLW     $4, Y1, Y1; \
	VPAND      Y14, Y1, Y1; \
	VPAND      Y13, Y3, Y7; \
	VPOR       Y7, Y1, Y1; \
	VPSRLW     $4, Y2, Y2; \
	VPAND      Y14, Y2, Y2; \
	VPSRLW     $2, Y3, Y7; \
	VPAND      Y13, Y7, Y7; \
	VPOR       Y7, Y2, Y2; \
	VPMADDUBSW (128*h)(DI), Y6, Y6; \
	VPMADDUBSW (128*h+32)(DI), Y8, Y8; \
	VPMADDUBSW (128*h+64)(DI), Y1, Y1; \
	VPMADDUBSW (128*h+96)(DI), Y2, Y2; \
	Q6KSCALE(4*h, Y6); \
	Q6KSCALE(4*h+1, Y8); \
	Q6KSCALE(4*h+2, Y1); \
	Q6KSCALE(4*h+3, Y2)

// The float32 part of a k-quant block whose dot is dy·d·float32(sumi)
// (Q6_K, IQ4_XS), in the reference dot's order: Y5's 8 int32 partial sums
// reduce exactly to sumi, then X0 += X1·float32(sumi), X1 holding d·dy
// in its low lane (clobbers X2, X5).
#define KBLOCKSUM \
	VEXTRACTI128 $1, Y5, X2; \
	VPADDD       X2, X5, X5; \
	VPSHUFD      $0x4e, X5, X2; \
	VPADDD       X2, X5, X5; \
	VPSHUFD      $0xb1, X5, X2; \
	VPADDD       X2, X5, X5; \
	VCVTDQ2PS    X5, X5; \
	VMULSS       X1, X5, X5; \
	VADDSS       X5, X0, X0

// KBLOCKSUM for the pending block of the Q6_K multi-row kernel: sums in
// Y10, d·dy in X11 (consumed; clobbers X15), one block late as
// Q4KBLOCKSUMP.
#define KBLOCKSUMP \
	VEXTRACTI128 $1, Y10, X15; \
	VPADDD       X15, X10, X10; \
	VPSHUFD      $0x4e, X10, X15; \
	VPADDD       X15, X10, X10; \
	VPSHUFD      $0xb1, X10, X15; \
	VPADDD       X15, X10, X10; \
	VCVTDQ2PS    X10, X10; \
	VMULSS       X11, X10, X10; \
	VADDSS       X10, X0, X0

// func dotQ6KAVX2(w []byte, q []int8, d []float32, bs []int16) float32
//
// Quants are used unsigned (0..63); the -32 offset is taken off at the end
// of each block as 32·Σ scale·bs.
TEXT ·dotQ6KAVX2(SB), NOSPLIT, $0-100
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ bs_base+72(FP), BX
	VXORPS Y0, Y0, Y0
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x30303030, X13, Y13)
	LEAQ q6kShuf<>(SB), R8

q6kloop:
	TESTQ CX, CX
	JZ    q6kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)

	VMOVDQU   192(SI), X12
	VPMOVSXBW X12, Y9
	VPMADDWD  (BX), Y9, Y9
	VPSLLD    $5, Y9, Y9
	VPXOR     Y5, Y5, Y5
	VPSUBD    Y9, Y5, Y5

	Q6KHALF(0)
	Q6KHALF(1)

	MOVWLZX      208(SI), AX
	VMOVD        AX, X1
	VCVTPH2PS    X1, X1
	VMULSS       (DX), X1, X1
	KBLOCKSUM

	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  q6kloop

q6kdone:
	VMOVSS X0, ret+96(FP)
	VZEROUPPER
	RET

// Permutation indices [0 ×8, 1 ×8] and dword shift counts [0 ×4, 4 ×4] ×2
// for the two-block AVX-512 Q4_1 kernel.
DATA q4Idx<>+0x00(SB)/8, $0
DATA q4Idx<>+0x08(SB)/8, $0
DATA q4Idx<>+0x10(SB)/8, $0
DATA q4Idx<>+0x18(SB)/8, $0
DATA q4Idx<>+0x20(SB)/8, $0x0000000100000001
DATA q4Idx<>+0x28(SB)/8, $0x0000000100000001
DATA q4Idx<>+0x30(SB)/8, $0x0000000100000001
DATA q4Idx<>+0x38(SB)/8, $0x0000000100000001
GLOBL q4Idx<>(SB), RODATA|NOPTR, $64

DATA q4Shift<>+0x00(SB)/8, $0
DATA q4Shift<>+0x08(SB)/8, $0
DATA q4Shift<>+0x10(SB)/8, $0x0000000400000004
DATA q4Shift<>+0x18(SB)/8, $0x0000000400000004
DATA q4Shift<>+0x20(SB)/8, $0
DATA q4Shift<>+0x28(SB)/8, $0
DATA q4Shift<>+0x30(SB)/8, $0x0000000400000004
DATA q4Shift<>+0x38(SB)/8, $0x0000000400000004
GLOBL q4Shift<>(SB), RODATA|NOPTR, $64

// func dotQ4_1VNNI(w []byte, q []int8, d, s []float32) float32
//
// AVX-512 + VNNI, two blocks per step: nibbles (0..15) times activations
// with VPDPBUSD, plus Σ f16(w.m)·s for the blocks' minimums.
TEXT ·dotQ4_1VNNI(SB), NOSPLIT, $0-100
	MOVQ w_base+0(FP), SI
	MOVQ q_base+24(FP), DI
	MOVQ d_base+48(FP), DX
	MOVQ d_len+56(FP), CX
	MOVQ s_base+72(FP), R9
	VPXORD Z0, Z0, Z0
	VPXORD Z8, Z8, Z8
	VXORPS X12, X12, X12 // Σ f16(w.m)·s
	MOVL   $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z14
	VMOVDQU64 q4Idx<>(SB), Z13
	VMOVDQU64 q4Shift<>(SB), Z11

q41loop:
	CMPQ CX, $2
	JLT  q41tail
	PREFETCHT0 4096(SI)
	MOVWLZX 0(SI), AX
	MOVWLZX 20(SI), BX
	SHLL    $16, BX
	ORL     BX, AX
	VMOVD   AX, X1
	VCVTPH2PS X1, X1
	MOVWLZX 2(SI), AX
	MOVWLZX 22(SI), BX
	SHLL    $16, BX
	ORL     BX, AX
	VMOVD   AX, X3
	VCVTPH2PS X3, X3
	VMOVQ   (R9), X5
	VFMADD231PS X5, X3, X12
	VMOVQ   (DX), X2
	VMULPS  X2, X1, X2
	VPERMPS Z2, Z13, Z2
	VBROADCASTI32X4 4(SI), Y4
	VBROADCASTI32X4 24(SI), Y5
	VINSERTI64X4 $1, Y5, Z4, Z4
	VPSRLVD Z11, Z4, Z4
	VPANDD  Z14, Z4, Z4
	VPXORD  Z6, Z6, Z6
	VPDPBUSD (DI), Z4, Z6
	VCVTDQ2PS Z6, Z6
	VFMADD231PS Z6, Z2, Z0
	ADDQ $40, SI
	ADDQ $64, DI
	ADDQ $8, DX
	ADDQ $8, R9
	SUBQ $2, CX
	JMP  q41loop

q41tail:
	TESTQ CX, CX
	JZ    q41done
	MOVWLZX 0(SI), AX
	VMOVD   AX, X1
	VCVTPH2PS X1, X1
	MOVWLZX 2(SI), AX
	VMOVD   AX, X3
	VCVTPH2PS X3, X3
	VMOVSS  (R9), X5
	VFMADD231SS X5, X3, X12
	VMULSS  (DX), X1, X2
	VBROADCASTSS X2, Y2
	VBROADCASTI32X4 4(SI), Y4
	VPSRLVD Y11, Y4, Y4
	VPANDD  Y14, Y4, Y4
	VPXORD  Y6, Y6, Y6
	VPDPBUSD (DI), Y4, Y6
	VCVTDQ2PS Y6, Y6
	VFMADD231PS Y6, Y2, Y8

q41done:
	VADDPS Z8, Z0, Z0
	VEXTRACTF64X4 $1, Z0, Y1
	VADDPS Y1, Y0, Y0
	QHSUM_Y0
	VMOVSHDUP X12, X1
	VADDSS  X1, X12, X12
	VADDSS  X12, X0, X0
	VMOVSS X0, ret+96(FP)
	VZEROUPPER
	RET

// func quantQ8_0AVX512(q []int8, d, s []float32, x []float32)
//
// quantizeQ8_0 for len(d) blocks, bit for bit: d = max|x|/127 through
// binary16, q = round-half-even(x·(127/max|x|)), s = d·Σq.
TEXT ·quantQ8_0AVX512(SB), NOSPLIT, $0-96
	MOVQ q_base+0(FP), DI
	MOVQ d_base+24(FP), DX
	MOVQ d_len+32(FP), CX
	MOVQ s_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z15
	MOVL $0x42fe0000, AX // 127
	VMOVD AX, X14
	VXORPS X13, X13, X13

qq8loop:
	TESTQ CX, CX
	JZ    qq8done
	VMOVUPS (SI), Z1
	VMOVUPS 64(SI), Z2
	VANDPS  Z15, Z1, Z3
	VANDPS  Z15, Z2, Z4
	VMAXPS  Z4, Z3, Z3
	VEXTRACTF64X4 $1, Z3, Y4
	VMAXPS  Y4, Y3, Y3
	VEXTRACTF128 $1, Y3, X4
	VMAXPS  X4, X3, X3
	VPERMILPS $0x4e, X3, X4
	VMAXPS  X4, X3, X3
	VPERMILPS $0xb1, X3, X4
	VMAXPS  X4, X3, X3   // amax in every lane
	VDIVSS  X14, X3, X5  // d = amax/127
	VXORPS  X6, X6, X6
	VUCOMISS X13, X3
	JEQ     qq8zero
	VDIVSS  X3, X14, X6  // id = 127/amax
qq8zero:
	VBROADCASTSS X6, Z6
	VMULPS  Z6, Z1, Z1
	VMULPS  Z6, Z2, Z2
	VCVTPS2DQ Z1, Z1
	VCVTPS2DQ Z2, Z2
	VPMOVSDB Z1, (DI)
	VPMOVSDB Z2, 16(DI)
	VPADDD  Z2, Z1, Z1
	VEXTRACTI64X4 $1, Z1, Y2
	VPADDD  Y2, Y1, Y1
	VEXTRACTI128 $1, Y1, X2
	VPADDD  X2, X1, X1
	VPSHUFD $0x4e, X1, X2
	VPADDD  X2, X1, X1
	VPSHUFD $0xb1, X1, X2
	VPADDD  X2, X1, X1
	VCVTDQ2PS X1, X1
	VCVTPS2PH $0, X5, X5
	VCVTPH2PS X5, X5
	VMOVSS  X5, (DX)
	VMULSS  X1, X5, X1
	VMOVSS  X1, (R9)
	ADDQ $128, SI
	ADDQ $32, DI
	ADDQ $4, DX
	ADDQ $4, R9
	DECQ CX
	JMP  qq8loop

qq8done:
	VZEROUPPER
	RET

// func dequantQ4_0AVX512(dst []float32, w []byte)
//
// len(dst)/32 Q4_0 blocks of w to float32: (q − 8)·d, as ggml.Dequantize.
TEXT ·dequantQ4_0AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	SHRQ $5, CX
	MOVQ w_base+24(FP), SI
	MOVL $15, AX
	VPBROADCASTD AX, Z15
	MOVL $8, AX
	VPBROADCASTD AX, Z14

dq40loop:
	TESTQ CX, CX
	JZ    dq40done
	MOVWLZX (SI), AX
	VMOVD   AX, X1
	VCVTPH2PS X1, X1
	VBROADCASTSS X1, Z1
	VPMOVZXBD 2(SI), Z2
	VPSRLD  $4, Z2, Z3
	VPANDD  Z15, Z2, Z2
	VPSUBD  Z14, Z2, Z2
	VPSUBD  Z14, Z3, Z3
	VCVTDQ2PS Z2, Z2
	VCVTDQ2PS Z3, Z3
	VMULPS  Z1, Z2, Z2
	VMULPS  Z1, Z3, Z3
	VMOVUPS Z2, (DI)
	VMOVUPS Z3, 64(DI)
	ADDQ $18, SI
	ADDQ $128, DI
	DECQ CX
	JMP  dq40loop

dq40done:
	VZEROUPPER
	RET

// func dequantQ8_0AVX512(dst []float32, w []byte)
//
// len(dst)/32 Q8_0 blocks of w to float32: q·d, as ggml.Dequantize.
TEXT ·dequantQ8_0AVX512(SB), NOSPLIT, $0-48
	MOVQ dst_base+0(FP), DI
	MOVQ dst_len+8(FP), CX
	SHRQ $5, CX
	MOVQ w_base+24(FP), SI

dq80loop:
	TESTQ CX, CX
	JZ    dq80done
	MOVWLZX (SI), AX
	VMOVD   AX, X1
	VCVTPH2PS X1, X1
	VBROADCASTSS X1, Z1
	VPMOVSXBD 2(SI), Z2
	VPMOVSXBD 18(SI), Z3
	VCVTDQ2PS Z2, Z2
	VCVTDQ2PS Z3, Z3
	VMULPS  Z1, Z2, Z2
	VMULPS  Z1, Z3, Z3
	VMOVUPS Z2, (DI)
	VMOVUPS Z3, 64(DI)
	ADDQ $34, SI
	ADDQ $128, DI
	DECQ CX
	JMP  dq80loop

dq80done:
	VZEROUPPER
	RET

// func rowsQ4KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)
//
// dotQ4KAVX2 over len(out) consecutive rows of rb bytes, with the same
// per-row arithmetic (results equal dotQ4KAVX2's bit for bit).
TEXT ·rowsQ4KAVX2(SB), NOSPLIT, $16-128
	MOVQ out_len+8(FP), AX
	TESTQ AX, AX
	JZ   r4knone
	MOVQ AX, n-8(SP)
	MOVQ out_base+0(FP), AX
	MOVQ AX, o-16(SP)
	MOVQ w_base+24(FP), R13
	LEAQ q4kShuf<>(SB), R11
	BCAST32($0x0f0f0f0f, X14, Y14)

r4krow:
	MOVQ R13, SI
	MOVQ q_base+56(FP), DI
	MOVQ d_base+80(FP), DX
	MOVQ d_len+88(FP), CX
	MOVQ bs_base+104(FP), BX
	VXORPS X0, X0, X0
	VPXOR  Y15, Y15, Y15 // pending block: sum partials (none yet: zeros)
	VPXOR  X10, X10, X10
	VXORPS X12, X12, X12

r4kloop:
	TESTQ CX, CX
	JZ    r4kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)

	// Scales and mins: 6-bit fields of the 12 bytes at 4(SI), unpacked to
	// X6 = 8 scale bytes then 8 min bytes.
	MOVL 4(SI), AX  // u0
	MOVL 8(SI), R8  // u1
	MOVL 12(SI), R9 // u2
	MOVL AX, R10
	ANDL $0x3f3f3f3f, R10 // scales 0-3
	MOVL R9, R12
	ANDL $0x0f0f0f0f, R12
	SHRL $2, AX
	ANDL $0x30303030, AX
	ORL  AX, R12          // scales 4-7
	SHLQ $32, R12
	ORQ  R12, R10
	MOVL R8, AX
	ANDL $0x3f3f3f3f, AX  // mins 0-3
	SHRL $4, R9
	ANDL $0x0f0f0f0f, R9
	SHRL $2, R8
	ANDL $0x30303030, R8
	ORL  R8, R9           // mins 4-7
	SHLQ $32, R9
	ORQ  R9, AX
	VMOVQ        R10, X6
	VPINSRQ      $1, AX, X6, X6
	VPMOVZXBW    X6, Y9
	VINSERTI128  $1, X6, Y6, Y6

	// d and dmin times the activation scale: X1 = [d, dmin].
	MOVL         (SI), AX
	VMOVD        AX, X1
	VCVTPH2PS    X1, X1
	VBROADCASTSS (DX), X2
	VMULPS       X2, X1, X11

	// Mins: Σ m[s]·(bs[2s]+bs[2s+1]) into X10, weighted by dmin.
	VMOVDQU      (BX), X7
	VMOVDQU      16(BX), X8
	VPHADDW      X8, X7, X7
	VEXTRACTI128 $1, Y9, X9
	VPMADDWD     X9, X7, X7

	VPXOR Y5, Y5, Y5
	Q4KCHUNK(0)
	Q4KBLOCKSUMP
	Q4KCHUNK(1)
	Q4KCHUNK(2)
	Q4KCHUNK(3)
	VMOVDQA Y5, Y15
	VMOVDQA X7, X10
	VMOVAPS X11, X12

	ADDQ $144, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  r4kloop

r4kdone:
	Q4KBLOCKSUMP
	MOVQ o-16(SP), AX
	VMOVSS X0, (AX)
	ADDQ $4, AX
	MOVQ AX, o-16(SP)
	ADDQ rb+48(FP), R13
	DECQ n-8(SP)
	JNZ  r4krow
	VZEROUPPER

r4knone:
	RET

// func rowsQ6KAVX2(out []float32, w []byte, rb int, q []int8, d []float32, bs []int16)
//
// dotQ6KAVX2 over len(out) consecutive rows of rb bytes (bit for bit).
TEXT ·rowsQ6KAVX2(SB), NOSPLIT, $16-128
	MOVQ out_len+8(FP), AX
	TESTQ AX, AX
	JZ   r6knone
	MOVQ AX, n-8(SP)
	MOVQ out_base+0(FP), AX
	MOVQ AX, o-16(SP)
	MOVQ w_base+24(FP), R13
	BCAST32($0x0f0f0f0f, X14, Y14)
	BCAST32($0x30303030, X13, Y13)
	LEAQ q6kShuf<>(SB), R8

r6krow:
	MOVQ R13, SI
	MOVQ q_base+56(FP), DI
	MOVQ d_base+80(FP), DX
	MOVQ d_len+88(FP), CX
	MOVQ bs_base+104(FP), BX
	VXORPS Y0, Y0, Y0
	VPXOR  Y10, Y10, Y10 // pending block: sum partials (none yet: zeros)
	VXORPS X11, X11, X11

r6kloop:
	TESTQ CX, CX
	JZ    r6kdone
	PREFETCHT0 4096(SI)
	PREFETCHT0 4160(SI)
	PREFETCHT0 4224(SI)

	VMOVDQU   192(SI), X12
	VPMOVSXBW X12, Y9
	VPMADDWD  (BX), Y9, Y9
	VPSLLD    $5, Y9, Y9
	VPXOR     Y5, Y5, Y5
	VPSUBD    Y9, Y5, Y5

	Q6KHALF(0)
	KBLOCKSUMP
	Q6KHALF(1)

	MOVWLZX      208(SI), AX
	VMOVD        AX, X11
	VCVTPH2PS    X11, X11
	VMULSS       (DX), X11, X11
	VMOVDQA      Y5, Y10

	ADDQ $210, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, BX
	DECQ CX
	JMP  r6kloop

r6kdone:
	KBLOCKSUMP
	MOVQ o-16(SP), AX
	VMOVSS X0, (AX)
	ADDQ $4, AX
	MOVQ AX, o-16(SP)
	ADDQ rb+48(FP), R13
	DECQ n-8(SP)
	JNZ  r6krow
	VZEROUPPER

r6knone:
	RET
