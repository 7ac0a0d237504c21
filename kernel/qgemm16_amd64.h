// Shared by the sixteen-row GEMM kernels (qgemm16_amd64.s, qgemm16avx2_amd64.s,
// qgemm16kavx2_amd64.s, qgemm16q2avx2_amd64.s,
// qgemm16k_amd64.s, qgemm16k2_amd64.s, qgemm16k8_amd64.s).

// STORE writes accumulator z to the output row at R8 and steps R8 by one
// token stride (R13, bytes).
#define STORE(z) VMOVUPS z, (R8); ADDQ R13, R8

// STORE8 writes an AVX2 kernel's eight-row accumulator y to the output at
// R8 and steps R8 by one token stride (R13, bytes).
#define STORE8(y) VMOVUPS y, (R8); ADDQ R13, R8

// GATHER gathers the dword at off within the current block of each of the
// sixteen rows (SI: row 0's block, Z1: row offsets) into z.
#define GATHER(off, z) \
	KXNORW     K1, K1, K1; \
	VPGATHERDD off(SI)(Z1*1), K1, z

// The sixteen rows' binary16 scales (the low halves of the dwords at the
// blocks' starts) as float32 at 0(DI) (PACKARGS set).
#define PACKSCALES \
	GATHER(0, Z2); \
	VPMOVDW    Z2, Y3; \
	VCVTPH2PS  Y3, Z3; \
	VMOVUPS    Z3, 0(DI)

// PACKARGS loads a repacking routine's arguments (dst+0 w+24 rb+48 nb+56):
// DI, SI, CX, and Z1 = the sixteen rows' byte offsets (·gemm16RowIdx × rb).
#define PACKARGS \
	MOVQ dst_base+0(FP), DI; \
	MOVQ w_base+24(FP), SI; \
	MOVQ nb+56(FP), CX; \
	VPBROADCASTD rb+48(FP), Z1; \
	VPMULLD    ·gemm16RowIdx(SB), Z1, Z1

// ROWREGS sets the row-stride multiples ROWS4 addresses the sixteen rows
// by, relative to SI: AX = rb, BX = 3rb, DX = 5rb, R8 = 7rb, R9 = 9rb,
// R10 = 11rb, R11 = 13rb, R12 = 15rb (rb+48(FP): a repacking routine's).
#define ROWREGS \
	MOVQ rb+48(FP), AX; \
	LEAQ (AX)(AX*2), BX; \
	LEAQ (AX)(AX*4), DX; \
	LEAQ (BX)(AX*4), R8; \
	LEAQ (AX)(AX*8), R9; \
	LEAQ (R9)(AX*2), R10; \
	LEAQ (R10)(AX*2), R11; \
	LEAQ (R11)(AX*2), R12

// GATHER4 is GATHER(off, t0), GATHER(off+4, t1), GATHER(off+8, t2),
// GATHER(off+12, t3) (ROWREGS set) by a transpose instead of gathers:
// each tg gets the 16 bytes at off of rows g, 4+g, 8+g and 12+g in its
// four 128-bit lanes, and two rounds of unpacks turn the four 4×4 dword
// blocks around, so that dword r of t0 is row r's first dword, and so on.
// s0-s3 are scratch.
#define GATHER4(off, t0, t1, t2, t3, s0, s1, s2, s3) \
	VBROADCASTI32X4 off(SI), t0; \
	VINSERTI32X4    $1, off(SI)(AX*4), t0, t0; \
	VINSERTI32X4    $2, off(SI)(AX*8), t0, t0; \
	VINSERTI32X4    $3, off(SI)(BX*4), t0, t0; \
	VBROADCASTI32X4 off(SI)(AX*1), t1; \
	VINSERTI32X4    $1, off(SI)(DX*1), t1, t1; \
	VINSERTI32X4    $2, off(SI)(R9*1), t1, t1; \
	VINSERTI32X4    $3, off(SI)(R11*1), t1, t1; \
	VBROADCASTI32X4 off(SI)(AX*2), t2; \
	VINSERTI32X4    $1, off(SI)(BX*2), t2, t2; \
	VINSERTI32X4    $2, off(SI)(DX*2), t2, t2; \
	VINSERTI32X4    $3, off(SI)(R8*2), t2, t2; \
	VBROADCASTI32X4 off(SI)(BX*1), t3; \
	VINSERTI32X4    $1, off(SI)(R8*1), t3, t3; \
	VINSERTI32X4    $2, off(SI)(R10*1), t3, t3; \
	VINSERTI32X4    $3, off(SI)(R12*1), t3, t3; \
	VPUNPCKLDQ      t1, t0, s0; \
	VPUNPCKHDQ      t1, t0, s1; \
	VPUNPCKLDQ      t3, t2, s2; \
	VPUNPCKHDQ      t3, t2, s3; \
	VPUNPCKLQDQ     s2, s0, t0; \
	VPUNPCKHQDQ     s2, s0, t1; \
	VPUNPCKLQDQ     s3, s1, t2; \
	VPUNPCKHQDQ     s3, s1, t3

// Arguments: out+0 ostride+24 pack+32 nb+56 acts+64. Sets R8 (out), R13
// (ostride bytes), SI (tile), DI (acts), CX (super-blocks).
#define KARGS \
	MOVQ out_base+0(FP), R8; \
	MOVQ ostride+24(FP), R13; \
	SHLQ $2, R13; \
	MOVQ pack_base+32(FP), SI; \
	MOVQ acts_base+64(FP), DI; \
	MOVQ nb+56(FP), CX

// PFARGS sets R9 and R12 to the start and the end of a kernel's prefetch
// range pf (pf+88).
#define PFARGS \
	MOVQ pf_base+88(FP), R9; \
	MOVQ pf_len+96(FP), R12; \
	ADDQ R9, R12

// PF4 prefetches the four cache lines at R9 into L2 and steps R9 past
// them. PREFETCHT1, not T0: on a Zen 4 (BenchmarkQDecodePrefetch, n = 8)
// T0 lines evict the tile being dotted from L1 and made Q6_K slower than
// ReadSum alone, while T1 took 14-20% off the CPU time of Q4_K and Q6_K
// (T2 10-19%, NTA nothing).
#define PF4 \
	PREFETCHT1 0(R9); \
	PREFETCHT1 64(R9); \
	PREFETCHT1 128(R9); \
	PREFETCHT1 192(R9); \
	ADDQ       $256, R9

// K4HEAD repacks the 16-byte head of a Q4_K or Q5_K super-block (d, dmin,
// the packed 6-bit scales and mins) of the sixteen rows at SI into the tile
// at DI: d and dmin as float32 at 0 and 64, the eight scales as int32
// vectors at 128, the eight mins at 640 (ROWREGS set; Z9 = 63, Z10 = 15,
// Z11 = 3 in every dword; clobbers Z2-Z7, Z16-Z19).
#define K4HEAD \
	GATHER4(0, Z2, Z5, Z6, Z7, Z16, Z17, Z18, Z19); \
	VPMOVDW   Z2, Y3; \
	VCVTPH2PS Y3, Z3; \
	VMOVUPS   Z3, 0(DI); \
	VPSRLD    $16, Z2, Z4; \
	VPMOVDW   Z4, Y4; \
	VCVTPH2PS Y4, Z4; \
	VMOVUPS   Z4, 64(DI); \
	VPSRLD $0, Z5, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 128(DI); \
	VPSRLD $0, Z6, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 640(DI); \
	VPSRLD $0, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $6, Z5, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 384(DI); \
	VPSRLD $4, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $6, Z6, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 896(DI); \
	VPSRLD $8, Z5, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 192(DI); \
	VPSRLD $8, Z6, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 704(DI); \
	VPSRLD $8, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $14, Z5, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 448(DI); \
	VPSRLD $12, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $14, Z6, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 960(DI); \
	VPSRLD $16, Z5, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 256(DI); \
	VPSRLD $16, Z6, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 768(DI); \
	VPSRLD $16, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $22, Z5, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 512(DI); \
	VPSRLD $20, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $22, Z6, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 1024(DI); \
	VPSRLD $24, Z5, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 320(DI); \
	VPSRLD $24, Z6, Z2; \
	VPANDD Z9, Z2, Z2; \
	VMOVDQU32 Z2, 832(DI); \
	VPSRLD $24, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $30, Z5, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 576(DI); \
	VPSRLD $28, Z7, Z2; \
	VPANDD Z10, Z2, Z2; \
	VPSRLD $30, Z6, Z3; \
	VPANDD Z11, Z3, Z3; \
	VPSLLD $4, Z3, Z3; \
	VPORD  Z3, Z2, Z2; \
	VMOVDQU32 Z2, 1088(DI)

// HALF8 sets up one half of a sixteen-row tile for the AVX2 kernels
// (qgemm16avx2_amd64.s, qgemm16kavx2_amd64.s), BX = 0 or 32 selecting rows
// 0-7 or 8-15 (arguments out+0 ostride+24 pack+32 nb+56 acts+64): SI =
// pack+BX, R8 = out+BX, DI = acts, CX = nb, R13 = ostride in bytes, Y15 =
// int16 ones, Y14 = the byte mask broadcast (clobbers AX).
#define HALF8(mask) \
	MOVQ pack_base+32(FP), SI; \
	ADDQ BX, SI; \
	MOVQ out_base+0(FP), R8; \
	ADDQ BX, R8; \
	MOVQ acts_base+64(FP), DI; \
	MOVQ nb+56(FP), CX; \
	MOVQ ostride+24(FP), R13; \
	SHLQ $2, R13; \
	MOVL $0x00010001, AX; \
	MOVQ AX, X15; \
	VPBROADCASTD X15, Y15; \
	MOVL $mask, AX; \
	MOVQ AX, X14; \
	VPBROADCASTD X14, Y14

// T8REG transposes Y0-Y7 as 8×8 dwords (row r of the input in Yr) into
// Y8-Y15 (column k, dword k of the eight rows, in Y8+k; clobbers Y0-Y7).
#define T8REG \
	VPUNPCKLDQ  Y1, Y0, Y8; \
	VPUNPCKHDQ  Y1, Y0, Y9; \
	VPUNPCKLDQ  Y3, Y2, Y10; \
	VPUNPCKHDQ  Y3, Y2, Y11; \
	VPUNPCKLDQ  Y5, Y4, Y12; \
	VPUNPCKHDQ  Y5, Y4, Y13; \
	VPUNPCKLDQ  Y7, Y6, Y14; \
	VPUNPCKHDQ  Y7, Y6, Y15; \
	VPUNPCKLQDQ Y10, Y8, Y0; \
	VPUNPCKHQDQ Y10, Y8, Y1; \
	VPUNPCKLQDQ Y11, Y9, Y2; \
	VPUNPCKHQDQ Y11, Y9, Y3; \
	VPUNPCKLQDQ Y14, Y12, Y4; \
	VPUNPCKHQDQ Y14, Y12, Y5; \
	VPUNPCKLQDQ Y15, Y13, Y6; \
	VPUNPCKHQDQ Y15, Y13, Y7; \
	VPERM2I128  $0x20, Y4, Y0, Y8; \
	VPERM2I128  $0x20, Y5, Y1, Y9; \
	VPERM2I128  $0x20, Y6, Y2, Y10; \
	VPERM2I128  $0x20, Y7, Y3, Y11; \
	VPERM2I128  $0x31, Y4, Y0, Y12; \
	VPERM2I128  $0x31, Y5, Y1, Y13; \
	VPERM2I128  $0x31, Y6, Y2, Y14; \
	VPERM2I128  $0x31, Y7, Y3, Y15

// T8AT transposes Y0-Y7 as 8×8 dwords (T8REG) and stores column k at
// o+64k(p) (clobbers Y0-Y15).
#define T8AT(o, p) \
	T8REG; \
	VMOVDQU     Y8, (o+0)(p); \
	VMOVDQU     Y9, (o+64)(p); \
	VMOVDQU     Y10, (o+128)(p); \
	VMOVDQU     Y11, (o+192)(p); \
	VMOVDQU     Y12, (o+256)(p); \
	VMOVDQU     Y13, (o+320)(p); \
	VMOVDQU     Y14, (o+384)(p); \
	VMOVDQU     Y15, (o+448)(p)

// T8 is T8AT at DI.
#define T8(o) T8AT(o, DI)

// PACKARGS2 loads a repacking routine's arguments (dst+0 w+24 rb+48
// nb+56): DI = dst, SI = w, CX = nb, and the row-stride multiples AX = rb,
// BX = 3rb, DX = 5rb, R8 = 7rb; R9 = 8rb.
#define PACKARGS2 \
	MOVQ dst_base+0(FP), DI; \
	MOVQ w_base+24(FP), SI; \
	MOVQ nb+56(FP), CX; \
	MOVQ rb+48(FP), AX; \
	LEAQ (AX)(AX*2), BX; \
	LEAQ (AX)(AX*4), DX; \
	LEAQ (BX)(AX*4), R8; \
	MOVQ AX, R9; \
	SHLQ $3, R9

// SCALES8 converts the binary16 scales at 0(R10) of the eight rows from R10
// (R10 = row 0's block, rows AX apart) into float32 at do(DI) (clobbers
// X0, Y1).
#define SCALES8(do) \
	VPINSRW   $0, (R10), X0, X0; \
	VPINSRW   $1, (R10)(AX*1), X0, X0; \
	VPINSRW   $2, (R10)(AX*2), X0, X0; \
	VPINSRW   $3, (R10)(BX*1), X0, X0; \
	VPINSRW   $4, (R10)(AX*4), X0, X0; \
	VPINSRW   $5, (R10)(DX*1), X0, X0; \
	VPINSRW   $6, (R10)(BX*2), X0, X0; \
	VPINSRW   $7, (R10)(R8*1), X0, X0; \
	VCVTPH2PS X0, Y1; \
	VMOVUPS   Y1, do(DI)
