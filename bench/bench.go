// Package bench measures how fast the engine runs a model, the way
// llama-bench does: prompt processing (one batched prefill of P tokens from
// an empty cache) and text generation (N single-token decode steps), each
// repeated and reported as mean ± standard deviation in tokens per second.
// It also measures the machine's memory-read bandwidth, so decode speed can
// be judged against its roofline: decoding reads every weight once per
// token, so weight bytes × tokens/s can never exceed the bandwidth.
//
// The roofline (Bandwidth) is measured as fast as the machine allows, so
// that a decode at 80% of it means 80% of what the memory can give, not of
// what a slow loop reads: a 2 GiB buffer (RooflineBytes, far beyond the
// caches), one contiguous share per worker thread, read by kernel.ReadSum
// (AVX-512 or AVX2 loads, 512 bytes per iteration into four independent
// accumulators), best of five passes. It is reported as roofline_gbps and
// decode as tg_roofline_frac = gbps / roofline_gbps. TestBandwidth runs it
// beside a plain Go loop (one 64-bit load per word) and logs both; on the
// 2-core development machine the probe read about 2× the Go loop under
// load (timings are reported, never asserted).
//
// The batched decode test (Options.Batch, `terse bench --batch 1,4,8,16`)
// advances B sequences together, each with its own KV cache at depth
// Options.Depth, one Engine.Forward of B tokens per step, and reports the
// aggregate tokens/s, its ratio to B = 1, and the CPU time per token
// (steadier than wall-clock rates on a shared machine). The integer decode
// path serves all B tokens from one pass over each weight tile
// (kernel.MatMul), four at a time where the type has a four-token kernel.
//
// Random-weight models (Random, RandomModel, SaveRandom) stand in for real
// checkpoints of a named shape: speed depends on shapes and types, not
// values, and SaveRandom writes them as GGUF so llama.cpp runs the very
// same weights (bench/llamacpp runs the two side by side).
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
)

// Options choose what Run measures.
type Options struct {
	Prompt  int // tokens in the prefill test (0: skip)
	Gen     int // tokens in the decode test (0: skip)
	Reps    int // repetitions of each test
	Threads int // worker threads (0: all cores)
	Warmup  bool
	// Depth is how many tokens are in the cache before each decode run
	// (llama-bench's -d): decode is measured at context Depth…Depth+Gen.
	Depth int
	// NewCache, when set, makes the KV cache of a given capacity (nil: the
	// float32 cache); KVName labels it in the result.
	NewCache func(positions int) (model.KVCache, error)
	KVName   string
	// Batch lists sequence counts B for the batched decode test: B
	// sequences, each with its own cache holding Depth tokens, advanced
	// together Gen steps, one Engine.Forward of B tokens per step (empty:
	// skip).
	Batch []int
	// RooflineBytes is the bandwidth probe's buffer size (0: RooflineBytes;
	// negative: skip the probe).
	RooflineBytes int
}

// BatchResult is the batched decode test at one sequence count.
type BatchResult struct {
	Seqs  int     `json:"seqs"`   // B
	TPS   float64 `json:"tg_tps"` // aggregate decode tokens/s over the B sequences, mean
	SD    float64 `json:"tg_sd"`
	VsOne float64 `json:"vs_b1"` // TPS / the B = 1 entry's (0 without one)
	// CPUPerToken is the process's CPU time per decoded token (all
	// threads), best of the repetitions: on a machine shared with other
	// busy processes, wall-clock rates move with the load, CPU time much
	// less. CPUVsOne is the B = 1 entry's CPUPerToken over this one's.
	CPUPerToken float64 `json:"cpu_s_per_token"`
	CPUVsOne    float64 `json:"cpu_vs_b1"`
}

// Result is one benchmark run.
type Result struct {
	Model        string        `json:"model"`
	Params       int64         `json:"params"`
	WeightBytes  int64         `json:"weight_bytes"`  // bytes of weights read per decoded token
	Threads      int           `json:"threads"`       //
	Kernel       string        `json:"kernel"`        // SIMD path in use
	Prompt       int           `json:"prompt_tokens"` // P
	Gen          int           `json:"gen_tokens"`    // N
	Reps         int           `json:"reps"`
	PPTPS        float64       `json:"pp_tps"` // prefill tokens/s, mean
	PPSD         float64       `json:"pp_sd"`
	TGTPS        float64       `json:"tg_tps"` // decode tokens/s, mean
	TGSD         float64       `json:"tg_sd"`
	GBps         float64       `json:"gbps"`             // weight bytes × tg_tps
	RooflineGBps float64       `json:"roofline_gbps"`    // measured read bandwidth (Bandwidth)
	RooflineFrac float64       `json:"tg_roofline_frac"` // gbps / roofline_gbps
	TGAllocs     float64       `json:"tg_allocs_per_token"`
	PeakRSS      int64         `json:"peak_rss_bytes"` // the process's high-water mark, where the OS reports it
	Depth        int           `json:"depth_tokens"`   // tokens in the cache before decoding
	KV           string        `json:"kv,omitempty"`   // the KV cache (Options.KVName)
	KVBytes      int64         `json:"kv_bytes"`       // the KV cache's bytes (its peak: it is allocated whole)
	Batch        []BatchResult `json:"batch,omitempty"`
}

// Run benchmarks m. name labels the result.
func Run(m *model.Model, name string, opt Options) (*Result, error) {
	if opt.Reps <= 0 {
		opt.Reps = 5
	}
	kernel.SetThreads(opt.Threads)
	r := &Result{Model: name, Params: m.NumParams(), WeightBytes: decodeBytes(m), Threads: kernel.Threads(),
		Kernel: kernel.Kernel(), Prompt: opt.Prompt, Gen: opt.Gen, Reps: opt.Reps, Depth: opt.Depth, KV: opt.KVName}
	if opt.Depth < 0 {
		return nil, fmt.Errorf("bench: depth %d", opt.Depth)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	V := m.Config.VocabSize
	tokens := func(n int) []int {
		t := make([]int, n)
		for i := range t {
			t[i] = rng.IntN(V)
		}
		return t
	}
	ctx := max(opt.Prompt, opt.Depth+opt.Gen, 1)
	var cache model.KVCache = m.NewCache(ctx)
	if opt.NewCache != nil {
		var err error
		if cache, err = opt.NewCache(ctx); err != nil {
			return nil, err
		}
	}
	r.KVBytes = cache.Bytes()
	st := m.NewStateWithCache(cache, max(opt.Prompt, opt.Depth, 1))
	var depth []int
	if opt.Depth > 0 {
		depth = tokens(opt.Depth)
	}
	logits := make([]float32, V)

	if opt.Prompt > 0 {
		toks := tokens(opt.Prompt)
		var rates []float64
		for i := -1; i < opt.Reps; i++ {
			st.Reset()
			start := time.Now()
			if err := st.Forward(toks, logits, false); err != nil {
				return nil, err
			}
			if i >= 0 || !opt.Warmup { // the first run warms caches and pages
				rates = append(rates, float64(opt.Prompt)/time.Since(start).Seconds())
			}
		}
		r.PPTPS, r.PPSD = meanSD(rates)
	}
	if opt.Gen > 0 {
		toks := tokens(opt.Gen)
		var rates []float64
		var ms runtime.MemStats
		var mallocs uint64
		for i := -1; i < opt.Reps; i++ {
			st.Reset()
			if len(depth) > 0 {
				if err := st.Forward(depth, logits, false); err != nil {
					return nil, err
				}
			}
			runtime.ReadMemStats(&ms)
			before := ms.Mallocs
			start := time.Now()
			for j := range toks {
				if err := st.Forward(toks[j:j+1], logits, false); err != nil {
					return nil, err
				}
			}
			el := time.Since(start)
			runtime.ReadMemStats(&ms)
			mallocs += ms.Mallocs - before
			if i >= 0 || !opt.Warmup {
				rates = append(rates, float64(opt.Gen)/el.Seconds())
			}
		}
		r.TGTPS, r.TGSD = meanSD(rates)
		r.TGAllocs = float64(mallocs) / float64((opt.Reps+1)*opt.Gen)
		r.GBps = float64(r.WeightBytes) * r.TGTPS / 1e9
	}
	if len(opt.Batch) > 0 {
		if opt.Gen <= 0 {
			return nil, fmt.Errorf("bench: the batched decode test needs a decode length (Gen)")
		}
		var one *BatchResult
		for _, b := range opt.Batch {
			br, err := runBatch(m, opt, b, tokens)
			if err != nil {
				return nil, err
			}
			r.Batch = append(r.Batch, br)
		}
		for i := range r.Batch {
			if r.Batch[i].Seqs == 1 {
				one = &r.Batch[i]
				break
			}
		}
		for i := range r.Batch {
			b := &r.Batch[i]
			if one != nil && one.TPS > 0 {
				b.VsOne = b.TPS / one.TPS
			}
			if one != nil && b.CPUPerToken > 0 {
				b.CPUVsOne = one.CPUPerToken / b.CPUPerToken
			}
		}
	}
	r.PeakRSS = PeakRSS() // before the bandwidth test's buffer
	if opt.RooflineBytes >= 0 {
		size := opt.RooflineBytes
		if size == 0 {
			size = RooflineBytes
		}
		r.RooflineGBps = Bandwidth(size)
		if r.RooflineGBps > 0 {
			r.RooflineFrac = r.GBps / r.RooflineGBps
		}
	}
	return r, nil
}

// runBatch is the batched decode test at b sequences: each gets its own
// cache, is filled with opt.Depth random tokens once, and then all b
// advance opt.Gen steps together, one Engine.Forward of b tokens (with b
// logit rows) per step; each repetition rewinds them to the depth.
func runBatch(m *model.Model, opt Options, b int, tokens func(int) []int) (BatchResult, error) {
	if b < 1 {
		return BatchResult{}, fmt.Errorf("bench: batch of %d sequences", b)
	}
	ctx := opt.Depth + opt.Gen
	e := m.NewEngine(ctx, max(b, min(opt.Depth, 512)))
	for i := 0; i < b; i++ {
		var cache model.KVCache = m.NewCache(ctx)
		if opt.NewCache != nil {
			var err error
			if cache, err = opt.NewCache(ctx); err != nil {
				return BatchResult{}, err
			}
		}
		if _, err := e.AddSeq(i, cache); err != nil {
			return BatchResult{}, err
		}
	}
	V := m.Config.VocabSize
	logits := make([]float32, b*V)
	bg := context.Background()
	if opt.Depth > 0 {
		for i := 0; i < b; i++ {
			toks := tokens(opt.Depth)
			seqs, pos := make([]int, opt.Depth), make([]int, opt.Depth)
			for j := range pos {
				seqs[j], pos[j] = i, j
			}
			want := make([]bool, opt.Depth)
			want[opt.Depth-1] = true
			if err := e.Forward(bg, model.Batch{Tokens: toks, Seqs: seqs, Pos: pos, Logits: want}, logits); err != nil {
				return BatchResult{}, err
			}
		}
	}
	toks := tokens(opt.Gen * b)
	seqs, pos := make([]int, b), make([]int, b)
	for i := range seqs {
		seqs[i] = i
	}
	var rates []float64
	cpu := math.Inf(1)
	for rep := -1; rep < opt.Reps; rep++ {
		for i := 0; i < b; i++ {
			if err := e.Seq(i).Truncate(opt.Depth); err != nil {
				return BatchResult{}, err
			}
		}
		c0 := cpuTime()
		start := time.Now()
		for step := 0; step < opt.Gen; step++ {
			for i := range pos {
				pos[i] = opt.Depth + step
			}
			bt := model.Batch{Tokens: toks[step*b : (step+1)*b], Seqs: seqs, Pos: pos}
			if err := e.Forward(bg, bt, logits); err != nil {
				return BatchResult{}, err
			}
		}
		if rep >= 0 || !opt.Warmup {
			rates = append(rates, float64(b*opt.Gen)/time.Since(start).Seconds())
			cpu = min(cpu, (cpuTime()-c0).Seconds()/float64(b*opt.Gen))
		}
	}
	br := BatchResult{Seqs: b}
	br.TPS, br.SD = meanSD(rates)
	if cpu > 0 && !math.IsInf(cpu, 1) {
		br.CPUPerToken = cpu
	}
	return br, nil
}

// decodeBytes is what one decode step reads: every matrix but the
// embedding table, of which it reads one row.
func decodeBytes(m *model.Model) int64 {
	w := m.Weights
	n := int64(w.TokEmbd.RowBytes())
	for _, t := range w.Matrices() {
		if t != w.TokEmbd {
			n += int64(len(t.Data))
		}
	}
	if w.Tied() {
		n += int64(len(w.TokEmbd.Data))
	}
	return n
}

func meanSD(v []float64) (float64, float64) {
	if len(v) == 0 {
		return 0, 0
	}
	var s float64
	for _, x := range v {
		s += x
	}
	mean := s / float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(v)-1))
}

// RooflineBytes is the default size of the bandwidth probe's buffer: far
// beyond any cache, so every pass reads DRAM.
const RooflineBytes = 2 << 30

// Bandwidth measures memory-read bandwidth in GB/s: every worker thread
// streams its own contiguous share of a buffer of the given size through
// kernel.ReadSum (the widest loads the CPU has, into independent
// accumulators), and the best of five passes is reported. This is the
// roofline of decoding: a decode step reads every weight once, so weight
// bytes × tokens/s cannot exceed it. The buffer is filled (its pages
// touched) before timing and dropped afterwards.
func Bandwidth(bytes int) float64 {
	return bandwidth(bytes, 5, kernel.ReadSum)
}

// bandwidth times passes over a buffer of the given size with read, split
// into one contiguous share per thread, and returns the best GB/s.
func bandwidth(bytes, passes int, read func([]byte) uint64) float64 {
	t := kernel.Threads()
	share := bytes / t / 4096 * 4096
	if share == 0 {
		return 0
	}
	buf := make([]byte, share*t)
	kernel.Parallel(t, func(lo, hi int) {
		for i := lo * share; i < hi*share; i += 8 {
			buf[i] = byte(i >> 12)
		}
	})
	sums := make([]uint64, t)
	best := 0.0
	for pass := 0; pass < passes; pass++ {
		start := time.Now()
		kernel.ParallelChunks(t, t, func(c, _, _ int) {
			sums[c] = read(buf[c*share : (c+1)*share])
		})
		if gb := float64(len(buf)) / time.Since(start).Seconds() / 1e9; gb > best {
			best = gb
		}
	}
	return best
}

// PeakRSS is the process's peak resident set size (Linux VmHWM), or 0.
func PeakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// WriteJSON prints r as one JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints r for people, in llama-bench's shape.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\tparams\tweights read/token\tthreads\tkernel\ttest\tt/s\n")
	row := func(test string, mean, sd float64) {
		fmt.Fprintf(tw, "%s\t%.2fM\t%.1f MiB\t%d\t%s\t%s\t%.2f ± %.2f\n", r.Model, float64(r.Params)/1e6,
			float64(r.WeightBytes)/(1<<20), r.Threads, r.Kernel, test, mean, sd)
	}
	if r.Prompt > 0 {
		row(fmt.Sprintf("pp%d", r.Prompt), r.PPTPS, r.PPSD)
	}
	if r.Gen > 0 {
		test := fmt.Sprintf("tg%d", r.Gen)
		if r.Depth > 0 {
			test += fmt.Sprintf(" @ d%d", r.Depth)
		}
		row(test, r.TGTPS, r.TGSD)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Batch) > 0 {
		fmt.Fprintln(w)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "batched decode\tseqs\taggregate t/s\tvs B=1\tCPU ms/token\tCPU vs B=1\n")
		x := func(v float64) string {
			if v <= 0 {
				return "-"
			}
			return fmt.Sprintf("%.2f×", v)
		}
		for _, b := range r.Batch {
			fmt.Fprintf(tw, "tg%d @ d%d\t%d\t%.2f ± %.2f\t%s\t%.1f\t%s\n", r.Gen, r.Depth, b.Seqs, b.TPS, b.SD, x(b.VsOne),
				1e3*b.CPUPerToken, x(b.CPUVsOne))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if r.Gen > 0 && r.TGTPS > 0 {
		fmt.Fprintf(w, "\ndecode reads %.1f GB/s of weights", r.GBps)
		if r.RooflineGBps > 0 {
			fmt.Fprintf(w, "; measured read bandwidth %.1f GB/s (decode at %.0f%% of it)", r.RooflineGBps, 100*r.RooflineFrac)
		}
		fmt.Fprintf(w, "; %.1f allocations/token\n", r.TGAllocs)
	} else if r.RooflineGBps > 0 {
		fmt.Fprintf(w, "\nmeasured read bandwidth %.1f GB/s\n", r.RooflineGBps)
	}
	if r.KV != "" {
		fmt.Fprintf(w, "KV cache %s: %.2f MiB\n", r.KV, float64(r.KVBytes)/(1<<20))
	}
	if r.PeakRSS > 0 {
		fmt.Fprintf(w, "peak RSS %.1f MiB\n", float64(r.PeakRSS)/(1<<20))
	}
	return nil
}
