package kv

import (
	"math/rand/v2"
	"testing"
)

// TestZipSaliency drives a zip cache as the engine does (layer 0's keys,
// its attention, then layer 1's keys) with attention concentrated on
// chosen positions: layer 1 stores exactly those, the fraction f with the
// highest normalized attention, at the high precision, and sinks in
// binary16; layer 0 has no attention to go by and stores all at the low.
func TestZipSaliency(t *testing.T) {
	const n = 40
	sp, err := Parse("zip:h8:l2:f0.25:g32:s2")
	if err != nil {
		t.Fatal(err)
	}
	c, err := sp.New(&testCfg, n)
	if err != nil {
		t.Fatal(err)
	}
	z := c.(*zipCache)
	rng := rand.New(rand.NewPCG(5, 6))
	ks, vs := kvRows(rng, n, testCfg.KVDim(0))
	for p := 0; p < n; p++ {
		if err := c.Append(0, ks[p], vs[p]); err != nil {
			t.Fatal(err)
		}
	}
	// Query pos attends 0.5 to position pos·7 mod pos+1 and spreads
	// the rest evenly: late positions are seen by few queries, and the
	// normalization must not favour them.
	salient := map[int]bool{}
	for pos := 0; pos < n; pos++ {
		row := make([]float32, pos+1)
		for p := range row {
			row[p] = 0.5 / float32(pos+1)
		}
		hot := 3 + pos%10 // positions 3…12 get the extra weight
		if hot <= pos {
			row[hot] += 0.5
		}
		for qh := 0; qh < testCfg.NHeads; qh++ {
			z.Observe(0, qh, pos, append([]float32(nil), row...), 1)
		}
	}
	for p := 3; p <= 12; p++ {
		salient[p] = true
	}
	for p := 0; p < n; p++ {
		if err := c.Append(1, ks[p], vs[p]); err != nil {
			t.Fatal(err)
		}
	}
	nhi := 0
	for p := 0; p < n; p++ {
		l0, l1 := z.lvl[0][p], z.lvl[1][p]
		want := z.lo
		switch {
		case p < 2:
			want = z.sink
		case salient[p]:
			want = z.hi
		}
		if int(l1) != want {
			t.Errorf("layer 1 position %d at level %d, want %d", p, l1, want)
		}
		// Layer 0 has seen no attention: low precision until its
		// slots run out, then the high level's.
		if w0 := z.lo; p >= 2 && int(l0) != w0 && !(p >= 30 && int(l0) == z.hi) {
			t.Errorf("layer 0 position %d at level %d, want %d (no attention seen yet)", p, l0, w0)
		}
		if int(l1) == z.hi {
			nhi++
		}
	}
	if want := 10; nhi != want { // round(0.25·(40−2)) = 10 high slots
		t.Errorf("%d positions at high precision, want %d", nhi, want)
	}
	checkAttention(t, "zip", c, rng, n)
	// Truncating forgets the attention; refilling stays within the levels.
	if err := c.Truncate(10); err != nil {
		t.Fatal(err)
	}
	for p := 10; p < n; p++ {
		for l := 0; l < 2; l++ {
			if err := c.Append(l, ks[p], vs[p]); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkAttention(t, "zip", c, rng, n)
}

// TestStairBands: positions sit in the band their age gives them, and
// requantization as they age keeps the stored form close to the input.
func TestStairBands(t *testing.T) {
	const n = 100
	sp, _ := Parse("stair:b8/4/2:w10/20:g32:s3")
	c, err := sp.New(&testCfg, n)
	if err != nil {
		t.Fatal(err)
	}
	s := c.(*stairCache)
	rng := rand.New(rand.NewPCG(7, 8))
	ks, vs := kvRows(rng, n, testCfg.KVDim(0))
	for p := 0; p < n; p++ {
		for l := 0; l < 2; l++ {
			if err := c.Append(l, ks[p], vs[p]); err != nil {
				t.Fatal(err)
			}
		}
		m := p + 1
		for q := 0; q < m; q++ {
			age := m - 1 - q
			want := 3
			switch {
			case q < 3:
				want = 0
			case age < 10:
				want = 1
			case age < 30:
				want = 2
			}
			if got := int(s.lvl[1][q]); got != want {
				t.Fatalf("after %d positions: position %d (age %d) at level %d, want %d", m, q, age, got, want)
			}
		}
	}
	checkAttention(t, "stair", c, rng, n)
	if got, want := s.levels[3].slots, n-3-10-20; got != want {
		t.Errorf("last band of %d slots, want %d", got, want)
	}
}
