package convert

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

const (
	pdtextHF    = "models/pdtext-llama-28m"
	pdtextQ8    = "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q8_0.gguf"
	storiesBin  = "models/stories260K/stories260K.bin"
	storiesGGUF = "models/stories260K-gguf/stories260K-f32.gguf"
)

func open(t *testing.T, rel string) *load.Checkpoint {
	t.Helper()
	ck, err := load.Open(testshared.Path(t, rel), load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

func openGGUF(t *testing.T, path string) *gguf.File {
	t.Helper()
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func kvMap(kvs []gguf.KV) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func short(v any) string {
	s := fmt.Sprintf("%T %v", v, v)
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// compareKeys checks every key with one of prefixes in want against got,
// and reports keys with those prefixes that only one side has.
func compareKeys(t *testing.T, got, want map[string]any, prefixes []string, onlyWant, onlyGot map[string]bool) {
	t.Helper()
	has := func(k string) bool {
		for _, p := range prefixes {
			if strings.HasPrefix(k, p) {
				return true
			}
		}
		return false
	}
	for k, w := range want {
		if !has(k) {
			continue
		}
		g, ok := got[k]
		switch {
		case !ok && onlyWant[k]:
		case !ok:
			t.Errorf("key %s = %s is missing", k, short(w))
		case !reflect.DeepEqual(g, w):
			t.Errorf("key %s = %s, llama.cpp has %s", k, short(g), short(w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; has(k) && !ok && !onlyGot[k] {
			t.Errorf("key %s = %s is not in llama.cpp's file", k, short(g))
		}
	}
}

func TestMetadataPdtextMatchesLlamaCpp(t *testing.T) {
	ck := open(t, pdtextHF)
	md, err := Metadata(ck, FileTypeMostlyQ8_0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := openGGUF(t, testshared.Path(t, pdtextQ8)).Metadata
	got := kvMap(md)
	compareKeys(t, got, want, []string{"llama.", "tokenizer."}, nil, nil)
	for _, k := range []string{"general.architecture", "general.type", "general.file_type", "general.quantization_version"} {
		if !reflect.DeepEqual(got[k], want[k]) {
			t.Errorf("%s = %s, llama.cpp has %s", k, short(got[k]), short(want[k]))
		}
	}
}

func TestMetadataStoriesMatchesLlamaCpp(t *testing.T) {
	ck := open(t, storiesBin)
	md, err := Metadata(ck, FileTypeAllF32, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := openGGUF(t, testshared.Path(t, storiesGGUF)).Metadata
	got := kvMap(md)
	// llama.cpp's llama2.c converter writes "none" ids that we omit, and
	// omits keys whose llama.cpp defaults are what we write.
	onlyWant := map[string]bool{"tokenizer.ggml.seperator_token_id": true, "tokenizer.ggml.padding_token_id": true}
	onlyGot := map[string]bool{"llama.rope.freq_base": true, "llama.vocab_size": true, "tokenizer.ggml.add_bos_token": true}
	compareKeys(t, got, want, []string{"llama.", "tokenizer."}, onlyWant, onlyGot)
	for k := range onlyWant {
		if want[k] != uint32(math.MaxUint32) {
			t.Errorf("llama.cpp's %s = %v, expected the 'none' id", k, want[k])
		}
	}
	if got["llama.rope.freq_base"] != float32(10000) || got["llama.vocab_size"] != uint32(512) || got["tokenizer.ggml.add_bos_token"] != true {
		t.Errorf("keys beyond llama.cpp's must hold its defaults: freq_base %v, vocab_size %v, add_bos %v",
			got["llama.rope.freq_base"], got["llama.vocab_size"], got["tokenizer.ggml.add_bos_token"])
	}
}

func TestFileTypes(t *testing.T) {
	for name, want := range map[string]FileType{"Q4_K_M": 15, "q8_0": 7, "F16": 1, "BF16": 32, "IQ4_XS": 30, "Q4_K": 15, "f32": 0} {
		if got, err := ParseFileType(name); err != nil || got != want {
			t.Errorf("ParseFileType(%q) = %v, %v; want %v", name, got, err, want)
		}
	}
	if FileTypeMostlyQ4_KM.String() != "Q4_K_M" {
		t.Errorf("String %q", FileTypeMostlyQ4_KM.String())
	}
	dir := filepath.Dir(testshared.Path(t, pdtextQ8))
	files, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	for _, p := range files {
		f := openGGUF(t, p)
		var ts []*tensor.Tensor
		for _, ti := range f.Tensors {
			ts = append(ts, &tensor.Tensor{Name: ti.Name, DType: ti.DType, Shape: ti.Shape})
		}
		got, err := GuessFileType(ts)
		want, _ := f.Uint("general.file_type")
		switch {
		case err != nil:
			t.Errorf("%s: %v", filepath.Base(p), err)
		case uint64(got) != want:
			// llama-quantize's mixes can make another type the most common.
			t.Logf("%s: guessed %v, file says %v", filepath.Base(p), got, FileType(want))
		}
		if strings.Contains(p, "Q8_0") || strings.Contains(p, "Q4_K_M") || strings.Contains(p, "IQ4_XS") {
			if uint64(got) != want {
				t.Errorf("%s: guessed %v, file says %v", filepath.Base(p), got, FileType(want))
			}
		}
	}
}

func TestPermuteRows(t *testing.T) {
	// Two heads of head_dim 4, one column: HF rows (h, j, i) → ggml (h, i, j).
	v := []float32{0, 1, 2, 3, 10, 11, 12, 13}
	src := tensor.FromFloat32("q", []int{8, 1}, v)
	p, err := permuteRows(src, 2, false)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := ggml.DequantizeTensor(p)
	if want := []float32{0, 2, 1, 3, 10, 12, 11, 13}; !slices.Equal(got, want) {
		t.Fatalf("permuted %v, want %v", got, want)
	}
	back, err := permuteRows(p, 2, true)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Data, src.Data) {
		t.Fatal("inverse permutation does not restore the rows")
	}
	if _, err := permuteRows(src, 3, false); err == nil {
		t.Fatal("8 rows in 3 heads accepted")
	}
}

func TestSortTensors(t *testing.T) {
	var ts []*tensor.Tensor
	for _, n := range []string{"blk.10.attn_q.weight", "token_embd.weight", "blk.2.ffn_up.weight", "output.weight", "blk.2.attn_k.weight", "output_norm.weight"} {
		ts = append(ts, &tensor.Tensor{Name: n})
	}
	SortTensors(ts)
	var got []string
	for _, x := range ts {
		got = append(got, x.Name)
	}
	want := []string{"output.weight", "output_norm.weight", "token_embd.weight", "blk.2.attn_k.weight", "blk.2.ffn_up.weight", "blk.10.attn_q.weight"}
	if !slices.Equal(got, want) {
		t.Fatalf("order %v, want %v", got, want)
	}
}

// valParagraphs returns the first n non-empty lines of the validation text.
func valParagraphs(t *testing.T, n int) []string {
	b, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && l != "<|doc|>" && len(out) < n {
			out = append(out, l)
		}
	}
	return out
}

func logits(t *testing.T, ck *load.Checkpoint, ids []int) []float32 {
	t.Helper()
	V := ck.Model.Config.VocabSize
	out := make([]float32, len(ids)*V)
	if err := ck.Model.NewState(len(ids), len(ids)).Forward(ids, out, true); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestConvertPdtextRoundTrip(t *testing.T) {
	src := open(t, pdtextHF)
	fixture := openGGUF(t, testshared.Path(t, pdtextQ8))
	paras := valParagraphs(t, 6)
	ids := append([]int{0}, src.Tokenizer.Encode(strings.Join(paras, "\n"), false)...)[:64]
	ref := logits(t, src, ids)

	for _, c := range []struct {
		float string
		dtype tensor.DType
		tol   float64
	}{{"f32", tensor.F32, 1e-4}, {"", tensor.BF16, 1e-4}, {"f16", tensor.F16, 2e-2}} {
		t.Run("type="+c.dtype.String(), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "pdtext.gguf")
			if err := WriteGGUF(path, src, Options{Float: c.float}); err != nil {
				t.Fatal(err)
			}
			f := openGGUF(t, path)
			if ft, _ := f.Uint("general.file_type"); ft != uint64(must(FileTypeOf(c.dtype))) {
				t.Errorf("general.file_type %d for %s weights", ft, c.dtype)
			}
			// (c) names, shapes and order as llama.cpp's file.
			if len(f.Tensors) != len(fixture.Tensors) {
				t.Errorf("%d tensors, llama.cpp's file has %d", len(f.Tensors), len(fixture.Tensors))
			}
			for i := range min(len(f.Tensors), len(fixture.Tensors)) {
				g, w := f.Tensors[i], fixture.Tensors[i]
				if g.Name != w.Name || !slices.Equal(g.Shape, w.Shape) {
					t.Errorf("tensor %d: %s %v, llama.cpp has %s %v", i, g.Name, g.Shape, w.Name, w.Shape)
				}
				if want := c.dtype; len(g.Shape) == 1 {
					want = tensor.F32
					if g.DType != want {
						t.Errorf("tensor %s is %s, want %s", g.Name, g.DType, want)
					}
				} else if g.DType != want {
					t.Errorf("tensor %s is %s, want %s", g.Name, g.DType, want)
				}
			}
			ck, err := load.Open(path, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			// (a) the GGUF vocabulary tokenizes as tokenizer.json.
			for _, p := range paras {
				a, b := src.Tokenizer.Encode(p, false), ck.Tokenizer.Encode(p, false)
				if !slices.Equal(a, b) {
					t.Fatalf("ids differ on %.60q…:\n hf   %v\n gguf %v", p, a, b)
				}
				if b2 := ck.Tokenizer.Encode(p, true); !slices.Equal(b2, append([]int{0}, a...)) {
					t.Fatalf("with specials: %v, want BOS then %v", b2[:min(8, len(b2))], a[:min(7, len(a))])
				}
			}
			// (b) logits equal the Hugging Face model's.
			got := logits(t, ck, ids)
			var maxd float64
			for i := range got {
				maxd = max(maxd, math.Abs(float64(got[i]-ref[i])))
			}
			t.Logf("max |Δlogit| over 64 positions: %.3g", maxd)
			if maxd > c.tol {
				t.Errorf("max |Δlogit| %.3g > %g", maxd, c.tol)
			}
		})
	}
}

// TestPdtextQ8MatchesLlamaCpp quantizes the converted F32 matrices to Q8_0
// and compares them with llama.cpp's Q8_0 file byte for byte: any error in
// the Q/K permutation or tensor naming shows up here.
func TestPdtextQ8MatchesLlamaCpp(t *testing.T) {
	src := open(t, pdtextHF)
	fixture := openGGUF(t, testshared.Path(t, pdtextQ8))
	ts, err := Tensors(src, Options{Float: "f32"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ti := range fixture.Tensors {
		want, err := fixture.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ts, func(x *tensor.Tensor) bool { return x.Name == ti.Name })
		if i < 0 {
			t.Errorf("tensor %s missing", ti.Name)
			continue
		}
		v, err := ggml.DequantizeTensor(ts[i])
		if err != nil {
			t.Fatal(err)
		}
		var got []byte
		if ti.DType == tensor.F32 {
			got = ts[i].Data
		} else {
			// llama.cpp quantized from its F16 conversion.
			for j, x := range v {
				v[j] = tensor.F16ToF32(tensor.F32ToF16(x))
			}
			if got, err = ggml.QuantizeRows(ti.DType, v, ts[i].Cols(), nil); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(got, want.Data) {
			t.Errorf("tensor %s (%s) differs from llama.cpp's", ti.Name, ti.DType)
		}
	}
}

func TestConvertStoriesMatchesLlamaCpp(t *testing.T) {
	src := open(t, storiesBin)
	fixturePath := testshared.Path(t, storiesGGUF)
	fixture := openGGUF(t, fixturePath)
	path := filepath.Join(t.TempDir(), "stories.gguf")
	if err := WriteGGUF(path, src, Options{Untie: true}); err != nil {
		t.Fatal(err)
	}
	f := openGGUF(t, path)
	if len(f.Tensors) != len(fixture.Tensors) {
		t.Errorf("%d tensors, llama.cpp's file has %d", len(f.Tensors), len(fixture.Tensors))
	}
	for _, ti := range fixture.Tensors {
		want, err := fixture.Tensor(ti.Name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := f.Tensor(ti.Name)
		if err != nil {
			t.Errorf("tensor %s: %v", ti.Name, err)
			continue
		}
		if got.DType != want.DType || !slices.Equal(got.Shape, want.Shape) || !bytes.Equal(got.Data, want.Data) {
			t.Errorf("tensor %s: %s %v differs from llama.cpp's %s %v", ti.Name, got.DType, got.Shape, want.DType, want.Shape)
		}
	}
	// Without Untie the file ties, as convert_hf_to_gguf.py would.
	ts, err := Tensors(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(ts, func(x *tensor.Tensor) bool { return x.Name == "output.weight" }) {
		t.Error("tied model got output.weight without Untie")
	}

	ours, err := load.Open(path, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	theirs, err := load.Open(fixturePath, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer theirs.Close()
	text, err := os.ReadFile(testshared.Path(t, "data/tinystories-valid-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	story := string(text[:2000])
	a, b := ours.Tokenizer.Encode(story, true), theirs.Tokenizer.Encode(story, true)
	if !slices.Equal(a, b) {
		t.Fatalf("vocabularies tokenize differently:\n ours     %v\n llama.cpp %v", a[:min(20, len(a))], b[:min(20, len(b))])
	}
	ids := a[:64]
	la, lb, lc := logits(t, ours, ids), logits(t, theirs, ids), logits(t, src, ids)
	if !slices.Equal(la, lb) {
		t.Error("logits differ from those of llama.cpp's file")
	}
	for i := range la {
		if math.Abs(float64(la[i]-lc[i])) > 1e-5 {
			t.Fatalf("logit %d: %g, llama2.c checkpoint %g", i, la[i], lc[i])
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
