//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// The eight-token Q4_K kernel (Q5_K tiles take it too: qgemm16k.go), for
// batched decode. Each sub-block's eight quant vectors are loaded once and
// dotted with all eight tokens (64 VPDPBUSD), so a tile's weights are read
// once per eight tokens instead of once per four. The sub-block scales
// multiply each token's sub-block sum (VPMULLD, one per eight VPDPBUSD);
// the mins meet the tokens' sub-block sums once per super-block in
// VPDPWSSD: a mins vector holds m_s as int32 (0..63, so its high int16 is
// 0) and an activation sum S_s as int32 (|S_s| ≤ 4096, so its low int16 is
// S_s), and VPDPWSSD adds m_s·S_s + 0·hi, exactly the VPMULLD product, at
// one instruction instead of a multiply and an add. The integer sums are
// the same integers the generic dot forms; the float epilogue is the x4
// kernel's, so the results equal ggml's dot bit for bit.

// K8DOT adds to acc the token's sub-block sum (its activation quants at
// a(R14); the sub-block's quant vectors in Z0-Z7) times the rows'
// sub-block scales at 0(R11) (tmp: scratch).
#define K8DOT(a, tmp, acc) \
	VPXORD        tmp, tmp, tmp; \
	VPDPBUSD.BCST a+0(R14), Z0, tmp; \
	VPDPBUSD.BCST a+4(R14), Z1, tmp; \
	VPDPBUSD.BCST a+8(R14), Z2, tmp; \
	VPDPBUSD.BCST a+12(R14), Z3, tmp; \
	VPDPBUSD.BCST a+16(R14), Z4, tmp; \
	VPDPBUSD.BCST a+20(R14), Z5, tmp; \
	VPDPBUSD.BCST a+24(R14), Z6, tmp; \
	VPDPBUSD.BCST a+28(R14), Z7, tmp; \
	VPMULLD       0(R11), tmp, tmp; \
	VPADDD        tmp, acc, acc

// K8EPI adds dy·d·float32(sumi) − dy·dmin·float32(summ) to acc, as the x4
// kernel does, summ being the mins (Z0-Z7) times the token's eight
// sub-block sums at aux(DI) (d in Z25, dmin in Z26, dy at dy(DI); clobbers
// Z24, Z27-Z30).
#define K8EPI(dy, aux, sumi, acc) \
	VPXORD        Z24, Z24, Z24; \
	VPDPWSSD.BCST aux+0(DI), Z0, Z24; \
	VPDPWSSD.BCST aux+4(DI), Z1, Z24; \
	VPDPWSSD.BCST aux+8(DI), Z2, Z24; \
	VPDPWSSD.BCST aux+12(DI), Z3, Z24; \
	VPDPWSSD.BCST aux+16(DI), Z4, Z24; \
	VPDPWSSD.BCST aux+20(DI), Z5, Z24; \
	VPDPWSSD.BCST aux+24(DI), Z6, Z24; \
	VPDPWSSD.BCST aux+28(DI), Z7, Z24; \
	VMULPS.BCST   dy(DI), Z25, Z27; \
	VCVTDQ2PS     sumi, Z28; \
	VMULPS        Z28, Z27, Z27; \
	VMULPS.BCST   dy(DI), Z26, Z29; \
	VCVTDQ2PS     Z24, Z30; \
	VMULPS        Z30, Z29, Z29; \
	VSUBPS        Z29, Z27, Z27; \
	VADDPS        Z27, acc, acc

// func gemm16Q4_Kx8PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_K (or Q5_K) rows
// packed in pack (nb super-blocks, nb > 0) and the group of 8 tokens at
// acts, prefetching pf meanwhile: six cache lines per sub-block, 3072
// bytes per super-block, more than a super-block of sixteen Q4_K (2304)
// or Q5_K rows (2816 bytes) holds, so that the next tile's raw rows are in
// cache when they are repacked. Registers: Z0-Z7 a
// sub-block's quants (then the mins), Z8-Z15 the tokens' float sums,
// Z16-Z23 their integer sums of the super-block, Z24-Z31 the tokens'
// sub-block sums (then epilogue scratch).
TEXT ·gemm16Q4_Kx8PF(SB), NOSPLIT, $0-112
	KARGS
	PFARGS
	VPXORD Z8, Z8, Z8
	VPXORD Z9, Z9, Z9
	VPXORD Z10, Z10, Z10
	VPXORD Z11, Z11, Z11
	VPXORD Z12, Z12, Z12
	VPXORD Z13, Z13, Z13
	VPXORD Z14, Z14, Z14
	VPXORD Z15, Z15, Z15

q4kx8blk:
	VPXORD Z16, Z16, Z16
	VPXORD Z17, Z17, Z17
	VPXORD Z18, Z18, Z18
	VPXORD Z19, Z19, Z19
	VPXORD Z20, Z20, Z20
	VPXORD Z21, Z21, Z21
	VPXORD Z22, Z22, Z22
	VPXORD Z23, Z23, Z23
	LEAQ 1152(SI), R10
	LEAQ 128(SI), R11
	MOVQ DI, R14
	MOVQ $8, DX

q4kx8sub:
	VMOVDQU32 0(R10), Z0
	VMOVDQU32 64(R10), Z1
	VMOVDQU32 128(R10), Z2
	VMOVDQU32 192(R10), Z3
	VMOVDQU32 256(R10), Z4
	VMOVDQU32 320(R10), Z5
	VMOVDQU32 384(R10), Z6
	VMOVDQU32 448(R10), Z7
	K8DOT(0, Z24, Z16)
	K8DOT(256, Z25, Z17)
	K8DOT(512, Z26, Z18)
	K8DOT(768, Z27, Z19)
	K8DOT(1024, Z28, Z20)
	K8DOT(1280, Z29, Z21)
	K8DOT(1536, Z30, Z22)
	K8DOT(1792, Z31, Z23)
	CMPQ R9, R12
	JAE  q4kx8nopf
	PF4
	PREFETCHT1 0(R9)
	PREFETCHT1 64(R9)
	ADDQ $128, R9

q4kx8nopf:
	ADDQ $512, R10
	ADDQ $64, R11
	ADDQ $32, R14
	DECQ DX
	JNZ  q4kx8sub

	VMOVDQU32 640(SI), Z0
	VMOVDQU32 704(SI), Z1
	VMOVDQU32 768(SI), Z2
	VMOVDQU32 832(SI), Z3
	VMOVDQU32 896(SI), Z4
	VMOVDQU32 960(SI), Z5
	VMOVDQU32 1024(SI), Z6
	VMOVDQU32 1088(SI), Z7
	VMOVUPS   0(SI), Z25
	VMOVUPS   64(SI), Z26
	K8EPI(2048, 2080, Z16, Z8)
	K8EPI(2052, 2144, Z17, Z9)
	K8EPI(2056, 2208, Z18, Z10)
	K8EPI(2060, 2272, Z19, Z11)
	K8EPI(2064, 2336, Z20, Z12)
	K8EPI(2068, 2400, Z21, Z13)
	K8EPI(2072, 2464, Z22, Z14)
	K8EPI(2076, 2528, Z23, Z15)
	ADDQ $5248, SI
	ADDQ $2592, DI
	DECQ CX
	JNZ  q4kx8blk
	STORE(Z8)
	STORE(Z9)
	STORE(Z10)
	STORE(Z11)
	STORE(Z12)
	STORE(Z13)
	STORE(Z14)
	STORE(Z15)
	VZEROUPPER
	RET
