// Shared by the sixteen-row GEMM kernels (qgemm16_amd64.s,
// qgemm16k_amd64.s).

// STORE writes accumulator z to the output row at R8 and steps R8 by one
// token stride (R13, bytes).
#define STORE(z) VMOVUPS z, (R8); ADDQ R13, R8

// GATHER gathers the dword at off within the current block of each of the
// sixteen rows (SI: row 0's block, Z1: row offsets) into z.
#define GATHER(off, z) \
	KXNORW     K1, K1, K1; \
	VPGATHERDD off(SI)(Z1*1), K1, z

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
