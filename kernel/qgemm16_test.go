package kernel

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// gemm16TestTypes are the weight types with sixteen-row kernels.
var gemm16TestTypes = []tensor.DType{tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.Q8_0, tensor.IQ4_NL, tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.IQ4_XS}

// TestQGemm16BitExact checks the sixteen-row kernels, through qGemm, against
// ggml's generic dot of each weight row with each token's Q8_0 activation,
// bit for bit: random, zero, all-ones and ±65504-scale weights; tokens
// that are normal, zero, huge, tiny or a single spike (gemmActs) and
// extreme quants (every activation −127 or 127, and −128, which the
// activation quantizer never writes but the kernels must take); token
// counts that leave one to three tokens for the one-token kernel; row
// counts with and without a partial last tile; one and two threads.
func TestQGemm16BitExact(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	r := rand.New(rand.NewPCG(61, 62))
	defer SetThreads(0)
	tested := 0
	for _, l := range gemm16Levels() {
		for _, dt := range gemm16TestTypes {
			k := gemm16For(l, dt)
			if !k.ok() {
				t.Logf("no sixteen-row %s kernels at level %v", dt, l)
				continue
			}
			tested++
			for _, noAMX := range []bool{false, true} {
				if !noAMX && (l != supported || gemm16AMX(k, dt).x16 == nil) {
					continue
				}
				testQGemm16Type(t, r, dt, k, l, noAMX)
			}
		}
	}
	if tested == 0 {
		t.Skipf("no sixteen-row kernels on this CPU (level %v)", supported)
	}
}

// gemm16Levels are the dispatch levels this CPU runs whose sixteen-row
// kernels differ: AVX2 (without VNNI) and, where the CPU has more, its own.
func gemm16Levels() []level {
	if supported < levelAVX2 {
		return nil
	}
	if supported == levelAVX2 {
		return []level{levelAVX2}
	}
	return []level{levelAVX2, supported}
}

// testQGemm16Type is TestQGemm16BitExact for one weight type, with the AMX
// kernels or without.
func testQGemm16Type(t *testing.T, r *rand.Rand, dt tensor.DType, k gemm16Kernels, l level, noAMX bool) {
	cfg := *config.Load()
	cfg.NoAMX = noAMX
	{
		gt, _ := ggml.Lookup(dt)
		for _, sh := range [][2]int{{16, 1}, {37, 3}, {64, 8}, {5, 2}} {
			rows, cols := sh[0], sh[1]*k.blk
			if k.blk == q8Block {
				cols = sh[1] * 32
			}
			nb := cols / k.blk
			rb, _ := dt.RowBytes(cols)
			for wmode := 0; wmode < 4; wmode++ {
				data := randBlocks(r, dt, rows*nb, wmode)
				w, err := tensor.New("w", dt, []int{rows, cols}, data)
				if err != nil {
					t.Fatal(err)
				}
				for _, n := range []int{17, 18, 19, 20, 24, 29, 32, 35} {
					x := gemmActs(r, n, cols)
					for th := 1; th <= 2; th++ {
						SetThreads(th)
						name := fmt.Sprintf("%s %dx%d wmode=%d n=%d threads=%d level=%v noAMX=%v", dt, rows, cols, wmode, n, th, l, noAMX)
						out := make([]float32, n*rows+1)
						out[n*rows] = 42
						var j *qJob
						withLevel(t, l, func() {
							cfg.Threads = th
							qGemm(&cfg, out, x, n, w)
							j = new(qJob)
							j.setup([][]float32{make([]float32, n*rows)}, x, n, []*tensor.Tensor{w})
						})
						for tk := 0; tk < n; tk++ {
							for i := 0; i < rows; i++ {
								want := gt.Dot(data[i*rb:(i+1)*rb], &j.acts[tk])
								if got := out[tk*rows+i]; math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
									t.Fatalf("%s: row %d token %d = %g, generic dot %g", name, i, tk, got, want)
								}
							}
						}
						if out[n*rows] != 42 {
							t.Fatalf("%s: wrote past n*rows", name)
						}
					}
				}
			}
		}
	}
}

// TestQGemm16Extremes drives the kernels directly, for a group of each
// size (13 tokens: 8 + 4 + 1), with activation quants at −128, −127 and 127
// (the largest integer sums the lanes hold) against every weight mode,
// comparing with the generic dot; and checks the kernels' (assembly) repacking against
// the Go one.
func TestQGemm16Extremes(t *testing.T) {
	r := rand.New(rand.NewPCG(63, 64))
	tested := 0
	for _, l := range gemm16Levels() {
		for _, dt := range gemm16TestTypes {
			k := gemm16For(l, dt)
			if !k.ok() {
				continue
			}
			tested++
			kernels := []gemm16Kernels{k}
			if ka := gemm16AMX(k, dt); l == supported && ka.x16 != nil {
				kernels = append(kernels, ka)
			}
			for _, k := range kernels {
				for _, n := range []int{13, 29} {
					testQGemm16Extremes(t, r, dt, k, n)
				}
			}
		}
	}
	if tested == 0 {
		t.Skipf("no sixteen-row kernels on this CPU (level %v)", supported)
	}
}

// testQGemm16Extremes is TestQGemm16Extremes for one set of kernels and n
// tokens (13: 8 + 4 + 1; 29: 16 + 8 + 4 + 1 where there are sixteen-token
// kernels).
func testQGemm16Extremes(t *testing.T, r *rand.Rand, dt tensor.DType, k gemm16Kernels, n int) {
	{
		gt, _ := ggml.Lookup(dt)
		const rows, cols = 16, 512
		nb := cols / k.blk
		rb, _ := dt.RowBytes(cols)
		for wmode := 0; wmode < 4; wmode++ {
			data := randBlocks(r, dt, rows*nb, wmode)
			pk := make([]byte, nb*k.tile)
			k.pack(pk, data, rb, nb)
			ref := make([]byte, len(pk))
			pack16Go(dt, ref, data, rb, nb, k.wide)
			if (!k.prefillOnly || dt == tensor.Q5_K) && !bytes.Equal(pk, ref) { // the others: the Go repacking itself, or (Q5_0, IQ4_NL) value+128 tiles
				t.Fatalf("%s wmode=%d: the kernels' repacking differs from packQ*x16", dt, wmode)
			}
			for _, qv := range []int8{-128, -127, 127} {
				if qv == -128 && k.q127 {
					continue // outside the kernels' documented range
				}
				j := &qJob{n: n, cols: cols, gemm16: k, dt16: dt}
				j.qbuf = make([]int8, n*cols)
				j.dbuf = make([]float32, n*nb)
				j.bsbuf = make([]int16, n*cols/16)
				for i := range j.qbuf {
					j.qbuf[i] = qv
					if i%7 == 3 && qv != -128 {
						j.qbuf[i] = -qv
					}
				}
				j.sbuf = make([]float32, n*nb)
				for i := range j.dbuf {
					j.dbuf[i] = float32(r.NormFloat64())
					j.sbuf[i] = float32(r.NormFloat64()) * 100
				}
				for i := range j.bsbuf {
					for _, v := range j.qbuf[16*i : 16*i+16] {
						j.bsbuf[i] += int16(v)
					}
				}
				acts := make([]q8Act, n)
				for tk := range acts {
					acts[tk] = q8Act{Q: j.qbuf[tk*cols : (tk+1)*cols], D: j.dbuf[tk*nb : (tk+1)*nb], S: j.sbuf[tk*nb : (tk+1)*nb],
						BS: j.bsbuf[tk*cols/16 : (tk+1)*cols/16]}
				}
				j.groups16 = k.groups(nil, n, cols)
				want := map[[2]bool][]int{ // {x16, x4} present (every set has x8 or x4)
					{false, true}: {8, 4, 1}, {true, true}: {8, 4, 1}, {false, false}: {8, 1, 1, 1, 1, 1}}[[2]bool{k.x16 != nil, k.x4 != nil}]
				if k.x8 == nil {
					want = []int{4, 4, 4, 1}
				}
				if n == 29 {
					want = map[[2]bool][]int{{false, true}: {8, 8, 8, 4, 1}, {true, true}: {16, 8, 4, 1},
						{false, false}: {8, 8, 8, 1, 1, 1, 1, 1}}[[2]bool{k.x16 != nil, k.x4 != nil}]
					if k.x8 == nil {
						want = []int{4, 4, 4, 4, 4, 4, 4, 1}
					}
				}
				if len(j.groups16) != len(want) {
					t.Fatalf("%s: groups(%d) = %+v", dt, n, j.groups16)
				}
				for i, g := range want {
					if j.groups16[i].g != g {
						t.Fatalf("%s: groups(%d) = %+v", dt, n, j.groups16)
					}
				}
				j.abuf = make([]byte, n*nb*k.actBlock)
				j.interleave(j.groups16)
				out := make([]float32, n*rows)
				for _, gr := range j.groups16 {
					k.kernel(gr.g)(out[gr.t*rows:], rows, pk, nb, j.abuf[gr.off:])
				}
				for tk := 0; tk < n; tk++ {
					for i := 0; i < rows; i++ {
						want := gt.Dot(data[i*rb:(i+1)*rb], &acts[tk])
						if got := out[tk*rows+i]; math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
							t.Fatalf("%s wmode=%d q=%d n=%d x16=%v: row %d token %d = %g, generic dot %g", dt, wmode, qv, n, k.x16 != nil, i, tk, got, want)
						}
					}
				}
			}
		}
	}
}

// TestPackLegacy4x16 checks the four-columns-at-a-time repacking for the
// AVX2 kernels against the byte-by-byte one (packLegacyx16): the same
// bytes, but Q5_0's quants 112 higher (value + 128).
func TestPackLegacy4x16(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 0))
	for _, dt := range []tensor.DType{tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL} {
		const rows, cols = 16, 256
		nb := cols / q8Block
		rb, _ := dt.RowBytes(cols)
		tile, qo := pack16Q8_0, 64
		if dt == tensor.Q4_1 || dt == tensor.Q5_1 {
			tile, qo = pack16Q4_1, 128
		}
		for wmode := 0; wmode < 4; wmode++ {
			data := randBlocks(r, dt, rows*nb, wmode)
			got := make([]byte, nb*tile)
			packLegacy4x16(dt, got, data, rb, nb)
			want := make([]byte, len(got))
			packLegacyx16(dt, want, data, rb, nb)
			for b := 0; b < nb && dt == tensor.Q5_0; b++ {
				for i := qo; i < tile; i++ {
					want[b*tile+i] += 112
				}
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s wmode=%d: packLegacy4x16 differs from packLegacyx16", dt, wmode)
			}
		}
	}
}
