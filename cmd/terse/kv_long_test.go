//go:build long

package main

import (
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

// TestKVCacheClaims checks issue 9's 3-bit bar as the README states it,
// on pdtext-llama-28m (F32 weights, pdtext-val.txt, llama.cpp's protocol
// at n_ctx 512, KLD against the f32 cache's logits over 40 windows): a
// static transform-coded cachegen cache of at most 3.0 bits per element
// all in (its coded rate plus its binary16 open chunk; the shared
// transform reported apart) scores a KLD below llama.cpp's q4_0 cache
// (0.014219 in shared/ANCHORS.md §6) and below terse's own q4_0 cache
// on the same windows. Measured: 2.953 bits, KLD 0.00549 against q4_0's
// 0.01237. About 3 minutes on two cores:
//
//	go test -tags long -run KVCacheClaims -v -timeout 30m ./cmd/terse/
func TestKVCacheClaims(t *testing.T) {
	hf := testshared.Path(t, "models/pdtext-llama-28m")
	val := testshared.Path(t, "data/pdtext-val.txt")
	cal := testshared.Path(t, "data/pdtext-calib.txt")
	dir := t.TempDir()
	basis, base := filepath.Join(dir, "cg.json"), filepath.Join(dir, "base.tlog")
	mustRun(t, "kvfit", "--model", hf, "--text", cal, "--cachegen", "--quiet", "--out", basis)
	args := []string{"eval", "--model", hf, "--data", val, "--protocol", "llamacpp", "--ctx", "512", "--windows", "40", "--json", "--quiet"}
	mustRun(t, append(args, "--save-logits", base)...)
	type res struct {
		KLD    float64 `json:"kld_mean"`
		Bits   float64 `json:"kv_bits_per_element"`
		Shared int64   `json:"kv_shared_bytes"`
	}
	run := func(spec string) res {
		var r res
		decode(t, mustRun(t, append(args, "--base-logits", base, "--kv", spec)...), &r)
		t.Logf("%-40s %.3f bits per element, %d shared bytes, KLD %.6f", spec, r.Bits, r.Shared, r.KLD)
		return r
	}
	q4 := run("q4_0")
	cg := run("cachegen:q4.45:c8:d:s:t" + basis)
	const llamaQ4 = 0.014219
	if cg.Bits > 3.0 {
		t.Errorf("cachegen cache at %.3f bits per element, bar 3.0", cg.Bits)
	}
	if cg.KLD > llamaQ4 || cg.KLD > q4.KLD {
		t.Errorf("cachegen KLD %.6f, llama.cpp's q4_0 %.6f, terse's q4_0 %.6f", cg.KLD, llamaQ4, q4.KLD)
	}
	if cg.Shared <= 0 {
		t.Errorf("shared transform of %d bytes", cg.Shared)
	}
}
