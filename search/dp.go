package search

import (
	"context"
	"fmt"
	"math"
	"sort"
)

// UnitErrors measures, for the DP baseline, the error of every unit at
// every level on its own: e[u][l] = KLD of the model with unit u at level l
// and every other unit at the top level, less that of the all-top model,
// over the first n chunks. It costs units × (levels−1) evaluations; tick is
// called after each.
func UnitErrors(ctx context.Context, f *Fitness, n int, tick func()) ([][]float64, error) {
	db := f.db
	top := len(db.Levels) - 1
	assign := make([]int, len(db.Units))
	for i := range assign {
		assign[i] = top
	}
	ref, err := f.KLD(ctx, assign, n)
	if err != nil {
		return nil, err
	}
	e := make([][]float64, len(db.Units))
	for u := range db.Units {
		e[u] = make([]float64, len(db.Levels))
		for l := 0; l < top; l++ {
			assign[u] = l
			k, err := f.KLD(ctx, assign, n)
			if err != nil {
				return nil, err
			}
			e[u][l] = max(k-ref, 0)
			if tick != nil {
				tick()
			}
		}
		assign[u] = top
		// A lower level is never better than a higher one on its own
		// (noise can say otherwise; the DP must not exploit it).
		for l := top - 1; l >= 0; l-- {
			e[u][l] = max(e[u][l], e[u][l+1])
		}
	}
	return e, nil
}

// DP returns the assignment that minimizes the sum of the units' errors e
// (as UnitErrors measures them) with a predicted file size of at most
// target bytes, and then spends what the rounding of the knapsack left on
// the upgrades that lower the error most per byte (L-GreCo's dynamic
// program over per-layer errors, Helcig et al. 2024).
func DP(db *LevelDB, e [][]float64, target int64) ([]int, error) {
	budget := target - db.Fixed
	nu, nl := len(db.Units), len(db.Levels)
	lowest := make([]int, nu)
	if db.Size(lowest) > target {
		return nil, fmt.Errorf("search: %d bytes is below the smallest file the levels make (%d bytes at %s)", target, db.Size(lowest), db.Levels[0].Type)
	}
	const bins = 20000
	g := float64(budget) / bins
	cost := func(u, l int) int { return int(math.Ceil(float64(padded(db.Units[u].Bytes[l])) / g)) }
	inf := math.Inf(1)
	dp := make([]float64, bins+1)
	for i := range dp {
		dp[i] = inf
	}
	dp[0] = 0
	choice := make([][]int8, nu)
	next := make([]float64, bins+1)
	for u := 0; u < nu; u++ {
		choice[u] = make([]int8, bins+1)
		for i := range next {
			next[i] = inf
		}
		for b := 0; b <= bins; b++ {
			if math.IsInf(dp[b], 1) {
				continue
			}
			for l := 0; l < nl; l++ {
				nb := b + cost(u, l)
				if nb > bins {
					continue
				}
				if v := dp[b] + e[u][l]; v < next[nb] {
					next[nb] = v
					choice[u][nb] = int8(l)
				}
			}
		}
		dp, next = next, dp
	}
	best := -1
	for b := 0; b <= bins; b++ {
		if !math.IsInf(dp[b], 1) && (best < 0 || dp[b] < dp[best]) {
			best = b
		}
	}
	assign := make([]int, nu)
	if best < 0 {
		return fill(db, e, lowest, target), nil
	}
	for u := nu - 1; u >= 0; u-- {
		l := int(choice[u][best])
		assign[u] = l
		best -= cost(u, l)
	}
	return fill(db, e, assign, target), nil
}

// fill upgrades units one level at a time while the file stays within
// target, best error reduction per byte first.
func fill(db *LevelDB, e [][]float64, assign []int, target int64) []int {
	for {
		size := db.Size(assign)
		type up struct {
			u    int
			gain float64
		}
		var ups []up
		for u, l := range assign {
			if l+1 >= len(db.Levels) {
				continue
			}
			d := padded(db.Units[u].Bytes[l+1]) - padded(db.Units[u].Bytes[l])
			if size+d > target {
				continue
			}
			ups = append(ups, up{u, (e[u][l] - e[u][l+1]) / float64(max(d, 1))})
		}
		if len(ups) == 0 {
			return assign
		}
		sort.Slice(ups, func(a, b int) bool { return ups[a].gain > ups[b].gain })
		assign[ups[0].u]++
	}
}
