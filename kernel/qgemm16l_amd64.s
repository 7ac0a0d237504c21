//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// Sixteen-row tiles for the other 32-column types (qgemm16.go). Q5_0 and
// IQ4_NL tiles take the Q8_0 layout and kernels (qgemm16_amd64.s): quants
// widened to unsigned bytes (Q5_0: 0..31, the activations' correction −16
// times the block sums; IQ4_NL: the non-linear value plus 128, correction
// −128 times the sums). Q4_1 and Q5_1 tiles add the rows' binary16 mins
// as float32 after the scales (640 bytes a block), and their kernels add,
// per block and as ggml's generic dot, m·s (s: the token's block sum
// scale, in the interleaved activations where the other types keep their
// corrections) to float32(Σ q·y)·(d·dy).

// One token's share of a Q4_1/Q5_1 block: the chunk vectors Z0-Z7 (scales
// Z8, mins Z9) against the token's quants at qo(DI), its scale at do(DI)
// and block sum at so(DI); acc accumulates, ti and tf are scratch.
#define TOKM(qo, do, so, acc, ti, tf) \
	VPXORD        ti, ti, ti; \
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
	VMULPS.BCST   so(DI), Z9, tf; \
	VADDPS        tf, ti, ti; \
	VADDPS        ti, acc, acc

// A Q4_1/Q5_1 block at SI: scales Z8, mins Z9, quant vectors Z0-Z7.
#define WQM \
	VMOVUPS   0(SI), Z8; \
	VMOVUPS   64(SI), Z9; \
	VMOVDQU32 128(SI), Z0; \
	VMOVDQU32 192(SI), Z1; \
	VMOVDQU32 256(SI), Z2; \
	VMOVDQU32 320(SI), Z3; \
	VMOVDQU32 384(SI), Z4; \
	VMOVDQU32 448(SI), Z5; \
	VMOVDQU32 512(SI), Z6; \
	VMOVDQU32 576(SI), Z7; \
	ADDQ      $640, SI

// NIBLO and NIBHI set Z2 to the low or the high nibbles of the bytes of q
// (Z13: 0x0f bytes).
#define NIBLO(q) VPANDD Z13, q, Z2
#define NIBHI(q) \
	VPSRLW $4, q, Z2; \
	VPANDD Z13, Z2, Z2

// Q5BIT adds 16 (Z11) to the bytes of Z2 whose fifth bit is set: the bits
// of the qh dwords Z12 in byte b of each dword (the control at ctl of
// gemm16ByteBcst), tested against the bit masks bits.
#define Q5BIT(ctl, bits) \
	VPSHUFB  ·gemm16ByteBcst+ctl(SB), Z12, Z3; \
	VPTESTMB bits, Z3, K2; \
	VPADDB   Z11, Z2, K2, Z2

// func gemm16Q4_1x8VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_1 or Q5_1 rows
// packed in pack (nb blocks, nb > 0) and the group of 8 token(s) at acts.
TEXT ·gemm16Q4_1x8VNNI(SB), NOSPLIT, $0-88
	KARGS
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17

q41x8loop:
	PREFETCHT0 1280(SI)
	WQM
	TOKM(0, 256, 288, Z10, Z18, Z19)
	TOKM(32, 260, 292, Z11, Z20, Z21)
	TOKM(64, 264, 296, Z12, Z22, Z23)
	TOKM(96, 268, 300, Z13, Z24, Z25)
	TOKM(128, 272, 304, Z14, Z26, Z27)
	TOKM(160, 276, 308, Z15, Z28, Z29)
	TOKM(192, 280, 312, Z16, Z30, Z31)
	TOKM(224, 284, 316, Z17, Z18, Z19)
	ADDQ $320, DI
	DECQ CX
	JNZ  q41x8loop
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

// func gemm16Q4_1x4VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_1 or Q5_1 rows
// packed in pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q4_1x4VNNI(SB), NOSPLIT, $0-88
	KARGS
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13

q41x4loop:
	PREFETCHT0 1280(SI)
	WQM
	TOKM(0, 128, 144, Z10, Z18, Z19)
	TOKM(32, 132, 148, Z11, Z20, Z21)
	TOKM(64, 136, 152, Z12, Z22, Z23)
	TOKM(96, 140, 156, Z13, Z24, Z25)
	ADDQ $160, DI
	DECQ CX
	JNZ  q41x4loop
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	VZEROUPPER
	RET

// func gemm16Q4_1x1VNNI(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_1 or Q5_1 rows
// packed in pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q4_1x1VNNI(SB), NOSPLIT, $0-88
	KARGS
	VPXORD Z10, Z10, Z10

q41x1loop:
	PREFETCHT0 1280(SI)
	WQM
	TOKM(0, 32, 36, Z10, Z18, Z19)
	ADDQ $40, DI
	DECQ CX
	JNZ  q41x1loop
	STORE(Z10)
	VZEROUPPER
	RET

// func pack16Q5_0AVX512(dst, w []byte, rb, nb int)
//
// packQ5_0x16 with transposes (GATHER4): dst gets nb·576 bytes (the Q8_0
// tile layout).
TEXT ·pack16Q5_0AVX512(SB), NOSPLIT, $0-64
	PACKARGS
	MOVL $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z13
	MOVL $0x08040201, AX
	VPBROADCASTD AX, Z14
	MOVL $0x80402010, AX
	VPBROADCASTD AX, Z15
	MOVL $0x10101010, AX
	VPBROADCASTD AX, Z11
	ROWREGS

pq50loop:
	PACKSCALES
	GATHER(2, Z12)
	GATHER4(6, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	NIBLO(Z4)
	Q5BIT(0, Z14)
	VMOVDQU32 Z2, 64(DI)
	NIBLO(Z5)
	Q5BIT(0, Z15)
	VMOVDQU32 Z2, 128(DI)
	NIBLO(Z6)
	Q5BIT(64, Z14)
	VMOVDQU32 Z2, 192(DI)
	NIBLO(Z7)
	Q5BIT(64, Z15)
	VMOVDQU32 Z2, 256(DI)
	NIBHI(Z4)
	Q5BIT(128, Z14)
	VMOVDQU32 Z2, 320(DI)
	NIBHI(Z5)
	Q5BIT(128, Z15)
	VMOVDQU32 Z2, 384(DI)
	NIBHI(Z6)
	Q5BIT(192, Z14)
	VMOVDQU32 Z2, 448(DI)
	NIBHI(Z7)
	Q5BIT(192, Z15)
	VMOVDQU32 Z2, 512(DI)
	ADDQ $22, SI
	ADDQ $576, DI
	DECQ CX
	JNZ  pq50loop
	VZEROUPPER
	RET

// func pack16Q5_1AVX512(dst, w []byte, rb, nb int)
//
// packQ5_1x16 with transposes (GATHER4): dst gets nb·640 bytes.
TEXT ·pack16Q5_1AVX512(SB), NOSPLIT, $0-64
	PACKARGS
	MOVL $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z13
	MOVL $0x08040201, AX
	VPBROADCASTD AX, Z14
	MOVL $0x80402010, AX
	VPBROADCASTD AX, Z15
	MOVL $0x10101010, AX
	VPBROADCASTD AX, Z11
	ROWREGS

pq51loop:
	GATHER(0, Z2)
	VPMOVDW   Z2, Y3
	VCVTPH2PS Y3, Z3
	VMOVUPS   Z3, 0(DI)
	VPSRLD    $16, Z2, Z3
	VPMOVDW   Z3, Y3
	VCVTPH2PS Y3, Z3
	VMOVUPS   Z3, 64(DI)
	GATHER(4, Z12)
	GATHER4(8, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	NIBLO(Z4)
	Q5BIT(0, Z14)
	VMOVDQU32 Z2, 128(DI)
	NIBLO(Z5)
	Q5BIT(0, Z15)
	VMOVDQU32 Z2, 192(DI)
	NIBLO(Z6)
	Q5BIT(64, Z14)
	VMOVDQU32 Z2, 256(DI)
	NIBLO(Z7)
	Q5BIT(64, Z15)
	VMOVDQU32 Z2, 320(DI)
	NIBHI(Z4)
	Q5BIT(128, Z14)
	VMOVDQU32 Z2, 384(DI)
	NIBHI(Z5)
	Q5BIT(128, Z15)
	VMOVDQU32 Z2, 448(DI)
	NIBHI(Z6)
	Q5BIT(192, Z14)
	VMOVDQU32 Z2, 512(DI)
	NIBHI(Z7)
	Q5BIT(192, Z15)
	VMOVDQU32 Z2, 576(DI)
	ADDQ $24, SI
	ADDQ $640, DI
	DECQ CX
	JNZ  pq51loop
	VZEROUPPER
	RET

// func pack16Q4_1AVX512(dst, w []byte, rb, nb int)
//
// packQ4_1x16 with transposes (GATHER4): dst gets nb·640 bytes.
TEXT ·pack16Q4_1AVX512(SB), NOSPLIT, $0-64
	PACKARGS
	MOVL $0x0f0f0f0f, AX
	VPBROADCASTD AX, Z13
	ROWREGS

pq41loop:
	GATHER(0, Z2)
	VPMOVDW   Z2, Y3
	VCVTPH2PS Y3, Z3
	VMOVUPS   Z3, 0(DI)
	VPSRLD    $16, Z2, Z3
	VPMOVDW   Z3, Y3
	VCVTPH2PS Y3, Z3
	VMOVUPS   Z3, 64(DI)
	GATHER4(4, Z4, Z5, Z6, Z7, Z16, Z17, Z18, Z19)
	NIBLO(Z4)
	VMOVDQU32 Z2, 128(DI)
	NIBLO(Z5)
	VMOVDQU32 Z2, 192(DI)
	NIBLO(Z6)
	VMOVDQU32 Z2, 256(DI)
	NIBLO(Z7)
	VMOVDQU32 Z2, 320(DI)
	NIBHI(Z4)
	VMOVDQU32 Z2, 384(DI)
	NIBHI(Z5)
	VMOVDQU32 Z2, 448(DI)
	NIBHI(Z6)
	VMOVDQU32 Z2, 512(DI)
	NIBHI(Z7)
	VMOVDQU32 Z2, 576(DI)
	ADDQ $20, SI
	ADDQ $640, DI
	DECQ CX
	JNZ  pq41loop
	VZEROUPPER
	RET
