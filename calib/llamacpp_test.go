//go:build long

package calib_test

import (
	"math"
	"os"
	"testing"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
)

// TestIMatrixMatchesLlamaCpp runs calib.Run over pdtext-calib.txt with
// pdtext-llama-28m under llama-imatrix's protocol (the whole file encoded
// with BOS first, chunks of 512 with BOS in front of each, statistics over
// every token, products of fewer than 16 rows skipped) and compares the
// importance of every tensor with llama.cpp's own imatrix.dat, computed the
// same way (`llama-imatrix -c 512`, 288 chunks, on llama.cpp's GGUF
// conversion of the same checkpoint). Measured: cosine 1.0000000 for all
// 56 tensors, largest relative difference of one column 5.3e-4 (llama.cpp
// runs its GGUF conversion and sums in another order). About two minutes on
// two idle cores, nine on loaded ones:
//
//	go test -tags long -run IMatrixMatchesLlamaCpp ./calib/
func TestIMatrixMatchesLlamaCpp(t *testing.T) {
	ref, err := calib.ReadIMatrixFile(testshared.Path(t, "models/pdtext-llama-28m-gguf/imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testshared.Path(t, "data/pdtext-calib.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m"), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	// llama.cpp's GGUF adds BOS (add_bos_token = true); the tokenizer.json
	// does not, so put it in front as llama-imatrix does.
	tokens := eval.Stream(ck.Tokenizer, string(text), "")
	const ctx = 512
	if n := len(tokens) / ctx; n != int(ref.LastChunk) {
		t.Fatalf("%d tokens make %d chunks; llama-imatrix ran %d", len(tokens), n, ref.LastChunk)
	}
	col := &calib.Collector{Include: calib.BlockTensors, MinRows: 16}
	if err := calib.Run(ck.Model, tokens, ctx, col, nil); err != nil {
		t.Fatal(err)
	}
	got, err := col.IMatrix(ctx, "pdtext-calib.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Entries) != len(ref.Entries) {
		t.Errorf("%d entries, llama.cpp %d", len(got.Entries), len(ref.Entries))
	}
	worstCos, worstRel := 1.0, 0.0
	for _, re := range ref.Entries {
		ge, ok := got.Lookup(re.Name)
		if !ok {
			t.Errorf("%s: not collected", re.Name)
			continue
		}
		if ge.NCall != re.NCall {
			t.Errorf("%s: ncall %d, llama.cpp %d", re.Name, ge.NCall, re.NCall)
		}
		a, b := ge.Importance(), re.Importance()
		if len(a) != len(b) {
			t.Errorf("%s: %d values, llama.cpp %d", re.Name, len(a), len(b))
			continue
		}
		var dot, na, nb, rel float64
		for j := range a {
			x, y := float64(a[j]), float64(b[j])
			dot, na, nb = dot+x*y, na+x*x, nb+y*y
			if y > 0 {
				rel = math.Max(rel, math.Abs(x-y)/y)
			}
		}
		cos := dot / math.Sqrt(na*nb)
		t.Logf("%-24s cosine %.7f, largest relative difference %.2e", re.Name, cos, rel)
		worstCos, worstRel = math.Min(worstCos, cos), math.Max(worstRel, rel)
		if cos < minCosine || rel > maxRelative {
			t.Errorf("%s: cosine %.7f with llama.cpp's importance (want ≥ %g), largest relative difference %.2e (want ≤ %g)",
				re.Name, cos, minCosine, rel, maxRelative)
		}
	}
	t.Logf("worst cosine %.7f, worst relative difference %.2e over %d tensors", worstCos, worstRel, len(ref.Entries))
}

// The bars per tensor, a margin beyond what was measured.
const (
	minCosine   = 0.99999
	maxRelative = 2e-3
)
