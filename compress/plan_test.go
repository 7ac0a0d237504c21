package compress

import (
	"fmt"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// The presets must pick, tensor by tensor, the types llama.cpp's own
// quantizer picked for the fixture files.
func TestPlanMatchesLlamaCppFiles(t *testing.T) {
	files := []struct {
		path, preset string
		imatrix      bool
	}{
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q8_0.gguf", "Q8_0", false},
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q4_0-imat.gguf", "Q4_0", true},
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q4_K_M-imat.gguf", "Q4_K_M", true},
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q3_K_M-imat.gguf", "Q3_K_M", true},
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q2_K-imat.gguf", "Q2_K", true},
		{"models/pdtext-llama-28m-gguf/pdtext-llama-28m-IQ4_XS-imat.gguf", "IQ4_XS", true},
		{"models/pdtext-llama-28m-iquants/pdtext-llama-28m-IQ3_XXS-imat.gguf", "IQ3_XXS", true},
		{"models/pdtext-llama-28m-iquants/pdtext-llama-28m-IQ2_XS-imat.gguf", "IQ2_XS", true},
		{"models/stories260K-gguf/stories260K-Q4_K_M-imat.gguf", "Q4_K_M", true},
		{"models/stories260K-gguf/stories260K-Q2_K-imat.gguf", "Q2_K", true},
	}
	for _, f := range files {
		t.Run(f.path[strings.LastIndex(f.path, "/")+1:], func(t *testing.T) {
			ck, err := load.Open(testshared.Path(t, f.path), load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			plan := MakePlan(&ck.Model.Config, ck.Model.Weights, Presets[f.preset], f.imatrix, nil)
			for _, m := range ck.Model.Weights.Matrices() {
				if plan[m.Name] != m.DType {
					t.Errorf("%s: plan %v, llama.cpp wrote %v", m.Name, plan[m.Name], m.DType)
				}
			}
		})
	}
}

// Every preset plans every matrix of a real model; the ones terse cannot
// write yet, or not without importance, say so before any work.
func TestPresetPlansCheck(t *testing.T) {
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m-iquants/pdtext-llama-28m-IQ2_XS-imat.gguf"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	tests := []struct {
		preset     string
		importance bool
		want       string // "" for no error, else a part of it
	}{
		{"Q4_K_M", false, ""},
		{"IQ4_XS", false, ""},
		{"IQ3_XXS", true, ""},
		{"IQ3_XXS", false, "needs importance"}, // its attn_q and attn_k are IQ2_S
		{"IQ3_XS", true, ""},
		{"IQ3_XS", false, ""},
		{"IQ2_S", false, "needs importance"},
		{"IQ2_M", false, "needs importance"},
		{"IQ3_S", false, ""},
		{"IQ3_M", false, ""},
		{"IQ2_XXS", true, ""},
		{"IQ2_XXS", false, "needs importance"},
		{"IQ2_XS", true, ""},
		{"IQ2_S", true, ""},
		{"IQ2_M", true, ""},
		{"TQ1_0", false, ""},
		{"TQ2_0", false, ""},
		{"IQ1_S", true, oneBitError("IQ1_S")},
		{"IQ1_M", true, oneBitError("IQ1_M")},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/imatrix=%v", tc.preset, tc.importance), func(t *testing.T) {
			p, ok := Presets[tc.preset]
			if !ok {
				t.Fatalf("no preset %s", tc.preset)
			}
			plan := MakePlan(&ck.Model.Config, ck.Model.Weights, p, tc.importance, nil)
			if len(plan) != len(ck.Model.Weights.Matrices()) {
				t.Fatalf("plan has %d matrices, model %d", len(plan), len(ck.Model.Weights.Matrices()))
			}
			err := plan.Check(p.Name, tc.importance)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Check: %v, want an error containing %q", err, tc.want)
			case err != nil && !strings.Contains(err.Error(), "preset "+p.Name):
				t.Errorf("Check: %v does not name the preset", err)
			}
		})
	}
}

// oneBitError is what Check says of an IQ1 preset: nothing once terse
// writes the type, else that it cannot.
func oneBitError(name string) string {
	dt, err := tensor.ParseDType(name)
	if err == nil && ggml.QuantizeSupported(dt) {
		return ""
	}
	return "cannot write it yet"
}

// The i-quant presets follow llama.cpp's llama_tensor_get_type on a
// 16-layer model without grouped-query attention: the per-kind rules,
// with layer-dependent ones at the first n/8 layers.
func TestIQuantPresetRules(t *testing.T) {
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m-iquants/pdtext-llama-28m-IQ2_XS-imat.gguf"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	cfg := ck.Model.Config
	n := cfg.NLayers
	if n/8 < 1 || cfg.NHeads/cfg.NKVHeads >= 4 {
		t.Skipf("model shape %d layers, gqa %d: the table below assumes ≥ 8 layers, gqa < 4", n, cfg.NHeads/cfg.NKVHeads)
	}
	first, late := "blk.0.", fmt.Sprintf("blk.%d.", n/2)
	tests := []struct {
		preset, tensor string
		imatrix        bool
		want           tensor.DType
	}{
		{"IQ1_S", "output.weight", true, tensor.Q5_K},
		{"IQ1_S", "token_embd.weight", true, tensor.Q2_K},
		{"IQ1_S", late + "attn_output.weight", true, tensor.IQ2_XXS},
		{"IQ1_M", late + "attn_output.weight", true, tensor.IQ2_XXS},
		{"IQ1_M", late + "attn_q.weight", true, tensor.IQ1_M},
		{"IQ1_S", first + "ffn_down.weight", true, tensor.Q2_K},
		{"IQ1_S", late + "ffn_down.weight", true, tensor.IQ1_S},
		{"IQ2_XXS", late + "attn_v.weight", true, tensor.Q2_K},
		{"IQ2_S", late + "attn_v.weight", true, tensor.IQ3_S},
		{"IQ2_S", late + "attn_q.weight", true, tensor.IQ2_XS},
		{"IQ2_S", "token_embd.weight", true, tensor.IQ3_S},
		{"IQ2_M", first + "ffn_down.weight", true, tensor.IQ3_S},
		{"IQ2_M", late + "ffn_down.weight", true, tensor.IQ2_S},
		{"IQ2_M", late + "attn_output.weight", true, tensor.IQ3_S},
		{"IQ2_M", "output.weight", true, tensor.Q5_K},
		{"IQ3_XXS", late + "attn_v.weight", false, tensor.IQ3_S},
		{"IQ3_XXS", late + "attn_v.weight", true, tensor.IQ3_XXS},
		{"IQ3_XXS", first + "ffn_down.weight", false, tensor.Q4_K},
		{"IQ3_XXS", late + "ffn_down.weight", false, tensor.Q3_K},
		{"IQ3_XXS", late + "ffn_down.weight", true, tensor.IQ3_XXS},
		{"IQ3_XS", late + "attn_k.weight", true, tensor.IQ3_XXS},
		{"IQ3_XS", late + "ffn_up.weight", true, tensor.IQ3_XXS},
		{"IQ3_XS", first + "ffn_gate.weight", true, tensor.IQ3_S},
		{"IQ3_XS", late + "attn_v.weight", true, tensor.IQ3_S},
		{"IQ3_XS", "output.weight", true, tensor.Q6_K},
		{"IQ3_M", late + "attn_v.weight", true, tensor.Q4_K},
		{"IQ3_M", late + "attn_output.weight", true, tensor.Q4_K},
		{"IQ3_M", first + "ffn_down.weight", true, tensor.Q4_K},
		{"IQ3_M", late + "ffn_down.weight", true, tensor.IQ3_S},
		{"IQ3_S", late + "attn_v.weight", true, tensor.IQ3_S},
		{"TQ1_0", "token_embd.weight", false, tensor.Q4_K},
		{"TQ2_0", late + "ffn_down.weight", false, tensor.TQ2_0},
		{"TQ2_0", "output.weight", false, tensor.Q6_K},
	}
	for _, tc := range tests {
		t.Run(tc.preset+"/"+tc.tensor, func(t *testing.T) {
			plan := MakePlan(&cfg, ck.Model.Weights, Presets[tc.preset], tc.imatrix, nil)
			got, ok := plan[tc.tensor]
			if !ok {
				t.Fatalf("no matrix %s", tc.tensor)
			}
			if got != tc.want {
				t.Errorf("%s %s (imatrix %v): plan %v, llama.cpp %v", tc.preset, tc.tensor, tc.imatrix, got, tc.want)
			}
		})
	}
}

func TestFallback(t *testing.T) {
	tests := []struct {
		t    tensor.DType
		cols int
		want tensor.DType
	}{
		{tensor.IQ2_XXS, 288, tensor.IQ4_NL},
		{tensor.IQ1_M, 288, tensor.IQ4_NL},
		{tensor.IQ3_S, 512, tensor.IQ3_S},
		{tensor.TQ1_0, 288, tensor.Q4_0},
		{tensor.TQ2_0, 100, tensor.F16},
		{tensor.Q4_K, 288, tensor.Q5_0},
	}
	for _, tc := range tests {
		if got := fallback(tc.t, tc.cols); got != tc.want {
			t.Errorf("fallback(%v, %d) = %v, want %v", tc.t, tc.cols, got, tc.want)
		}
	}
}

func TestParseOverride(t *testing.T) {
	tests := []struct {
		in  string
		ok  bool
		typ string
	}{
		{"ffn_down=Q6_K", true, "Q6_K"},
		{`blk\.[0-3]\.attn_v=q8_0`, true, "Q8_0"},
		{"nope", false, ""},
		{"x=Q9_K", false, ""},
		{"([=Q4_0", false, ""},
	}
	for _, tc := range tests {
		o, err := ParseOverride(tc.in)
		if (err == nil) != tc.ok || (tc.ok && o.Type.String() != tc.typ) {
			t.Errorf("ParseOverride(%q) = %v, %v", tc.in, o, err)
		}
	}
}
