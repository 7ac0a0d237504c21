//go:build amd64 && !purego

#include "textflag.h"
#include "qgemm16_amd64.h"

// AVX2 sixteen-row GEMM micro-kernels for Q2_K on the VNNI kernels' tiles
// (packQ2Kx16: each quant times its sub-block scale, 0..45, as an unsigned
// byte; the mins as int16 pairs) and interleaved activations
// (gemm16ActsK). As in qgemm16avx2_amd64.s a 256-bit register holds the
// same four columns of eight rows; the kernels take both eight-row halves
// side by side (the four-token one walking the tile once per token pair),
// so each broadcast feeds two VPMADDUBSW. VPMADDUBSW pairs are at most 45·128·2 =
// 11520 in magnitude, so two vectors' pairs add up in int16 (VPADDW)
// before VPMADDWD by int16 ones sums them into the row's int32 total of
// all 256 products; the mins meet the tokens' sixteen 16-column sums in
// eight VPMADDWD. The float epilogue per super-block is the VNNI kernels'
// (Q2KEPI), ggml's sum += dy·d·sumi − dy·dmin·summ, so results equal the
// generic dot bit for bit.

// func gemm16Q2_Kx4AVX2PF(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q2_K rows packed in
// pack (nb super-blocks, nb > 0) and the group of 4 token(s) at acts.
// The tile is walked once per token pair (BX = 0 or 8) with both
// eight-row halves side by side, so each broadcast feeds two VPMADDUBSW:
// Y0-Y3 are the int32 totals of token t (of the pass), half h in
// Y(2t+h), Y4-Y7 the mins' sums; the float sums accumulate in out.
TEXT ·gemm16Q2_Kx4AVX2PF(SB), NOSPLIT, $0-112
	MOVQ pf_base+88(FP), R12
	MOVQ R12, AX
	ADDQ pf_len+96(FP), AX
	MOVQ ostride+24(FP), R13
	SHLQ $2, R13
	MOVL $0x00010001, DX
	MOVQ DX, X15
	VPBROADCASTD X15, Y15
	XORQ BX, BX

q2kx4pass:
	MOVQ pack_base+32(FP), SI
	MOVQ acts_base+64(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ out_base+0(FP), R8
	MOVQ BX, R9
	SHRQ $2, R9
	IMULQ R13, R9
	ADDQ R9, R8
	VXORPS Y0, Y0, Y0
	VMOVUPS Y0, (R8)
	VMOVUPS Y0, 32(R8)
	VMOVUPS Y0, (R8)(R13*1)
	VMOVUPS Y0, 32(R8)(R13*1)

q2kx4blk:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	LEAQ 640(SI), R10
	MOVQ BX, R14
	SHLQ $6, R14
	ADDQ DI, R14
	MOVQ $16, DX

q2kx4sub:
	VMOVDQU 0(R10), Y8
	VMOVDQU 64(R10), Y9
	VMOVDQU 32(R10), Y10
	VMOVDQU 96(R10), Y11
	VPBROADCASTD 0(R14), Y12
	VPBROADCASTD 4(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y1, Y1
	VPBROADCASTD 256(R14), Y12
	VPBROADCASTD 260(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y2, Y2
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y3, Y3
	VMOVDQU 128(R10), Y8
	VMOVDQU 192(R10), Y9
	VMOVDQU 160(R10), Y10
	VMOVDQU 224(R10), Y11
	VPBROADCASTD 8(R14), Y12
	VPBROADCASTD 12(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y1, Y1
	VPBROADCASTD 264(R14), Y12
	VPBROADCASTD 268(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y2, Y2
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y3, Y3
	ADDQ $256, R10
	ADDQ $16, R14
	CMPQ R12, AX
	JAE  q2kx4nopf
	PREFETCHT1 0(R12)
	ADDQ $64, R12

q2kx4nopf:
	DECQ DX
	JNZ  q2kx4sub
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	MOVQ $128, R10
	MOVQ BX, R14
	SHLQ $4, R14
	LEAQ 1040(DI)(R14*1), R14

q2kx4min:
	VMOVDQU (SI)(R10*1), Y8
	VMOVDQU 32(SI)(R10*1), Y9
	VPBROADCASTD 0(R14), Y12
	VPMADDWD Y12, Y8, Y13
	VPADDD Y13, Y4, Y4
	VPMADDWD Y12, Y9, Y13
	VPADDD Y13, Y5, Y5
	VPBROADCASTD 64(R14), Y12
	VPMADDWD Y12, Y8, Y13
	VPADDD Y13, Y6, Y6
	VPMADDWD Y12, Y9, Y13
	VPADDD Y13, Y7, Y7
	ADDQ $64, R10
	ADDQ $4, R14
	CMPQ R10, $640
	JB   q2kx4min
	VBROADCASTSS 1024(DI)(BX*1), Y12
	VMULPS 0(SI), Y12, Y13
	VCVTDQ2PS Y0, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 64(SI), Y12, Y11
	VCVTDQ2PS Y4, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS (R8), Y13, Y13
	VMOVUPS Y13, (R8)
	VMULPS 32(SI), Y12, Y13
	VCVTDQ2PS Y1, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 96(SI), Y12, Y11
	VCVTDQ2PS Y5, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS 32(R8), Y13, Y13
	VMOVUPS Y13, 32(R8)
	VBROADCASTSS 1028(DI)(BX*1), Y12
	VMULPS 0(SI), Y12, Y13
	VCVTDQ2PS Y2, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 64(SI), Y12, Y11
	VCVTDQ2PS Y6, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS (R8)(R13*1), Y13, Y13
	VMOVUPS Y13, (R8)(R13*1)
	VMULPS 32(SI), Y12, Y13
	VCVTDQ2PS Y3, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 96(SI), Y12, Y11
	VCVTDQ2PS Y7, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS 32(R8)(R13*1), Y13, Y13
	VMOVUPS Y13, 32(R8)(R13*1)
	ADDQ $4736, SI
	ADDQ $1296, DI
	DECQ CX
	JNZ  q2kx4blk
	ADDQ $8, BX
	CMPQ BX, $16
	JB   q2kx4pass
	VZEROUPPER
	RET


// func gemm16Q2_Kx1AVX2(out []float32, ostride int, pack []byte, nb int, acts []byte)
//
// out[t*ostride+r] = row r · token t for the sixteen Q2_K rows packed in
// pack (nb super-blocks, nb > 0) and the group of 1 token(s) at acts,
// both eight-row halves side by side as in gemm16Q2_Kx4AVX2PF (Y0, Y1:
// their int32 totals; Y2, Y3: the mins' sums; the float sums in out).
TEXT ·gemm16Q2_Kx1AVX2(SB), NOSPLIT, $0-88
	MOVQ pack_base+32(FP), SI
	MOVQ acts_base+64(FP), DI
	MOVQ nb+56(FP), CX
	MOVQ out_base+0(FP), R8
	MOVL $0x00010001, DX
	MOVQ DX, X15
	VPBROADCASTD X15, Y15
	VXORPS Y0, Y0, Y0
	VMOVUPS Y0, (R8)
	VMOVUPS Y0, 32(R8)

q2kx1blk:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	LEAQ 640(SI), R10
	MOVQ DI, R14
	MOVQ $16, DX

q2kx1sub:
	VMOVDQU 0(R10), Y8
	VMOVDQU 64(R10), Y9
	VMOVDQU 32(R10), Y10
	VMOVDQU 96(R10), Y11
	VPBROADCASTD 0(R14), Y12
	VPBROADCASTD 4(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y1, Y1
	VMOVDQU 128(R10), Y8
	VMOVDQU 192(R10), Y9
	VMOVDQU 160(R10), Y10
	VMOVDQU 224(R10), Y11
	VPBROADCASTD 8(R14), Y12
	VPBROADCASTD 12(R14), Y13
	VPMADDUBSW Y12, Y8, Y4
	VPMADDUBSW Y13, Y9, Y5
	VPADDW Y5, Y4, Y4
	VPMADDWD Y15, Y4, Y4
	VPADDD Y4, Y0, Y0
	VPMADDUBSW Y12, Y10, Y6
	VPMADDUBSW Y13, Y11, Y7
	VPADDW Y7, Y6, Y6
	VPMADDWD Y15, Y6, Y6
	VPADDD Y6, Y1, Y1
	ADDQ $256, R10
	ADDQ $16, R14
	DECQ DX
	JNZ  q2kx1sub
	MOVQ $128, R10
	LEAQ 260(DI), R14

q2kx1min:
	VMOVDQU (SI)(R10*1), Y8
	VMOVDQU 32(SI)(R10*1), Y9
	VPBROADCASTD 0(R14), Y12
	VPMADDWD Y12, Y8, Y13
	VPADDD Y13, Y2, Y2
	VPMADDWD Y12, Y9, Y13
	VPADDD Y13, Y3, Y3
	ADDQ $64, R10
	ADDQ $4, R14
	CMPQ R10, $640
	JB   q2kx1min
	VBROADCASTSS 256(DI), Y12
	VMULPS 0(SI), Y12, Y13
	VCVTDQ2PS Y0, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 64(SI), Y12, Y11
	VCVTDQ2PS Y2, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS (R8), Y13, Y13
	VMOVUPS Y13, (R8)
	VMULPS 32(SI), Y12, Y13
	VCVTDQ2PS Y1, Y14
	VMULPS Y14, Y13, Y13
	VMULPS 96(SI), Y12, Y11
	VCVTDQ2PS Y3, Y14
	VMULPS Y14, Y11, Y11
	VSUBPS Y11, Y13, Y13
	VADDPS 32(R8), Y13, Y13
	VMOVUPS Y13, 32(R8)
	ADDQ $4736, SI
	ADDQ $324, DI
	DECQ CX
	JNZ  q2kx1blk
	VZEROUPPER
	RET


// Masks for pack16Q2_KAVX2: 0x03 and 0x0f in every byte.
DATA q2Mask03<>+0x00(SB)/8, $0x0303030303030303
DATA q2Mask03<>+0x08(SB)/8, $0x0303030303030303
DATA q2Mask03<>+0x10(SB)/8, $0x0303030303030303
DATA q2Mask03<>+0x18(SB)/8, $0x0303030303030303
GLOBL q2Mask03<>(SB), RODATA|NOPTR, $32

DATA q2Mask0f<>+0x00(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q2Mask0f<>+0x08(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q2Mask0f<>+0x10(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q2Mask0f<>+0x18(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL q2Mask0f<>(SB), RODATA|NOPTR, $32

// Q2KPMIN sets y (x its low half) to the row's sixteen 4-bit mins (the
// high nibbles of the scale bytes at s) as int16, so that dword j holds
// mins 2j and 2j+1.
#define Q2KPMIN(s, x, y) \
	VMOVDQU   s, x; \
	VPSRLW    $4, x, x; \
	VPAND     q2Mask0f<>(SB), x, x; \
	VPMOVZXBW x, y

// Q2KPQ sets y to the row's 32 quant bytes at m, shifted right by X8 and
// masked to two bits, times their sub-block scales: the scale bytes at s
// (low nibbles) in SCALEPAIRS' layout, through the ·k23Shuf control at
// (R11), as int16 (bytes of at most 3·15 = 45, so the products of VPMULLW
// do not carry from one byte into the next) (clobbers Y9, Y10).
#define Q2KPQ(m, s, y) \
	VMOVDQU     m, y; \
	VPSRLW      X8, y, y; \
	VPAND       q2Mask03<>(SB), y, y; \
	VMOVDQU     s, X9; \
	VPAND       q2Mask0f<>(SB), X9, X9; \
	VPSRLDQ     $1, X9, X10; \
	VINSERTI128 $1, X10, Y9, Y9; \
	VPSHUFB     (R11), Y9, Y9; \
	VPMULLW     Y9, y, y

// func pack16Q2_KAVX2(dst, w []byte, rb, nb int)
//
// packQ2Kx16 with AVX2 transposes: dst gets nb·4736 bytes. Each pass over
// a half (rows 0-7, then 8-15 at DI+32) stores d and dmin (SCALES8), the
// mins (T8), then for each of the 128-column halves h and shifts 2j the
// 32 bytes of the eight rows times their scales: dword q of such a
// vector is column group 32h+8j+q, so one 8×8 transpose (T8AT) stores
// eight consecutive column groups.
TEXT ·pack16Q2_KAVX2(SB), NOSPLIT, $0-64
	PACKARGS2

pq2a2loop:
	MOVQ SI, R10

pq2a2half:
	ADDQ    $80, R10
	SCALES8(0)
	ADDQ    $2, R10
	SCALES8(64)
	SUBQ    $82, R10
	Q2KPMIN((R10), X0, Y0)
	Q2KPMIN((R10)(AX*1), X1, Y1)
	Q2KPMIN((R10)(AX*2), X2, Y2)
	Q2KPMIN((R10)(BX*1), X3, Y3)
	Q2KPMIN((R10)(AX*4), X4, Y4)
	Q2KPMIN((R10)(DX*1), X5, Y5)
	Q2KPMIN((R10)(BX*2), X6, Y6)
	Q2KPMIN((R10)(R8*1), X7, Y7)
	T8(128)
	LEAQ ·k23Shuf(SB), R11
	LEAQ 640(DI), R14
	LEAQ 16(R10), R13 // half h = 0, then 1
	XORQ R12, R12 // shift 2j
	XORQ R15, R15

pq2a2q:
	VMOVQ R12, X8
	Q2KPQ((R13), (R10), Y0)
	Q2KPQ((R13)(AX*1), (R10)(AX*1), Y1)
	Q2KPQ((R13)(AX*2), (R10)(AX*2), Y2)
	Q2KPQ((R13)(BX*1), (R10)(BX*1), Y3)
	Q2KPQ((R13)(AX*4), (R10)(AX*4), Y4)
	Q2KPQ((R13)(DX*1), (R10)(DX*1), Y5)
	Q2KPQ((R13)(BX*2), (R10)(BX*2), Y6)
	Q2KPQ((R13)(R8*1), (R10)(R8*1), Y7)
	T8AT(0, R14)
	ADDQ $32, R11
	ADDQ $512, R14
	INCQ R15 // 4h+j
	ADDQ $2, R12
	CMPQ R12, $8
	JB   pq2a2q
	XORQ R12, R12
	ADDQ $32, R13
	CMPQ R15, $8
	JB   pq2a2q
	CMPQ R10, SI
	JNE  pq2a2next
	LEAQ (SI)(R9*1), R10
	ADDQ $32, DI
	JMP  pq2a2half

pq2a2next:
	SUBQ $32, DI
	ADDQ $84, SI
	ADDQ $4736, DI
	DECQ CX
	JNZ  pq2a2loop
	VZEROUPPER
	RET
