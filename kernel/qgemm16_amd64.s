//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// Sixteen-row integer GEMM micro-kernels for the prefill path (qgemm16.go).
// A tile holds sixteen weight rows repacked block by block (pack16Q4_0,
// pack16Q8_0): the sixteen rows' float32 scales, then the quants in 64-byte
// vectors, each the same four consecutive columns of all sixteen rows,
// stored as unsigned bytes (Q4_0: nibbles 0..15; Q8_0: quant+128).
// VPDPBUSD multiplies such a vector by one token's four activation quants,
// broadcast from memory, so each instruction advances sixteen rows by four
// columns, and every 32-bit lane of an accumulator is one row. Tokens come
// in groups of G (8, 4 or 1) interleaved block by block (gemm16Acts): per
// block the G tokens' 32 quants, then their G scales, then their G integer
// corrections (−8·Σq for Q4_0, −128·Σq for Q8_0: the weights' offset as
// stored), each block's integer sum starting from the correction so that it
// equals the generic dot's exactly. Sums are scaled and added as the
// generic dot does (float32(s)·(dw·dy), no fused multiply-add): results
// equal ggml's dot bit for bit.

// One token's share of a block: the chunk vectors Z0-Z7 against the
// token's quants at qo(DI), its scale at do(DI) and correction at io(DI);
// acc accumulates, ti and tf are scratch.
#define TOK(qo, do, io, acc, ti, tf) \
	VPBROADCASTD  io(DI), ti; \
	VPDPBUSD.BCST qo+0(DI), Z0, ti; \
	VPDPBUSD.BCST qo+4(DI), Z1, ti; \
	VPDPBUSD.BCST qo+8(DI), Z2, ti; \
	VPDPBUSD.BCST qo+12(DI), Z3, ti; \
	VPDPBUSD.BCST qo+16(DI), Z4, ti; \
	VPDPBUSD.BCST qo+20(DI), Z5, ti; \
	VPDPBUSD.BCST qo+24(DI), Z6, ti; \
	VPDPBUSD.BCST qo+28(DI), Z7, ti; \
	VCVTDQ2PS     ti, ti; \
	VMULPS.BCST   do(DI), Z8, tf; \
	VMULPS        tf, ti, ti; \
	VADDPS        ti, acc, acc

// Q4_0 block at SI: the scales, then four vectors whose low nibbles are
// columns 4k..4k+3 and high nibbles columns 16+4k..16+4k+3 (Z9: 0x0f bytes).
#define WQ4 \
	VMOVUPS   0(SI), Z8; \
	VMOVDQU32 64(SI), Z0; \
	VMOVDQU32 128(SI), Z1; \
	VMOVDQU32 192(SI), Z2; \
	VMOVDQU32 256(SI), Z3; \
	VPSRLW    $4, Z0, Z4; \
	VPSRLW    $4, Z1, Z5; \
	VPSRLW    $4, Z2, Z6; \
	VPSRLW    $4, Z3, Z7; \
	VPANDD    Z9, Z0, Z0; \
	VPANDD    Z9, Z1, Z1; \
	VPANDD    Z9, Z2, Z2; \
	VPANDD    Z9, Z3, Z3; \
	VPANDD    Z9, Z4, Z4; \
	VPANDD    Z9, Z5, Z5; \
	VPANDD    Z9, Z6, Z6; \
	VPANDD    Z9, Z7, Z7; \
	ADDQ      $320, SI

// Q8_0 block at SI: the scales, then eight vectors, columns 4k..4k+3.
#define WQ8 \
	VMOVUPS   0(SI), Z8; \
	VMOVDQU32 64(SI), Z0; \
	VMOVDQU32 128(SI), Z1; \
	VMOVDQU32 192(SI), Z2; \
	VMOVDQU32 256(SI), Z3; \
	VMOVDQU32 320(SI), Z4; \
	VMOVDQU32 384(SI), Z5; \
	VMOVDQU32 448(SI), Z6; \
	VMOVDQU32 512(SI), Z7; \
	ADDQ      $576, SI

#define TOKS8 \
	TOK(0, 256, 288, Z10, Z18, Z19); \
	TOK(32, 260, 292, Z11, Z20, Z21); \
	TOK(64, 264, 296, Z12, Z22, Z23); \
	TOK(96, 268, 300, Z13, Z24, Z25); \
	TOK(128, 272, 304, Z14, Z26, Z27); \
	TOK(160, 276, 308, Z15, Z28, Z29); \
	TOK(192, 280, 312, Z16, Z30, Z31); \
	TOK(224, 284, 316, Z17, Z18, Z19); \
	ADDQ $320, DI

#define TOKS4 \
	TOK(0, 128, 144, Z10, Z18, Z19); \
	TOK(32, 132, 148, Z11, Z20, Z21); \
	TOK(64, 136, 152, Z12, Z22, Z23); \
	TOK(96, 140, 156, Z13, Z24, Z25); \
	ADDQ $160, DI

#define TOKS1 \
	TOK(0, 32, 36, Z10, Z18, Z19); \
	ADDQ $40, DI

// Arguments: out+0 ostride+24 pack+32 nb+56 acts+64.
#define ARGS \
	MOVQ pack_base+32(FP), SI; \
	MOVQ nb+56(FP), CX; \
	MOVQ acts_base+64(FP), DI; \
	MOVQ out_base+0(FP), R8; \
	MOVQ ostride+24(FP), R13; \
	SHLQ $2, R13; \
	MOVL $0x0f0f0f0f, AX; \
	VPBROADCASTD AX, Z9; \
	VPXORD Z10, Z10, Z10; \
	VPXORD Z11, Z11, Z11; \
	VPXORD Z12, Z12, Z12; \
	VPXORD Z13, Z13, Z13; \
	VPXORD Z14, Z14, Z14; \
	VPXORD Z15, Z15, Z15; \
	VPXORD Z16, Z16, Z16; \
	VPXORD Z17, Z17, Z17


// func gemm16Q4_0x8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 8 tokens at acts, prefetching
// pf meanwhile: five cache lines a block, 320 bytes, more than a block of
// sixteen Q4_0 rows holds (288; see gemm16Q4_Kx8PF).
TEXT ·gemm16Q4_0x8PF(SB), NOSPLIT, $0-112
	ARGS
	PFARGS

q40x8loop:
	PREFETCHT0 640(SI)
	WQ4
	TOKS8
	CMPQ R9, R12
	JAE  q40x8nopf
	PF4
	PREFETCHT1 0(R9)
	ADDQ $64, R9

q40x8nopf:
	DECQ CX
	JNZ  q40x8loop
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	STORE(Z14)
	STORE(Z15)
	STORE(Z16)
	STORE(Z17)
	VZEROUPPER
	RET

// func gemm16Q4_0x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q4_0x4VNNI(SB), NOSPLIT, $0-88
	ARGS

q40x4loop:
	PREFETCHT0 640(SI)
	WQ4
	TOKS4
	DECQ CX
	JNZ  q40x4loop
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	VZEROUPPER
	RET

// func gemm16Q4_0x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q4_0x1VNNI(SB), NOSPLIT, $0-88
	ARGS

q40x1loop:
	PREFETCHT0 640(SI)
	WQ4
	TOKS1
	DECQ CX
	JNZ  q40x1loop
	STORE(Z10)
	VZEROUPPER
	RET

// func gemm16Q8_0x8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q8_0 (or Q5_0,
// IQ4_NL) rows packed in pack (nb blocks, nb > 0) and the group of 8
// tokens at acts, prefetching pf meanwhile: nine cache lines a block, 576
// bytes, more than a block of sixteen Q8_0 rows holds (544; see
// gemm16Q4_Kx8PF).
TEXT ·gemm16Q8_0x8PF(SB), NOSPLIT, $0-112
	ARGS
	PFARGS

q80x8loop:
	PREFETCHT0 1152(SI)
	WQ8
	TOKS8
	CMPQ R9, R12
	JAE  q80x8nopf
	PF4
	PF4
	PREFETCHT1 0(R9)
	ADDQ $64, R9

q80x8nopf:
	DECQ CX
	JNZ  q80x8loop
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	STORE(Z14)
	STORE(Z15)
	STORE(Z16)
	STORE(Z17)
	VZEROUPPER
	RET

// func gemm16Q8_0x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q8_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q8_0x4VNNI(SB), NOSPLIT, $0-88
	ARGS

q80x4loop:
	PREFETCHT0 1152(SI)
	WQ8
	TOKS4
	DECQ CX
	JNZ  q80x4loop
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	VZEROUPPER
	RET

// func gemm16Q8_0x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q8_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q8_0x1VNNI(SB), NOSPLIT, $0-88
	ARGS

q80x1loop:
	PREFETCHT0 1152(SI)
	WQ8
	TOKS1
	DECQ CX
	JNZ  q80x1loop
	STORE(Z10)
	VZEROUPPER
	RET

// Row indices 0..15, times the row stride in PACKARGS (also used by
// qgemm16k_amd64.s).
DATA ·gemm16RowIdx+0x00(SB)/8, $0x0000000100000000
DATA ·gemm16RowIdx+0x08(SB)/8, $0x0000000300000002
DATA ·gemm16RowIdx+0x10(SB)/8, $0x0000000500000004
DATA ·gemm16RowIdx+0x18(SB)/8, $0x0000000700000006
DATA ·gemm16RowIdx+0x20(SB)/8, $0x0000000900000008
DATA ·gemm16RowIdx+0x28(SB)/8, $0x0000000b0000000a
DATA ·gemm16RowIdx+0x30(SB)/8, $0x0000000d0000000c
DATA ·gemm16RowIdx+0x38(SB)/8, $0x0000000f0000000e
GLOBL ·gemm16RowIdx(SB), RODATA|NOPTR, $64

// func pack16Q4_0AVX512(dst, w []byte, rb, nb int)
//
// packQ4_0x16 with transposes (GATHER4): dst gets nb·320 bytes.
TEXT ·pack16Q4_0AVX512(SB), NOSPLIT, $0-64
	PACKARGS
	ROWREGS

pq4loop:
	PACKSCALES
	GATHER4(2, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	VMOVDQU32 Z4, 64(DI)
	VMOVDQU32 Z5, 128(DI)
	VMOVDQU32 Z6, 192(DI)
	VMOVDQU32 Z7, 256(DI)
	ADDQ $18, SI
	ADDQ $320, DI
	DECQ CX
	JNZ  pq4loop
	VZEROUPPER
	RET

#define PQ8(z, dst) \
	VPXORD    Z9, z, z; \
	VMOVDQU32 z, dst(DI)

// func pack16Q8_0AVX512(dst, w []byte, rb, nb int)
//
// packQ8_0x16 with transposes (GATHER4): dst gets nb·576 bytes.
TEXT ·pack16Q8_0AVX512(SB), NOSPLIT, $0-64
	PACKARGS
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z9
	ROWREGS

pq8loop:
	PACKSCALES
	GATHER4(2, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	GATHER4(18, Z20, Z21, Z22, Z23, Z16, Z17, Z18, Z19)
	PQ8(Z4, 64)
	PQ8(Z5, 128)
	PQ8(Z6, 192)
	PQ8(Z7, 256)
	PQ8(Z20, 320)
	PQ8(Z21, 384)
	PQ8(Z22, 448)
	PQ8(Z23, 512)
	ADDQ $34, SI
	ADDQ $576, DI
	DECQ CX
	JNZ  pq8loop
	VZEROUPPER
	RET
