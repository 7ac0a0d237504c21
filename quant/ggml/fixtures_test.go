package ggml_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/quant/ggml"
)

// fixtureTensor is one entry of a <file>.dequant.json written from
// llama.cpp's reference dequantizers.
type fixtureTensor struct {
	Type   string    `json:"type"`
	Shape  []int     `json:"shape"` // GGUF order, ne0 first
	SHA256 string    `json:"sha256_f32"`
	Sum    float64   `json:"sum"`
	First8 []float64 `json:"first8"`
}

// TestFixtures dequantizes every tensor of every llama.cpp fixture and
// compares the float32 bytes' sha256 with llama.cpp's.
func TestFixtures(t *testing.T) {
	var files []string
	for _, dir := range []string{"models/pdtext-llama-28m-gguf", "models/stories260K-gguf",
		"models/iquant-fixtures", "models/pdtext-llama-28m-iquants"} {
		d := testshared.Path(t, dir)
		m, err := filepath.Glob(filepath.Join(d, "*.gguf"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m {
			// the i-quant fixtures' F32 source has no hashes: it is the
			// quantizer's input (quantize_fixture_test.go)
			if filepath.Base(f) != "rand256-f32.gguf" {
				files = append(files, f)
			}
		}
	}
	if len(files) == 0 {
		t.Fatal("no .gguf fixtures in the shared model folders")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			checkFixture(t, path)
		})
	}
	// Every type of issue 8's list must be among the fixtures (and so
	// checked above): a fixture file that went missing fails here.
	seen := map[string]bool{}
	for _, path := range files {
		raw, err := os.ReadFile(path + ".dequant.json")
		if err != nil {
			continue // reported by the subtest
		}
		var want map[string]fixtureTensor
		if json.Unmarshal(raw, &want) == nil {
			for _, w := range want {
				seen[w.Type] = true
			}
		}
	}
	for _, name := range []string{"IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "TQ1_0", "TQ2_0"} {
		if !seen[name] {
			t.Errorf("no fixture tensor of type %s", name)
		}
	}
}

func checkFixture(t *testing.T, path string) {
	raw, err := os.ReadFile(path + ".dequant.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]fixtureTensor
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatalf("%s.dequant.json: %v", path, err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if len(f.Tensors) != len(want) {
		t.Errorf("%d tensors, fixture lists %d", len(f.Tensors), len(want))
	}
	var dst []float32
	var buf []byte
	for _, ti := range f.Tensors {
		w, ok := want[ti.Name]
		if !ok {
			t.Errorf("%s: not in the fixture", ti.Name)
			continue
		}
		if ti.DType.String() != w.Type {
			t.Errorf("%s: type %s, want %s", ti.Name, ti.DType, w.Type)
		}
		ne := slices.Clone(ti.Shape)
		slices.Reverse(ne)
		if !slices.Equal(ne, w.Shape) {
			t.Errorf("%s: ne %v, want %v", ti.Name, ne, w.Shape)
		}
		tt, err := f.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		n := tt.NumElements()
		dst = slices.Grow(dst[:0], n)[:n]
		if err := ggml.Dequantize(tt.DType, tt.Data, dst); err != nil {
			t.Errorf("%s: %v", ti.Name, err)
			continue
		}
		buf = slices.Grow(buf[:0], 4*n)[:4*n]
		var sum float64
		for i, v := range dst {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			sum += float64(v)
		}
		h := sha256.Sum256(buf)
		for i := 0; i < len(w.First8) && i < n; i++ {
			if float64(dst[i]) != w.First8[i] {
				t.Errorf("%s (%s): element %d = %v, want %v", ti.Name, ti.DType, i, dst[i], w.First8[i])
				break
			}
		}
		if got := hex.EncodeToString(h[:]); got != w.SHA256 {
			t.Errorf("%s (%s): sha256 %s, want %s (sum %v, want %v)", ti.Name, ti.DType, got, w.SHA256, sum, w.Sum)
		}
		if math.Abs(sum-w.Sum) > 1e-6*math.Max(1, math.Abs(w.Sum)) {
			t.Errorf("%s: sum %v, want %v", ti.Name, sum, w.Sum)
		}
	}
}
