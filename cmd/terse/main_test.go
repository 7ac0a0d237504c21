package main

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// The README's main command: the bundled model on the bundled text, here
// under llama.cpp's protocol, which llama.cpp itself measured at 3.7424.
func TestEvalBundledMatchesLlamaCpp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the bundled model over 58K tokens")
	}
	out, errs, code := runCmd(t, "eval", "--protocol", "llamacpp", "--json", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		Tokens int     `json:"tokens"`
		PPL    float64 `json:"ppl"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if r.Tokens != 115*255 {
		t.Errorf("scored %d tokens, llama.cpp scores %d", r.Tokens, 115*255)
	}
	checkPrinted(t, "PPL", r.PPL, 3.7423, 3.7424, 1)
}

// checkPrinted holds a value to the precision the README prints it with:
// shown to 4 decimals it must read readme ± 1 in the last place, and at
// most peerULPs last places from the peer's (llama.cpp's) printed value.
func checkPrinted(t *testing.T, what string, v, readme, peer float64, peerULPs int) {
	t.Helper()
	const ulp = 1e-4
	shown, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 4, 64), 64)
	if d := math.Abs(shown - readme); d > ulp*1.5 {
		t.Errorf("%s %.4f (%.6f): the README says %.4f", what, shown, v, readme)
	}
	if d := math.Abs(shown - peer); d > ulp*(float64(peerULPs)+0.5) {
		t.Errorf("%s %.4f (%.6f) is more than %d in the last place from llama.cpp's %.4f", what, shown, v, peerULPs, peer)
	}
}

func TestGenerateGreedyMatchesTransformers(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	out, errs, code := runCmd(t, "generate", "--model", dir, "--prompt", "The state of the Union is", "-n", "40", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct {
		IDs  []int  `json:"ids"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	want := []int{708, 1040, 270, 261, 1579, 330, 357, 281, 298, 2109, 14, 359, 583, 270, 261, 645, 562, 430, 521, 868, 281, 746, 70, 515, 340, 261, 583, 270, 261, 645, 562, 14, 549, 330, 357, 281, 298, 2109, 324, 261, 649, 270, 261, 645, 562, 541}
	if len(r.IDs) != len(want) {
		t.Fatalf("ids %v, want %v", r.IDs, want)
	}
	for i := range want {
		if r.IDs[i] != want[i] {
			t.Fatalf("ids %v, want %v", r.IDs, want)
		}
	}
	if !strings.HasPrefix(r.Text, "The state of the Union is not to be expected.") {
		t.Errorf("text %q", r.Text)
	}
}

func TestTokenizeAndInspect(t *testing.T) {
	out, errs, code := runCmd(t, "tokenize", "--text", "Once upon a time", "--special", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r struct{ IDs []int }
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.IDs) < 2 || r.IDs[0] != 1 {
		t.Fatalf("ids %v (%v): want BOS 1 first", r.IDs, err)
	}
	out, errs, code = runCmd(t, "inspect", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var in struct {
		Params  int64 `json:"params"`
		Tensors []struct {
			Name string `json:"name"`
		} `json:"tensors"`
	}
	if err := json.Unmarshal([]byte(out), &in); err != nil {
		t.Fatal(err)
	}
	if in.Params != 260032 || len(in.Tensors) != 47 {
		t.Errorf("inspect: %d parameters, %d tensors; want 260032 and 47", in.Params, len(in.Tensors))
	}
}

func TestCommandErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no command", nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad flag", []string{"eval", "--nope"}, 2, "flag provided but not defined"},
		{"bad protocol", []string{"eval", "--protocol", "x"}, 2, "protocol"},
		{"missing model", []string{"inspect", "--model", "/nonexistent/model.gguf"}, 1, "/nonexistent/model.gguf"},
		{"tokenize needs text", []string{"tokenize"}, 2, "--text or --file"},
		{"base and base-logits", []string{"eval", "--base", "a", "--base-logits", "b"}, 2, "not both"},
		{"bad kv spec", []string{"eval", "--kv", "q3_k"}, 2, `unknown cache "q3_k"`},
		{"bad kv field", []string{"bench", "--kv", "kivi:k3v3"}, 2, "want 2, 4 or 8"},
		{"kv unsuited to the model", []string{"generate", "--kv", "q4_0", "-n", "1"}, 1, "head dimension 8"},
		{"bench negative depth", []string{"bench", "-d", "-1"}, 2, "-d -1: must be"},
	}
	for _, tc := range tests {
		_, errs, code := runCmd(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.msg) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.name, code, errs, tc.code, tc.msg)
		}
	}
}

// TestEvalKV: --kv f32 gives the same result as no flag, bit for bit; a
// compressed cache against the same model as --base reports its size and
// a small, nonzero divergence.
func TestEvalKV(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	type result struct {
		NLL    float64 `json:"nll"`
		KLD    float64 `json:"kld_mean"`
		Spec   string  `json:"kv_spec"`
		Bits   float64 `json:"kv_bits_per_element"`
		PerTok float64 `json:"kv_bytes_per_token"`
	}
	eval := func(extra ...string) result {
		args := append([]string{"eval", "--model", dir, "--ctx", "128", "--windows", "2", "--json", "--quiet"}, extra...)
		out, errs, code := runCmd(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", extra, code, errs)
		}
		var r result
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return r
	}
	plain, f32 := eval(), eval("--kv", "f32")
	if math.Float64bits(plain.NLL) != math.Float64bits(f32.NLL) || f32.Spec != "f32" || f32.Bits != 32 {
		t.Errorf("--kv f32: %+v; without --kv: %+v", f32, plain)
	}
	q := eval("--kv", "q4_0", "--base", dir)
	// pdtext-llama-28m: 8 layers × 2 KV heads × 64 channels, keys and
	// values, 18 bytes per 32 elements.
	if q.Spec != "q4_0" || q.Bits != 4.5 || q.PerTok != 8*2*128*18/32 || !(q.KLD > 0 && q.KLD < 0.05) {
		t.Errorf("--kv q4_0: %+v", q)
	}
}
