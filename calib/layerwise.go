package calib

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/terse-llm/terse/model"
)

// LayerwiseOptions configure RunLayerwise.
type LayerwiseOptions struct {
	// Collector makes the empty collector of one stage: block 0 to
	// NLayers−1, then the head (stage NLayers, whose only product is the
	// output projection: output.weight, or token_embd.weight when tied). Its Include is narrowed to the stage's tensors, so
	// a collector never holds another block's statistics. nil: a zero
	// Collector (Σx² only).
	Collector func(stage int) *Collector
	// Done receives a stage's statistics once every chunk has gone
	// through it. The collector is released (its statistics freed) when
	// Done returns, so Done must take what it needs (Collector.Stats
	// copies). In sequential mode Done returns the stage's compressed
	// projections (any of the block's seven, by Name), which replace the
	// originals when the block is run again to make the next block's
	// inputs; projections it does not return stay as they are. The head's
	// replacements are ignored (nothing runs after it).
	Done func(ctx context.Context, stage int, c *Collector) ([]model.Linear, error)
	// Sequential makes each block's inputs those of the model compressed
	// so far (GPTQ's reference code, GPTQModel): block i is observed with
	// its original weights over the outputs of the compressed blocks
	// before it, then run again with Done's replacements. Otherwise every
	// block sees what the original model gives it, and the statistics are
	// those of Run.
	Sequential bool
	// Progress, when set, is called after each chunk of each pass: total
	// is (NLayers+1) × chunks, plus NLayers × chunks in sequential mode.
	// A cached stage counts its chunks at once.
	Progress func(done, total int)
	// Cache, when set, holds the statistics of this very collection (its
	// key is over the model, the tokens and the chunk length: the caller
	// makes it). When it is complete, no model runs: each stage is read
	// from it in turn, handed to Done and freed, so memory stays one
	// stage's statistics. Otherwise the model runs, and each stage's
	// statistics, collected with a Hessian for every input whatever the
	// Collector asks (the cache then serves any later selection), are
	// stored in it before Done sees them (without the Hessians the
	// Collector did not ask for). Sequential calibration cannot use a
	// cache (its statistics depend on Done's replacements): RunLayerwise
	// refuses the combination. The Collector must have no Include.
	Cache *Cache
}

// RunLayerwise collects the statistics Run collects, but one stage at a
// time: it embeds the len(tokens)/ctx chunks of ctx tokens (llama-imatrix's
// protocol, as Run: the BOS token replaces the first token of each chunk
// when the model has one), then runs block 0 over every chunk with a
// collector that holds only block 0's statistics, hands them to Done, frees
// them, and goes on with the activations block 0 produced; then block 1,
// and so on; last, the final norm and output head. At any moment only one
// stage's statistics are alive: for GPTQ one block's Hessians, one per
// distinct input (float64: 8·(3·Dim² + FFNDim²) bytes when the query width
// is Dim, 1.4 GB for a 7B Llama's 4096 and 11008) instead of every
// block's (44 GB for its 32 blocks).
//
// The price is the calibration activations, held as float32 for every
// chunk: chunks × ctx × Dim × 4 bytes (64 chunks of 512 tokens of a
// 4096-wide 7B model: 512 MiB; 128 chunks: 1 GiB), plus, in sequential
// mode, one chunk more (the observing pass runs on a copy so that the
// compressed block can be run again over the same inputs). Each block is
// run over each chunk once (twice in sequential mode), from an empty
// one-layer KV cache, exactly as the whole-model forward pass computes it,
// so in the default mode every Σx² and Hessian equals Run's.
//
// m is not modified: sequential replacements go into a private copy of
// its layer list. It stops between chunks and between stages, returning
// ctx's error, once ctx is done.
func RunLayerwise(ctx context.Context, m *model.Model, tokens []int, chunkCtx int, opt LayerwiseOptions) error {
	if chunkCtx < 1 {
		return fmt.Errorf("calib: context %d must be positive", chunkCtx)
	}
	chunks := len(tokens) / chunkCtx
	if chunks == 0 {
		return fmt.Errorf("calib: %d tokens do not fill one chunk of %d", len(tokens), chunkCtx)
	}
	cfg := &m.Config
	dim, L := cfg.Dim, cfg.NLayers
	if opt.Cache != nil {
		if opt.Sequential {
			return errors.New("calib: sequential calibration cannot use a cache: each block's statistics depend on how the blocks before it were compressed")
		}
		if opt.Cache.stages != L+1 {
			return fmt.Errorf("calib: cache %s is for %d stages; the model has %d", opt.Cache.dir, opt.Cache.stages, L+1)
		}
		if opt.Cache.Complete() {
			return replayLayerwise(ctx, m, chunks, opt)
		}
	}
	// A private copy of the layer list, so that sequential mode can swap
	// projections without touching m.
	w := *m.Weights
	w.Layers = append([]model.Layer(nil), m.Weights.Layers...)
	run := &model.Model{Config: m.Config, Weights: &w}
	br := run.NewBlockRunner(chunkCtx)

	// acts holds every chunk's activations, chunk after chunk.
	acts := make([]float32, chunks*chunkCtx*dim)
	chunk := make([]int, chunkCtx)
	for c := 0; c < chunks; c++ {
		copy(chunk, tokens[c*chunkCtx:(c+1)*chunkCtx])
		if cfg.BOS >= 0 {
			chunk[0] = cfg.BOS
		}
		if err := m.Embed(chunk, acts[c*chunkCtx*dim:(c+1)*chunkCtx*dim]); err != nil {
			return fmt.Errorf("calib: chunk %d of %d: %w", c+1, chunks, err)
		}
	}
	total := (L + 1) * chunks
	if opt.Sequential {
		total += L * chunks
	}
	done := 0
	tick := func() {
		done++
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
	}
	var scratch []float32
	if opt.Sequential {
		scratch = make([]float32, chunkCtx*dim)
	}
	for stage := 0; stage <= L; stage++ {
		col := &Collector{}
		if opt.Collector != nil {
			col = opt.Collector(stage)
		}
		want := col.Hessians
		if opt.Cache != nil {
			if col.Include != nil {
				return errors.New("calib: a cached collection takes every tensor of each stage; the collector must not narrow it (Include)")
			}
			col.Hessians = func(string) bool { return true }
		}
		col.narrow(stageTensor(m, stage))
		for c := 0; c < chunks; c++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("calib: stopped at %s, chunk %d of %d: %w", stageName(L, stage), c+1, chunks, err)
			}
			x := acts[c*chunkCtx*dim : (c+1)*chunkCtx*dim]
			var err error
			switch {
			case stage == L:
				// Only the head's input is observed; its logits are not
				// needed (Head with nil logits skips the product).
				err = br.Head(x, chunkCtx, nil, col)
			case opt.Sequential:
				copy(scratch, x)
				err = br.Run(ctx, stage, scratch, chunkCtx, col)
			default:
				err = br.Run(ctx, stage, x, chunkCtx, col)
			}
			if err != nil {
				return fmt.Errorf("calib: %s, chunk %d of %d: %w", stageName(L, stage), c+1, chunks, err)
			}
			tick()
		}
		if err := col.Err(); err != nil {
			return fmt.Errorf("calib: %s: %w", stageName(L, stage), err)
		}
		if opt.Cache != nil {
			if err := opt.Cache.store(stage, col); err != nil {
				return err
			}
			col.keepHessians(want)
			if stage == L {
				if err := opt.Cache.finish(); err != nil {
					return err
				}
			}
		}
		var repl []model.Linear
		if opt.Done != nil {
			var err error
			if repl, err = opt.Done(ctx, stage, col); err != nil {
				return err
			}
		}
		col.Release()
		// Hand the stage's statistics (hundreds of MiB for a wide input)
		// back before the next stage allocates its own.
		debug.FreeOSMemory()
		if stage == L || !opt.Sequential {
			continue
		}
		if err := replace(&w.Layers[stage], repl); err != nil {
			return fmt.Errorf("calib: %s: %w", stageName(L, stage), err)
		}
		for c := 0; c < chunks; c++ {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("calib: stopped at %s, chunk %d of %d: %w", stageName(L, stage), c+1, chunks, err)
			}
			if err := br.Run(ctx, stage, acts[c*chunkCtx*dim:(c+1)*chunkCtx*dim], chunkCtx, nil); err != nil {
				return fmt.Errorf("calib: compressed %s, chunk %d of %d: %w", stageName(L, stage), c+1, chunks, err)
			}
			tick()
		}
	}
	return nil
}

// replayLayerwise hands the stages of a complete cache to Done, one at a
// time, as RunLayerwise would have collected them.
func replayLayerwise(ctx context.Context, m *model.Model, chunks int, opt LayerwiseOptions) error {
	L := m.Config.NLayers
	total, done := (L+1)*chunks, 0
	for stage := 0; stage <= L; stage++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("calib: stopped at %s: %w", stageName(L, stage), err)
		}
		proto := &Collector{}
		if opt.Collector != nil {
			proto = opt.Collector(stage)
		}
		if proto.Include != nil {
			return errors.New("calib: a cached collection takes every tensor of each stage; the collector must not narrow it (Include)")
		}
		col, err := opt.Cache.load(stage, false)
		if err != nil {
			return err
		}
		if col.MinRows != proto.MinRows {
			return fmt.Errorf("calib: cache %s was collected skipping products under %d rows; this collection skips those under %d", opt.Cache.dir, col.MinRows, proto.MinRows)
		}
		sel := stageTensor(m, stage)
		for _, name := range col.order {
			if !sel(name) {
				return fmt.Errorf("calib: cache file %s holds %s, which is not of %s", opt.Cache.stagePath(stage), name, stageName(L, stage))
			}
		}
		col.Hessians = proto.Hessians
		col.keepHessians(proto.Hessians)
		done += chunks
		if opt.Progress != nil {
			opt.Progress(done, total)
		}
		if opt.Done != nil {
			if _, err := opt.Done(ctx, stage, col); err != nil {
				return err
			}
		}
		col.Release()
		debug.FreeOSMemory()
	}
	return nil
}

// stageTensor selects the tensors of one stage.
func stageTensor(m *model.Model, stage int) func(string) bool {
	if stage == m.Config.NLayers {
		out := m.Weights.Output.Name() // token_embd.weight when tied
		return func(name string) bool { return name == out }
	}
	prefix := fmt.Sprintf("blk.%d.", stage)
	return func(name string) bool { return len(name) > len(prefix) && name[:len(prefix)] == prefix }
}

func stageName(layers, stage int) string {
	if stage == layers {
		return "output head"
	}
	return fmt.Sprintf("block %d of %d", stage, layers)
}

// replace swaps the projections of l that repl names.
func replace(l *model.Layer, repl []model.Linear) error {
	slots := []*model.Linear{&l.Wq, &l.Wk, &l.Wv, &l.Wo, &l.Gate, &l.Up, &l.Down}
	for _, r := range repl {
		found := false
		for _, s := range slots {
			if (*s).Name() != r.Name() {
				continue
			}
			if (*s).Rows() != r.Rows() || (*s).Cols() != r.Cols() {
				return fmt.Errorf("replacement %s is %d×%d, the projection %d×%d", r.Name(), r.Rows(), r.Cols(), (*s).Rows(), (*s).Cols())
			}
			*s, found = r, true
			break
		}
		if !found {
			return fmt.Errorf("replacement %s is not a projection of this block", r.Name())
		}
	}
	return nil
}
