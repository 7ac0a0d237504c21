//go:build amd64 && !purego

#include "textflag.h"

// func readSumAVX2(b []byte) uint64
// len(b) is a multiple of 512: eight 32-byte loads, twice, per iteration,
// added into four accumulators.
TEXT ·readSumAVX2(SB), NOSPLIT, $0-32
	MOVQ  b_base+0(FP), SI
	MOVQ  b_len+8(FP), CX
	SHRQ  $9, CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	TESTQ CX, CX
	JEQ   reduce

loop:
	VPADDQ (SI), Y0, Y0
	VPADDQ 32(SI), Y1, Y1
	VPADDQ 64(SI), Y2, Y2
	VPADDQ 96(SI), Y3, Y3
	VPADDQ 128(SI), Y0, Y0
	VPADDQ 160(SI), Y1, Y1
	VPADDQ 192(SI), Y2, Y2
	VPADDQ 224(SI), Y3, Y3
	VPADDQ 256(SI), Y0, Y0
	VPADDQ 288(SI), Y1, Y1
	VPADDQ 320(SI), Y2, Y2
	VPADDQ 352(SI), Y3, Y3
	VPADDQ 384(SI), Y0, Y0
	VPADDQ 416(SI), Y1, Y1
	VPADDQ 448(SI), Y2, Y2
	VPADDQ 480(SI), Y3, Y3
	ADDQ   $512, SI
	DECQ   CX
	JNE    loop

reduce:
	VPADDQ       Y1, Y0, Y0
	VPADDQ       Y3, Y2, Y2
	VPADDQ       Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1
	VPADDQ       X1, X0, X0
	VMOVQ        X0, AX
	VZEROUPPER
	MOVQ         AX, ret+24(FP)
	RET

// func readSumAVX512(b []byte) uint64
// len(b) is a multiple of 512: eight 64-byte loads per iteration, added
// into four accumulators.
TEXT ·readSumAVX512(SB), NOSPLIT, $0-32
	MOVQ   b_base+0(FP), SI
	MOVQ   b_len+8(FP), CX
	SHRQ   $9, CX
	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	TESTQ  CX, CX
	JEQ    reduce

loop:
	VPADDQ (SI), Z0, Z0
	VPADDQ 64(SI), Z1, Z1
	VPADDQ 128(SI), Z2, Z2
	VPADDQ 192(SI), Z3, Z3
	VPADDQ 256(SI), Z0, Z0
	VPADDQ 320(SI), Z1, Z1
	VPADDQ 384(SI), Z2, Z2
	VPADDQ 448(SI), Z3, Z3
	ADDQ   $512, SI
	DECQ   CX
	JNE    loop

reduce:
	VPADDQ         Z1, Z0, Z0
	VPADDQ         Z3, Z2, Z2
	VPADDQ         Z2, Z0, Z0
	VEXTRACTI64X4  $1, Z0, Y1
	VPADDQ         Y1, Y0, Y0
	VEXTRACTI128   $1, Y0, X1
	VPADDQ         X1, X0, X0
	VPSHUFD        $0x4e, X0, X1
	VPADDQ         X1, X0, X0
	VMOVQ          X0, AX
	VZEROUPPER
	MOVQ           AX, ret+24(FP)
	RET
