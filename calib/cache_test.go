package calib

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
)

// hessianOwners says which tensors of c have a Hessian.
func hessianOwners(c *Collector) map[string]bool {
	out := map[string]bool{}
	for _, name := range c.Names() {
		h, _ := c.Hessian(name)
		out[name] = h != nil
	}
	return out
}

// A collection read from a cache is the one RunLayerwise collects: the
// same Σx², Hessians (only those the collector asks for), sharing and row
// counts, bit for bit, whether the run fills the cache or reads it; a
// complete cache is read without running the model, and its Importance is
// Run's Σx².
func TestRunLayerwiseCache(t *testing.T) {
	m := tinyModelN(t, 21, 3)
	rng := rand.New(rand.NewPCG(7, 8))
	const n, chunks = 24, 3
	tokens := randomTokens(rng, chunks*n+5, m.Config.VocabSize)
	// Hessians for the attention inputs and ffn_down only: the ffn_gate/up
	// input and attn_output get none.
	some := func(name string) bool { return strings.Contains(name, "attn_k") || strings.Contains(name, "ffn_down") }
	collect := func(cache *Cache) (map[string]stats, map[string]bool, []int) {
		t.Helper()
		got, owners := map[string]stats{}, map[string]bool{}
		var progress []int
		err := RunLayerwise(context.Background(), m, tokens, n, LayerwiseOptions{
			Collector: func(int) *Collector { return &Collector{Hessians: some} },
			Done: func(_ context.Context, _ int, c *Collector) ([]model.Linear, error) {
				snapshot(c, got)
				for k, v := range hessianOwners(c) {
					owners[k] = v
				}
				return nil, nil
			},
			Progress: func(d, _ int) { progress = append(progress, d) },
			Cache:    cache,
		})
		if err != nil {
			t.Fatal(err)
		}
		return got, owners, progress
	}
	want, wantOwners, _ := collect(nil)
	key := NewCacheKey()
	key.String("test")
	cache, err := OpenCache(t.TempDir(), key.Sum(), m.Config.NLayers)
	if err != nil {
		t.Fatal(err)
	}
	if cache.Complete() {
		t.Fatal("a new cache is complete")
	}
	filled, filledOwners, _ := collect(cache)
	if !cache.Complete() {
		t.Fatal("the cache is not complete after a full run")
	}
	read, readOwners, progress := collect(cache)
	compareStats(t, filled, want, 0, nil)
	compareStats(t, read, want, 0, nil)
	for name, h := range wantOwners {
		if filledOwners[name] != h || readOwners[name] != h {
			t.Errorf("%s: Hessian %v filling, %v reading, want %v", name, filledOwners[name], readOwners[name], h)
		}
	}
	if progress[0] != chunks || len(progress) != m.Config.NLayers+1 {
		t.Errorf("progress %v reading the cache, want one step of %d chunks per stage", progress, chunks)
	}
	// Importance is the whole-model Run's Σx² (and no Hessians).
	imp, err := cache.Importance()
	if err != nil {
		t.Fatal(err)
	}
	whole := &Collector{}
	if err := Run(m, tokens, n, whole, nil); err != nil {
		t.Fatal(err)
	}
	wholeSnap, impSnap := map[string]stats{}, map[string]stats{}
	snapshot(whole, wholeSnap)
	snapshot(imp, impSnap)
	compareStats(t, impSnap, wholeSnap, 0, nil)
	for name, h := range hessianOwners(imp) {
		if h {
			t.Errorf("Importance kept %s's Hessian", name)
		}
	}

	err = RunLayerwise(context.Background(), m, tokens, n, LayerwiseOptions{Sequential: true, Cache: cache})
	if err == nil || !strings.Contains(err.Error(), "sequential") {
		t.Errorf("sequential with a cache: %v", err)
	}
	other, err := OpenCache(t.TempDir(), key.Sum(), m.Config.NLayers+1)
	if err != nil {
		t.Fatal(err)
	}
	if err := RunLayerwise(context.Background(), m, tokens, n, LayerwiseOptions{Cache: other}); err == nil {
		t.Error("a cache for another layer count was used")
	}
}

// stageBytes is one stage file of a small collection with shared inputs
// and Hessians.
func stageBytes(t testing.TB) ([]byte, [32]byte) {
	t.Helper()
	c := &Collector{Hessians: func(name string) bool { return name != "up" }}
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 5*6)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	c.Observe("gate", x, 5)
	c.Observe("up", x, 5)
	c.Observe("down", x[:4*6], 4)
	if err := c.Err(); err != nil {
		t.Fatal(err)
	}
	var key [32]byte
	key[3] = 9
	var buf bytes.Buffer
	if err := writeStage(&buf, key, 4, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), key
}

// Every wrong or missing byte of a stage file is an error, not a panic or
// a wrong collection: each truncation and each single-byte change of a
// small file is refused.
func TestReadStageRefuses(t *testing.T) {
	b, key := stageBytes(t)
	col, err := readStage(bytes.NewReader(b), int64(len(b)), key, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(col.Names(), ","); got != "gate,up,down" || col.SharedWith("up") != "gate" {
		t.Errorf("read %s, up shares %q", got, col.SharedWith("up"))
	}
	if _, err := readStage(bytes.NewReader(b), int64(len(b)), key, 3, false); err == nil || !strings.Contains(err.Error(), "stage 4") {
		t.Errorf("wrong stage: %v", err)
	}
	other := key
	other[0]++
	if _, err := readStage(bytes.NewReader(b), int64(len(b)), other, 4, false); err == nil || !strings.Contains(err.Error(), "key") {
		t.Errorf("wrong key: %v", err)
	}
	for n := 0; n < len(b); n++ {
		if _, err := readStage(bytes.NewReader(b[:n]), int64(n), key, 4, false); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(b))
		}
	}
	for i := range b {
		c := bytes.Clone(b)
		c[i] ^= 0x10
		if _, err := readStage(bytes.NewReader(c), int64(len(c)), key, 4, i%2 == 0); err == nil {
			t.Fatalf("byte %d changed: no error", i)
		}
	}
}

// FuzzReadStage: any bytes give a collection or an error, never a panic;
// a collection read writes back to a file that reads the same.
func FuzzReadStage(f *testing.F) {
	b, key := stageBytes(f)
	f.Add(b)
	f.Add(b[:len(b)/2])
	f.Add([]byte(cacheMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		col, err := readStage(bytes.NewReader(data), int64(len(data)), key, 4, false)
		if err != nil {
			return
		}
		var buf bytes.Buffer
		if err := writeStage(&buf, key, 4, col); err != nil {
			t.Fatal(err)
		}
		again, err := readStage(bytes.NewReader(buf.Bytes()), int64(buf.Len()), key, 4, false)
		if err != nil {
			t.Fatalf("rewritten file does not read: %v", err)
		}
		w1, w2 := map[string]stats{}, map[string]stats{}
		snapshot(col, w1)
		snapshot(again, w2)
		if len(w1) != len(w2) {
			t.Fatalf("%d tensors, %d after rewriting", len(w1), len(w2))
		}
	})
}

// OpenCache keeps each key in its own folder, and a damaged manifest
// leaves the cache incomplete rather than failing.
func TestCacheManifest(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := NewCacheKey(), NewCacheKey()
	k1.Int(1)
	k2.Int(2)
	c1, err := OpenCache(dir, k1.Sum(), 0)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := OpenCache(dir, k2.Sum(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if c1.Dir() == c2.Dir() {
		t.Fatal("two keys share a folder")
	}
	col := &Collector{}
	col.Observe("output.weight", []float32{1, 2, 3, 4}, 2)
	if err := c1.store(0, col); err != nil {
		t.Fatal(err)
	}
	if c1.Complete() {
		t.Fatal("complete before the manifest")
	}
	if err := c1.finish(); err != nil {
		t.Fatal(err)
	}
	if !c1.Complete() || c2.Complete() {
		t.Fatalf("complete: %v %v, want true false", c1.Complete(), c2.Complete())
	}
	if err := os.WriteFile(c1.Dir()+"/"+manifestFile, []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c1.Complete() {
		t.Error("a damaged manifest counts as complete")
	}
}

// BenchmarkCacheKey measures hashing weights into a key (bytes/s is the
// cost per byte of the model a cached compression pays).
func BenchmarkCacheKey(b *testing.B) {
	data := make([]byte, 64<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		k := NewCacheKey()
		k.Bytes(data)
		k.Sum()
	}
}
