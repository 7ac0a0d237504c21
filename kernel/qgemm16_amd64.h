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
