package model

// Runner scores whole sequences, each from position 0, reusing one State
// (and its KV cache) across calls. It satisfies eval.Model.
type Runner struct {
	m     *Model
	batch int
	st    *State

	// NewCache, when set, makes the KV cache of a sequence of positions
	// positions (nil: the float32 cache).
	NewCache func(positions int) (KVCache, error)
}

// NewRunner makes a runner that feeds at most batch tokens per step
// (0: 512).
func NewRunner(m *Model, batch int) *Runner {
	if batch <= 0 {
		batch = 512
	}
	return &Runner{m: m, batch: batch}
}

// VocabSize is the model's vocabulary size.
func (r *Runner) VocabSize() int { return r.m.Config.VocabSize }

// Logits runs tokens as a fresh sequence and writes len(tokens)×VocabSize
// logits to out.
func (r *Runner) Logits(tokens []int, out []float32) error {
	if r.st == nil || r.st.Cache().Cap() < len(tokens) {
		if r.NewCache == nil {
			r.st = r.m.NewState(len(tokens), min(r.batch, len(tokens)))
		} else {
			c, err := r.NewCache(len(tokens))
			if err != nil {
				return err
			}
			r.st = r.m.NewStateWithCache(c, min(r.batch, len(tokens)))
		}
	}
	r.st.Reset()
	return r.st.Forward(tokens, out, true)
}
