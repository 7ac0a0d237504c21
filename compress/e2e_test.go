package compress

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/quant"
)

// Same recipe, same result: the HF checkpoint with llama.cpp's imatrix and
// preset gives, tensor for tensor, the bytes llama-quantize wrote, and the
// file terse writes reads back as what was written.
func TestRecipeParityWithLlamaCpp(t *testing.T) {
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	imat, err := calib.ReadIMatrixFile(testshared.Path(t, "models/pdtext-llama-28m-gguf/imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		preset, dir string
		long        bool // the lattice searches take a while: not with -short
	}{
		{"Q4_K_M", "pdtext-llama-28m-gguf", false},
		{"Q3_K_M", "pdtext-llama-28m-gguf", false},
		{"Q2_K", "pdtext-llama-28m-gguf", false},
		{"IQ3_XXS", "pdtext-llama-28m-iquants", true},
		{"IQ2_XS", "pdtext-llama-28m-iquants", true},
	}
	for _, f := range files {
		preset := f.preset
		if f.long && testing.Short() {
			t.Logf("%s: skipped with -short", preset)
			continue
		}
		ref, err := gguf.Open(testshared.Path(t, "models/"+f.dir+"/pdtext-llama-28m-"+preset+"-imat.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		p := Presets[preset]
		plan := MakePlan(&ck.Model.Config, ck.Model.Weights, p, true, nil)
		ts, err := convert.Tensors(ck, convert.Options{})
		if err != nil {
			t.Fatal(err)
		}
		qts, _, err := Quantize(context.Background(), ts, QuantizeOptions{Plan: plan, Method: RTN{}, Stats: func(name string) *quant.Stats {
			if v := imat.Importance(name); v != nil {
				return &quant.Stats{Importance: v}
			}
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), preset+".gguf")
		ft := convert.FileType(p.FileType)
		if err := convert.Write(out, ck, qts, convert.Options{FileType: &ft}); err != nil {
			t.Fatal(err)
		}
		got, err := gguf.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range qts {
			back, err := got.Tensor(want.Name)
			if err != nil {
				t.Fatalf("%s: %s not in the written file: %v", preset, want.Name, err)
			}
			if back.DType != want.DType || !bytes.Equal(back.Data, want.Data) {
				t.Errorf("%s: %s reads back differently", preset, want.Name)
			}
			theirs, err := ref.Tensor(want.Name)
			if err != nil {
				t.Fatalf("%s: llama.cpp's file has no %s", preset, want.Name)
			}
			if theirs.DType != want.DType || !bytes.Equal(theirs.Data, want.Data) {
				t.Errorf("%s: %s (%v) differs from llama.cpp's (%v)", preset, want.Name, want.DType, theirs.DType)
			}
		}
		if len(got.Tensors) != len(ref.Tensors) {
			t.Errorf("%s: %d tensors, llama.cpp wrote %d", preset, len(got.Tensors), len(ref.Tensors))
		}
		got.Close()
		ref.Close()
	}
}
