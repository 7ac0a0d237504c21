package search

import (
	"math"
	"math/rand/v2"
	"testing"
)

// syntheticDB is a database of units and sizes only (what DP, mutate and
// repair read).
func syntheticDB(rng *rand.Rand, units, levels int) (*LevelDB, [][]float64) {
	db := &LevelDB{Levels: make([]LevelInfo, levels), Fixed: 1000}
	e := make([][]float64, units)
	for u := 0; u < units; u++ {
		elems := int64(256 * (1 + rng.IntN(8)))
		un := Unit{Name: "u", Elems: elems}
		e[u] = make([]float64, levels)
		w := rng.Float64()
		for l := 0; l < levels; l++ {
			un.Bytes = append(un.Bytes, elems*int64(2+2*l)/8)
			e[u][l] = w * math.Pow(0.25, float64(l))
		}
		e[u][levels-1] = 0
		db.Units = append(db.Units, un)
	}
	return db, e
}

func sumErr(e [][]float64, a []int) float64 {
	var s float64
	for u, l := range a {
		s += e[u][l]
	}
	return s
}

// TestDPMatchesBruteForce checks the knapsack against every assignment of
// small problems.
func TestDPMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 20; trial++ {
		db, e := syntheticDB(rng, 6, 3)
		lo, hi := db.Size(make([]int, 6)), db.Size([]int{2, 2, 2, 2, 2, 2})
		target := lo + rng.Int64N(hi-lo+1)
		a, err := DP(db, e, target)
		if err != nil {
			t.Fatal(err)
		}
		if db.Size(a) > target {
			t.Fatalf("trial %d: DP's file of %d bytes exceeds the target %d", trial, db.Size(a), target)
		}
		best := math.Inf(1)
		cur := make([]int, 6)
		var rec func(u int)
		rec = func(u int) {
			if u == len(cur) {
				if db.Size(cur) <= target {
					best = min(best, sumErr(e, cur))
				}
				return
			}
			for l := 0; l < 3; l++ {
				cur[u] = l
				rec(u + 1)
			}
		}
		rec(0)
		if got := sumErr(e, a); got > best*(1+1e-9)+1e-12 {
			t.Fatalf("trial %d: DP error %g, the best assignment within %d bytes has %g", trial, got, target, best)
		}
	}
	db, e := syntheticDB(rng, 4, 3)
	if _, err := DP(db, e, db.Size(make([]int, 4))-1); err == nil {
		t.Fatal("a target below the smallest file was accepted")
	}
}

// TestMutationsKeepTheWindow checks that every child the evolutionary
// search makes lies in the size window.
func TestMutationsKeepTheWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	db, e := syntheticDB(rng, 40, 5)
	target := (db.Size(make([]int, 40)) + db.Size(func() []int {
		a := make([]int, 40)
		for i := range a {
			a[i] = 4
		}
		return a
	}())) / 2
	lo := target - target/200
	parent, err := DP(db, e, target)
	if err != nil {
		t.Fatal(err)
	}
	if s := db.Size(parent); s < lo || s > target {
		t.Fatalf("DP's size %d outside the window [%d, %d]", s, lo, target)
	}
	made := 0
	for i := 0; i < 500; i++ {
		c := mutate(db, parent, lo, target, rng)
		if c == nil {
			continue
		}
		made++
		if s := db.Size(c); s > target {
			t.Fatalf("child of %d bytes over the target %d", s, target)
		}
		for _, l := range c {
			if l < 0 || l >= len(db.Levels) {
				t.Fatalf("child has level %d", l)
			}
		}
	}
	if made < 250 {
		t.Fatalf("only %d of 500 mutations made a child", made)
	}
}

func TestParseSize(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{{"14356128", 14356128}, {"3.2GB", 3_200_000_000}, {"800MiB", 800 << 20}, {"12 MB", 12_000_000}, {"1.5g", 1_500_000_000}, {"100B", 100}} {
		got, err := ParseSize(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "GB", "-3MB", "0", "3.2XB", "NaN", "1e300GB"} {
		if _, err := ParseSize(bad); err == nil {
			t.Errorf("ParseSize(%q) accepted", bad)
		}
	}
}

// TestLogSoftmaxKLD checks the objective's arithmetic against a direct
// float64 computation.
func TestLogSoftmaxKLD(t *testing.T) {
	a := []float32{1, 2, 3, -50, 0.5}
	dst := make([]float64, len(a))
	logSoftmax(a, dst)
	var z float64
	for _, v := range a {
		z += math.Exp(float64(v))
	}
	for i, v := range a {
		if want := float64(v) - math.Log(z); math.Abs(dst[i]-want) > 1e-12 {
			t.Fatalf("log-softmax %d = %v, want %v", i, dst[i], want)
		}
	}
	if splitBlock, kind := splitName("blk.12.ffn_down.weight"); splitBlock != "blk.12" || kind != "ffn_down" {
		t.Fatalf("splitName = %q, %q", splitBlock, kind)
	}
}
