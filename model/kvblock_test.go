package model

import (
	"math"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestKVBlockExportImport checks that a sequence continued from an imported
// prefix gives the logits of one that computed the prefix itself.
func TestKVBlockExportImport(t *testing.T) {
	m, w := randomModel(t, engineCfg, tensor.F32, 21)
	tokens := []int{1, 5, 9, 33, 2, 0, 36, 17, 17, 4}
	want := refForward(m.Config, w, tokens)
	cfg := &m.Config
	vocab := cfg.VocabSize

	a := m.NewStateWithCache(m.NewCache(32), 8)
	if err := a.Forward(tokens[:6], make([]float32, vocab), false); err != nil {
		t.Fatal(err)
	}
	blk, err := ExportKV(a.Cache(), cfg, 0, 6)
	if err != nil {
		t.Fatal(err)
	}
	if err := blk.Check(cfg); err != nil {
		t.Fatal(err)
	}
	// Import the first 4 positions as one block and the next 2 as another.
	head, _ := blk.Slice(0, 4)
	tail, _ := blk.Slice(4, 6)
	c := m.NewCache(32)
	if err := ImportKV(c, cfg, tail); err == nil {
		t.Fatal("importing a block at the wrong position succeeded")
	}
	for _, b := range []*KVBlock{head, tail} {
		if err := ImportKV(c, cfg, b); err != nil {
			t.Fatal(err)
		}
	}
	s := m.NewStateWithCache(c, 8)
	out := make([]float32, (len(tokens)-6)*vocab)
	if err := s.Forward(tokens[6:], out, true); err != nil {
		t.Fatal(err)
	}
	for r := 6; r < len(tokens); r++ {
		for j := 0; j < vocab; j++ {
			g, ref := float64(out[(r-6)*vocab+j]), want[r][j]
			if math.Abs(g-ref) > 2e-4*(1+math.Abs(ref)) {
				t.Fatalf("position %d logit %d = %v after import, reference %v", r, j, g, ref)
			}
		}
	}
	if _, err := ExportKV(c, cfg, 0, 99); err == nil {
		t.Fatal("exporting past the cache's length succeeded")
	}
	if _, err := blk.Slice(3, 7); err == nil {
		t.Fatal("slicing past the block succeeded")
	}
}

// TestShiftKeys checks re-rotation: the first layer's keys depend on the
// token alone, so a block computed at positions 0.. and shifted to 5..
// must equal the keys computed at 5.. directly.
func TestShiftKeys(t *testing.T) {
	for _, style := range []RopeStyle{RopeInterleaved, RopeHalf} {
		cfg := engineCfg
		cfg.RopeStyle = style
		cfg.RopeScaling = &RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 16}
		m, _ := randomModel(t, cfg, tensor.F32, 22)
		chunk := []int{7, 3, 30, 12}
		a := m.NewStateWithCache(m.NewCache(32), 8)
		if err := a.Forward(chunk, make([]float32, cfg.VocabSize), false); err != nil {
			t.Fatal(err)
		}
		blk, err := ExportKV(a.Cache(), &m.Config, 0, 4)
		if err != nil {
			t.Fatal(err)
		}
		b := m.NewStateWithCache(m.NewCache(32), 8)
		if err := b.Forward(append([]int{1, 2, 3, 4, 5}, chunk...), make([]float32, cfg.VocabSize), false); err != nil {
			t.Fatal(err)
		}
		direct, err := ExportKV(b.Cache(), &m.Config, 5, 9)
		if err != nil {
			t.Fatal(err)
		}
		ShiftKeys(&m.Config, blk, 5)
		if blk.Start != 5 {
			t.Fatalf("start %d after shift, want 5", blk.Start)
		}
		for i, g := range blk.K[0] {
			if d := math.Abs(float64(g - direct.K[0][i])); d > 1e-5*(1+math.Abs(float64(direct.K[0][i]))) {
				t.Fatalf("%v: shifted key %d = %v, computed at the position %v", style, i, g, direct.K[0][i])
			}
		}
		for i, g := range blk.V[0] {
			// Equal up to the rounding of a matmul over another batch size.
			if d := math.Abs(float64(g - direct.V[0][i])); d > 1e-5*(1+math.Abs(float64(direct.V[0][i]))) {
				t.Fatalf("%v: value %d = %v, computed at the position %v", style, i, g, direct.V[0][i])
			}
		}
	}
}
