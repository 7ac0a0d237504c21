package compress

import (
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
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
