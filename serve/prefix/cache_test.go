package prefix

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/store"
)

// warmLogits restores tokens from pc into a fresh cache, runs the rest and
// returns the positions restored and the logits of the positions run.
func warmLogits(t testing.TB, m *model.Model, pc *Cache, tokens []int, batch int) (int, []float32) {
	t.Helper()
	kv := m.NewCache(len(tokens))
	n, err := pc.Restore(context.Background(), kv, tokens)
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewStateWithCache(kv, batch)
	out := make([]float32, (len(tokens)-n)*m.Config.VocabSize)
	if err := st.Forward(tokens[n:], out, true); err != nil {
		t.Fatal(err)
	}
	return n, out
}

// saveCold prefills tokens and saves them into pc.
func saveCold(t testing.TB, m *model.Model, pc *Cache, tokens []int, batch int) {
	t.Helper()
	st := m.NewStateWithCache(m.NewCache(len(tokens)), batch)
	if err := st.Forward(tokens, make([]float32, m.Config.VocabSize), false); err != nil {
		t.Fatal(err)
	}
	if err := pc.Save(context.Background(), st.Cache(), tokens); err != nil {
		t.Fatal(err)
	}
}

// TestRestoreMatchesColdPrefill: a sequence continued from restored blocks
// gives a cold prefill's logits. With the same pieces (batch 4, and blocks
// of 8 are whole pieces) the float32 cache makes them bit-identical: the
// restored keys and values are the very floats the cold run stored, and the
// rest runs the same kernels on the same inputs. With other pieces the
// matrix products round differently, so within 1e-5.
func TestRestoreMatchesColdPrefill(t *testing.T) {
	m := randomModel(t, testCfg, 1)
	rng := rand.New(rand.NewPCG(1, 2))
	tokens := randomTokens(rng, 100, testCfg.VocabSize, testCfg.BOS)
	V := testCfg.VocabSize
	for _, tc := range []struct {
		batch int
		exact bool
	}{{4, true}, {64, false}} {
		t.Run(fmt.Sprintf("batch%d", tc.batch), func(t *testing.T) {
			pc, err := New(&m.Config, Options{Namespace: "test", BlockTokens: 8})
			if err != nil {
				t.Fatal(err)
			}
			cold := coldLogits(t, m, tokens, tc.batch)
			saveCold(t, m, pc, tokens, tc.batch)
			n, warm := warmLogits(t, m, pc, tokens, tc.batch)
			if n != 96 {
				t.Fatalf("restored %d positions, want 96 (12 whole blocks, leaving the last token)", n)
			}
			worst := 0.0
			for i, g := range warm {
				c := cold[n*V+i]
				if tc.exact && math.Float32bits(g) != math.Float32bits(c) {
					t.Fatalf("logit %d of position %d = %v, cold %v", i%V, n+i/V, g, c)
				}
				worst = max(worst, math.Abs(float64(g-c)))
			}
			if worst > 1e-5 {
				t.Fatalf("largest logit difference %g from a cold prefill", worst)
			}
			if h, l := pc.Stats(); h != 12 || l != 12 {
				t.Fatalf("stats %d hits of %d lookups, want 12 of 12", h, l)
			}
		})
	}
}

// TestLongestPrefix: restores stop at the last whole block both prompts
// share, a divergence inside a block loses that block, and the rest of the
// prompt still gives the right logits.
func TestLongestPrefix(t *testing.T) {
	m := randomModel(t, testCfg, 2)
	rng := rand.New(rand.NewPCG(3, 4))
	base := randomTokens(rng, 40, testCfg.VocabSize, testCfg.BOS)
	pc, err := New(&m.Config, Options{Namespace: "test", BlockTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	saveCold(t, m, pc, base, 16)
	diverge := func(at int, n int) []int {
		p := append([]int(nil), base[:min(n, len(base))]...)
		for len(p) < n {
			p = append(p, 3+rng.IntN(testCfg.VocabSize-3))
		}
		if at < n {
			p[at] = (p[at]+1-3)%(testCfg.VocabSize-3) + 3
		}
		return p
	}
	tests := []struct {
		name   string
		prompt []int
		want   int
	}{
		{"extends the saved prompt", diverge(99, 50), 40},
		{"the saved prompt itself leaves its last block", base, 32},
		{"a partial last block", base[:37], 32},
		{"diverges mid-block", diverge(20, 45), 16},
		{"diverges on a block's first token", diverge(24, 45), 24},
		{"diverges at once", diverge(0, 45), 0},
		{"one token", base[:1], 0},
		{"shorter than a block", base[:5], 0},
	}
	V := testCfg.VocabSize
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, warm := warmLogits(t, m, pc, tc.prompt, 16)
			if n != tc.want {
				t.Fatalf("restored %d positions, want %d", n, tc.want)
			}
			cold := coldLogits(t, m, tc.prompt, 16)
			for i, g := range warm {
				if d := math.Abs(float64(g - cold[n*V+i])); d > 1e-5 {
					t.Fatalf("position %d logit %d: %v, cold %v", n+i/V, i%V, g, cold[n*V+i])
				}
			}
		})
	}
}

// blockBytes is the float32 size of one block of testCfg.
func blockBytes(cfg *model.Config, n int) int64 {
	return model.NewKVBlock(cfg, 0, n).Bytes()
}

// TestEvictionAndStore: under a budget of three blocks, the leaves of a
// five-block prompt go first; without a store they are lost, with one they
// come back from it, and a second cache (another process) over the same
// store restores all five.
func TestEvictionAndStore(t *testing.T) {
	m := randomModel(t, testCfg, 3)
	rng := rand.New(rand.NewPCG(5, 6))
	tokens := randomTokens(rng, 41, testCfg.VocabSize, testCfg.BOS)
	budget := 3 * blockBytes(&m.Config, 8)
	cold := coldLogits(t, m, tokens, 8)
	V := testCfg.VocabSize
	check := func(t *testing.T, pc *Cache, want int) {
		t.Helper()
		n, warm := warmLogits(t, m, pc, tokens, 8)
		if n != want {
			t.Fatalf("restored %d positions, want %d", n, want)
		}
		for i, g := range warm {
			if math.Float32bits(g) != math.Float32bits(cold[n*V+i]) {
				t.Fatalf("position %d logit %d: %v, cold %v", n+i/V, i%V, g, cold[n*V+i])
			}
		}
	}

	t.Run("memory only", func(t *testing.T) {
		pc, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, MemoryBytes: budget})
		saveCold(t, m, pc, tokens, 8)
		if in := pc.Info(); in.Blocks != 3 || in.Bytes > budget || in.Evictions != 2 {
			t.Fatalf("after saving five blocks under a budget of three: %+v", in)
		}
		check(t, pc, 24)
	})
	t.Run("with a store", func(t *testing.T) {
		st := store.NewMem()
		pc, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, MemoryBytes: budget, Store: st})
		saveCold(t, m, pc, tokens, 8)
		check(t, pc, 40)
		if in := pc.Info(); in.StoreReads != 2 || in.Bytes > budget {
			t.Fatalf("after a restore through the store: %+v", in)
		}
		other, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, Store: st})
		check(t, other, 40)
		if in := other.Info(); in.StoreReads != 5 {
			t.Fatalf("the second process read %d blocks from the store, want 5", in.StoreReads)
		}
		elsewhere, _ := New(&m.Config, Options{Namespace: "another model", BlockTokens: 8, Store: st})
		check(t, elsewhere, 0)
	})
}

// TestConcurrentRestoreSave runs many goroutines restoring, prefilling and
// saving prompts that share prefixes, over a budget small enough to evict
// and a store, and checks every result against a cold prefill (run it
// with -race).
func TestConcurrentRestoreSave(t *testing.T) {
	m := randomModel(t, testCfg, 4)
	rng := rand.New(rand.NewPCG(7, 8))
	V := testCfg.VocabSize
	var prompts [][]int
	for f := 0; f < 3; f++ {
		stem := randomTokens(rng, 24+8*f, V, testCfg.BOS)
		for v := 0; v < 4; v++ {
			p := append(append([]int(nil), stem...), randomTokens(rng, 5+7*v, V, 3+rng.IntN(V-3))...)
			prompts = append(prompts, p)
		}
	}
	colds := make([][]float32, len(prompts))
	for i, p := range prompts {
		colds[i] = coldLogits(t, m, p, 8)
	}
	var reports sync.Mutex
	var reported []error
	pc, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, MemoryBytes: 6 * blockBytes(&m.Config, 8),
		Store: store.NewMem(), OnError: func(err error) { reports.Lock(); reported = append(reported, err); reports.Unlock() }})
	const workers, rounds = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for r := 0; r < rounds; r++ {
				i := (w*rounds + r*5) % len(prompts)
				p := prompts[i]
				kv := m.NewCache(len(p))
				n, err := pc.Restore(context.Background(), kv, p)
				if err != nil {
					errs <- err
					return
				}
				st := m.NewStateWithCache(kv, 8)
				out := make([]float32, (len(p)-n)*V)
				if err := st.Forward(p[n:], out, true); err != nil {
					errs <- err
					return
				}
				for j, g := range out {
					if math.Float32bits(g) != math.Float32bits(colds[i][n*V+j]) {
						errs <- fmt.Errorf("prompt %d after %d restored: position %d logit %d = %v, cold %v", i, n, n+j/V, j%V, g, colds[i][n*V+j])
						return
					}
				}
				if err := pc.Save(context.Background(), st.Cache(), p); err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(reported) != 0 {
		t.Errorf("store errors reported: %v", reported)
	}
	h, l := pc.Stats()
	if h == 0 || h > l {
		t.Errorf("%d hits of %d lookups", h, l)
	}
	if in := pc.Info(); in.Bytes > 6*blockBytes(&m.Config, 8) {
		t.Errorf("memory %d bytes over the budget after the storm: %+v", in.Bytes, in)
	}
}

// TestCorruptStoreBlobs: every kind of bad blob in the store is a miss
// from that block on, reported and deleted, never a panic or a wrong KV.
func TestCorruptStoreBlobs(t *testing.T) {
	m := randomModel(t, testCfg, 5)
	rng := rand.New(rand.NewPCG(9, 10))
	tokens := randomTokens(rng, 33, testCfg.VocabSize, testCfg.BOS)
	other := testCfg
	other.NKVHeads = 4
	tests := []struct {
		name    string
		corrupt func(b []byte, blk *model.KVBlock) []byte
		want    string
	}{
		{"flipped payload bit", func(b []byte, _ *model.KVBlock) []byte { b[len(b)/2] ^= 4; return b }, "checksum"},
		{"truncated", func(b []byte, _ *model.KVBlock) []byte { return b[:len(b)-9] }, "header describes"},
		{"empty", func([]byte, *model.KVBlock) []byte { return nil }, "shorter than the header"},
		{"garbage", func(b []byte, _ *model.KVBlock) []byte { return []byte(strings.Repeat("x", 100)) }, "magic"},
		{"future version", func(b []byte, _ *model.KVBlock) []byte { b[4] = 9; return b }, "version 9"},
		{"another model's shape", func(_ []byte, blk *model.KVBlock) []byte {
			x := model.NewKVBlock(&other, blk.Start, blk.Len)
			e, _ := EncodeRaw(x)
			return e
		}, "KV width"},
		{"another position", func(_ []byte, blk *model.KVBlock) []byte {
			x := *blk
			x.Start += 8
			e, _ := EncodeRaw(&x)
			return e
		}, "want [8, 16)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMem()
			pc, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, Store: st})
			saveCold(t, m, pc, tokens, 8)
			// Corrupt the second block.
			k := chain(chain(pc.root, tokens[:8]), tokens[8:16])
			data, err := st.Get(context.Background(), storeKey(k))
			if err != nil {
				t.Fatal(err)
			}
			blk, err := DecodeRaw(data)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Put(context.Background(), storeKey(k), tc.corrupt(data, blk)); err != nil {
				t.Fatal(err)
			}
			var reported []error
			fresh, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, Store: st,
				OnError: func(err error) { reported = append(reported, err) }})
			n, warm := warmLogits(t, m, fresh, tokens, 8)
			if n != 8 {
				t.Fatalf("restored %d positions over a corrupt second block, want 8", n)
			}
			cold := coldLogits(t, m, tokens, 8)
			V := testCfg.VocabSize
			for i, g := range warm {
				if math.Float32bits(g) != math.Float32bits(cold[n*V+i]) {
					t.Fatalf("position %d logit %d: %v, cold %v", n+i/V, i%V, g, cold[n*V+i])
				}
			}
			if len(reported) != 1 || !strings.Contains(reported[0].Error(), tc.want) || !strings.Contains(reported[0].Error(), storeKey(k)) {
				t.Fatalf("reported %v, want one error naming the key and saying %q", reported, tc.want)
			}
			if _, err := st.Get(context.Background(), storeKey(k)); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("the corrupt blob is still stored (%v)", err)
			}
			// A later save replaces it.
			saveCold(t, m, fresh, tokens, 8)
			again, _ := New(&m.Config, Options{Namespace: "test", BlockTokens: 8, Store: st})
			if n, _ := warmLogits(t, m, again, tokens, 8); n != 32 {
				t.Fatalf("restored %d positions after the block was saved again, want 32", n)
			}
		})
	}
}

// failingStore fails every call.
type failingStore struct{}

func (failingStore) Put(context.Context, string, []byte) error { return errors.New("disk full") }
func (failingStore) Get(context.Context, string) ([]byte, error) {
	return nil, errors.New("connection refused")
}
func (failingStore) Has(context.Context, string) (bool, error) {
	return false, errors.New("connection refused")
}
func (failingStore) Delete(context.Context, string) error { return errors.New("connection refused") }
func (failingStore) Close() error                         { return nil }

func TestCacheErrors(t *testing.T) {
	m := randomModel(t, testCfg, 6)
	ctx := context.Background()
	if _, err := New(&m.Config, Options{}); err == nil || !strings.Contains(err.Error(), "namespace") {
		t.Fatalf("empty namespace: %v", err)
	}
	if _, err := New(&m.Config, Options{Namespace: "x", BlockTokens: -1}); err == nil {
		t.Fatal("negative block size accepted")
	}
	var reported []error
	pc, _ := New(&m.Config, Options{Namespace: "x", BlockTokens: 4, Store: failingStore{},
		OnError: func(err error) { reported = append(reported, err) }})
	tokens := []int{1, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	st := m.NewStateWithCache(m.NewCache(16), 8)
	if err := st.Forward(tokens, make([]float32, m.Config.VocabSize), false); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Restore(ctx, st.Cache(), tokens); err == nil || !strings.Contains(err.Error(), "holding 10") {
		t.Fatalf("restore into a full cache: %v", err)
	}
	if err := pc.Save(ctx, st.Cache(), append(tokens, 3)); err == nil || !strings.Contains(err.Error(), "holding 10") {
		t.Fatalf("save of more tokens than the cache holds: %v", err)
	}
	// A failing store: Save still fills memory and says why the store
	// did not take the blocks; Restore finds them in memory.
	if err := pc.Save(ctx, st.Cache(), tokens); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("save through a failing store: %v", err)
	}
	kv := m.NewCache(16)
	if n, err := pc.Restore(ctx, kv, tokens); err != nil || n != 8 {
		t.Fatalf("restore with a failing store: %d, %v", n, err)
	}
	other := m.NewCache(16)
	longer := append(append([]int(nil), tokens[:8]...), 20, 21, 22, 23, 24)
	if n, err := pc.Restore(ctx, other, longer); err != nil || n != 8 || len(reported) != 1 {
		t.Fatalf("a miss through a failing store: %d, %v; reported %v", n, err, reported)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := pc.Restore(cancelled, m.NewCache(16), tokens); !errors.Is(err, context.Canceled) {
		t.Fatalf("restore after cancel: %v", err)
	}
}
