package bench

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/tensor"
)

// TestSaveRandomRoundTrip writes random models to GGUF and checks that the
// file, opened as any checkpoint is, holds the very tensors RandomModel
// builds in memory and computes the same logits, with the file type and
// per-tensor mix asked for.
func TestSaveRandomRoundTrip(t *testing.T) {
	tests := []struct {
		typ      string
		fileType string
		types    map[string]tensor.DType // spot checks
	}{
		{"Q4_K_M", "Q4_K_M", map[string]tensor.DType{"token_embd.weight": tensor.Q4_K, "output.weight": tensor.Q6_K,
			"blk.0.attn_v.weight": tensor.Q6_K, "blk.1.attn_v.weight": tensor.Q4_K, "blk.0.ffn_down.weight": tensor.Q6_K,
			"blk.0.attn_q.weight": tensor.Q4_K, "output_norm.weight": tensor.F32}},
		{"Q4_0", "Q4_0", map[string]tensor.DType{"token_embd.weight": tensor.Q4_0, "output.weight": tensor.Q6_K, "blk.3.ffn_up.weight": tensor.Q4_0}},
		{"q8_0", "Q8_0", map[string]tensor.DType{"output.weight": tensor.Q8_0, "blk.0.attn_k.weight": tensor.Q8_0}},
		{"F32", "F32", map[string]tensor.DType{"output.weight": tensor.F32, "blk.7.ffn_down.weight": tensor.F32}},
		{"Q5_K", "Q5_K_M", map[string]tensor.DType{"output.weight": tensor.Q6_K, "blk.0.attn_v.weight": tensor.Q5_K}},
	}
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.typ, func(t *testing.T) {
			spec := Random{Shape: "28m", Type: tc.typ, Seed: 7}
			path := filepath.Join(dir, tc.typ+".gguf")
			n, err := SaveRandom(path, spec)
			if err != nil {
				t.Fatal(err)
			}
			mem, err := RandomModel(spec)
			if err != nil {
				t.Fatal(err)
			}
			ck, err := load.Open(path, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if ft, _ := f.Uint("general.file_type"); convertName(ft) != tc.fileType {
				t.Errorf("general.file_type %d (%s), want %s", ft, convertName(ft), tc.fileType)
			}
			var sum int64
			for _, ti := range f.Tensors {
				sum += ti.Size
				if want, ok := tc.types[ti.Name]; ok && ti.DType != want {
					t.Errorf("%s is %s, want %s", ti.Name, ti.DType, want)
				}
			}
			if sum != n {
				t.Errorf("SaveRandom reported %d bytes, the file holds %d", n, sum)
			}
			for _, m := range mem.Weights.Matrices() {
				got, err := f.Tensor(m.Name)
				if err != nil {
					t.Fatal(err)
				}
				if got.DType != m.DType || !bytes.Equal(got.Data, m.Data) {
					t.Errorf("%s differs between the file (%s) and the in-memory model (%s)", m.Name, got.DType, m.DType)
				}
			}
			toks := []int{1, 50, 4000, 7}
			logits := func(st interface {
				Forward([]int, []float32, bool) error
			}) []float32 {
				out := make([]float32, len(toks)*mem.Config.VocabSize)
				if err := st.Forward(toks, out, true); err != nil {
					t.Fatal(err)
				}
				return out
			}
			a, b := logits(mem.NewState(16, 4)), logits(ck.Model.NewState(16, 4))
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("logit %d: in memory %g, from the file %g", i, a[i], b[i])
				}
			}
		})
	}
}

// convertName is llama-quantize's name of a general.file_type value.
func convertName(ft uint64) string { return convert.FileType(ft).String() }

// TestRandomShapes checks the 1b shape against Llama-3.2-1B's published
// parameter count and tied embeddings, and the error for unknown shapes
// and types.
func TestRandomShapes(t *testing.T) {
	rp, err := Random{Shape: "1b", Type: "Q4_K_M"}.plan()
	if err != nil {
		t.Fatal(err)
	}
	var params int64
	for _, ti := range rp.tensors {
		params += int64(ti.NumElements())
		if ti.Name == "output.weight" {
			t.Errorf("tied 1b shape has an output.weight")
		}
		if ti.Name == "token_embd.weight" && ti.DType != tensor.Q6_K {
			t.Errorf("tied token_embd.weight is %s, want Q6_K (the output's type in Q4_K_M)", ti.DType)
		}
	}
	if params != 1235814400 {
		t.Errorf("1b shape has %d parameters, Llama-3.2-1B has 1235814400", params)
	}
	bad := []struct {
		r    Random
		want string
	}{
		{Random{Shape: "7b", Type: "Q4_0"}, `unknown model shape "7b"`},
		{Random{Shape: "28m", Type: "Q9_9"}, `--type "Q9_9"`},
		{Random{Shape: "28m", Type: "Q4_0", OutType: "nope"}, `--output-type "nope"`},
		{Random{Shape: "28m", Type: "IQ2_XXS"}, "IQ2_XXS"}, // needs an importance matrix
	}
	for _, tc := range bad {
		if _, err := tc.r.plan(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err = %v, want it to mention %q", tc.r, err, tc.want)
		}
	}
	if _, err := SaveRandom(filepath.Join(t.TempDir(), "no", "such", "dir.gguf"), Random{Shape: "28m", Type: "Q4_0"}); err == nil ||
		!strings.Contains(err.Error(), "does not exist") {
		t.Errorf("saving into a missing folder: err = %v", err)
	}
}
