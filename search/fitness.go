package search

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// Fitness measures an assignment as the search's objective: the mean
// KL-divergence KL(base ‖ candidate) of the next-token distributions, over
// every position of the first n calibration chunks, of the model built from
// the database's tensors at the assigned levels against the base model.
// The base model's log-probabilities are computed once.
type Fitness struct {
	db     *LevelDB
	cfg    model.Config
	chunks [][]int
	baseP  [][]float32 // per chunk: len(chunk) × vocab probabilities
	negH   [][]float64 // per chunk and position: Σ p log p of the base
	logits []float32
	lp     []float64
	// Evals counts candidate evaluations, Tokens the positions they ran.
	Evals, Tokens int64
}

// NewFitness prepares the objective: tokens cut into chunks of ctxLen
// (at most maxChunks of them), scored by base.
func NewFitness(ctx context.Context, base *model.Model, db *LevelDB, tokens []int, ctxLen, maxChunks int) (*Fitness, error) {
	if ctxLen < 2 {
		return nil, fmt.Errorf("search: chunks of %d tokens", ctxLen)
	}
	n := len(tokens) / ctxLen
	if maxChunks > 0 {
		n = min(n, maxChunks)
	}
	if n == 0 {
		return nil, fmt.Errorf("search: %d calibration tokens, need at least one chunk of %d", len(tokens), ctxLen)
	}
	vocab := base.Config.VocabSize
	if db.Config.VocabSize != vocab || db.Config.NLayers != base.Config.NLayers || db.Config.Dim != base.Config.Dim {
		return nil, fmt.Errorf("search: the level database holds a model of another shape than %s's", "the base")
	}
	f := &Fitness{db: db, cfg: db.Config, logits: make([]float32, ctxLen*vocab), lp: make([]float64, vocab)}
	for _, u := range db.Units {
		if _, ok := findWeight(base, u.Name); !ok {
			return nil, fmt.Errorf("search: the level database's %s is not a matrix of the base model: is the database for another model?", u.Name)
		}
	}
	st := base.NewState(ctxLen, ctxLen)
	for c := 0; c < n; c++ {
		chunk := tokens[c*ctxLen : (c+1)*ctxLen]
		st.Reset()
		if err := st.ForwardContext(ctx, chunk, f.logits, true); err != nil {
			return nil, fmt.Errorf("search: base model: %w", err)
		}
		pr := make([]float32, ctxLen*vocab)
		nh := make([]float64, ctxLen)
		for p := 0; p < ctxLen; p++ {
			logSoftmax(f.logits[p*vocab:(p+1)*vocab], f.lp)
			for i, v := range f.lp {
				e := math.Exp(v)
				pr[p*vocab+i] = float32(e)
				if e > 0 {
					nh[p] += e * v
				}
			}
		}
		f.chunks = append(f.chunks, chunk)
		f.baseP = append(f.baseP, pr)
		f.negH = append(f.negH, nh)
	}
	return f, nil
}

// findWeight reports whether name is one of m's matrices.
func findWeight(m *model.Model, name string) (*tensor.Tensor, bool) {
	for _, t := range m.Weights.Matrices() {
		if t.Name == name {
			return t, true
		}
	}
	return nil, false
}

// Chunks is the number of calibration chunks the objective holds.
func (f *Fitness) Chunks() int { return len(f.chunks) }

// ChunkTokens is the length of a chunk.
func (f *Fitness) ChunkTokens() int { return len(f.chunks[0]) }

// Model builds the model of an assignment (a level per unit).
func (f *Fitness) Model(assign []int) (*model.Model, error) {
	if len(assign) != len(f.db.Units) {
		return nil, fmt.Errorf("search: assignment of %d units, the database has %d", len(assign), len(f.db.Units))
	}
	unit := make(map[string]int, len(assign))
	for u := range f.db.Units {
		if assign[u] < 0 || assign[u] >= len(f.db.Levels) {
			return nil, fmt.Errorf("search: unit %d at level %d of %d", u, assign[u], len(f.db.Levels))
		}
		unit[f.db.Units[u].Name] = u
	}
	return model.Load(f.cfg, func(name string) (*tensor.Tensor, bool, error) {
		if u, ok := unit[name]; ok {
			return f.db.Tensor(u, assign[u]), true, nil
		}
		t, ok := f.db.Other(name)
		return t, ok, nil
	})
}

// KLD is the objective of assign over the first n chunks (n ≤ Chunks()).
func (f *Fitness) KLD(ctx context.Context, assign []int, n int) (float64, error) {
	if n <= 0 || n > len(f.chunks) {
		return 0, fmt.Errorf("search: %d chunks asked for, %d held", n, len(f.chunks))
	}
	m, err := f.Model(assign)
	if err != nil {
		return 0, err
	}
	vocab, ctxLen := f.cfg.VocabSize, len(f.chunks[0])
	st := m.NewState(ctxLen, ctxLen)
	var sum float64
	for c := 0; c < n; c++ {
		st.Reset()
		if err := st.ForwardContext(ctx, f.chunks[c], f.logits, true); err != nil {
			return 0, fmt.Errorf("search: candidate model: %w", err)
		}
		for p := 0; p < ctxLen; p++ {
			// KL(b‖c) = Σ p_b log p_b − Σ p_b l_c + logsumexp(l_c), as
			// Σ p_b = 1.
			row := f.logits[p*vocab : (p+1)*vocab]
			b := f.baseP[c][p*vocab : (p+1)*vocab]
			var dot float64
			for i, pb := range b {
				dot += float64(pb) * float64(row[i])
			}
			sum += max(f.negH[c][p]-dot+logSumExp(row), 0)
		}
	}
	f.Evals++
	f.Tokens += int64(n * ctxLen)
	kld := sum / float64(n*ctxLen)
	if math.IsNaN(kld) || math.IsInf(kld, 0) {
		return 0, errors.New("search: candidate model gave non-finite logits")
	}
	return kld, nil
}

// logSumExp is log Σ exp(logits), in float64.
func logSumExp(logits []float32) float64 {
	mx := logits[0]
	for _, v := range logits {
		mx = max(mx, v)
	}
	var s float64
	for _, v := range logits {
		s += math.Exp(float64(v - mx))
	}
	return float64(mx) + math.Log(s)
}

// logSoftmax sets dst to the log-probabilities of logits, in float64.
func logSoftmax(logits []float32, dst []float64) {
	lse := logSumExp(logits)
	for i, v := range logits {
		dst[i] = float64(v) - lse
	}
}
