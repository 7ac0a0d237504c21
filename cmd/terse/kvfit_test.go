package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

// TestKVFit fits a basis on calibration text and evaluates with it: with
// every channel kept, the pca cache reproduces the float cache (KLD ~0);
// with half the key channels it costs divergence. Bad flags are usage
// errors.
func TestKVFit(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	calib := testshared.Path(t, "data/pdtext-calib.txt")
	basis := filepath.Join(t.TempDir(), "basis.json")
	out, errs, code := runCmd(t, "kvfit", "--model", dir, "--text", calib, "--ctx", "128", "--windows", "4", "--out", basis, "--quiet")
	if code != 0 {
		t.Fatalf("kvfit: exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "fitted on 512 positions per head") {
		t.Errorf("kvfit output: %s", out)
	}
	type result struct {
		KLD  float64 `json:"kld_mean"`
		Spec string  `json:"kv_spec"`
		Bits float64 `json:"kv_bits_per_element"`
	}
	eval := func(spec string) result {
		out, errs, code := runCmd(t, "eval", "--model", dir, "--base", dir, "--ctx", "128", "--windows", "1", "--json", "--quiet", "--kv", spec)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", spec, code, errs)
		}
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	full, half := eval("pca:k1:v1:"+basis), eval("pca:k0.5:"+basis)
	if full.KLD > 1e-4 || full.Spec != "pca:k1:v1:"+basis {
		t.Errorf("pca with every channel: %+v", full)
	}
	if !(half.KLD > full.KLD) || !(half.Bits < full.Bits) {
		t.Errorf("pca at half the channels: %+v; with all: %+v", half, full)
	}
	// A weighted basis (directions and back directions) keeps every row
	// with all channels, and at 3 bits costs less than the plain basis.
	wbasis := filepath.Join(t.TempDir(), "wbasis.json")
	if _, errs, code := runCmd(t, "kvfit", "--model", dir, "--text", calib, "--ctx", "128", "--windows", "4", "--out", wbasis, "--quiet", "--weighted"); code != 0 {
		t.Fatalf("kvfit --weighted: exit %d: %s", code, errs)
	}
	if w := eval("pca:k1:v1:" + wbasis); w.KLD > 1e-4 {
		t.Errorf("weighted pca with every channel: %+v", w)
	}
	if w, p := eval("pca:k1:v1:b3:"+wbasis), eval("pca:k1:v1:b3:"+basis); !(w.KLD < p.KLD) {
		t.Errorf("3 bits: weighted basis %+v, plain %+v", w, p)
	}
	for _, args := range [][]string{
		{"kvfit", "--model", dir, "--out", basis},
		{"kvfit", "--model", dir, "--text", calib},
		{"kvfit", "--model", dir, "--text", calib, "--out", basis, "--windows", "-1"},
	} {
		if _, _, code := runCmd(t, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2 (usage)", args, code)
		}
	}
}

// TestEvalKVSizeWithBaseLogits: with --base-logits and no --ctx, the cache
// is sized for the file's window length (a KIVI cache's residual window
// weighs more in a short window, so the size depends on it), and a coded
// cache by what it coded.
func TestEvalKVSizeWithBaseLogits(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	logits := filepath.Join(t.TempDir(), "base.logits")
	if _, errs, code := runCmd(t, "eval", "--model", dir, "--ctx", "128", "--windows", "1", "--quiet", "--save-logits", logits); code != 0 {
		t.Fatalf("save logits: exit %d: %s", code, errs)
	}
	bits := func(spec string, args ...string) float64 {
		out, errs, code := runCmd(t, append([]string{"eval", "--model", dir, "--windows", "1", "--json", "--quiet", "--kv", spec}, args...)...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
		var r struct {
			Bits float64 `json:"kv_bits_per_element"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		return r.Bits
	}
	// A coded cache (kv.CodedSizer) reports what it coded, either way:
	// not the empty form's size that the window's sizing gives.
	for _, spec := range []string{"kivi:k4v4:g32:r0", "cachegen"} {
		if a, b := bits(spec, "--base-logits", logits), bits(spec, "--ctx", "128"); a != b {
			t.Errorf("--kv %s: with --base-logits of ctx 128: %g bits per element; with --ctx 128: %g", spec, a, b)
		}
	}
}

// TestKVFitCacheGen: kvfit --cachegen writes a transform a static
// cachegen cache codes in; eval reports the cache all in (coded rate
// plus its binary16 open chunk) and the shared transform apart.
func TestKVFitCacheGen(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	text := testshared.Path(t, "data/pdtext-calib.txt")
	basis := filepath.Join(t.TempDir(), "cg.json")
	if _, errs, code := runCmd(t, "kvfit", "--model", dir, "--text", text, "--windows", "2", "--ctx", "128", "--cachegen", "--quiet", "--out", basis); code != 0 {
		t.Fatalf("kvfit --cachegen: exit %d: %s", code, errs)
	}
	out, errs, code := runCmd(t, "eval", "--model", dir, "--ctx", "128", "--windows", "1", "--json", "--quiet", "--kv", "cachegen:q4:c8:s:t"+basis)
	if code != 0 {
		t.Fatalf("eval: exit %d: %s", code, errs)
	}
	var r struct {
		Bits   float64 `json:"kv_bits_per_element"`
		Shared int64   `json:"kv_shared_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// 8 layers × 2 KV heads × keys and values × (mean, forward and back
	// directions, bin) float32 and 64 model codes.
	if want := int64(8 * 2 * 2 * (4*(64+2*64*64+1) + 64)); r.Shared != want {
		t.Errorf("kv_shared_bytes %d, want %d", r.Shared, want)
	}
	// The open chunk alone is 8 of 128 positions in binary16: 1 bit.
	if r.Bits < 1.5 || r.Bits > 4.5 {
		t.Errorf("%.3f bits per element at q4 with an 8-position open chunk", r.Bits)
	}
	if _, _, code := runCmd(t, "kvfit", "--model", dir, "--text", text, "--cachegen", "--weighted", "--out", basis); code != 2 {
		t.Errorf("--cachegen --weighted: exit %d, want 2", code)
	}
}
