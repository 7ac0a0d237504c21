package kernel

// Fused F16/BF16 GEMM (hgemm_amd64.s; the AVX2 forms in simd_amd64.s).
// Where the level has the kernels (halfFused: AVX-512 and AVX2), MatMul
// multiplies binary16 and bfloat16 weights straight from storage at every
// batch size above one: four rows are widened in registers and dotted with
// four tokens on AVX-512 (or with one, for the last token of a panel) and
// three on AVX2 (one or two repeat the last), so the batched path neither
// writes widened tiles to memory nor reads them back, and the weight stream
// from memory overlaps the FMAs. A single token (decode) stays on the row kernels (dotF16,
// dotBF16), which read one row after the other: on the development machine
// (AMD EPYC Zen 4) that sequential stream ran at 1.2-1.5× the CPU time per
// byte of the four interleaved rows of the fused one-token kernel, with or
// without software prefetch (BenchmarkHalfMatMul, n=1).
//
// Accumulation is plain float32 FMA of the exactly widened weights with the
// float32 activations: the activations are never rounded to a half format.
// A bfloat16 dot product instruction (VDPBF16PS) would need them as
// bfloat16 (split into two or three bfloat16 terms to keep the engine's
// agreement with transformers on bf16 checkpoints), which costs as many
// instructions per product as the FMAs here; it is not used.
//
// From two tokens up, every (row, token) output gets its FMAs in the same
// order and the same final reduction whatever n is and wherever the row
// and the token sit in a tile, and k is cut into the same blocks
// (Config.KBlock, rounded down to a multiple of 32): a token's outputs do
// not depend on the batch it is multiplied in (TestHalfBatchInvariant). A
// lone token's outputs (the row kernels) differ from them by float32
// rounding only.

// halfRoute lets MatMul take the fused kernels where halfFused allows;
// benchmarks clear it to measure the widening route in the same process.
var halfRoute = true

// halfBlock is the activation block of the BF16 kernels.
const halfBlock = 32

// permuteBF16 writes the n vectors of x (cols each) into dst, one per
// stride = cols rounded up to halfBlock floats, permuted block by block as
// the BF16 kernels read them: each block's 16 even-indexed values, then
// its 16 odd-indexed ones, with zeros past cols.
func permuteBF16(dst, x []float32, n, cols, stride int) {
	for t := 0; t < n; t++ {
		src := x[t*cols : (t+1)*cols]
		d := dst[t*stride : (t+1)*stride]
		for b := 0; b < stride; b += halfBlock {
			blk := d[b : b+halfBlock]
			m := min(halfBlock, len(src)-b)
			if m == halfBlock {
				s := src[b : b+halfBlock]
				for i := 0; i < halfBlock/2; i++ {
					blk[i] = s[2*i]
					blk[halfBlock/2+i] = s[2*i+1]
				}
				continue
			}
			clear(blk)
			for i := 0; i < m; i++ {
				blk[i/2+(i&1)*(halfBlock/2)] = src[b+i]
			}
		}
	}
}
