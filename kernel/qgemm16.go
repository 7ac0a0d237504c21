package kernel

import (
	"encoding/binary"
	"math"
	"sync"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Sixteen-row tiles for the prefill GEMM (qgemm.go). Where the level has
// sixteen-row kernels (gemm16For, with AVX512_VNNI: Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0, IQ4_NL here, the k-quants and IQ4_XS in qgemm16k.go), each
// 16-row tile of the weights is repacked, once per MatMul call, into a
// layout in which one 64-byte vector holds the same four columns of all
// sixteen rows (packQ4_0x16, packQ8_0x16; with AVX-512 gathers), and the
// kernels dot it with eight tokens at a time (then four, then one), every
// VPDPBUSD advancing sixteen rows by four columns of one token
// (qgemm16_amd64.s, qgemm16l_amd64.s); the eight-token kernels of the
// Q4_0, Q8_0, Q4_K and Q6_K layouts, and the four-token ones of the last
// two, also prefetch the next band's rows (runTiled16). The tokens' Q8_0
// quants, scales and integer corrections are interleaved once per call in
// groups (gemm16Acts), so a kernel walks one pointer. The weights in memory and on disk keep their
// ggml layout; the repacked tile lives in per-walk scratch (20 KiB for 2048
// Q4_0 columns), so repacking costs one pass over the weights for all n
// tokens. Results equal ggml's dot (the decode path) bit for bit.
//
// Without AVX512_VNNI, AVX2 kernels take tiles of every one of these
// types, four tokens and one at a time, each tile in two eight-row halves
// (side by side, so that a token's broadcast feeds both; one after the
// other in the Q4_1 and Q5_1 kernels), VPMADDUBSW and VPMADDWD in place of
// VPDPBUSD: Q4_0 and Q8_0
// (qgemm16avx2_amd64.s), Q3_K, Q4_K, Q6_K and IQ4_XS
// (qgemm16kavx2_amd64.s), Q5_K (qgemm16q5kavx2_amd64.s), Q2_K
// (qgemm16q2avx2_amd64.s), Q4_1 and Q5_1 (qgemm16lavx2_amd64.s), and Q5_0
// and IQ4_NL on the Q8_0 kernels. The tiles of Q4_0, Q8_0, Q3_K, Q4_K,
// Q6_K and IQ4_XS (qgemm16avx2_amd64.s) and of Q2_K (qgemm16q2avx2_amd64.s)
// are repacked with AVX2 shuffles and transposes, and those seven (the
// exact row types among them) also take decode batches of four or more
// (minDecode), their four-token kernels prefetching the next band's rows
// as they compute (x4pf: a 1B Q4_0 batch-8 decode step on Zen 3 11% faster
// than reading each band first). The tiles of Q5_K and of the legacy
// types are repacked with AVX2 too (pack16Q5_KAVX2, pack16Q5_0AVX2, …:
// packQ5Kx16's and packLegacy4x16's layouts), but none of these is an
// exact row type, so their kernels take only prefill batches
// (prefillOnly).

// gemm16Fn is a sixteen-row kernel: out[t*ostride+r] = row r · token t for
// the rows packed in pack (nb blocks) and the token group at acts
// (gemm16Acts).
type gemm16Fn func(out []float32, ostride int, pack []byte, nb int, acts []byte)

// gemm16PFn is a gemm16Fn that prefetches pf (at most about one tile's
// raw rows) into the cache meanwhile.
type gemm16PFn func(out []float32, ostride int, pack []byte, nb int, acts []byte, pf []byte)

// gemm16Kernels are the sixteen-row kernels of one weight type, for groups
// of eight, four and one token (x8 and x4 may be nil), its repacking
// routine, and the sizes of its blocks: blk columns, tile bytes per block
// (sixteen rows) and activation bytes per block and token.
type gemm16Kernels struct {
	x16, x8, x4, x1 gemm16Fn
	// x8pf and x4pf, where not nil, are x8 and x4 that also prefetch a
	// byte range while they compute (runTiled16 passes them the next
	// band's raw rows).
	x8pf, x4pf          gemm16PFn
	pack                func(dst, w []byte, rb, nb int)
	blk, tile, actBlock int
	wide                bool // Q4_0 tiles widened to the Q8_0 layout (gemm16AMX)
	// q127 kernels are exact only for activation quants in −127..127 (the
	// activation quantizer's range; the AVX2 Q8_0 kernels' sign trick).
	q127 bool
	// prefillOnly kernels take only prefill batches (qTileRoute): their
	// rows are not exact, so decode batches would take the tiles at
	// every size, one token included, where the rows are faster.
	prefillOnly bool
	// minDecode, where above Config.QTileMin, is the smallest decode batch
	// of an exactRowType type that takes the tiles: kernel sets without an
	// x8 run two or three tokens as one-token passes over the tile, slower
	// than the rows, which give the same results.
	minDecode int
}

// ok reports whether the kernels exist.
func (k gemm16Kernels) ok() bool { return k.x1 != nil && k.pack != nil }

// decode reports whether the kernels also take decode-size batches
// (qTileRoute): they exist and repack at native speed.
func (k gemm16Kernels) decode() bool { return k.ok() && !k.prefillOnly }

// kernel returns the kernel for groups of g tokens.
func (k gemm16Kernels) kernel(g int) gemm16Fn {
	switch g {
	case 16:
		return k.x16
	case 8:
		return k.x8
	case 4:
		return k.x4
	}
	return k.x1
}

// gemm16Group is one group of tokens in a job's interleaved activations:
// tokens [t, t+n) at byte offset off, for the kernel of g ≥ n tokens. A
// padded group (n < g) repeats its last token in the activations, and its
// kernel writes to scratch (runTiled16), of which n tokens are kept.
type gemm16Group struct{ t, g, off, n int }

// groups splits n tokens of cols columns into groups of eight, then at
// most one of four, then ones (of the sizes the kernels take: fours all
// the way where there is no x8), with their offsets in the interleaved
// activations; three tokens left over go in a padded group of four where
// there is a four-token kernel, which costs less than three one-token
// passes over each tile (BenchmarkQGemm16Group, eight tokens of Q4_0 on
// Zen 3: 11 µs in fours, 19 µs one by one; of Q4_K 11 and 22 µs), while
// two take the one-token kernel twice. Results do not depend on the
// grouping: every kernel gives each token the generic dot's result.
func (k gemm16Kernels) groups(dst []gemm16Group, n, cols int) []gemm16Group {
	dst = dst[:0]
	off, t := 0, 0
	for _, g := range []int{16, 8, 4, 1} {
		if k.kernel(g) == nil {
			continue
		}
		for t+g <= n {
			dst = append(dst, gemm16Group{t, g, off, g})
			off += g * cols / k.blk * k.actBlock
			t += g
			if g == 4 && k.x8 != nil {
				break // fewer than eight tokens are left
			}
		}
		if g == 4 && n-t == 3 {
			dst = append(dst, gemm16Group{t, 4, off, n - t})
			off += 4 * cols / k.blk * k.actBlock
			t = n
		}
	}
	return dst
}

// actsSize is the bytes of interleaved activations that groups'
// groups of n tokens take.
func (k gemm16Kernels) actsSize(n, cols int) int {
	return (n + 2) * cols / k.blk * k.actBlock
}

// gemm16Acts interleaves the n tokens' Q8_0 activations (quants q, scales
// d, token t's at t·cols and t·nb) into acts, group by group: per block the
// group's g×32 quants, then its g scales (float32), then its g corrections
// mul·Σq (int32), or where sums is not nil (Q4_1, Q5_1) the tokens' block
// sums (float32, token t's at t·nb).
func gemm16Acts(acts []byte, groups []gemm16Group, q []int8, d, sums []float32, cols int, mul int32) {
	nb := cols / q8Block
	for _, gr := range groups {
		o := acts[gr.off:]
		for b := 0; b < nb; b++ {
			blk := o[b*gr.g*40 : (b+1)*gr.g*40]
			for i := 0; i < gr.g; i++ {
				t := gr.t + min(i, gr.n-1)
				src := q[t*cols+b*q8Block : t*cols+(b+1)*q8Block]
				var s int32
				for k, v := range src {
					blk[i*32+k] = byte(v)
					s += int32(v)
				}
				binary.LittleEndian.PutUint32(blk[gr.g*32+4*i:], math.Float32bits(d[t*nb+b]))
				if sums != nil {
					binary.LittleEndian.PutUint32(blk[gr.g*36+4*i:], math.Float32bits(sums[t*nb+b]))
					continue
				}
				binary.LittleEndian.PutUint32(blk[gr.g*36+4*i:], uint32(mul*s))
			}
		}
	}
}

// interleave fills the job's interleaved activations of groups (of
// j.groups16, their tokens quantized) for its weight type.
func (j *qJob) interleave(groups []gemm16Group) {
	switch j.dt16 {
	case tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.IQ4_XS:
		gemm16ActsK(j.abuf, groups, j.qbuf, j.dbuf, j.bsbuf, j.cols, j.dt16)
	case tensor.Q4_1, tensor.Q5_1:
		gemm16Acts(j.abuf, groups, j.qbuf, j.dbuf, j.sbuf, j.cols, 0)
	default:
		gemm16Acts(j.abuf, groups, j.qbuf, j.dbuf, nil, j.cols, gemm16Init(j.dt16))
	}
}

// Repacked block sizes: sixteen float32 scales, then the quants.
const (
	pack16Q4_0 = 64 + 16*16  // 320
	pack16Q8_0 = 64 + 16*32  // 576
	pack16Q4_1 = 128 + 16*32 // 640: scales, mins, quants (Q4_1, Q5_1)
)

// gemm16Init is the multiple of a block's quant sum that the kernels start
// the block's integer sum from: the weights' offset as stored in a tile.
func gemm16Init(dt tensor.DType) int32 {
	switch dt {
	case tensor.Q8_0, tensor.IQ4_NL:
		return -128
	case tensor.Q5_0:
		return -16
	}
	return -8
}

// packQ4_0x16 repacks sixteen Q4_0 rows (row r at w[r*rb:]) of nb blocks
// into dst (pack16Bytes): per block the rows' scales as float32, then four
// vectors, vector k holding bytes 4k..4k+3 of each row's 16 quant bytes
// (low nibbles: columns 4k..4k+3, high nibbles: 16+4k..16+4k+3).
func packQ4_0x16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q4_0 : (b+1)*pack16Q4_0]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*18 : r*rb+b*18+18]
			binary.LittleEndian.PutUint32(o[4*r:], math.Float32bits(tensor.F16ToF32(binary.LittleEndian.Uint16(blk))))
			for k := 0; k < 4; k++ {
				copy(o[64+64*k+4*r:64+64*k+4*r+4], blk[2+4*k:2+4*k+4])
			}
		}
	}
}

// packQ8_0x16 repacks sixteen Q8_0 rows the same way: per block the scales,
// then eight vectors, vector k holding columns 4k..4k+3 of each row as
// quant+128 (unsigned).
func packQ8_0x16(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q8_0 : (b+1)*pack16Q8_0]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*34 : r*rb+b*34+34]
			binary.LittleEndian.PutUint32(o[4*r:], math.Float32bits(tensor.F16ToF32(binary.LittleEndian.Uint16(blk))))
			for k := 0; k < 8; k++ {
				binary.LittleEndian.PutUint32(o[64+64*k+4*r:], binary.LittleEndian.Uint32(blk[2+4*k:])^0x80808080)
			}
		}
	}
}

// packLegacyx16 repacks sixteen Q4_1, Q5_0, Q5_1 or IQ4_NL rows into the
// Q8_0 tile layout (packQ8_0x16; Q4_1 and Q5_1 with the rows' mins as
// float32 after the scales, pack16Q4_1 bytes a block), the quants widened
// to unsigned bytes: Q4_1 0..15, Q5_0 and Q5_1 0..31, IQ4_NL the value
// plus 128.
func packLegacyx16(dt tensor.DType, dst, w []byte, rb, nb int) {
	bb, tile, qo := dt.BlockBytes(), pack16Q8_0, 64
	if dt == tensor.Q4_1 || dt == tensor.Q5_1 {
		tile, qo = pack16Q4_1, 128
	}
	for b := 0; b < nb; b++ {
		o := dst[b*tile : (b+1)*tile]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*bb : r*rb+(b+1)*bb]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
			if qo == 128 {
				putF32(o[64+4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[2:])))
			}
			var qh uint32
			qs := blk[len(blk)-16:]
			switch dt {
			case tensor.Q5_0:
				qh = binary.LittleEndian.Uint32(blk[2:])
			case tensor.Q5_1:
				qh = binary.LittleEndian.Uint32(blk[4:])
			}
			for c := 0; c < 32; c++ {
				q := qs[c%16] & 15
				if c >= 16 {
					q = qs[c%16] >> 4
				}
				q |= byte(qh>>uint(c)&1) << 4
				if dt == tensor.IQ4_NL {
					q = byte(int32(ggml.IQ4Value(q)) + 128)
				}
				o[qo+64*(c/4)+4*r+c%4] = q
			}
		}
	}
}

// packLegacy4x16 repacks sixteen Q4_1, Q5_0, Q5_1 or IQ4_NL rows for the
// AVX2 kernels, four columns at a time: Q4_1 and Q5_1 exactly as
// packLegacyx16 does (quants 0..15 and 0..31 after the scales and mins),
// Q5_0 and IQ4_NL in the Q8_0 tile layout as packQ8_0x16 holds Q8_0 rows,
// every quant its value plus 128 (Q5_0: q − 16 + 128; IQ4_NL: the
// non-linear value + 128), so the Q8_0 kernels that take |value| and its
// sign (the AVX2 ones) dot them unchanged. Vector k of a block holds
// columns 4k..4k+3: the low nibbles of quant bytes 4k..4k+3 and vector
// k+4 their high nibbles.
func packLegacy4x16(dt tensor.DType, dst, w []byte, rb, nb int) {
	bb, tile, qo := dt.BlockBytes(), pack16Q8_0, 64
	if dt == tensor.Q4_1 || dt == tensor.Q5_1 {
		tile, qo = pack16Q4_1, 128
	}
	var add uint32 // Q5_0: q + 112 = (q − 16) + 128, bytewise without carries
	if dt == tensor.Q5_0 {
		add = 0x70707070
	}
	for b := 0; b < nb; b++ {
		o := dst[b*tile : (b+1)*tile]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*bb : r*rb+(b+1)*bb]
			putF32(o[4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk)))
			if qo == 128 {
				putF32(o[64+4*r:], tensor.F16ToF32(binary.LittleEndian.Uint16(blk[2:])))
			}
			qs, q := blk[bb-16:bb], o[qo+4*r:]
			if dt == tensor.IQ4_NL {
				for k := 0; k < 4; k++ {
					c := qs[4*k : 4*k+4]
					lo := uint32(iq4Lo[c[0]]) | uint32(iq4Lo[c[1]])<<8 | uint32(iq4Lo[c[2]])<<16 | uint32(iq4Lo[c[3]])<<24
					hi := uint32(iq4Lo[c[0]>>4]) | uint32(iq4Lo[c[1]>>4])<<8 | uint32(iq4Lo[c[2]>>4])<<16 | uint32(iq4Lo[c[3]>>4])<<24
					binary.LittleEndian.PutUint32(q[64*k:], lo)
					binary.LittleEndian.PutUint32(q[64*k+256:], hi)
				}
				continue
			}
			var qh uint32 // the fifth bits, zero for Q4_1
			switch dt {
			case tensor.Q5_0:
				qh = binary.LittleEndian.Uint32(blk[2:])
			case tensor.Q5_1:
				qh = binary.LittleEndian.Uint32(blk[4:])
			}
			for k := 0; k < 4; k++ {
				x := binary.LittleEndian.Uint32(qs[4*k:])
				lo := (x&0x0f0f0f0f | nibbleBit4[qh>>uint(4*k)&15]) + add
				hi := (x>>4&0x0f0f0f0f | nibbleBit4[qh>>uint(4*k+16)&15]) + add
				binary.LittleEndian.PutUint32(q[64*k:], lo)
				binary.LittleEndian.PutUint32(q[64*k+256:], hi)
			}
		}
	}
}

// nibbleBit4[h] has bit 4 of byte i set where bit i of h is.
var nibbleBit4 = func() (t [16]uint32) {
	for h := range t {
		for i := 0; i < 4; i++ {
			t[h] |= uint32(h>>i&1) << (8*i + 4)
		}
	}
	return t
}()

// iq4Lo[c] is IQ4_NL's value of the low nibble of c plus 128.
var iq4Lo = func() (t [256]byte) {
	for c := range t {
		t[c] = byte(int32(ggml.IQ4Value(byte(c))) + 128)
	}
	return t
}()

// pack16Go repacks one tile of dt weights in Go (Q4_0 widened to the Q8_0
// layout where wide).
func pack16Go(dt tensor.DType, dst, w []byte, rb, nb int, wide bool) {
	switch {
	case wide:
		packQ4_0x16Wide(dst, w, rb, nb)
		return
	}
	switch dt {
	case tensor.Q8_0:
		packQ8_0x16(dst, w, rb, nb)
	case tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL:
		packLegacyx16(dt, dst, w, rb, nb)
	case tensor.Q2_K:
		packQ2Kx16(dst, w, rb, nb)
	case tensor.Q3_K:
		packQ3Kx16(dst, w, rb, nb)
	case tensor.Q4_K:
		packQ4Kx16(dst, w, rb, nb)
	case tensor.Q5_K:
		packQ5Kx16(dst, w, rb, nb)
	case tensor.Q6_K:
		packQ6Kx16(dst, w, rb, nb)
	case tensor.IQ4_XS:
		packIQ4XSx16(dst, w, rb, nb)
	default:
		packQ4_0x16(dst, w, rb, nb)
	}
}

// packQ4_0x16Wide repacks sixteen Q4_0 rows into the Q8_0 tile layout:
// per block the rows' scales as float32, then eight vectors, vector k
// holding columns 4k..4k+3 of each row as quants 0..15.
func packQ4_0x16Wide(dst, w []byte, rb, nb int) {
	for b := 0; b < nb; b++ {
		o := dst[b*pack16Q8_0 : (b+1)*pack16Q8_0]
		for r := 0; r < 16; r++ {
			blk := w[r*rb+b*18 : r*rb+b*18+18]
			binary.LittleEndian.PutUint32(o[4*r:], math.Float32bits(tensor.F16ToF32(binary.LittleEndian.Uint16(blk))))
			for c := 0; c < 32; c++ {
				q := blk[2+c%16] & 15
				if c >= 16 {
					q = blk[2+c%16] >> 4
				}
				o[64+64*(c/4)+4*r+c%4] = q
			}
		}
	}
}

// pack16Buf is the scratch of one tile walk: the repacked tile, and a
// partial last tile's rows padded to sixteen and its outputs. sink keeps
// the checksums of the band reads (see runTiled16) so that they are not
// dead code.
type pack16Buf struct {
	pack, rows []byte
	out        []float32
	pad        [16 * 16]float32 // a padded token group's outputs of one tile
	sink       uint64
}

// noTilePrefetch turns runTiled16's prefetching off (for benchmarks that
// compare it with ReadSum alone).
var noTilePrefetch bool

// pack16Pool holds tile walk scratch.
var pack16Pool = sync.Pool{New: func() any { return new(pack16Buf) }}

// gemm16Band is how many 16-row tiles runTiled16 repacks before dotting
// them with the token groups: each group's activations are then read once
// per band, from L1, instead of once per tile (for 8192 columns and 256
// tokens they are 2.6 MB, more than L2 holds).
const gemm16Band = 4

// runTiled16 computes rows [lo, hi) of one target with the sixteen-row
// kernels: bands of up to gemm16Band 16-row tiles are repacked and dotted
// with every token group. A partial last tile is padded with zero rows and
// computed into scratch, so that every row takes the same kernels.
//
// Each band's weights are first read once in address order (ReadSum):
// the repacking routines read sixteen rows at once, a few dozen bytes from
// each, which the hardware prefetchers of some CPUs do not follow. On an
// AMD Zen 4 (one thread, eight 8192×2048 Q4_K matrices, weights from
// memory: BenchmarkQDecodeDRAM) the sequential read first, with no
// software prefetch in the repacking, cut a one-token tile pass from ~2.0
// to ~1.4 ms and a Llama-3.2-1B batch-8 decode step by a quarter; the
// repacking then reads from cache. Where the first token group's kernel
// prefetches (x8pf, x4pf), only the first band of [lo, hi) is read so: the
// kernels bring each next band into L2 while they compute.
func (j *qJob) runTiled16(tg *qTarget, lo, hi int) {
	nb := j.cols / j.gemm16.blk
	size := nb * j.gemm16.tile
	sb := pack16Pool.Get().(*pack16Buf)
	if cap(sb.pack) < gemm16Band*size {
		sb.pack = make([]byte, gemm16Band*size)
	}
	rb, rows := tg.rb, tg.rows
	// Where the first token group has a prefetching kernel, its call on
	// each tile of a band prefetches the same tile of the next band into
	// L2, so that the next band's weights stream in while this one's are
	// dotted and only the first band waits for its ReadSum (on a Zen 4,
	// 8192×2048 weights from memory, n = 8: 14-20% less CPU time for Q4_K
	// and Q6_K, BenchmarkQDecodePrefetch).
	var pf gemm16PFn
	if len(j.groups16) > 0 && !noTilePrefetch {
		switch j.groups16[0].g {
		case 8:
			pf = j.gemm16.x8pf
		case 4:
			pf = j.gemm16.x4pf
		}
	}
	for b0 := lo; b0 < hi; b0 += gemm16Band * 16 {
		b1 := min(b0+gemm16Band*16, hi)
		ntile := (b1 - b0 + 15) / 16
		partial := false
		if pf == nil || b0 == lo {
			sb.sink += ReadSum(tg.data[b0*rb : b1*rb])
		}
		for i := 0; i < ntile; i++ {
			r0 := b0 + 16*i
			pk := sb.pack[i*size : (i+1)*size]
			if r0+16 <= b1 {
				j.gemm16.pack(pk, tg.data[r0*rb:(r0+16)*rb], rb, nb)
				continue
			}
			// Zero rows have zero scales: their lanes compute 0 and are
			// dropped.
			if cap(sb.rows) < 16*rb {
				sb.rows = make([]byte, 16*rb)
			}
			w := sb.rows[:16*rb]
			clear(w[copy(w, tg.data[r0*rb:b1*rb]):])
			j.gemm16.pack(pk, w, rb, nb)
			if cap(sb.out) < 16*j.n {
				sb.out = make([]float32, 16*j.n)
			}
			partial = true
		}
		for gi, gr := range j.groups16 {
			kern, acts := j.gemm16.kernel(gr.g), j.abuf[gr.off:]
			for i := 0; i < ntile; i++ {
				r0 := b0 + 16*i
				pk := sb.pack[i*size : (i+1)*size]
				o, ostride := tg.out[gr.t*rows+r0:], rows
				if partial && i == ntile-1 {
					o, ostride = sb.out[gr.t*16:], 16
				}
				ko, kstride := o, ostride
				if gr.n < gr.g { // padded: the kernel writes g tokens
					ko, kstride = sb.pad[:16*gr.g], 16
				}
				if gi == 0 && pf != nil {
					var next []byte
					if n0 := r0 + gemm16Band*16; n0 < hi {
						next = tg.data[n0*rb : min(n0+16, hi)*rb]
					}
					pf(ko, kstride, pk, nb, acts, next)
				} else {
					kern(ko, kstride, pk, nb, acts)
				}
				if gr.n < gr.g {
					w := min(16, b1-r0)
					for c := 0; c < gr.n; c++ {
						copy(o[c*ostride:c*ostride+w], sb.pad[16*c:16*c+w])
					}
				}
			}
		}
		if partial {
			r0 := b0 + 16*(ntile-1)
			for t := 0; t < j.n; t++ {
				copy(tg.out[t*rows+r0:t*rows+b1], sb.out[t*16:t*16+b1-r0])
			}
		}
	}
	pack16Pool.Put(sb)
}
