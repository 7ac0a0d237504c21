package compress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/progress"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

// DefaultCalibCtx is the calibration chunk length when Options.CalibCtx is
// 0 (llama-imatrix's default), or the model's trained context if shorter.
const DefaultCalibCtx = 512

// Options configure Run. The zero value, with Out set, writes llama.cpp's
// Q4_K_M with RTN and no statistics.
type Options struct {
	// Out is the output file: a GGUF file for GGUF methods, a native
	// .terse file for codebook methods. It must not be a folder or the
	// input.
	Out string
	// Method compresses the matrices (nil: RTN).
	Method Method
	// Preset is the llama.cpp file type of a GGUF output ("Q4_K_M", the
	// default when empty); see Presets. Native outputs ignore it.
	Preset string
	// Overrides force the type of matching tensors, after the preset.
	Overrides []Override

	// IMatrixFile is a llama.cpp imatrix.dat whose importance weights the
	// quantization error.
	IMatrixFile string
	// CalibFile is calibration text: Run feeds it through the model in
	// chunks of CalibCtx tokens to measure each matrix's importance (and,
	// for methods that need them, Hessians). With IMatrixFile as well, the
	// imatrix's importance wins for every tensor it covers (a warning says
	// so); the Hessians, and the importance of tensors the imatrix lacks,
	// come from the calibration.
	CalibFile string
	// CalibCtx is the chunk length in tokens (0: DefaultCalibCtx); it must
	// not exceed the model's trained context.
	CalibCtx int
	// CalibChunks caps the number of chunks (0: all the text gives).
	CalibChunks int
	// SaveIMatrix, when set, is where the importance measured on
	// CalibFile is written as llama.cpp's imatrix.dat.
	SaveIMatrix string

	// Sequential, for methods that use Hessians, makes each block's
	// statistics those of its inputs in the model compressed so far (the
	// blocks before it already replaced by their compressed values), as
	// GPTQ's reference code does; otherwise every block's inputs are the
	// original model's. Either way methods that use Hessians calibrate and
	// compress one block at a time (calib.RunLayerwise), so only one
	// block's Hessians are ever held.
	Sequential bool

	// CalibCache, when set, is a folder of calibration caches (see
	// calib.Cache): the statistics that calibration measures on
	// CalibFile, which depend only on the model's weights and
	// configuration, the calibration tokens (the text as the tokenizer
	// encodes it, cut to CalibChunks) and CalibCtx, are read from it when
	// an earlier run stored them, and stored in it otherwise, so that
	// several compressions of one model share one calibration pass.
	// Methods that use Hessians read and fill it; the others read it when
	// complete and otherwise calibrate as usual without filling it.
	// Sequential calibration cannot use it (its statistics depend on the
	// compressed blocks): Run refuses the combination.
	CalibCache string

	// Precompressed, when set, offers tensors already compressed to the
	// type the plan gives them (an allocation search's level database):
	// it returns nil for a tensor it does not hold at that type. Run takes
	// the tensors it returns as they are (their name, shape and type are
	// checked) instead of compressing them.
	Precompressed func(name string, dt tensor.DType) (*tensor.Tensor, error)

	// AllowRequantize lets an already quantized (or coded) checkpoint be
	// compressed again; without it Run refuses, as llama-quantize does.
	AllowRequantize bool

	// Progress, when set, gets progress bars (calibration, compression).
	Progress io.Writer
	// Warn, when set, gets each warning as it happens (they are also in
	// Result.Warnings).
	Warn func(msg string)
}

// Result is what Run did. Its JSON form is the one schema of `terse
// compress --json` for both output kinds: snake_case keys, units in names.
type Result struct {
	Model  string `json:"model"`
	Out    string `json:"out"`
	Format Output `json:"format"` // "gguf" or "native"
	Method string `json:"method"`
	// Preset is the llama.cpp file type (GGUF outputs only).
	Preset      string `json:"preset,omitempty"`
	IMatrix     string `json:"imatrix,omitempty"`
	Calib       string `json:"calib,omitempty"`
	CalibTokens int    `json:"calib_tokens,omitempty"` // tokens used
	CalibCtx    int    `json:"calib_ctx_tokens,omitempty"`
	CalibChunks int    `json:"calib_chunks,omitempty"`
	// CalibMode is how the statistics were collected: "whole-model" (one
	// pass, every tensor at once), "layerwise" (one block at a time, the
	// original model's inputs) or "sequential" (one block at a time, the
	// compressed model's inputs).
	CalibMode string `json:"calib_mode,omitempty"`
	// CalibCache is the folder of this calibration's cache, when one was
	// used; CalibCached says the statistics were read from it, and
	// CalibKeySeconds is the time spent hashing the cache key's inputs.
	CalibCache      string  `json:"calib_cache,omitempty"`
	CalibCached     bool    `json:"calib_cached,omitempty"`
	CalibKeySeconds float64 `json:"calib_key_s,omitempty"`
	Params          int64   `json:"params"`
	FileBytes       int64   `json:"file_bytes"`
	// BitsPerWeight is file bytes × 8 / parameters.
	BitsPerWeight float64 `json:"bits_per_weight"`
	// CompressedBitsPerWeight is over the matrices the method compressed
	// (codebooks and scales included).
	CompressedBitsPerWeight float64        `json:"compressed_bits_per_weight"`
	CalibSeconds            float64        `json:"calib_seconds"`
	Seconds                 float64        `json:"seconds"` // the whole run
	Warnings                []string       `json:"warnings,omitempty"`
	Tensors                 []TensorReport `json:"tensors"`
}

// Run compresses ck as opt says and writes opt.Out: it checks the options
// and the output path before any work, reads or measures the statistics,
// plans a type for every matrix, compresses them, and writes the file. It
// stops between calibration chunks and between tensors once ctx is done.
func Run(ctx context.Context, ck *load.Checkpoint, opt Options) (*Result, error) {
	start := time.Now()
	if ck == nil || ck.Model == nil {
		return nil, errors.New("compress: checkpoint has no model weights")
	}
	j := &job{ck: ck, opt: opt, res: &Result{Model: ck.Path, Out: opt.Out, Params: ck.Model.NumParams()}}
	if err := j.check(); err != nil {
		return nil, err
	}
	if err := j.statistics(ctx); err != nil {
		return nil, err
	}
	if err := j.compress(ctx); err != nil {
		return nil, err
	}
	st, err := os.Stat(opt.Out)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	r := j.res
	r.FileBytes = st.Size()
	r.BitsPerWeight = float64(r.FileBytes) * 8 / float64(r.Params)
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

// job is one Run.
type job struct {
	ck     *load.Checkpoint
	opt    Options
	method Method
	preset Preset
	res    *Result

	ts      []*tensor.Tensor
	plan    Plan
	tokKind string // native output: the embedded tokenizer
	tok     []byte
	imat    *calib.IMatrix
	col     *calib.Collector // the whole-model collection (importance-only methods)
	emb     []float32
	// done holds the tensors compressed layer by layer during calibration.
	done map[string]quantized
	// replaced counts the tensors whose measured importance the imatrix
	// replaced, in a layer-by-layer collection.
	replaced int
}

func (j *job) warn(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	j.res.Warnings = append(j.res.Warnings, msg)
	if j.opt.Warn != nil {
		j.opt.Warn(msg)
	}
}

// check validates everything that can be known before work starts, and
// lists the tensors and plans their types.
func (j *job) check() error {
	opt, m := j.opt, j.ck.Model
	if err := CheckOutput(opt.Out, j.ck.Path); err != nil {
		return err
	}
	if opt.SaveIMatrix != "" {
		if err := CheckOutput(opt.SaveIMatrix, j.ck.Path); err != nil {
			return err
		}
		if opt.CalibFile == "" {
			return errors.New("compress: saving an imatrix needs calibration text to measure it")
		}
		if filepath.Clean(opt.SaveIMatrix) == filepath.Clean(opt.Out) {
			return fmt.Errorf("compress: the imatrix and the model would both be written to %s", opt.Out)
		}
	}
	j.method = opt.Method
	if j.method == nil {
		j.method = RTN{}
	}
	j.res.Method, j.res.Format = j.method.Name(), j.method.Output()
	if j.method.NeedsHessian() && opt.CalibFile == "" {
		return fmt.Errorf("compress: method %s with these settings needs calibration text to measure the layers' inputs", j.method.Name())
	}
	if opt.Sequential && !j.method.NeedsHessian() {
		return fmt.Errorf("compress: sequential calibration feeds compressed blocks' outputs to the next block's Hessians; method %s with these settings uses none", j.method.Name())
	}
	if opt.Sequential && opt.CalibCache != "" {
		return errors.New("compress: sequential calibration cannot use a calibration cache: each block's statistics depend on how the blocks before it were compressed")
	}
	if opt.CalibCache != "" && opt.CalibFile == "" {
		return errors.New("compress: a calibration cache keeps what calibration text measures; there is no calibration text")
	}
	if opt.CalibCache != "" {
		if st, err := os.Stat(opt.CalibCache); err == nil && !st.IsDir() {
			return fmt.Errorf("compress: calibration cache %s is a file; name a folder", opt.CalibCache)
		}
	}
	if opt.CalibCtx < 0 || opt.CalibChunks < 0 {
		return fmt.Errorf("compress: calibration chunks of %d tokens, at most %d of them: want positive numbers", opt.CalibCtx, opt.CalibChunks)
	}
	if opt.CalibCtx == 0 {
		j.opt.CalibCtx = DefaultCalibCtx
		if n := m.Config.MaxSeqLen; n > 0 && n < DefaultCalibCtx {
			j.opt.CalibCtx = n
		}
	} else if n := m.Config.MaxSeqLen; n > 0 && opt.CalibCtx > n {
		return fmt.Errorf("compress: calibration chunks of %d tokens exceed %s's trained context of %d", opt.CalibCtx, j.ck.Path, n)
	}
	switch ext := filepath.Ext(opt.Out); {
	case j.method.Output() == GGUF && ext == native.Ext:
		return fmt.Errorf("compress: output %s: method %s writes GGUF, which a %s name would make every loader read as a native file; name it .gguf", opt.Out, j.method.Name(), native.Ext)
	case j.method.Output() == Native && ext != native.Ext:
		j.warn("output %s is a native file; native files are named %s", opt.Out, native.Ext)
	}
	var err error
	switch j.method.Output() {
	case GGUF:
		name := opt.Preset
		if name == "" {
			name = "Q4_K_M"
		}
		p, ok := Presets[strings.ToUpper(name)]
		if !ok {
			return fmt.Errorf("compress: unknown preset %q (presets: %s)", name, PresetNames())
		}
		j.preset, j.res.Preset = p, p.Name
		if j.ts, err = convert.Tensors(j.ck, convert.Options{}); err != nil {
			return fmt.Errorf("compress %s: %w", j.ck.Path, err)
		}
		// Precompressed tensors were compressed with their statistics.
		hasImportance := opt.IMatrixFile != "" || opt.CalibFile != "" || opt.Precompressed != nil
		j.plan = MakePlan(&m.Config, m.Weights, p, hasImportance, opt.Overrides)
		if err := j.plan.Check(p.Name, hasImportance); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
	case Native:
		if j.tokKind, j.tok, err = tokenizerFile(j.ck); err != nil {
			return fmt.Errorf("compress %s: %w", opt.Out, err)
		}
		if j.ts, err = nativeTensors(m); err != nil {
			return fmt.Errorf("compress %s: %w", j.ck.Path, err)
		}
		if j.plan, err = nativePlan(j.ts, opt.Overrides); err != nil {
			return fmt.Errorf("compress: %w", err)
		}
	default:
		return fmt.Errorf("compress: method %s writes %q files, which terse cannot write", j.method.Name(), j.method.Output())
	}
	// Requantizing: refused unless asked for, as llama-quantize does.
	counts := map[string]int{}
	for _, t := range j.ts {
		if _, ok := j.plan[t.Name]; ok && (t.Decoder != nil || !t.DType.Float()) {
			counts[t.DType.String()]++
		}
	}
	if len(counts) > 0 {
		var kinds []string
		for k, n := range counts {
			kinds = append(kinds, fmt.Sprintf("%d %s", n, k))
		}
		sort.Strings(kinds)
		what := fmt.Sprintf("%s is already quantized (%s matrices)", j.ck.Path, strings.Join(kinds, ", "))
		if !opt.AllowRequantize {
			return fmt.Errorf("compress: %s; quantizing it again compounds the errors: compress the original weights, or allow requantizing (terse compress --allow-requantize)", what)
		}
		j.warn("%s: requantizing compounds the errors; the original weights would do better", what)
	}
	return nil
}

// CheckOutput reports why path cannot be written as an output of the
// model at input: empty, a folder, the input itself, an existing file in
// the input's folder (for a Hugging Face folder), or in a folder that does
// not exist.
func CheckOutput(path, input string) error {
	if path == "" {
		return errors.New("compress: no output file named")
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("compress: output %s is a folder; name a file (inside it, for example)", path)
		}
		in, err := os.Stat(input)
		if err == nil && os.SameFile(st, in) {
			return fmt.Errorf("compress: output %s is the input model; name another file", path)
		}
		if err == nil && in.IsDir() {
			if d, err := os.Stat(filepath.Dir(path)); err == nil && os.SameFile(d, in) {
				return fmt.Errorf("compress: output %s would overwrite a file of the input model %s; name another file", path, input)
			}
		}
	}
	dir := filepath.Dir(path)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("compress: output %s: folder %s does not exist", path, dir)
	}
	return nil
}

// statistics reads the imatrix and runs the calibration.
func (j *job) statistics(ctx context.Context) error {
	opt, m := j.opt, j.ck.Model
	var err error
	if opt.IMatrixFile != "" {
		if j.imat, err = calib.ReadIMatrixFile(opt.IMatrixFile); err != nil {
			return err
		}
		j.res.IMatrix = opt.IMatrixFile
		for _, t := range j.ts {
			if _, ok := j.plan[t.Name]; !ok {
				continue
			}
			if v := j.imat.Importance(t.Name); v != nil && len(v) != t.Cols() {
				return fmt.Errorf("compress: imatrix %s: %d values for %s, which has %d columns: is it for another model?", opt.IMatrixFile, len(v), t.Name, t.Cols())
			}
		}
	}
	if opt.CalibFile != "" {
		if err := j.calibrate(ctx); err != nil {
			return err
		}
	}
	if (j.col != nil || j.done != nil) && j.imat != nil {
		n := j.replaced
		if j.col != nil {
			for _, name := range j.col.Names() {
				if j.imat.Importance(name) != nil {
					n++
				}
			}
		}
		if n > 0 {
			j.warn("%s replaces the importance measured on %s for %d tensors (the imatrix wins where it has a tensor)", opt.IMatrixFile, opt.CalibFile, n)
		}
	}
	if j.method.NeedsHessian() && j.method.Output() == GGUF && !m.Config.TiedEmbeddings {
		// terse's own recipe for the one matrix calibration cannot weight;
		// RTN stays exactly llama.cpp's.
		j.emb = EmbeddingImportance(m.Weights)
	}
	return nil
}

func (j *job) calibrate(ctx context.Context) error {
	opt, m := j.opt, j.ck.Model
	start := time.Now()
	text, err := os.ReadFile(opt.CalibFile)
	if err != nil {
		return fmt.Errorf("compress: calibration text: %w", err)
	}
	if i := bytes.IndexByte(text, 0); i >= 0 {
		return fmt.Errorf("compress: calibration text %s: NUL byte at offset %d: not a text file", opt.CalibFile, i)
	}
	if !utf8.Valid(text) {
		return fmt.Errorf("compress: calibration text %s is not valid UTF-8", opt.CalibFile)
	}
	n := opt.CalibCtx
	tokens := j.ck.Tokenizer.Encode(string(text), true)
	if len(tokens) < n {
		have := len(tokens)
		if have > 0 && tokens[0] == m.Config.BOS {
			have-- // the BOS the tokenizer adds is not the text's
		}
		return fmt.Errorf("compress: calibration text %s: %d tokens, need at least one chunk of %d", opt.CalibFile, have, n)
	}
	if c := opt.CalibChunks; c > 0 && c*n < len(tokens) {
		tokens = tokens[:c*n]
	}
	chunks := len(tokens) / n
	tokens = tokens[:chunks*n] // the partial last chunk is never run
	var cache *calib.Cache
	if opt.CalibCache != "" {
		if cache, err = j.openCache(tokens, n); err != nil {
			return err
		}
	}
	var im *calib.IMatrix
	if j.method.NeedsHessian() {
		im, err = j.layerwise(ctx, tokens, n, cache)
	} else {
		im, err = j.wholeModel(ctx, tokens, n, cache)
	}
	if err != nil {
		return err
	}
	j.res.Calib, j.res.CalibTokens, j.res.CalibCtx, j.res.CalibChunks = opt.CalibFile, chunks*n, n, chunks
	if j.res.CalibSeconds == 0 { // layerwise sets it, less the time spent compressing
		j.res.CalibSeconds = time.Since(start).Seconds()
	}
	if opt.SaveIMatrix != "" {
		if err := writeIMatrix(opt.SaveIMatrix, im); err != nil {
			return err
		}
	}
	return nil
}

// openCache opens the calibration cache of these tokens. Its key hashes
// the model's configuration, every tensor of the checkpoint as stored
// (name, type, shape and content: a content hash, so a copied or touched
// file still hits and a rewritten one with the same size and time misses;
// it costs one read of the weights, a second or two per GB), the chunk
// length and the tokens (which carry the text, the tokenizer and the chunk
// count).
func (j *job) openCache(tokens []int, n int) (*calib.Cache, error) {
	t0 := time.Now()
	m := j.ck.Model
	k := calib.NewCacheKey()
	cfg, err := json.Marshal(m.Config)
	if err != nil {
		return nil, fmt.Errorf("compress: calibration cache key: %w", err)
	}
	k.Bytes(cfg)
	k.Int(int64(n))
	k.Tokens(tokens)
	k.Int(int64(len(j.ck.Tensors)))
	for _, t := range j.ck.Tensors {
		k.String(t.Name)
		k.String(t.DType.String())
		k.Int(int64(len(t.Shape)))
		for _, d := range t.Shape {
			k.Int(int64(d))
		}
		k.Bytes(t.Data)
	}
	c, err := calib.OpenCache(j.opt.CalibCache, k.Sum(), m.Config.NLayers)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	j.res.CalibCache, j.res.CalibKeySeconds = c.Dir(), time.Since(t0).Seconds()
	return c, nil
}

// wholeModel collects every tensor's importance in one pass over the
// model (or reads it from a complete cache), and returns it as an imatrix
// when one is to be saved.
func (j *job) wholeModel(ctx context.Context, tokens []int, n int, cache *calib.Cache) (*calib.IMatrix, error) {
	opt := j.opt
	j.res.CalibMode = "whole-model"
	j.col = &calib.Collector{}
	chunks := len(tokens) / n
	var err error
	if cache != nil && cache.Complete() {
		j.col, err = cache.Importance()
		j.res.CalibCached = err == nil
	} else {
		bar := progress.New(opt.Progress, int64(chunks), "calibrate", "chunks")
		err = calib.RunContext(ctx, j.ck.Model, tokens, n, j.col, func(int, int) { bar.Add(1) })
		bar.Finish()
	}
	if err == nil {
		err = j.col.Err()
	}
	if err != nil {
		return nil, fmt.Errorf("compress: calibration on %s: %w", opt.CalibFile, err)
	}
	if opt.SaveIMatrix == "" {
		return nil, nil
	}
	im, err := j.col.IMatrix(n, opt.CalibFile)
	if err != nil {
		return nil, fmt.Errorf("compress: %w", err)
	}
	return im, nil
}

// layerwise collects the statistics one block at a time and compresses
// each block's matrices as soon as its statistics are in, so that only one
// block's Hessians are ever held; in sequential mode the compressed block
// then makes the next block's inputs. The compressed tensors wait in
// j.done for the final pass. It returns the importance of every tensor as
// one imatrix (what the whole-model pass would have saved, byte for byte)
// when one is to be saved.
func (j *job) layerwise(ctx context.Context, tokens []int, n int, cache *calib.Cache) (*calib.IMatrix, error) {
	opt, m := j.opt, j.ck.Model
	j.res.CalibMode = "layerwise"
	if opt.Sequential {
		j.res.CalibMode = "sequential"
	}
	start := time.Now()
	var compressing time.Duration
	j.done = map[string]quantized{}
	var im *calib.IMatrix
	if opt.SaveIMatrix != "" {
		im = &calib.IMatrix{Dataset: opt.CalibFile}
	}
	qopt := QuantizeOptions{Plan: j.plan, Method: j.method}
	hess := func(name string) bool {
		dt, ok := j.plan[name]
		return ok && !dt.Float()
	}
	done := func(ctx context.Context, stage int, col *calib.Collector) ([]model.Linear, error) {
		t0 := time.Now()
		defer func() { compressing += time.Since(t0) }()
		if im != nil {
			part, err := col.IMatrix(n, opt.CalibFile)
			if err != nil {
				return nil, fmt.Errorf("compress: %w", err)
			}
			im.Entries = append(im.Entries, part.Entries...)
			im.LastChunk = max(im.LastChunk, part.LastChunk)
		}
		// The stage's Hessians are used where the collector holds them, and
		// each distinct one is factored once.
		qopt.Stats = func(name string) *quant.Stats { return j.statsWith(col.SharedStats, name) }
		qopt.factors = factorCache{}
		defer func() { qopt.factors = nil }()
		collected := map[string]bool{}
		for _, name := range col.Names() {
			collected[name] = true
			if j.imat != nil && j.imat.Importance(name) != nil {
				j.replaced++
			}
		}
		var repl []model.Linear
		for _, t := range j.ts {
			dt, ok := j.plan[t.Name]
			if !ok || !collected[t.Name] {
				continue
			}
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("compress: stopped before tensor %q: %w", t.Name, err)
			}
			nt, r, err := quantizeTensor(t, dt, qopt)
			if err != nil {
				return nil, err
			}
			j.done[t.Name] = quantized{nt, r}
			// The original is not read again (at most once more, in
			// sequential mode, if nothing replaces it): let a mapped
			// checkpoint's pages go.
			evict(t.Data)
			if opt.Sequential && stage < m.Config.NLayers {
				l, err := compressedLinear(m, stage, nt)
				if err != nil {
					return nil, fmt.Errorf("compress: %w", err)
				}
				repl = append(repl, l)
			}
		}
		return repl, nil
	}
	chunks, layers := len(tokens)/n, m.Config.NLayers
	total := (layers + 1) * chunks
	if opt.Sequential {
		total += layers * chunks
	}
	j.res.CalibCached = cache != nil && cache.Complete()
	bar := progress.New(opt.Progress, int64(total), "calibrate+compress", "block-chunks")
	last := 0
	err := calib.RunLayerwise(ctx, m, tokens, n, calib.LayerwiseOptions{
		Collector:  func(int) *calib.Collector { return &calib.Collector{Hessians: hess} },
		Done:       done,
		Sequential: opt.Sequential,
		Progress:   func(d, _ int) { bar.Add(int64(d - last)); last = d },
		Cache:      cache,
	})
	bar.Finish()
	if err != nil {
		return nil, fmt.Errorf("compress: calibration on %s: %w", opt.CalibFile, err)
	}
	j.res.CalibSeconds = (time.Since(start) - compressing).Seconds()
	if im != nil {
		sort.Slice(im.Entries, func(a, b int) bool { return im.Entries[a].Name < im.Entries[b].Name })
	}
	return im, nil
}

// precompressed takes the planned tensors that Options.Precompressed holds.
func (j *job) precompressed() error {
	if j.opt.Precompressed == nil {
		return nil
	}
	if j.done == nil {
		j.done = map[string]quantized{}
	}
	for _, t := range j.ts {
		dt, ok := j.plan[t.Name]
		if _, done := j.done[t.Name]; !ok || done {
			continue
		}
		nt, err := j.opt.Precompressed(t.Name, dt)
		if err != nil {
			return fmt.Errorf("compress: tensor %q: %w", t.Name, err)
		}
		if nt == nil {
			continue
		}
		if nt.Name != t.Name || nt.DType != dt || !slices.Equal(nt.Shape, t.Shape) {
			return fmt.Errorf("compress: precompressed tensor %q is %s %v, the plan wants %s %v", t.Name, nt.DType, nt.Shape, dt, t.Shape)
		}
		r := report(t, nt, "precompressed", nil, 0)
		j.done[t.Name] = quantized{nt, r}
	}
	return nil
}

// compressedLinear is the projection of block stage whose tensor nt
// replaces, as the engine runs it: nt itself (any ggml type or a codebook
// decoder), with the original's bias.
func compressedLinear(m *model.Model, stage int, nt *tensor.Tensor) (model.Linear, error) {
	l := &m.Weights.Layers[stage]
	for _, p := range []model.Linear{l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down} {
		if p.Name() != nt.Name {
			continue
		}
		d := model.NewDense(nt)
		if b := model.BiasOf(p); b != nil {
			return model.NewBiased(d, b)
		}
		return d, nil
	}
	return nil, fmt.Errorf("tensor %q is not a projection of block %d", nt.Name, stage)
}

// stats merges the statistics of one tensor: the imatrix's importance
// where it has the tensor, else the calibration's; the calibration's
// Hessian; for the token embedding without either, EmbeddingImportance.
func (j *job) stats(name string) *quant.Stats { return j.statsFrom(j.col, name) }

// statsFrom is stats with the calibration's statistics from col (nil:
// none).
func (j *job) statsFrom(col *calib.Collector, name string) *quant.Stats {
	if col == nil {
		return j.statsWith(nil, name)
	}
	return j.statsWith(col.Stats, name)
}

// statsWith is stats with the calibration's statistics from get (nil:
// none).
func (j *job) statsWith(get func(string) *quant.Stats, name string) *quant.Stats {
	var imp []float32
	if j.imat != nil {
		imp = j.imat.Importance(name)
	}
	if name == "token_embd.weight" && j.emb != nil && imp == nil {
		return &quant.Stats{Importance: j.emb}
	}
	var s *quant.Stats
	if get != nil {
		s = get(name)
	}
	if imp != nil {
		if s == nil {
			s = &quant.Stats{}
		}
		s.Importance = imp
	}
	return s
}

func (j *job) compress(ctx context.Context) error {
	if err := j.precompressed(); err != nil {
		return err
	}
	qts, reports, err := Quantize(ctx, j.ts, QuantizeOptions{Plan: j.plan, Method: j.method, Stats: j.stats,
		Progress: j.opt.Progress, done: j.done})
	if err != nil {
		return err
	}
	var bits, elems float64
	for _, r := range reports {
		if r.Method != "copy" && r.Method != "convert" {
			n := 1.0
			for _, d := range r.Shape {
				n *= float64(d)
			}
			bits += r.BitsPerWeight * n
			elems += n
		}
	}
	if elems > 0 {
		j.res.CompressedBitsPerWeight = bits / elems
	}
	j.res.Tensors = reports
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("compress: stopped before writing %s: %w", j.opt.Out, err)
	}
	return j.write(qts)
}
