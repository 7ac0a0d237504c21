// Package search finds a per-tensor allocation of quantization types that
// fits a budget with the least loss: the unit is a weight matrix, its
// levels are ggml types, each compressed once (GPTQ onto the type's grid,
// or llama.cpp's importance-weighted quantizer for the lattice types) and
// kept in a level database on disk, so that the search only swaps levels.
//
// Two searches share one objective (Fitness: the KL-divergence of the
// candidate's next-token distributions to the base model's on calibration
// text):
//
//   - dp: L-GreCo's dynamic program (Helcig et al. 2024) over per-unit
//     errors measured one unit at a time, assuming they add up;
//   - evo: EvoPress's (1+λ) evolutionary search (Sieberling et al. 2024)
//     with level-switch mutations that keep the file size within a window
//     below the target and a multi-step selection on growing token counts,
//     started from the DP's answer.
//
// Budgets are a file size, bits per weight, or a largest KLD (the smallest
// file whose DP allocation reaches it, then polished by evo at that size).
// The output is a standard GGUF file whose tensors llama.cpp loads.
package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/progress"
	"github.com/terse-llm/terse/tensor"
)

// DefaultLevels are the levels when Options.Levels is empty: every
// k-quant, Q8_0 and the i-quants between them.
var DefaultLevels = []tensor.DType{tensor.IQ2_XS, tensor.Q2_K, tensor.IQ3_XXS, tensor.Q3_K, tensor.IQ4_XS, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K, tensor.Q8_0}

// Options configure Run.
type Options struct {
	Out string // the GGUF file to write
	// One budget: TargetBytes (file size), TargetBPW (file bits per
	// weight of the model's parameters) or MaxKLD.
	TargetBytes int64
	TargetBPW   float64
	MaxKLD      float64
	// Method is "evo" (default) or "dp".
	Method string
	// Levels (nil: DefaultLevels) and the database folder (required).
	Levels  []tensor.DType
	LevelDB string
	// CalibFile is the calibration text for the levels and the objective;
	// CalibChunks caps the chunks the levels use (0: 32), FitChunks those
	// the objective holds (0: 8), CalibCtx their length (0: 512 or the
	// model's context).
	CalibFile                        string
	CalibChunks, FitChunks, CalibCtx int
	// CalibCache is the levels' calibration cache (BuildOptions's; empty:
	// inside the level database).
	CalibCache string
	// Evo configures the evolutionary search (Target is set by Run).
	Evo EvoOptions
	// Progress gets progress bars and lines.
	Progress io.Writer
}

// Result is what Run found and wrote.
type Result struct {
	Out         string  `json:"out"`
	Method      string  `json:"method"`
	TargetBytes int64   `json:"target_bytes"`
	FileBytes   int64   `json:"file_bytes"`
	Params      int64   `json:"params"`
	BPW         float64 `json:"bits_per_weight"`
	FitnessKLD  float64 `json:"fitness_kld"`
	DPKLD       float64 `json:"dp_fitness_kld"`
	Levels      string  `json:"levels"`
	Evals       int64   `json:"evals"`
	EvalsPerSec float64 `json:"evals_per_s"`
	LevelsS     float64 `json:"levels_s"`
	SearchS     float64 `json:"search_s"`
	WriteS      float64 `json:"write_s"`
	// Tensors is the type chosen for every unit.
	Tensors map[string]string `json:"tensors"`
	// ByBlock and ByKind are the bits per weight spent per transformer
	// block ("blk.3", plus "token_embd", "output") and per tensor kind
	// ("attn_q", "ffn_down", …).
	ByBlock map[string]float64 `json:"bpw_by_block"`
	ByKind  map[string]float64 `json:"bpw_by_kind"`
}

// Run builds (or reopens) the level database, searches an allocation for
// the budget, and writes it as a GGUF file.
func Run(ctx context.Context, ck *load.Checkpoint, o Options) (*Result, error) {
	n := 0
	for _, b := range []bool{o.TargetBytes > 0, o.TargetBPW > 0, o.MaxKLD > 0} {
		if b {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("search: give exactly one budget: a target size, a target bits per weight, or a largest KLD")
	}
	if o.Method == "" {
		o.Method = "evo"
	}
	if o.Method != "evo" && o.Method != "dp" {
		return nil, fmt.Errorf("search: method %q: want evo or dp", o.Method)
	}
	if o.LevelDB == "" {
		return nil, errors.New("search: name a folder for the level database")
	}
	if err := compress.CheckOutput(o.Out, ck.Path); err != nil {
		return nil, err
	}
	if len(o.Levels) == 0 {
		o.Levels = DefaultLevels
	}
	if o.CalibChunks == 0 {
		o.CalibChunks = 32
	}
	if o.FitChunks == 0 {
		o.FitChunks = 8
	}
	levelCtx := o.CalibCtx // as given: 0 lets the level builds take compress's default
	if o.CalibCtx == 0 {
		o.CalibCtx = compress.DefaultCalibCtx
		if m := ck.Model.Config.MaxSeqLen; m > 0 && m < o.CalibCtx {
			o.CalibCtx = m
		}
	}
	logf := func(format string, a ...any) {
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, format+"\n", a...)
		}
	}
	t0 := time.Now()
	db, err := BuildLevels(ctx, ck, BuildOptions{Dir: o.LevelDB, Types: o.Levels, CalibFile: o.CalibFile,
		CalibChunks: o.CalibChunks, CalibCtx: levelCtx, CalibCache: o.CalibCache, Progress: o.Progress, Log: func(m string) { logf("%s", m) }})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	res := &Result{Out: o.Out, Method: o.Method, Params: ck.Model.NumParams(), Levels: db.LevelNames(), LevelsS: time.Since(t0).Seconds()}
	t1 := time.Now()

	text, err := os.ReadFile(o.CalibFile)
	if err != nil {
		return nil, fmt.Errorf("search: calibration text: %w", err)
	}
	// The objective's chunks come after those the levels were calibrated
	// on when the text is long enough, so that the search does not grade
	// the levels on their own calibration tokens.
	tokens := ck.Tokenizer.Encode(string(text), true)
	if skip := o.CalibChunks * o.CalibCtx; len(tokens) >= skip+o.FitChunks*o.CalibCtx {
		tokens = tokens[skip:]
	}
	fit, err := NewFitness(ctx, ck.Model, db, tokens, o.CalibCtx, o.FitChunks)
	if err != nil {
		return nil, err
	}
	errChunks := min(2, fit.Chunks())
	ekey := fmt.Sprintf("levels %s; text %s after %d chunks of %d; %d chunks", db.levelKey(), o.CalibFile, o.CalibChunks, o.CalibCtx, errChunks)
	e, err := loadUnitErrors(db, ekey)
	if err != nil {
		bar := progress.New(o.Progress, int64(len(db.Units)*(len(db.Levels)-1)+1), "unit errors", "evals")
		e, err = UnitErrors(ctx, fit, errChunks, func() { bar.Add(1) })
		bar.Finish()
		if err != nil {
			return nil, err
		}
		if err := saveUnitErrors(db, ekey, e); err != nil {
			return nil, err
		}
	} else {
		logf("unit errors: reusing %s", filepath.Join(db.Dir, unitErrorsFile))
	}
	target := o.TargetBytes
	if o.TargetBPW > 0 {
		target = int64(math.Floor(o.TargetBPW * float64(res.Params) / 8))
	}
	evoChunks := o.Evo.Chunks
	if len(evoChunks) == 0 {
		evoChunks = []int{1, min(4, fit.Chunks())}
	}
	final := evoChunks[len(evoChunks)-1]
	var assign []int
	if o.MaxKLD > 0 {
		if target, assign, err = sizeForKLD(ctx, db, fit, e, o.MaxKLD, final, logf); err != nil {
			return nil, err
		}
	} else if assign, err = DP(db, e, target); err != nil {
		return nil, err
	}
	res.TargetBytes = target
	if res.DPKLD, err = fit.KLD(ctx, assign, final); err != nil {
		return nil, err
	}
	logf("dp: %d bytes predicted, fitness KLD %.5f", db.Size(assign), res.DPKLD)
	res.FitnessKLD = res.DPKLD
	if o.Method == "evo" {
		eo := o.Evo
		eo.Target = target
		if eo.Progress == nil && o.Progress != nil {
			eo.Progress = func(g Generation) {
				mark := ""
				if g.Improved {
					mark = " *"
				}
				logf("evo: generation %d/%d  fitness KLD %.5f  %d bytes  %d evals  %.2f evals/s%s", g.Index, g.Of, g.Fitness, g.Size, g.Evals, g.EvalsPerSec, mark)
			}
		}
		if assign, res.FitnessKLD, err = Evolve(ctx, fit, assign, eo); err != nil {
			return nil, err
		}
	}
	res.SearchS = time.Since(t1).Seconds()
	res.Evals = fit.Evals
	res.EvalsPerSec = float64(fit.Evals) / max(res.SearchS, 1e-9)

	t2 := time.Now()
	if err := Write(ctx, ck, db, assign, o.Out, o.Progress); err != nil {
		return nil, err
	}
	st, err := os.Stat(o.Out)
	if err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	res.FileBytes = st.Size()
	res.WriteS = time.Since(t2).Seconds()
	res.BPW = float64(res.FileBytes) * 8 / float64(res.Params)
	if res.FileBytes > target {
		return res, fmt.Errorf("search: %s is %d bytes, over the target of %d (the size prediction missed by %d bytes)", o.Out, res.FileBytes, target, res.FileBytes-target)
	}
	res.Tensors, res.ByBlock, res.ByKind = Summary(db, assign)
	return res, nil
}

// unitErrorsFile keeps the DP's per-unit errors in the level database, so
// that searches to other budgets skip measuring them again.
const unitErrorsFile = "unit-errors.json"

type unitErrorsJSON struct {
	Key    string      `json:"key"`
	Units  []string    `json:"units"`
	Errors [][]float64 `json:"kld"`
}

func loadUnitErrors(db *LevelDB, key string) ([][]float64, error) {
	b, err := os.ReadFile(filepath.Join(db.Dir, unitErrorsFile))
	if err != nil {
		return nil, err
	}
	var j unitErrorsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	if j.Key != key || len(j.Units) != len(db.Units) || len(j.Errors) != len(db.Units) {
		return nil, errors.New("search: unit errors of other settings")
	}
	for u, name := range j.Units {
		if name != db.Units[u].Name || len(j.Errors[u]) != len(db.Levels) {
			return nil, errors.New("search: unit errors of other units")
		}
	}
	return j.Errors, nil
}

func saveUnitErrors(db *LevelDB, key string, e [][]float64) error {
	j := unitErrorsJSON{Key: key, Errors: e}
	for _, u := range db.Units {
		j.Units = append(j.Units, u.Name)
	}
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(db.Dir, unitErrorsFile), func(f *atomicfile.File) error {
		_, err := f.Write(b)
		return err
	})
}

// sizeForKLD finds the smallest file whose DP allocation reaches maxKLD on
// the objective's n chunks, by bisection over the size.
func sizeForKLD(ctx context.Context, db *LevelDB, f *Fitness, e [][]float64, maxKLD float64, n int, logf func(string, ...any)) (int64, []int, error) {
	lo, hi := db.Size(make([]int, len(db.Units))), int64(0)
	top := make([]int, len(db.Units))
	for i := range top {
		top[i] = len(db.Levels) - 1
	}
	hi = db.Size(top)
	k, err := f.KLD(ctx, top, n)
	if err != nil {
		return 0, nil, err
	}
	if k > maxKLD {
		return 0, nil, fmt.Errorf("search: even every matrix at %s gives KLD %.5f, above %.5f", db.Levels[len(db.Levels)-1].Type, k, maxKLD)
	}
	best := top
	for hi-lo > hi/200 {
		mid := (lo + hi) / 2
		a, err := DP(db, e, mid)
		if err != nil {
			return 0, nil, err
		}
		k, err := f.KLD(ctx, a, n)
		if err != nil {
			return 0, nil, err
		}
		logf("max-kld: %d bytes → KLD %.5f", mid, k)
		if k <= maxKLD {
			hi, best = mid, a
		} else {
			lo = mid
		}
	}
	return hi, best, nil
}

// Write writes the assignment as a GGUF file, taking every unit's tensor
// from the database.
func Write(ctx context.Context, ck *load.Checkpoint, db *LevelDB, assign []int, out string, prog io.Writer) error {
	var ov []compress.Override
	chosen := map[string]*tensor.Tensor{}
	pin := func(t *tensor.Tensor) {
		chosen[t.Name] = t
		ov = append(ov, compress.Override{Pattern: regexp.MustCompile("^" + regexp.QuoteMeta(t.Name) + "$"), Type: t.DType})
	}
	isUnit := map[string]bool{}
	for u, l := range assign {
		isUnit[db.Units[u].Name] = true
		pin(db.Tensor(u, l))
	}
	// The matrices outside the search are the first level's, as the
	// objective measured them.
	for _, t := range db.cks[0].Tensors {
		if len(t.Shape) == 2 && !isUnit[t.Name] && !t.DType.Float() {
			pin(t)
		}
	}
	_, err := compress.Run(ctx, ck, compress.Options{
		Out: out, Preset: presetFor(db, assign), Overrides: ov,
		Precompressed: func(name string, dt tensor.DType) (*tensor.Tensor, error) {
			if t := chosen[name]; t != nil && t.DType == dt {
				return t, nil
			}
			return nil, nil
		},
		Progress: prog,
	})
	return err
}

// presetFor names the llama.cpp file type closest in bits per weight to
// the assignment (GGUF's general.file_type is informational).
func presetFor(db *LevelDB, assign []int) string {
	var bits float64
	for u, l := range assign {
		bits += float64(db.Units[u].Bytes[l]) * 8
	}
	bpw := bits / float64(db.Elems())
	best, bestD := "Q4_K_M", math.Inf(1)
	for _, p := range []struct {
		name string
		bpw  float64
	}{{"IQ2_XS", 2.31}, {"Q2_K", 2.9}, {"IQ3_XXS", 3.06}, {"Q3_K_M", 3.9}, {"IQ4_XS", 4.25}, {"Q4_K_M", 4.8}, {"Q5_K_M", 5.7}, {"Q6_K", 6.56}, {"Q8_0", 8.5}} {
		if d := math.Abs(p.bpw - bpw); d < bestD {
			best, bestD = p.name, d
		}
	}
	return best
}

// Summary lists the chosen type of every unit and the bits per weight
// spent per block and per tensor kind.
func Summary(db *LevelDB, assign []int) (types map[string]string, byBlock, byKind map[string]float64) {
	types, byBlock, byKind = map[string]string{}, map[string]float64{}, map[string]float64{}
	bb, be := map[string]float64{}, map[string]float64{}
	kb, ke := map[string]float64{}, map[string]float64{}
	for u, l := range assign {
		un := db.Units[u]
		types[un.Name] = db.Tensor(u, l).DType.String()
		block, kind := splitName(un.Name)
		bb[block] += float64(un.Bytes[l]) * 8
		be[block] += float64(un.Elems)
		kb[kind] += float64(un.Bytes[l]) * 8
		ke[kind] += float64(un.Elems)
	}
	for k, b := range bb {
		byBlock[k] = b / be[k]
	}
	for k, b := range kb {
		byKind[k] = b / ke[k]
	}
	return types, byBlock, byKind
}

// splitName splits "blk.3.attn_q.weight" into "blk.3" and "attn_q", and
// "output.weight" into "output" twice.
func splitName(name string) (block, kind string) {
	s := strings.TrimSuffix(name, ".weight")
	if rest, ok := strings.CutPrefix(s, "blk."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			return "blk." + rest[:i], rest[i+1:]
		}
	}
	return s, s
}

// ParseSize reads a byte count: a plain number, or one with a unit (KB,
// MB, GB: powers of 1000; KiB, MiB, GiB: of 1024; B).
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	units := []struct {
		suf string
		mul float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"B", 1}}
	mul := 1.0
	for _, u := range units {
		if len(t) > len(u.suf) && strings.EqualFold(t[len(t)-len(u.suf):], u.suf) {
			t, mul = strings.TrimSpace(t[:len(t)-len(u.suf)]), u.mul
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) || v*mul > math.MaxInt64/2 {
		return 0, fmt.Errorf("size %q: want a positive number of bytes, optionally with a unit (3.2GB, 800MiB)", s)
	}
	return int64(v * mul), nil
}

// SortedKeys lists a map's keys in order (for tables).
func SortedKeys(m map[string]float64) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	sort.Strings(k)
	return k
}
