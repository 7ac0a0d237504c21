package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"time"

	"github.com/terse-llm/terse/internal/atomicfile"
)

// EvoOptions configure Evolve.
type EvoOptions struct {
	// Target is the largest predicted file size in bytes; offspring stay
	// within Tolerance (a fraction, 0: 0.005) below it.
	Target    int64
	Tolerance float64
	// Generations to run (0: 40), Offspring per generation (0: 16).
	Generations, Offspring int
	// Stages of the multi-step selection: stage i scores its candidates on
	// Chunks[i] calibration chunks and keeps Keep[i] of them for the next
	// (0 values: {1, 4} chunks keeping {4, 1}); the last stage's chunks
	// also judge the parent.
	Chunks, Keep []int
	// Seed makes the search reproducible.
	Seed uint64
	// State, when set, is a file where the search saves its state after
	// every generation and from which it resumes.
	State string
	// Progress, when set, gets one line per generation.
	Progress func(g Generation)
}

// Generation is the search's state after one generation.
type Generation struct {
	Index       int     `json:"generation"`
	Of          int     `json:"generations"`
	Fitness     float64 `json:"fitness_kld"`
	Size        int64   `json:"size_bytes"`
	Evals       int64   `json:"evals"`
	EvalsPerSec float64 `json:"evals_per_s"`
	Improved    bool    `json:"improved"`
}

// evoState is what State holds.
type evoState struct {
	Version    int     `json:"format_version"`
	Target     int64   `json:"target_bytes"`
	Levels     string  `json:"levels"`
	Seed       uint64  `json:"seed"`
	Generation int     `json:"generation"`
	Parent     []int   `json:"parent"`
	Fitness    float64 `json:"fitness_kld"`
	RNG        []byte  `json:"rng"`
}

// Evolve runs EvoPress's (1+λ) evolutionary search (Sieberling et al.
// 2024, "EvoPress: Towards Optimal Dynamic Model Compression via
// Evolutionary Search") from start: each generation makes Offspring
// children of the parent by level-switch mutations (one unit up a level,
// another down, repeated, then repaired back into the size window), keeps
// the best by a multi-step selection on growing numbers of calibration
// tokens, and replaces the parent when the best child beats it on the last
// stage's tokens. It returns the best assignment and its fitness.
func Evolve(ctx context.Context, f *Fitness, start []int, o EvoOptions) ([]int, float64, error) {
	db := f.db
	if o.Tolerance == 0 {
		o.Tolerance = 0.005
	}
	if o.Generations == 0 {
		o.Generations = 40
	}
	if o.Offspring == 0 {
		o.Offspring = 16
	}
	if len(o.Chunks) == 0 {
		o.Chunks, o.Keep = []int{1, min(4, f.Chunks())}, []int{4, 1}
	}
	if len(o.Keep) != len(o.Chunks) {
		return nil, 0, fmt.Errorf("search: %d selection stages with %d survivor counts", len(o.Chunks), len(o.Keep))
	}
	for _, c := range o.Chunks {
		if c < 1 || c > f.Chunks() {
			return nil, 0, fmt.Errorf("search: a selection stage of %d chunks; the calibration holds %d", c, f.Chunks())
		}
	}
	lo := o.Target - int64(float64(o.Target)*o.Tolerance)
	final := o.Chunks[len(o.Chunks)-1]
	pcg := rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)
	rng := rand.New(pcg)
	parent := slices.Clone(start)
	gen := 0
	var fit float64
	resumed := false
	if o.State != "" {
		st, err := readState(o.State)
		switch {
		case err == nil:
			if st.Target != o.Target || st.Levels != db.LevelNames() || st.Seed != o.Seed || len(st.Parent) != len(db.Units) {
				return nil, 0, fmt.Errorf("search: state %s is of another search (target %d, levels %s, seed %d); remove it to start over", o.State, st.Target, st.Levels, st.Seed)
			}
			if err := pcg.UnmarshalBinary(st.RNG); err != nil {
				return nil, 0, fmt.Errorf("search: state %s: %w", o.State, err)
			}
			parent, gen, fit, resumed = st.Parent, st.Generation, st.Fitness, true
		case !errors.Is(err, os.ErrNotExist):
			return nil, 0, err
		}
	}
	if !resumed {
		repair(db, parent, lo, o.Target, rng)
		var err error
		if fit, err = f.KLD(ctx, parent, final); err != nil {
			return nil, 0, err
		}
	}
	t0, e0 := time.Now(), f.Evals
	for ; gen < o.Generations; gen++ {
		if err := ctx.Err(); err != nil {
			return parent, fit, fmt.Errorf("search: stopped at generation %d: %w", gen, err)
		}
		cands := make([][]int, 0, o.Offspring)
		for len(cands) < o.Offspring {
			c := mutate(db, parent, lo, o.Target, rng)
			if c != nil {
				cands = append(cands, c)
			}
		}
		var best []int
		var bestFit float64
		for s, chunks := range o.Chunks {
			type scored struct {
				a []int
				k float64
			}
			sc := make([]scored, 0, len(cands))
			for _, c := range cands {
				k, err := f.KLD(ctx, c, chunks)
				if err != nil {
					return parent, fit, err
				}
				sc = append(sc, scored{c, k})
			}
			sort.SliceStable(sc, func(a, b int) bool { return sc[a].k < sc[b].k })
			keep := min(o.Keep[s], len(sc))
			cands = cands[:0]
			for _, x := range sc[:keep] {
				cands = append(cands, x.a)
			}
			best, bestFit = sc[0].a, sc[0].k
		}
		improved := bestFit < fit
		if improved {
			parent, fit = best, bestFit
		}
		if o.State != "" {
			rb, err := pcg.MarshalBinary()
			if err != nil {
				return parent, fit, err
			}
			if err := writeState(o.State, evoState{Version: 1, Target: o.Target, Levels: db.LevelNames(), Seed: o.Seed,
				Generation: gen + 1, Parent: parent, Fitness: fit, RNG: rb}); err != nil {
				return parent, fit, err
			}
		}
		if o.Progress != nil {
			el := time.Since(t0).Seconds()
			o.Progress(Generation{Index: gen + 1, Of: o.Generations, Fitness: fit, Size: db.Size(parent),
				Evals: f.Evals, EvalsPerSec: float64(f.Evals-e0) / max(el, 1e-9), Improved: improved})
		}
	}
	return parent, fit, nil
}

// mutate returns a child of parent: 1 to 3 level switches (a unit up a
// level, another down: most often one of the same shape, so that the
// switch keeps the size), then repaired into the window [lo, hi]; nil when
// nothing changed or the child does not fit.
func mutate(db *LevelDB, parent []int, lo, hi int64, rng *rand.Rand) []int {
	c := slices.Clone(parent)
	top := len(db.Levels) - 1
	n := 1 + rng.IntN(3)
	for i := 0; i < n; i++ {
		up := rng.IntN(len(c))
		if c[up] == top {
			continue
		}
		down := -1
		if rng.IntN(4) != 0 {
			// A partner of the same shape, at random.
			var same []int
			for u := range c {
				if u != up && c[u] > 0 && db.Units[u].Elems == db.Units[up].Elems {
					same = append(same, u)
				}
			}
			if len(same) > 0 {
				down = same[rng.IntN(len(same))]
			}
		}
		if down < 0 {
			down = rng.IntN(len(c))
		}
		if down == up || c[down] == 0 {
			continue
		}
		c[up]++
		c[down]--
	}
	repair(db, c, lo, hi, rng)
	if slices.Equal(c, parent) || db.Size(c) > hi {
		return nil
	}
	return c
}

// repair brings c into the window [lo, hi] with as few changes as it can:
// above hi, the unit whose downgrade is the smallest step that brings the
// size under hi (or else the largest step) goes down a level; below lo, a
// random unit whose upgrade fits goes up.
func repair(db *LevelDB, c []int, lo, hi int64, rng *rand.Rand) {
	top := len(db.Levels) - 1
	step := func(u, from, to int) int64 { return padded(db.Units[u].Bytes[from]) - padded(db.Units[u].Bytes[to]) }
	for size := db.Size(c); size > hi; size = db.Size(c) {
		best, bestStep, big, bigStep := -1, int64(0), -1, int64(0)
		off := rng.IntN(len(c))
		for i := range c {
			u := (i + off) % len(c)
			if c[u] == 0 {
				continue
			}
			d := step(u, c[u], c[u]-1)
			if size-d <= hi && (best < 0 || d < bestStep) {
				best, bestStep = u, d
			}
			if d > bigStep {
				big, bigStep = u, d
			}
		}
		if best < 0 {
			best = big
		}
		if best < 0 {
			return
		}
		c[best]--
	}
	for tries := 0; db.Size(c) < lo && tries < 4*len(c); tries++ {
		u := rng.IntN(len(c))
		if c[u] == top {
			continue
		}
		c[u]++
		if db.Size(c) > hi {
			c[u]--
		}
	}
}

func readState(path string) (evoState, error) {
	var st evoState
	b, err := os.ReadFile(path)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("search: state %s: %w", path, err)
	}
	if st.Version != 1 {
		return st, fmt.Errorf("search: state %s has format_version %d; this terse reads 1", path, st.Version)
	}
	return st, nil
}

func writeState(path string, st evoState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		_, err := f.Write(b)
		return err
	})
}
