//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// AVX2 sixteen-row GEMM micro-kernels (qgemm16.go) for CPUs without
// AVX512_VNNI, on the same repacked tiles (packQ4_0x16, packQ8_0x16) and
// interleaved activations (gemm16Acts) as the VNNI kernels. A 256-bit
// register holds the same four columns of eight rows, so each kernel walks
// the tile twice, rows 0-7 and then rows 8-15 (the upper half of every
// 64-byte vector), with every 32-bit lane of an accumulator one row:
// VPMADDUBSW multiplies the rows' unsigned bytes by one token's four
// activation quants (broadcast), pairs summed to int16, and VPMADDWD by
// int16 ones sums the pairs to int32. Q4_0 tiles hold nibbles 0..15: a
// pair is at most 15·128·2 = 3840 in magnitude, so the eight pairs of a
// row's 32 columns add up in int16 (VPADDW, at most 30720) before one
// VPMADDWD per block, and the block's sum then adds the token's correction
// −8·Σq, as in the VNNI kernels. Q8_0 tiles hold
// quant+128: the kernels flip the sign bit back (w, −128..127), take |w|
// as the unsigned factor and move w's sign onto the activation (VPSIGNB),
// which is exact for activation quants in −127..127 (the activation
// quantizer's range; |w|·|q| pairs stay at most 32512), and start each
// block's sum from 0. Sums are scaled and added as the generic dot does
// (float32(s)·(dw·dy), no fused multiply-add): results equal ggml's dot bit
// for bit.

// func gemm16Q4_0x4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q4_0x4AVX2PF(SB), NOSPLIT, $0-112
	MOVQ pf_base+88(FP), R12
	XORQ BX, BX

gemm16Q4_0x4AVX2half:
	HALF8(0x0f0f0f0f)
	MOVQ pf_base+88(FP), AX
	ADDQ pf_len+96(FP), AX
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

gemm16Q4_0x4AVX2blk:
	VMOVUPS 0(SI), Y13
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VMOVDQU 64+0(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 0(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 32(DI), Y11
	VPMADDUBSW Y11, Y8, Y11
	VPADDW Y11, Y1, Y1
	VPBROADCASTD 64(DI), Y12
	VPMADDUBSW Y12, Y8, Y12
	VPADDW Y12, Y2, Y2
	VPBROADCASTD 96(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y3, Y3
	VPBROADCASTD 16(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VPBROADCASTD 48(DI), Y12
	VPMADDUBSW Y12, Y9, Y12
	VPADDW Y12, Y1, Y1
	VPBROADCASTD 80(DI), Y10
	VPMADDUBSW Y10, Y9, Y10
	VPADDW Y10, Y2, Y2
	VPBROADCASTD 112(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y3, Y3
	VMOVDQU 64+64(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 4(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 36(DI), Y11
	VPMADDUBSW Y11, Y8, Y11
	VPADDW Y11, Y1, Y1
	VPBROADCASTD 68(DI), Y12
	VPMADDUBSW Y12, Y8, Y12
	VPADDW Y12, Y2, Y2
	VPBROADCASTD 100(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y3, Y3
	VPBROADCASTD 20(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VPBROADCASTD 52(DI), Y12
	VPMADDUBSW Y12, Y9, Y12
	VPADDW Y12, Y1, Y1
	VPBROADCASTD 84(DI), Y10
	VPMADDUBSW Y10, Y9, Y10
	VPADDW Y10, Y2, Y2
	VPBROADCASTD 116(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y3, Y3
	VMOVDQU 64+128(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 8(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 40(DI), Y11
	VPMADDUBSW Y11, Y8, Y11
	VPADDW Y11, Y1, Y1
	VPBROADCASTD 72(DI), Y12
	VPMADDUBSW Y12, Y8, Y12
	VPADDW Y12, Y2, Y2
	VPBROADCASTD 104(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y3, Y3
	VPBROADCASTD 24(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VPBROADCASTD 56(DI), Y12
	VPMADDUBSW Y12, Y9, Y12
	VPADDW Y12, Y1, Y1
	VPBROADCASTD 88(DI), Y10
	VPMADDUBSW Y10, Y9, Y10
	VPADDW Y10, Y2, Y2
	VPBROADCASTD 120(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y3, Y3
	VMOVDQU 64+192(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 12(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 44(DI), Y11
	VPMADDUBSW Y11, Y8, Y11
	VPADDW Y11, Y1, Y1
	VPBROADCASTD 76(DI), Y12
	VPMADDUBSW Y12, Y8, Y12
	VPADDW Y12, Y2, Y2
	VPBROADCASTD 108(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y3, Y3
	VPBROADCASTD 28(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VPBROADCASTD 60(DI), Y12
	VPMADDUBSW Y12, Y9, Y12
	VPADDW Y12, Y1, Y1
	VPBROADCASTD 92(DI), Y10
	VPMADDUBSW Y10, Y9, Y10
	VPADDW Y10, Y2, Y2
	VPBROADCASTD 124(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y3, Y3
	VPMADDWD Y15, Y0, Y0
	VPBROADCASTD 144(DI), Y10
	VPADDD Y10, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VBROADCASTSS 128(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y0, Y0
	VADDPS Y0, Y4, Y4
	VPMADDWD Y15, Y1, Y1
	VPBROADCASTD 148(DI), Y11
	VPADDD Y11, Y1, Y1
	VCVTDQ2PS Y1, Y1
	VBROADCASTSS 132(DI), Y11
	VMULPS Y11, Y13, Y11
	VMULPS Y11, Y1, Y1
	VADDPS Y1, Y5, Y5
	VPMADDWD Y15, Y2, Y2
	VPBROADCASTD 152(DI), Y12
	VPADDD Y12, Y2, Y2
	VCVTDQ2PS Y2, Y2
	VBROADCASTSS 136(DI), Y12
	VMULPS Y12, Y13, Y12
	VMULPS Y12, Y2, Y2
	VADDPS Y2, Y6, Y6
	VPMADDWD Y15, Y3, Y3
	VPBROADCASTD 156(DI), Y10
	VPADDD Y10, Y3, Y3
	VCVTDQ2PS Y3, Y3
	VBROADCASTSS 140(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y3, Y3
	VADDPS Y3, Y7, Y7
	ADDQ $320, SI
	ADDQ $160, DI
	CMPQ R12, AX
	JAE  gemm16Q4_0x4AVX2blknopf
	PREFETCHT1 0(R12)
	PREFETCHT1 64(R12)
	PREFETCHT1 128(R12)
	ADDQ $192, R12

gemm16Q4_0x4AVX2blknopf:
	DECQ CX
	JNZ gemm16Q4_0x4AVX2blk
	STORE8(Y4)
	STORE8(Y5)
	STORE8(Y6)
	STORE8(Y7)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   gemm16Q4_0x4AVX2half
	VZEROUPPER
	RET

// func gemm16Q4_0x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q4_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q4_0x1AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

gemm16Q4_0x1AVX2half:
	HALF8(0x0f0f0f0f)
	VXORPS Y4, Y4, Y4

gemm16Q4_0x1AVX2blk:
	VMOVUPS 0(SI), Y13
	VPXOR Y0, Y0, Y0
	VMOVDQU 64+0(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 0(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 16(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VMOVDQU 64+64(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 4(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 20(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VMOVDQU 64+128(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 8(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 24(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VMOVDQU 64+192(SI), Y8
	VPSRLW $4, Y8, Y9
	VPAND Y14, Y8, Y8
	VPAND Y14, Y9, Y9
	VPBROADCASTD 12(DI), Y10
	VPMADDUBSW Y10, Y8, Y10
	VPADDW Y10, Y0, Y0
	VPBROADCASTD 28(DI), Y11
	VPMADDUBSW Y11, Y9, Y11
	VPADDW Y11, Y0, Y0
	VPMADDWD Y15, Y0, Y0
	VPBROADCASTD 36(DI), Y10
	VPADDD Y10, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VBROADCASTSS 32(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y0, Y0
	VADDPS Y0, Y4, Y4
	ADDQ $320, SI
	ADDQ $40, DI
	DECQ CX
	JNZ gemm16Q4_0x1AVX2blk
	STORE8(Y4)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   gemm16Q4_0x1AVX2half
	VZEROUPPER
	RET

// func gemm16Q8_0x4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q8_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 4 token(s) at acts.
TEXT ·gemm16Q8_0x4AVX2PF(SB), NOSPLIT, $0-112
	MOVQ pf_base+88(FP), R12
	XORQ BX, BX

gemm16Q8_0x4AVX2half:
	HALF8(0x80808080)
	MOVQ pf_base+88(FP), AX
	ADDQ pf_len+96(FP), AX
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7

gemm16Q8_0x4AVX2blk:
	VMOVUPS 0(SI), Y13
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VMOVDQU 64+0(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 0(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 32(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 64(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 96(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+64(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 4(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 36(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 68(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 100(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+128(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 8(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 40(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 72(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 104(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+192(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 12(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 44(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 76(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 108(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+256(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 16(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 48(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 80(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 112(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+320(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 20(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 52(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 84(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 116(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+384(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 24(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 56(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 88(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 120(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VMOVDQU 64+448(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 28(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VPBROADCASTD 60(DI), Y11
	VPSIGNB Y8, Y11, Y11
	VPMADDUBSW Y11, Y9, Y11
	VPMADDWD Y15, Y11, Y11
	VPADDD Y11, Y1, Y1
	VPBROADCASTD 92(DI), Y12
	VPSIGNB Y8, Y12, Y12
	VPMADDUBSW Y12, Y9, Y12
	VPMADDWD Y15, Y12, Y12
	VPADDD Y12, Y2, Y2
	VPBROADCASTD 124(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y3, Y3
	VCVTDQ2PS Y0, Y0
	VBROADCASTSS 128(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y0, Y0
	VADDPS Y0, Y4, Y4
	VCVTDQ2PS Y1, Y1
	VBROADCASTSS 132(DI), Y11
	VMULPS Y11, Y13, Y11
	VMULPS Y11, Y1, Y1
	VADDPS Y1, Y5, Y5
	VCVTDQ2PS Y2, Y2
	VBROADCASTSS 136(DI), Y12
	VMULPS Y12, Y13, Y12
	VMULPS Y12, Y2, Y2
	VADDPS Y2, Y6, Y6
	VCVTDQ2PS Y3, Y3
	VBROADCASTSS 140(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y3, Y3
	VADDPS Y3, Y7, Y7
	ADDQ $576, SI
	ADDQ $160, DI
	CMPQ R12, AX
	JAE  gemm16Q8_0x4AVX2blknopf
	PREFETCHT1 0(R12)
	PREFETCHT1 64(R12)
	PREFETCHT1 128(R12)
	PREFETCHT1 192(R12)
	PREFETCHT1 256(R12)
	ADDQ $320, R12

gemm16Q8_0x4AVX2blknopf:
	DECQ CX
	JNZ gemm16Q8_0x4AVX2blk
	STORE8(Y4)
	STORE8(Y5)
	STORE8(Y6)
	STORE8(Y7)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   gemm16Q8_0x4AVX2half
	VZEROUPPER
	RET

// func gemm16Q8_0x1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q8_0 rows packed in
// pack (nb blocks, nb > 0) and the group of 1 token(s) at acts.
TEXT ·gemm16Q8_0x1AVX2(SB), NOSPLIT, $0-88
	XORQ BX, BX

gemm16Q8_0x1AVX2half:
	HALF8(0x80808080)
	VXORPS Y4, Y4, Y4

gemm16Q8_0x1AVX2blk:
	VMOVUPS 0(SI), Y13
	VPXOR Y0, Y0, Y0
	VMOVDQU 64+0(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 0(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+64(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 4(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+128(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 8(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+192(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 12(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+256(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 16(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+320(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 20(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+384(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 24(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VMOVDQU 64+448(SI), Y8
	VPXOR Y14, Y8, Y8
	VPSIGNB Y8, Y8, Y9
	VPBROADCASTD 28(DI), Y10
	VPSIGNB Y8, Y10, Y10
	VPMADDUBSW Y10, Y9, Y10
	VPMADDWD Y15, Y10, Y10
	VPADDD Y10, Y0, Y0
	VCVTDQ2PS Y0, Y0
	VBROADCASTSS 32(DI), Y10
	VMULPS Y10, Y13, Y10
	VMULPS Y10, Y0, Y0
	VADDPS Y0, Y4, Y4
	ADDQ $576, SI
	ADDQ $40, DI
	DECQ CX
	JNZ gemm16Q8_0x1AVX2blk
	STORE8(Y4)
	ADDQ $32, BX
	CMPQ BX, $64
	JB   gemm16Q8_0x1AVX2half
	VZEROUPPER
	RET
// Repacking (packQ4_0x16, packQ8_0x16, packQ6Kx16) with AVX2 transposes.

DATA gemm16Sign80<>+0x00(SB)/8, $0x8080808080808080
DATA gemm16Sign80<>+0x08(SB)/8, $0x8080808080808080
DATA gemm16Sign80<>+0x10(SB)/8, $0x8080808080808080
DATA gemm16Sign80<>+0x18(SB)/8, $0x8080808080808080
GLOBL gemm16Sign80<>(SB), RODATA|NOPTR, $32

DATA gemm16Mask0f<>+0x00(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemm16Mask0f<>+0x08(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemm16Mask0f<>+0x10(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gemm16Mask0f<>+0x18(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL gemm16Mask0f<>(SB), RODATA|NOPTR, $32

DATA gemm16Mask30<>+0x00(SB)/8, $0x3030303030303030
DATA gemm16Mask30<>+0x08(SB)/8, $0x3030303030303030
DATA gemm16Mask30<>+0x10(SB)/8, $0x3030303030303030
DATA gemm16Mask30<>+0x18(SB)/8, $0x3030303030303030
GLOBL gemm16Mask30<>(SB), RODATA|NOPTR, $32

// Q8T8 flips the sign bits of the 32 quant bytes at 2(R10) of eight rows
// (rows AX apart) and stores them transposed (T8) at 64+qo(DI).
#define Q8T8(qo) \
	VMOVDQU gemm16Sign80<>(SB), Y15; \
	VPXOR   2(R10), Y15, Y0; \
	VPXOR   2(R10)(AX*1), Y15, Y1; \
	VPXOR   2(R10)(AX*2), Y15, Y2; \
	VPXOR   2(R10)(BX*1), Y15, Y3; \
	VPXOR   2(R10)(AX*4), Y15, Y4; \
	VPXOR   2(R10)(DX*1), Y15, Y5; \
	VPXOR   2(R10)(BX*2), Y15, Y6; \
	VPXOR   2(R10)(R8*1), Y15, Y7; \
	T8(64+qo)

// func pack16Q8_0AVX2(dst, w []byte, rb, nb int)
//
// packQ8_0x16 with AVX2 transposes: dst gets nb·576 bytes.
TEXT ·pack16Q8_0AVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pq8a2loop:
	MOVQ SI, R10
	SCALES8(0)
	Q8T8(0)
	LEAQ (SI)(R9*1), R10
	SCALES8(32)
	Q8T8(32)
	ADDQ $34, SI
	ADDQ $576, DI
	DECQ CX
	JNZ  pq8a2loop
	VZEROUPPER
	RET

// Q4T4 transposes the 16 quant bytes at m0…m3 of four rows as 4×4 dwords and stores vector k (dword k of the four rows) at
// 64+64k+qo(DI).
#define Q4T4(m0, m1, m2, m3, qo) \
	VMOVDQU     m0, X0; \
	VMOVDQU     m1, X1; \
	VMOVDQU     m2, X2; \
	VMOVDQU     m3, X3; \
	VPUNPCKLDQ  X1, X0, X4; \
	VPUNPCKHDQ  X1, X0, X5; \
	VPUNPCKLDQ  X3, X2, X6; \
	VPUNPCKHDQ  X3, X2, X7; \
	VPUNPCKLQDQ X6, X4, X0; \
	VPUNPCKHQDQ X6, X4, X1; \
	VPUNPCKLQDQ X7, X5, X2; \
	VPUNPCKHQDQ X7, X5, X3; \
	VMOVDQU     X0, (64+qo)(DI); \
	VMOVDQU     X1, (128+qo)(DI); \
	VMOVDQU     X2, (192+qo)(DI); \
	VMOVDQU     X3, (256+qo)(DI)

// func pack16Q4_0AVX2(dst, w []byte, rb, nb int)
//
// packQ4_0x16 with AVX2 transposes: dst gets nb·320 bytes.
TEXT ·pack16Q4_0AVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pq4a2loop:
	MOVQ SI, R10
	SCALES8(0)
	Q4T4(2(R10), 2(R10)(AX*1), 2(R10)(AX*2), 2(R10)(BX*1), 0)
	Q4T4(2(R10)(AX*4), 2(R10)(DX*1), 2(R10)(BX*2), 2(R10)(R8*1), 16)
	LEAQ (SI)(R9*1), R10
	SCALES8(32)
	Q4T4(2(R10), 2(R10)(AX*1), 2(R10)(AX*2), 2(R10)(BX*1), 32)
	Q4T4(2(R10)(AX*4), 2(R10)(DX*1), 2(R10)(BX*2), 2(R10)(R8*1), 48)
	ADDQ $18, SI
	ADDQ $320, DI
	DECQ CX
	JNZ  pq4a2loop
	VZEROUPPER
	RET

// Q6Q computes into y the 32 quants of one row (R12 its block) of 32
// consecutive columns: the nibbles of the 32 ql bytes at qo(R12), shifted
// right by ls (0 or 4), with the two bits of the qh bytes at ho(R12) that
// the left shift hs and right shift hr bring to bits 4-5 (clobbers Y15).
#define Q6Q(qo, ho, ls, hs, hr, y) \
	VMOVDQU qo(R12), y; \
	VPSRLW  $ls, y, y; \
	VPAND   gemm16Mask0f<>(SB), y, y; \
	VMOVDQU ho(R12), Y15; \
	VPSLLW  $hs, Y15, Y15; \
	VPSRLW  $hr, Y15, Y15; \
	VPAND   gemm16Mask30<>(SB), Y15, Y15; \
	VPOR    Y15, y, y

// Q6ROWS computes Q6Q for the eight rows from R10 (rows AX apart) into
// Y0-Y7 (R12 walks the rows).
#define Q6ROWS(qo, ho, ls, hs, hr) \
	MOVQ R10, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y0); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y1); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y2); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y3); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y4); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y5); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y6); \
	ADDQ AX, R12; \
	Q6Q(qo, ho, ls, hs, hr, Y7)

// Q6SC sign-extends eight int8 scales at so(R10) of each of the eight
// rows into Y0-Y7.
#define Q6SC(so) \
	VPMOVSXBD so(R10), Y0; \
	VPMOVSXBD so(R10)(AX*1), Y1; \
	VPMOVSXBD so(R10)(AX*2), Y2; \
	VPMOVSXBD so(R10)(BX*1), Y3; \
	VPMOVSXBD so(R10)(AX*4), Y4; \
	VPMOVSXBD so(R10)(DX*1), Y5; \
	VPMOVSXBD so(R10)(BX*2), Y6; \
	VPMOVSXBD so(R10)(R8*1), Y7

// Q6HALF repacks the eight rows from R10 into the tile at DI, rows
// 8h..8h+7 (ho = 32h): d, the sixteen scales, the 256 quants.
#define Q6HALF(ho) \
	ADDQ $208, R10; \
	SCALES8(ho); \
	SUBQ $208, R10; \
	Q6SC(192); \
	T8(64+ho); \
	Q6SC(200); \
	T8(576+ho); \
	Q6ROWS(0, 128, 0, 4, 0); \
	T8(1088+ho); \
	Q6ROWS(32, 128, 0, 2, 0); \
	T8(1088+512+ho); \
	Q6ROWS(0, 128, 4, 0, 0); \
	T8(1088+1024+ho); \
	Q6ROWS(32, 128, 4, 0, 2); \
	T8(1088+1536+ho); \
	Q6ROWS(64, 160, 0, 4, 0); \
	T8(1088+2048+ho); \
	Q6ROWS(96, 160, 0, 2, 0); \
	T8(1088+2560+ho); \
	Q6ROWS(64, 160, 4, 0, 0); \
	T8(1088+3072+ho); \
	Q6ROWS(96, 160, 4, 0, 2); \
	T8(1088+3584+ho)

// func pack16Q6_KAVX2(dst, w []byte, rb, nb int)
//
// packQ6Kx16 with AVX2 transposes: dst gets nb·5184 bytes.
TEXT ·pack16Q6_KAVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pq6a2loop:
	MOVQ SI, R10
	Q6HALF(0)
	LEAQ (SI)(R9*1), R10
	Q6HALF(32)
	ADDQ $210, SI
	ADDQ $5184, DI
	DECQ CX
	JNZ  pq6a2loop
	VZEROUPPER
	RET

// Q4_K's twelve scale bytes q (at 4 of a block, loaded as 16 bytes X) to
// eight scales and eight mins as bytes (ggml.ScaleMinK4): A gathers
// q0-3, q8-11, q4-7, q8-11 and B the bytes whose top two bits go on top:
// q0-3 under lanes 4-7 and q4-7 under lanes 12-15.
DATA gemm16Q4KShufA<>+0x00(SB)/8, $0x0b0a090803020100
DATA gemm16Q4KShufA<>+0x08(SB)/8, $0x0b0a090807060504
GLOBL gemm16Q4KShufA<>(SB), RODATA|NOPTR, $16

DATA gemm16Q4KShufB<>+0x00(SB)/8, $0x0302010080808080
DATA gemm16Q4KShufB<>+0x08(SB)/8, $0x0706050480808080
GLOBL gemm16Q4KShufB<>(SB), RODATA|NOPTR, $16

// Masks of A's lanes: the low six bits (lanes 0-3, 8-11) or four (4-7);
// and lanes 12-15 of A>>4.
DATA gemm16Q4KMlo<>+0x00(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA gemm16Q4KMlo<>+0x08(SB)/8, $0x000000003f3f3f3f
GLOBL gemm16Q4KMlo<>(SB), RODATA|NOPTR, $16

DATA gemm16Q4KMhi<>+0x00(SB)/8, $0x0000000000000000
DATA gemm16Q4KMhi<>+0x08(SB)/8, $0x0f0f0f0f00000000
GLOBL gemm16Q4KMhi<>(SB), RODATA|NOPTR, $16

// Q4KSM sets y (an X register's Y form) to the eight int32 scales (sel 0)
// or mins (sel 8) of the row at R12 (clobbers X12-X15).
#define Q4KSM(sel, x, y) \
	VMOVDQU    4(R12), X12; \
	VPSHUFB    gemm16Q4KShufA<>(SB), X12, X13; \
	VPSHUFB    gemm16Q4KShufB<>(SB), X12, X14; \
	VPSRLW     $4, X13, X15; \
	VPAND      gemm16Q4KMhi<>(SB), X15, X15; \
	VPAND      gemm16Q4KMlo<>(SB), X13, X13; \
	VPOR       X15, X13, X13; \
	VPSRLW     $6, X14, X14; \
	VPAND      gemm16Q4KMask03<>(SB), X14, X14; \
	VPSLLW     $4, X14, X14; \
	VPOR       X14, X13, X13; \
	VPSRLDQ    $sel, X13, X13; \
	VPMOVZXBD  X13, y

DATA gemm16Q4KMask03<>+0x00(SB)/8, $0x0303030303030303
DATA gemm16Q4KMask03<>+0x08(SB)/8, $0x0303030303030303
GLOBL gemm16Q4KMask03<>(SB), RODATA|NOPTR, $16

// Q4KSMROWS sets Y0-Y7 to Q4KSM of the eight rows from R10 (rows AX apart).
#define Q4KSMROWS(sel) \
	MOVQ R10, R12; \
	Q4KSM(sel, X0, Y0); \
	ADDQ AX, R12; \
	Q4KSM(sel, X1, Y1); \
	ADDQ AX, R12; \
	Q4KSM(sel, X2, Y2); \
	ADDQ AX, R12; \
	Q4KSM(sel, X3, Y3); \
	ADDQ AX, R12; \
	Q4KSM(sel, X4, Y4); \
	ADDQ AX, R12; \
	Q4KSM(sel, X5, Y5); \
	ADDQ AX, R12; \
	Q4KSM(sel, X6, Y6); \
	ADDQ AX, R12; \
	Q4KSM(sel, X7, Y7)

// Q4Q sets y to the 32 nibbles (shifted right by ls: 0 low, 4 high) of
// the 32 quant bytes at qo(R12).
#define Q4Q(qo, ls, y) \
	VMOVDQU qo(R12), y; \
	VPSRLW  $ls, y, y; \
	VPAND   gemm16Mask0f<>(SB), y, y

// Q4QROWS sets Y0-Y7 to Q4Q of the eight rows from R10.
#define Q4QROWS(qo, ls) \
	MOVQ R10, R12; \
	Q4Q(qo, ls, Y0); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y1); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y2); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y3); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y4); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y5); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y6); \
	ADDQ AX, R12; \
	Q4Q(qo, ls, Y7)

// Q4KHALF repacks the eight rows from R10 into the tile at DI, rows
// 8h..8h+7 (ho = 32h): d, dmin, the scales and mins, the quants.
#define Q4KHALF(ho) \
	SCALES8(ho); \
	ADDQ $2, R10; \
	SCALES8(64+ho); \
	SUBQ $2, R10; \
	Q4KSMROWS(0); \
	T8(128+ho); \
	Q4KSMROWS(8); \
	T8(640+ho); \
	Q4QROWS(16, 0); \
	T8(1152+ho); \
	Q4QROWS(16, 4); \
	T8(1152+512+ho); \
	Q4QROWS(48, 0); \
	T8(1152+1024+ho); \
	Q4QROWS(48, 4); \
	T8(1152+1536+ho); \
	Q4QROWS(80, 0); \
	T8(1152+2048+ho); \
	Q4QROWS(80, 4); \
	T8(1152+2560+ho); \
	Q4QROWS(112, 0); \
	T8(1152+3072+ho); \
	Q4QROWS(112, 4); \
	T8(1152+3584+ho)

// func pack16Q4_KAVX2(dst, w []byte, rb, nb int)
//
// packQ4Kx16 with AVX2 shuffles and transposes: dst gets nb·5248 bytes.
TEXT ·pack16Q4_KAVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pq4ka2loop:
	MOVQ SI, R10
	Q4KHALF(0)
	LEAQ (SI)(R9*1), R10
	Q4KHALF(32)
	ADDQ $144, SI
	ADDQ $5248, DI
	DECQ CX
	JNZ  pq4ka2loop
	VZEROUPPER
	RET

// The IQ4 values plus 128 in both 128-bit lanes, for VPSHUFB.
DATA gemm16IQ4U8<>+0x00(SB)/8, $0x766a5d4f3f2d1801
DATA gemm16IQ4U8<>+0x08(SB)/8, $0xf1d9c5b5a6998d81
DATA gemm16IQ4U8<>+0x10(SB)/8, $0x766a5d4f3f2d1801
DATA gemm16IQ4U8<>+0x18(SB)/8, $0xf1d9c5b5a6998d81
GLOBL gemm16IQ4U8<>(SB), RODATA|NOPTR, $32

// IQ4_XS sub-block scales: the bytes of scales_l (at 4) each twice and
// of scales_h (at 2) each four times, the shifts that bring each
// sub-block's four and two bits down, and 32.
DATA gemm16IQXShufL<>+0x00(SB)/8, $0x0505040403030202
GLOBL gemm16IQXShufL<>(SB), RODATA|NOPTR, $8
DATA gemm16IQXShufH<>+0x00(SB)/8, $0x0101010100000000
GLOBL gemm16IQXShufH<>(SB), RODATA|NOPTR, $8
DATA gemm16IQXShiftL<>+0x00(SB)/8, $0x0000000400000000
DATA gemm16IQXShiftL<>+0x08(SB)/8, $0x0000000400000000
DATA gemm16IQXShiftL<>+0x10(SB)/8, $0x0000000400000000
DATA gemm16IQXShiftL<>+0x18(SB)/8, $0x0000000400000000
GLOBL gemm16IQXShiftL<>(SB), RODATA|NOPTR, $32
DATA gemm16IQXShiftH<>+0x00(SB)/8, $0x0000000200000000
DATA gemm16IQXShiftH<>+0x08(SB)/8, $0x0000000600000004
DATA gemm16IQXShiftH<>+0x10(SB)/8, $0x0000000200000000
DATA gemm16IQXShiftH<>+0x18(SB)/8, $0x0000000600000004
GLOBL gemm16IQXShiftH<>(SB), RODATA|NOPTR, $32
DATA gemm16I32x15<>+0x00(SB)/8, $0x0000000f0000000f
DATA gemm16I32x15<>+0x08(SB)/8, $0x0000000f0000000f
DATA gemm16I32x15<>+0x10(SB)/8, $0x0000000f0000000f
DATA gemm16I32x15<>+0x18(SB)/8, $0x0000000f0000000f
GLOBL gemm16I32x15<>(SB), RODATA|NOPTR, $32
DATA gemm16I32x3<>+0x00(SB)/8, $0x0000000300000003
DATA gemm16I32x3<>+0x08(SB)/8, $0x0000000300000003
DATA gemm16I32x3<>+0x10(SB)/8, $0x0000000300000003
DATA gemm16I32x3<>+0x18(SB)/8, $0x0000000300000003
GLOBL gemm16I32x3<>(SB), RODATA|NOPTR, $32
DATA gemm16I32x32<>+0x00(SB)/8, $0x0000002000000020
DATA gemm16I32x32<>+0x08(SB)/8, $0x0000002000000020
DATA gemm16I32x32<>+0x10(SB)/8, $0x0000002000000020
DATA gemm16I32x32<>+0x18(SB)/8, $0x0000002000000020
GLOBL gemm16I32x32<>(SB), RODATA|NOPTR, $32

// IQXSC sets y to the eight sub-block scales ls−32 (int32) of the row at
// R12 (x: y's X register; clobbers X12-X15, Y13-Y14).
#define IQXSC(x, y) \
	VMOVQ      2(R12), X12; \
	VPSHUFB    gemm16IQXShufL<>(SB), X12, X13; \
	VPMOVZXBD  X13, Y13; \
	VPSRLVD    gemm16IQXShiftL<>(SB), Y13, Y13; \
	VPAND      gemm16I32x15<>(SB), Y13, Y13; \
	VPSHUFB    gemm16IQXShufH<>(SB), X12, X14; \
	VPMOVZXBD  X14, Y14; \
	VPSRLVD    gemm16IQXShiftH<>(SB), Y14, Y14; \
	VPAND      gemm16I32x3<>(SB), Y14, Y14; \
	VPSLLD     $4, Y14, Y14; \
	VPOR       Y14, Y13, Y13; \
	VPSUBD     gemm16I32x32<>(SB), Y13, y

// IQXSCROWS sets Y0-Y7 to IQXSC of the eight rows from R10.
#define IQXSCROWS \
	MOVQ R10, R12; \
	IQXSC(X0, Y0); \
	ADDQ AX, R12; \
	IQXSC(X1, Y1); \
	ADDQ AX, R12; \
	IQXSC(X2, Y2); \
	ADDQ AX, R12; \
	IQXSC(X3, Y3); \
	ADDQ AX, R12; \
	IQXSC(X4, Y4); \
	ADDQ AX, R12; \
	IQXSC(X5, Y5); \
	ADDQ AX, R12; \
	IQXSC(X6, Y6); \
	ADDQ AX, R12; \
	IQXSC(X7, Y7)

// IQXQ sets y to sub-block s's 32 values plus 128 of the row at R12: the
// low nibbles of its 16 bytes at qo(R12) (columns 0-15) in the low lane,
// the high ones (columns 16-31) in the high lane (clobbers Y15).
#define IQXQ(qo, y) \
	VBROADCASTI128 qo(R12), y; \
	VPSRLW         $4, y, Y15; \
	VPBLENDD       $0xf0, Y15, y, y; \
	VPAND          gemm16Mask0f<>(SB), y, y; \
	VMOVDQU        gemm16IQ4U8<>(SB), Y15; \
	VPSHUFB        y, Y15, y

// IQXQROWS sets Y0-Y7 to IQXQ of the eight rows from R10.
#define IQXQROWS(qo) \
	MOVQ R10, R12; \
	IQXQ(qo, Y0); \
	ADDQ AX, R12; \
	IQXQ(qo, Y1); \
	ADDQ AX, R12; \
	IQXQ(qo, Y2); \
	ADDQ AX, R12; \
	IQXQ(qo, Y3); \
	ADDQ AX, R12; \
	IQXQ(qo, Y4); \
	ADDQ AX, R12; \
	IQXQ(qo, Y5); \
	ADDQ AX, R12; \
	IQXQ(qo, Y6); \
	ADDQ AX, R12; \
	IQXQ(qo, Y7)

// IQXHALF repacks the eight rows from R10 into the tile at DI, rows
// 8h..8h+7 (ho = 32h): d, the eight sub-block scales, the 256 values.
#define IQXHALF(ho) \
	SCALES8(ho); \
	IQXSCROWS; \
	T8(64+ho); \
	IQXQROWS(8); \
	T8(576+ho); \
	IQXQROWS(24); \
	T8(576+512+ho); \
	IQXQROWS(40); \
	T8(576+1024+ho); \
	IQXQROWS(56); \
	T8(576+1536+ho); \
	IQXQROWS(72); \
	T8(576+2048+ho); \
	IQXQROWS(88); \
	T8(576+2560+ho); \
	IQXQROWS(104); \
	T8(576+3072+ho); \
	IQXQROWS(120); \
	T8(576+3584+ho)

// func pack16IQ4_XSAVX2(dst, w []byte, rb, nb int)
//
// packIQ4XSx16 with AVX2 shuffles and transposes: dst gets nb·4672 bytes.
TEXT ·pack16IQ4_XSAVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pqxa2loop:
	MOVQ SI, R10
	IQXHALF(0)
	LEAQ (SI)(R9*1), R10
	IQXHALF(32)
	ADDQ $136, SI
	ADDQ $4672, DI
	DECQ CX
	JNZ  pqxa2loop
	VZEROUPPER
	RET

// Constants for pack16Q3_KAVX2: 0x03 and 0x01 in every byte, 32 in every
// dword.
DATA gemm16Mask03<>+0x00(SB)/8, $0x0303030303030303
DATA gemm16Mask03<>+0x08(SB)/8, $0x0303030303030303
DATA gemm16Mask03<>+0x10(SB)/8, $0x0303030303030303
DATA gemm16Mask03<>+0x18(SB)/8, $0x0303030303030303
GLOBL gemm16Mask03<>(SB), RODATA|NOPTR, $32

DATA gemm16Mask01<>+0x00(SB)/8, $0x0101010101010101
DATA gemm16Mask01<>+0x08(SB)/8, $0x0101010101010101
DATA gemm16Mask01<>+0x10(SB)/8, $0x0101010101010101
DATA gemm16Mask01<>+0x18(SB)/8, $0x0101010101010101
GLOBL gemm16Mask01<>(SB), RODATA|NOPTR, $32

DATA gemm16D32<>+0x00(SB)/8, $0x0000002000000020
DATA gemm16D32<>+0x08(SB)/8, $0x0000002000000020
DATA gemm16D32<>+0x10(SB)/8, $0x0000002000000020
DATA gemm16D32<>+0x18(SB)/8, $0x0000002000000020
GLOBL gemm16D32<>(SB), RODATA|NOPTR, $32

// Q3KPSC sets X register x to the sixteen 6-bit scale fields (+32) of the
// Q3_K row whose 12 scale bytes are at p0 (p1 = p0+4, p2 = p0+8), as
// dotQ3KAVX2 unpacks them (clobbers R11-R15).
#define Q3KPSC(p0, p1, p2, x) \
	MOVL    p0, R11; \
	MOVL    p1, R12; \
	MOVL    p2, R13; \
	MOVL    R13, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	MOVL    R11, R15; \
	ANDL    $0x0f0f0f0f, R15; \
	ORL     R14, R15; \
	VMOVD   R15, x; \
	MOVL    R13, R14; \
	SHRL    $2, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	MOVL    R12, R15; \
	ANDL    $0x0f0f0f0f, R15; \
	ORL     R14, R15; \
	VPINSRD $1, R15, x, x; \
	MOVL    R13, R14; \
	SHRL    $4, R14; \
	ANDL    $0x03030303, R14; \
	SHLL    $4, R14; \
	MOVL    R11, R15; \
	SHRL    $4, R15; \
	ANDL    $0x0f0f0f0f, R15; \
	ORL     R14, R15; \
	VPINSRD $2, R15, x, x; \
	SHRL    $6, R13; \
	ANDL    $0x03030303, R13; \
	SHLL    $4, R13; \
	SHRL    $4, R12; \
	ANDL    $0x0f0f0f0f, R12; \
	ORL     R13, R12; \
	VPINSRD $3, R12, x, x

// Q3KPQ sets y to a Q3_K row's 32 quant bytes at m shifted right by X8
// and masked to two bits, with the hmask bit (the 32 bytes at hm shifted
// right by X9) at bit 2: 0..7, the value plus 4 (clobbers Y10).
#define Q3KPQ(m, hm, y) \
	VMOVDQU m, y; \
	VPSRLW  X8, y, y; \
	VPAND   gemm16Mask03<>(SB), y, y; \
	VMOVDQU hm, Y10; \
	VPSRLW  X9, Y10, Y10; \
	VPAND   gemm16Mask01<>(SB), Y10, Y10; \
	VPSLLW  $2, Y10, Y10; \
	VPOR    Y10, y, y

// func pack16Q3_KAVX2(dst, w []byte, rb, nb int)
//
// packQ3Kx16 with AVX2 transposes: dst gets nb·5184 bytes (the Q6_K tile
// layout). Each pass over a half (rows 0-7, then 8-15 at DI+32) stores d
// (SCALES8), the sixteen scales less 32 (two T8s, the unpacked scale bytes
// kept in the frame between them), then for each of the 128-column halves
// h and shifts 2j the eight rows' 32 quant bytes with their hmask bits
// 4h+j: dword q of such a vector is column group 32h+8j+q, so one 8×8
// transpose (T8AT) stores eight consecutive column groups.
TEXT ·pack16Q3_KAVX2(SB), NOSPLIT, $128-64
	PACKARGS2

pq3a2loop:
	MOVQ SI, R10

pq3a2half:
	ADDQ $108, R10
	SCALES8(0)
	SUBQ $108, R10
	Q3KPSC(96(R10), 100(R10), 104(R10), X0)
	VMOVDQU X0, f-128(SP)
	VPMOVZXBD X0, Y0
	VPSUBD gemm16D32<>(SB), Y0, Y0
	Q3KPSC(96(R10)(AX*1), 100(R10)(AX*1), 104(R10)(AX*1), X1)
	VMOVDQU X1, f-112(SP)
	VPMOVZXBD X1, Y1
	VPSUBD gemm16D32<>(SB), Y1, Y1
	Q3KPSC(96(R10)(AX*2), 100(R10)(AX*2), 104(R10)(AX*2), X2)
	VMOVDQU X2, f-96(SP)
	VPMOVZXBD X2, Y2
	VPSUBD gemm16D32<>(SB), Y2, Y2
	Q3KPSC(96(R10)(BX*1), 100(R10)(BX*1), 104(R10)(BX*1), X3)
	VMOVDQU X3, f-80(SP)
	VPMOVZXBD X3, Y3
	VPSUBD gemm16D32<>(SB), Y3, Y3
	Q3KPSC(96(R10)(AX*4), 100(R10)(AX*4), 104(R10)(AX*4), X4)
	VMOVDQU X4, f-64(SP)
	VPMOVZXBD X4, Y4
	VPSUBD gemm16D32<>(SB), Y4, Y4
	Q3KPSC(96(R10)(DX*1), 100(R10)(DX*1), 104(R10)(DX*1), X5)
	VMOVDQU X5, f-48(SP)
	VPMOVZXBD X5, Y5
	VPSUBD gemm16D32<>(SB), Y5, Y5
	Q3KPSC(96(R10)(BX*2), 100(R10)(BX*2), 104(R10)(BX*2), X6)
	VMOVDQU X6, f-32(SP)
	VPMOVZXBD X6, Y6
	VPSUBD gemm16D32<>(SB), Y6, Y6
	Q3KPSC(96(R10)(R8*1), 100(R10)(R8*1), 104(R10)(R8*1), X7)
	VMOVDQU X7, f-16(SP)
	VPMOVZXBD X7, Y7
	VPSUBD gemm16D32<>(SB), Y7, Y7
	T8(64)
	VPMOVZXBD f-120(SP), Y0
	VPSUBD gemm16D32<>(SB), Y0, Y0
	VPMOVZXBD f-104(SP), Y1
	VPSUBD gemm16D32<>(SB), Y1, Y1
	VPMOVZXBD f-88(SP), Y2
	VPSUBD gemm16D32<>(SB), Y2, Y2
	VPMOVZXBD f-72(SP), Y3
	VPSUBD gemm16D32<>(SB), Y3, Y3
	VPMOVZXBD f-56(SP), Y4
	VPSUBD gemm16D32<>(SB), Y4, Y4
	VPMOVZXBD f-40(SP), Y5
	VPSUBD gemm16D32<>(SB), Y5, Y5
	VPMOVZXBD f-24(SP), Y6
	VPSUBD gemm16D32<>(SB), Y6, Y6
	VPMOVZXBD f-8(SP), Y7
	VPSUBD gemm16D32<>(SB), Y7, Y7
	T8(64+512)
	LEAQ 1088(DI), R14
	LEAQ 32(R10), R13
	XORQ R12, R12
	MOVQ $0, R15

pq3a2q0:
	VMOVQ R12, X8
	VMOVQ R15, X9
	Q3KPQ((R13), (R10), Y0)
	Q3KPQ((R13)(AX*1), (R10)(AX*1), Y1)
	Q3KPQ((R13)(AX*2), (R10)(AX*2), Y2)
	Q3KPQ((R13)(BX*1), (R10)(BX*1), Y3)
	Q3KPQ((R13)(AX*4), (R10)(AX*4), Y4)
	Q3KPQ((R13)(DX*1), (R10)(DX*1), Y5)
	Q3KPQ((R13)(BX*2), (R10)(BX*2), Y6)
	Q3KPQ((R13)(R8*1), (R10)(R8*1), Y7)
	T8AT(0, R14)
	ADDQ $512, R14
	ADDQ $2, R12
	INCQ R15
	CMPQ R12, $8
	JB   pq3a2q0
	LEAQ 64(R10), R13
	XORQ R12, R12
	MOVQ $4, R15

pq3a2q1:
	VMOVQ R12, X8
	VMOVQ R15, X9
	Q3KPQ((R13), (R10), Y0)
	Q3KPQ((R13)(AX*1), (R10)(AX*1), Y1)
	Q3KPQ((R13)(AX*2), (R10)(AX*2), Y2)
	Q3KPQ((R13)(BX*1), (R10)(BX*1), Y3)
	Q3KPQ((R13)(AX*4), (R10)(AX*4), Y4)
	Q3KPQ((R13)(DX*1), (R10)(DX*1), Y5)
	Q3KPQ((R13)(BX*2), (R10)(BX*2), Y6)
	Q3KPQ((R13)(R8*1), (R10)(R8*1), Y7)
	T8AT(0, R14)
	ADDQ $512, R14
	ADDQ $2, R12
	INCQ R15
	CMPQ R12, $8
	JB   pq3a2q1
	CMPQ R10, SI
	JNE  pq3a2next
	LEAQ (SI)(R9*1), R10
	ADDQ $32, DI
	JMP  pq3a2half

pq3a2next:
	SUBQ $32, DI
	ADDQ $110, SI
	ADDQ $5184, DI
	DECQ CX
	JNZ  pq3a2loop
	VZEROUPPER
	RET
