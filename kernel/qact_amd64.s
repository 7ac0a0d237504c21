//go:build amd64 && !purego

#include "textflag.h"

// func quantQ8_KAVX512(q []int8, d []float32, bs []int16, x []float32)
//
// ggml.QuantizeActQ8_K for len(d) super-blocks of 256, bit for bit: amax
// is the largest |x| (NaN never: VMAXPS keeps the running maximum where
// the new value is NaN, as the reference's av > amax does), mx the first x
// with |x| = amax, iscale = −127/mx, q = int8(min(127, nearestInt(iscale·x)))
// by the reference's float32 round-by-magic-number, d = 1/iscale, and bs
// the sixteen 16-quant sums (VPSADBW of q+128, less 2048). A zero amax
// gives d = 0 and zero quants and sums.
TEXT ·quantQ8_KAVX512(SB), NOSPLIT, $0-96
	MOVQ q_base+0(FP), DI
	MOVQ d_base+24(FP), DX
	MOVQ d_len+32(FP), CX
	MOVQ bs_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVL $0x7fffffff, AX
	VPBROADCASTD AX, Z31
	MOVL $0x4b400000, AX // 12582912
	VPBROADCASTD AX, Z30
	MOVL $0x007fffff, AX
	VPBROADCASTD AX, Z29
	MOVL $0x00400000, AX
	VPBROADCASTD AX, Z28
	MOVL $127, AX
	VPBROADCASTD AX, Z27
	MOVL $0x80808080, AX
	VPBROADCASTD AX, Z26
	MOVL $2048, AX
	VPBROADCASTD AX, Z25
	VMOVDQU32 ·q8kSumIdx(SB), Z24
	MOVL $0xc2fe0000, AX // -127
	VMOVD AX, X23
	MOVL $0x3f800000, AX // 1
	VMOVD AX, X22

qkloop:
	TESTQ CX, CX
	JZ    qkdone
	// running max of |x| over the 16 vectors (lane-wise), then across lanes
	VPXORD Z0, Z0, Z0
	MOVQ   $0, AX

qkmax:
	VANDPS  (SI)(AX*1), Z31, Z1
	VMAXPS  Z0, Z1, Z0
	ADDQ    $64, AX
	CMPQ    AX, $1024
	JNE     qkmax
	VEXTRACTF64X4 $1, Z0, Y1
	VMAXPS  Y0, Y1, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS  X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS  X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS  X0, X1, X0
	VXORPS  X1, X1, X1
	VUCOMISS X1, X0
	JEQ     qkzero
	// mx: the first x whose |x| equals amax
	VBROADCASTSS X0, Z2
	MOVQ   $0, AX

qkfind:
	VANDPS   (SI)(AX*1), Z31, Z1
	VCMPPS   $0, Z2, Z1, K1
	KMOVW    K1, BX
	TESTL    BX, BX
	JNZ      qkfound
	ADDQ     $64, AX
	JMP      qkfind

qkfound:
	TZCNTL   BX, BX
	LEAQ     (AX)(BX*4), AX
	VMOVSS   (SI)(AX*1), X3
	VDIVSS   X3, X23, X4      // iscale = -127/mx
	VDIVSS   X4, X22, X5      // 1/iscale
	VMOVSS   X5, (DX)
	VBROADCASTSS X4, Z4
	MOVQ   $0, AX
	MOVQ   $0, BX

qkquant:
	VMULPS    (SI)(AX*4), Z4, Z1
	VADDPS    Z30, Z1, Z1
	VPANDD    Z29, Z1, Z1
	VPSUBD    Z28, Z1, Z1
	VPMINSD   Z27, Z1, Z1
	VPMOVDB   Z1, (DI)(AX*1)
	ADDQ      $16, AX
	CMPQ      AX, $256
	JNE       qkquant
	// the sixteen sums: VPSADBW of q+128 by 8 bytes, pairs added
	VPXORD    (DI), Z26, Z10
	VPXORD    64(DI), Z26, Z11
	VPXORD    128(DI), Z26, Z12
	VPXORD    192(DI), Z26, Z13
	VPXORD    Z9, Z9, Z9
	VPSADBW   Z9, Z10, Z10
	VPSADBW   Z9, Z11, Z11
	VPSADBW   Z9, Z12, Z12
	VPSADBW   Z9, Z13, Z13
	VPSHUFD   $0x4e, Z10, Z14
	VPADDQ    Z14, Z10, Z10
	VPSHUFD   $0x4e, Z11, Z14
	VPADDQ    Z14, Z11, Z11
	VPSHUFD   $0x4e, Z12, Z14
	VPADDQ    Z14, Z12, Z12
	VPSHUFD   $0x4e, Z13, Z14
	VPADDQ    Z14, Z13, Z13
	VMOVDQA64 Z24, Z15
	VPERMI2D  Z11, Z10, Z15   // dwords 0,4,8,12 of Z10 then of Z11
	VMOVDQA64 Z24, Z16
	VPERMI2D  Z13, Z12, Z16
	VINSERTI64X4 $1, Y16, Z15, Z15
	VPSUBD    Z25, Z15, Z15
	VPMOVDW   Z15, (R9)
	JMP       qknext

qkzero:
	VMOVSS    X1, (DX)
	VPXORD    Z1, Z1, Z1
	VMOVDQU32 Z1, (DI)
	VMOVDQU32 Z1, 64(DI)
	VMOVDQU32 Z1, 128(DI)
	VMOVDQU32 Z1, 192(DI)
	VMOVDQU32 Y1, (R9)

qknext:
	ADDQ $1024, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R9
	DECQ CX
	JMP  qkloop

qkdone:
	VZEROUPPER
	RET

// q8kSumIdx picks, for VPERMI2D, dwords 0, 4, 8 and 12 of the first table
// and then of the second into dwords 0-7.
DATA ·q8kSumIdx+0x00(SB)/4, $0
DATA ·q8kSumIdx+0x04(SB)/4, $4
DATA ·q8kSumIdx+0x08(SB)/4, $8
DATA ·q8kSumIdx+0x0c(SB)/4, $12
DATA ·q8kSumIdx+0x10(SB)/4, $16
DATA ·q8kSumIdx+0x14(SB)/4, $20
DATA ·q8kSumIdx+0x18(SB)/4, $24
DATA ·q8kSumIdx+0x1c(SB)/4, $28
DATA ·q8kSumIdx+0x20(SB)/4, $0
DATA ·q8kSumIdx+0x24(SB)/4, $0
DATA ·q8kSumIdx+0x28(SB)/4, $0
DATA ·q8kSumIdx+0x2c(SB)/4, $0
DATA ·q8kSumIdx+0x30(SB)/4, $0
DATA ·q8kSumIdx+0x34(SB)/4, $0
DATA ·q8kSumIdx+0x38(SB)/4, $0
DATA ·q8kSumIdx+0x3c(SB)/4, $0
GLOBL ·q8kSumIdx(SB), RODATA|NOPTR, $64

// Four quant vectors' int32 sums of four, from the 128 bytes at off(DI),
// into Y register y: VPHADDD pairs them so that y holds, over its two
// lanes, the 16-quant sums of groups g, g+2, g+4, g+6 | g+1, g+3, g+5,
// g+7 (Y13: bytes of 1, Y12: int16 ones; clobbers Y1-Y4).
#define Q8KSUMS4(off, y) \
	VPMADDUBSW off(DI), Y13, Y1; \
	VPMADDUBSW (off+32)(DI), Y13, Y2; \
	VPMADDUBSW (off+64)(DI), Y13, Y3; \
	VPMADDUBSW (off+96)(DI), Y13, Y4; \
	VPMADDWD   Y12, Y1, Y1; \
	VPMADDWD   Y12, Y2, Y2; \
	VPMADDWD   Y12, Y3, Y3; \
	VPMADDWD   Y12, Y4, Y4; \
	VPHADDD    Y2, Y1, Y1; \
	VPHADDD    Y4, Y3, Y3; \
	VPHADDD    Y3, Y1, y

// func quantQ8_KAVX2(q []int8, d []float32, bs []int16, x []float32)
//
// quantQ8_KAVX512 with AVX2, bit for bit the same: the first x with
// |x| = amax found with VMOVMSKPS, quants cut to their low byte (as
// VPMOVDB and Go's int8 conversion do, for the NaN and infinite rows whose
// rounding leaves −128..127) and then narrowed with saturating packs, and
// the sixteen sums formed by VPMADDUBSW and VPMADDWD with ones.
TEXT ·quantQ8_KAVX2(SB), NOSPLIT, $0-96
	MOVQ q_base+0(FP), DI
	MOVQ d_base+24(FP), DX
	MOVQ d_len+32(FP), CX
	MOVQ bs_base+48(FP), R9
	MOVQ x_base+72(FP), SI
	MOVL $0x7fffffff, AX
	VMOVD AX, X15
	VPBROADCASTD X15, Y15
	MOVL $0x4b400000, AX // 12582912
	VMOVD AX, X14
	VPBROADCASTD X14, Y14
	MOVL $0x01010101, AX
	VMOVD AX, X13
	VPBROADCASTD X13, Y13
	MOVL $0x00010001, AX
	VMOVD AX, X12
	VPBROADCASTD X12, Y12
	MOVL $0x007fffff, AX
	VMOVD AX, X11
	VPBROADCASTD X11, Y11
	MOVL $0x00400000, AX
	VMOVD AX, X10
	VPBROADCASTD X10, Y10
	MOVL $127, AX
	VMOVD AX, X9
	VPBROADCASTD X9, Y9
	TESTQ CX, CX
	JZ    qk2done

qk2loop:
	// running max of |x| over the 32 vectors (lane-wise), then across lanes
	VXORPS Y0, Y0, Y0
	MOVQ   $0, AX

qk2max:
	VANDPS  (SI)(AX*1), Y15, Y1
	VMAXPS  Y0, Y1, Y0
	ADDQ    $32, AX
	CMPQ    AX, $1024
	JNE     qk2max
	VEXTRACTF128 $1, Y0, X1
	VMAXPS  X0, X1, X0
	VPERMILPS $0x4e, X0, X1
	VMAXPS  X0, X1, X0
	VPERMILPS $0xb1, X0, X1
	VMAXPS  X0, X1, X0
	VXORPS  X1, X1, X1
	VUCOMISS X1, X0
	JEQ     qk2zero
	// mx: the first x whose |x| equals amax
	VBROADCASTSS X0, Y2
	MOVQ   $0, AX

qk2find:
	VANDPS    (SI)(AX*1), Y15, Y1
	VCMPPS    $0, Y2, Y1, Y1
	VMOVMSKPS Y1, BX
	TESTL     BX, BX
	JNZ       qk2found
	ADDQ      $32, AX
	JMP       qk2find

qk2found:
	BSFL     BX, BX
	LEAQ     (AX)(BX*4), AX
	VMOVSS   (SI)(AX*1), X3
	MOVL     $0xc2fe0000, BX // -127
	VMOVD    BX, X5
	VDIVSS   X3, X5, X4      // iscale = -127/mx
	MOVL     $0x3f800000, BX // 1
	VMOVD    BX, X5
	VDIVSS   X4, X5, X5      // 1/iscale
	VMOVSS   X5, (DX)
	VBROADCASTSS X4, Y8
	VMOVDQU  ·q8PackPerm(SB), Y7 // in qdot_b32_amd64.s
	MOVQ   $0, AX

qk2quant:
	VMULPS    (SI)(AX*4), Y8, Y1
	VMULPS    32(SI)(AX*4), Y8, Y2
	VMULPS    64(SI)(AX*4), Y8, Y3
	VMULPS    96(SI)(AX*4), Y8, Y4
	VADDPS    Y14, Y1, Y1
	VADDPS    Y14, Y2, Y2
	VADDPS    Y14, Y3, Y3
	VADDPS    Y14, Y4, Y4
	VPAND     Y11, Y1, Y1
	VPAND     Y11, Y2, Y2
	VPAND     Y11, Y3, Y3
	VPAND     Y11, Y4, Y4
	VPSUBD    Y10, Y1, Y1
	VPSUBD    Y10, Y2, Y2
	VPSUBD    Y10, Y3, Y3
	VPSUBD    Y10, Y4, Y4
	VPMINSD   Y9, Y1, Y1
	VPMINSD   Y9, Y2, Y2
	VPMINSD   Y9, Y3, Y3
	VPMINSD   Y9, Y4, Y4
	VPSLLD    $24, Y1, Y1 // keep the low byte, as VPMOVDB and int8() do
	VPSLLD    $24, Y2, Y2
	VPSLLD    $24, Y3, Y3
	VPSLLD    $24, Y4, Y4
	VPSRAD    $24, Y1, Y1
	VPSRAD    $24, Y2, Y2
	VPSRAD    $24, Y3, Y3
	VPSRAD    $24, Y4, Y4
	VPACKSSDW Y2, Y1, Y1
	VPACKSSDW Y4, Y3, Y3
	VPACKSSWB Y3, Y1, Y1
	VPERMD    Y1, Y7, Y1
	VMOVDQU   Y1, (DI)(AX*1)
	ADDQ      $32, AX
	CMPQ      AX, $256
	JNE       qk2quant

	// the sixteen sums, even groups in the low lane, odd ones in the high
	Q8KSUMS4(0, Y5)
	Q8KSUMS4(128, Y6)
	VPACKSSDW    Y6, Y5, Y5
	VEXTRACTI128 $1, Y5, X6
	VPUNPCKLWD   X6, X5, X1
	VPUNPCKHWD   X6, X5, X2
	VMOVDQU      X1, (R9)
	VMOVDQU      X2, 16(R9)
	JMP          qk2next

qk2zero:
	VMOVSS    X1, (DX)
	VXORPS    Y1, Y1, Y1
	VMOVDQU   Y1, (DI)
	VMOVDQU   Y1, 32(DI)
	VMOVDQU   Y1, 64(DI)
	VMOVDQU   Y1, 96(DI)
	VMOVDQU   Y1, 128(DI)
	VMOVDQU   Y1, 160(DI)
	VMOVDQU   Y1, 192(DI)
	VMOVDQU   Y1, 224(DI)
	VMOVDQU   Y1, (R9)

qk2next:
	ADDQ $1024, SI
	ADDQ $256, DI
	ADDQ $4, DX
	ADDQ $32, R9
	DECQ CX
	JNZ  qk2loop

qk2done:
	VZEROUPPER
	RET
