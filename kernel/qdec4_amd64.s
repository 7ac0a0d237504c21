//go:build amd64 && !purego

#include "textflag.h"

// Four-token decode kernels (qdec4.go): one weight row against four Q8_0
// activations per step, each pair of weight blocks loaded, unpacked and its
// scales widened once for the four. Unlike the prefill micro-kernels
// (qgemm_amd64.s), they take the activations' scales spread over the eight
// dword lanes of their block (e) and −8 × the sum of each lane's four
// quants (l), both made once per call, so a token's share of a step is
// five instructions: the accumulator starts at the offset correction,
// VPDPBUSD adds the unsigned weights times the signed quants straight from
// memory, and the block sums are scaled and added.

// One token's share of a two-block step: quants at qa, spread scales at ea,
// lane corrections at la (shifted left by shift: ×2^shift); Z4 holds the
// unsigned weights, Z1 the spread weight scales. Clobbers Z6, Z8.
#define D4TOK(qa, ea, la, acc) \
	VMOVDQU32   la, Z8; \
	VPDPBUSD    qa, Z4, Z8; \
	VCVTDQ2PS   Z8, Z8; \
	VMULPS      ea, Z1, Z6; \
	VFMADD231PS Z8, Z6, acc

#define D4TOK16(qa, ea, la, acc) \
	VPSLLD      $4, la, Z8; \
	VPDPBUSD    qa, Z4, Z8; \
	VCVTDQ2PS   Z8, Z8; \
	VMULPS      ea, Z1, Z6; \
	VFMADD231PS Z8, Z6, acc

// Horizontal sum of float register z (16 lanes) into the low lane of X8
// (clobbers Y8, X9).
#define D4HSUM(z, y) \
	VEXTRACTF64X4 $1, z, Y8; \
	VADDPS        y, Y8, Y8; \
	VEXTRACTF128  $1, Y8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVHLPS      X8, X8, X9; \
	VADDPS        X9, X8, X8; \
	VMOVSHDUP     X8, X9; \
	VADDSS        X9, X8, X8

// The per-row start: pointers to the four tokens' quants (DI), spread
// scales (DX) and lane corrections (R9), stride R13 (R14 = 3·R13), block
// count CX, accumulators Z16-Z19 zeroed.
#define D4ROWSTART \
	MOVQ   R11, SI; \
	MOVQ   q_base+72(FP), DI; \
	MOVQ   e_base+96(FP), DX; \
	MOVQ   l_base+120(FP), R9; \
	MOVQ   stride+144(FP), R13; \
	LEAQ   (R13)(R13*2), R14; \
	MOVQ   nb+152(FP), CX; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17; \
	VPXORD Z18, Z18, Z18; \
	VPXORD Z19, Z19, Z19

// The per-row end: the four sums to out[0], out[ostride], out[2·ostride],
// out[3·ostride], then the next row.
#define D4ROWEND \
	MOVQ   ostride+32(FP), CX; \
	SHLQ   $2, CX; \
	LEAQ   (CX)(CX*2), DX; \
	D4HSUM(Z16, Y16); \
	VMOVSS X8, (R8); \
	D4HSUM(Z17, Y17); \
	VMOVSS X8, (R8)(CX*1); \
	D4HSUM(Z18, Y18); \
	VMOVSS X8, (R8)(CX*2); \
	D4HSUM(Z19, Y19); \
	VMOVSS X8, (R8)(DX*1); \
	ADDQ   $4, R8; \
	ADDQ   R12, R11

// func dec4Q8_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, e []float32, l []int32, stride, nb int)
//
// For rows Q8_0 weight rows of rb bytes from w and the four activations
// whose quants, spread scales and lane corrections lie stride bytes apart
// in q, e and l, out[j*ostride+i] = row i · activation j. nb (the block
// count) is even and positive. The signed weights become unsigned by
// adding 128 (XOR 0x80); the corrections, ×16, take 128·Σq back off.
TEXT ·dec4Q8_0VNNI(SB), NOSPLIT, $0-160
	MOVQ  out_base+0(FP), R8
	MOVQ  rows+24(FP), R10
	MOVQ  w_base+40(FP), R11
	MOVQ  rb+64(FP), R12
	TESTQ R10, R10
	JZ    d8none
	MOVL  $0x80808080, AX
	VPBROADCASTD AX, Z12
	VMOVDQU64 d4Idx<>(SB), Z13

d8row:
	D4ROWSTART

d8loop:
	PREFETCHT0 4096(SI)
	VPXOR     X1, X1, X1
	VPINSRW   $0, 0(SI), X1, X1
	VPINSRW   $1, 34(SI), X1, X1
	VCVTPH2PS X1, X1
	VPERMPS   Z1, Z13, Z1
	VMOVDQU   2(SI), Y4
	VINSERTI64X4 $1, 36(SI), Z4, Z4
	VPXORD    Z12, Z4, Z4
	D4TOK16((DI), (DX), (R9), Z16)
	D4TOK16((DI)(R13*1), (DX)(R13*1), (R9)(R13*1), Z17)
	D4TOK16((DI)(R13*2), (DX)(R13*2), (R9)(R13*2), Z18)
	D4TOK16((DI)(R14*1), (DX)(R14*1), (R9)(R14*1), Z19)
	ADDQ $68, SI
	ADDQ $64, DI
	ADDQ $64, DX
	ADDQ $64, R9
	SUBQ $2, CX
	JNZ  d8loop

	D4ROWEND
	DECQ R10
	JNZ  d8row
	VZEROUPPER
	RET

d8none:
	RET

// func dec4Q4_0VNNI(out []float32, rows, ostride int, w []byte, rb int, q []int8, e []float32, l []int32, stride, nb int)
//
// dec4Q8_0VNNI for Q4_0 weights: the nibbles (0..15) are the unsigned
// operand and the corrections take 8·Σq off.
TEXT ·dec4Q4_0VNNI(SB), NOSPLIT, $0-160
	MOVQ  out_base+0(FP), R8
	MOVQ  rows+24(FP), R10
	MOVQ  w_base+40(FP), R11
	MOVQ  rb+64(FP), R12
	TESTQ R10, R10
	JZ    d4none
	MOVL  $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z12
	VMOVDQU64 d4Idx<>(SB), Z13
	VMOVDQU64 d4Shift<>(SB), Z11

d4row:
	D4ROWSTART

d4loop:
	PREFETCHT0 4096(SI)
	VPXOR     X1, X1, X1
	VPINSRW   $0, 0(SI), X1, X1
	VPINSRW   $1, 18(SI), X1, X1
	VCVTPH2PS X1, X1
	VPERMPS   Z1, Z13, Z1
	// Nibbles: Z4 = [b0 lo, b0 hi, b1 lo, b1 hi] as 16-byte lanes.
	VBROADCASTI32X4 2(SI), Y4
	VBROADCASTI32X4 20(SI), Y5
	VINSERTI64X4 $1, Y5, Z4, Z4
	VPSRLVD   Z11, Z4, Z4
	VPANDD    Z12, Z4, Z4
	D4TOK((DI), (DX), (R9), Z16)
	D4TOK((DI)(R13*1), (DX)(R13*1), (R9)(R13*1), Z17)
	D4TOK((DI)(R13*2), (DX)(R13*2), (R9)(R13*2), Z18)
	D4TOK((DI)(R14*1), (DX)(R14*1), (R9)(R14*1), Z19)
	ADDQ $36, SI
	ADDQ $64, DI
	ADDQ $64, DX
	ADDQ $64, R9
	SUBQ $2, CX
	JNZ  d4loop

	D4ROWEND
	DECQ R10
	JNZ  d4row
	VZEROUPPER
	RET

d4none:
	RET

// Permutation indices [0 ×8, 1 ×8] and dword shift counts [0 ×4, 4 ×4] ×2.
DATA d4Idx<>+0x00(SB)/8, $0
DATA d4Idx<>+0x08(SB)/8, $0
DATA d4Idx<>+0x10(SB)/8, $0
DATA d4Idx<>+0x18(SB)/8, $0
DATA d4Idx<>+0x20(SB)/8, $0x0000000100000001
DATA d4Idx<>+0x28(SB)/8, $0x0000000100000001
DATA d4Idx<>+0x30(SB)/8, $0x0000000100000001
DATA d4Idx<>+0x38(SB)/8, $0x0000000100000001
GLOBL d4Idx<>(SB), RODATA|NOPTR, $64

DATA d4Shift<>+0x00(SB)/8, $0
DATA d4Shift<>+0x08(SB)/8, $0
DATA d4Shift<>+0x10(SB)/8, $0x0000000400000004
DATA d4Shift<>+0x18(SB)/8, $0x0000000400000004
DATA d4Shift<>+0x20(SB)/8, $0
DATA d4Shift<>+0x28(SB)/8, $0
DATA d4Shift<>+0x30(SB)/8, $0x0000000400000004
DATA d4Shift<>+0x38(SB)/8, $0x0000000400000004
GLOBL d4Shift<>(SB), RODATA|NOPTR, $64
