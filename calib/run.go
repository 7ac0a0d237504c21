// Package calib runs a model over calibration text and collects, for every
// weight matrix, statistics of its inputs that quantizers use to decide
// which errors matter:
//
//   - the importance matrix of llama.cpp's llama-imatrix tool (per input
//     column j, the mean squared activation E[x_j²]), read and written in
//     its legacy imatrix.dat format (IMatrix);
//   - the Hessian XᵀX of a layer's inputs, which GPTQ (Frantar et al.,
//     arXiv:2210.17323) needs to spread quantization error (Collector with
//     Hessians set).
//
// Run feeds the text in chunks the way llama-imatrix does; a Collector,
// attached as the model's Observer, does the accumulating. RunLayerwise
// collects the same statistics one block at a time, handing each block's
// to a callback (a compressor) before the next block's exist, so that only
// one block's Hessians are ever held; in its sequential mode each block's
// inputs come from the blocks before it as compressed. A Cache keeps a
// non-sequential layer-by-layer collection on disk, a file per block, so
// that later compressions of the same model on the same tokens read it
// instead of running the model again.
package calib

import (
	"context"
	"fmt"

	"github.com/terse-llm/terse/model"
)

// Run evaluates m over tokens in len(tokens)/ctx non-overlapping chunks of
// ctx tokens (a partial last chunk is dropped), each from an empty KV cache,
// with obs seeing the input of every weight-matrix product (logits are
// computed for every position, so the output projection is observed too).
//
// It follows llama-imatrix's protocol: the tokens are the calibration text
// encoded with the special tokens the model adds (BOS first), and when the
// model has a BOS token the first token of every chunk is replaced by it.
// progress, when not nil, is called after each chunk.
func Run(m *model.Model, tokens []int, ctx int, obs model.Observer, progress func(done, total int)) error {
	return RunContext(context.Background(), m, tokens, ctx, obs, progress)
}

// RunContext is Run that stops between chunks, returning c's error, once c
// is done.
func RunContext(c context.Context, m *model.Model, tokens []int, ctx int, obs model.Observer, progress func(done, total int)) error {
	if ctx < 1 {
		return fmt.Errorf("calib: context %d must be positive", ctx)
	}
	total := len(tokens) / ctx
	if total == 0 {
		return fmt.Errorf("calib: %d tokens do not fill one chunk of %d", len(tokens), ctx)
	}
	st := m.NewState(ctx, ctx)
	st.Observer = obs
	logits := make([]float32, ctx*m.Config.VocabSize)
	chunk := make([]int, ctx)
	for i := 0; i < total; i++ {
		if err := c.Err(); err != nil {
			return fmt.Errorf("calib: stopped before chunk %d of %d: %w", i+1, total, err)
		}
		copy(chunk, tokens[i*ctx:(i+1)*ctx])
		if m.Config.BOS >= 0 {
			chunk[0] = m.Config.BOS
		}
		st.Reset()
		if err := st.Forward(chunk, logits, true); err != nil {
			return fmt.Errorf("calib: chunk %d of %d: %w", i+1, total, err)
		}
		if progress != nil {
			progress(i+1, total)
		}
	}
	return nil
}
