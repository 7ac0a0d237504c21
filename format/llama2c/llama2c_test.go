package llama2c

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/model"
)

// build writes a checkpoint whose every float encodes where it sits:
// array index*1e6 + element index, so a misplaced slice shows.
func build(h Header) []byte {
	var b bytes.Buffer
	vocab := int32(h.VocabSize)
	if !h.SharedClassifier {
		vocab = -vocab
	}
	for _, v := range []int32{int32(h.Dim), int32(h.HiddenDim), int32(h.NLayers), int32(h.NHeads), int32(h.NKVHeads), vocab, int32(h.SeqLen)} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	for a, n := range arraySizes(h) {
		for i := 0; i < n; i++ {
			binary.Write(&b, binary.LittleEndian, float32(a*1e6+i))
		}
	}
	return b.Bytes()
}

// arraySizes lists the float counts of the arrays in file order.
func arraySizes(h Header) []int {
	dim, hid, l, hs := h.Dim, h.HiddenDim, h.NLayers, h.Dim/h.NHeads
	kv := hs * h.NKVHeads
	s := []int{h.VocabSize * dim, l * dim, l * dim * dim, l * kv * dim, l * kv * dim, l * dim * dim, l * dim,
		l * hid * dim, l * dim * hid, l * hid * dim, dim, h.SeqLen * hs / 2, h.SeqLen * hs / 2}
	if !h.SharedClassifier {
		s = append(s, h.VocabSize*dim)
	}
	return s
}

func f32(b []byte, i int) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])) }

func TestSynthetic(t *testing.T) {
	for _, h := range []Header{
		{Dim: 8, HiddenDim: 12, NLayers: 2, NHeads: 2, NKVHeads: 1, VocabSize: 10, SeqLen: 6, SharedClassifier: true},
		{Dim: 8, HiddenDim: 12, NLayers: 3, NHeads: 4, NKVHeads: 2, VocabSize: 10, SeqLen: 6, SharedClassifier: false},
		{Dim: 4, HiddenDim: 4, NLayers: 1, NHeads: 1, NKVHeads: 1, VocabSize: 3, SeqLen: 1, SharedClassifier: true},
	} {
		t.Run("", func(t *testing.T) {
			data := build(h)
			if int64(len(data)) != h.FileSize() {
				t.Fatalf("built %d bytes, FileSize %d", len(data), h.FileSize())
			}
			c, err := Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if c.Header != h {
				t.Errorf("header %+v, want %+v", c.Header, h)
			}
			want := model.Config{Arch: "llama", Dim: h.Dim, NLayers: h.NLayers, NHeads: h.NHeads, NKVHeads: h.NKVHeads,
				HeadDim: h.Dim / h.NHeads, FFNDim: h.HiddenDim, VocabSize: h.VocabSize, MaxSeqLen: h.SeqLen,
				NormEps: 1e-5, RopeTheta: 10000, RopeStyle: model.RopeInterleaved, TiedEmbeddings: h.SharedClassifier, BOS: 1, EOS: 2}
			if !reflect.DeepEqual(c.Config, want) {
				t.Errorf("config %+v\nwant   %+v", c.Config, want)
			}
			kv := h.Dim / h.NHeads * h.NKVHeads
			type arr struct {
				suffix string
				array  int
				shape  []int
			}
			layers := []arr{
				{"attn_norm.weight", 1, []int{h.Dim}},
				{"attn_q.weight", 2, []int{h.Dim, h.Dim}},
				{"attn_k.weight", 3, []int{kv, h.Dim}},
				{"attn_v.weight", 4, []int{kv, h.Dim}},
				{"attn_output.weight", 5, []int{h.Dim, h.Dim}},
				{"ffn_norm.weight", 6, []int{h.Dim}},
				{"ffn_gate.weight", 7, []int{h.HiddenDim, h.Dim}},
				{"ffn_down.weight", 8, []int{h.Dim, h.HiddenDim}},
				{"ffn_up.weight", 9, []int{h.HiddenDim, h.Dim}},
			}
			check := func(name string, array, first int, shape []int) {
				t.Helper()
				x, ok := c.Tensor(name)
				if !ok {
					t.Errorf("%s missing", name)
					return
				}
				if !reflect.DeepEqual(x.Shape, shape) {
					t.Errorf("%s: shape %v, want %v", name, x.Shape, shape)
				}
				for i := 0; i < x.NumElements(); i++ {
					if got, want := f32(x.Data, i), float32(array*1e6+first+i); got != want {
						t.Fatalf("%s[%d] = %v, want %v", name, i, got, want)
					}
				}
			}
			check("token_embd.weight", 0, 0, []int{h.VocabSize, h.Dim})
			check("output_norm.weight", 10, 0, []int{h.Dim})
			for l := 0; l < h.NLayers; l++ {
				for _, a := range layers {
					per := 1
					for _, d := range a.shape {
						per *= d
					}
					check("blk."+itoa(l)+"."+a.suffix, a.array, l*per, a.shape)
				}
			}
			n := 2 + 9*h.NLayers
			if h.SharedClassifier {
				if _, ok := c.Tensor("output.weight"); ok {
					t.Error("shared classifier, but output.weight exists")
				}
			} else {
				check("output.weight", 13, 0, []int{h.VocabSize, h.Dim})
				n++
			}
			if len(c.Tensors()) != n || len(c.Names()) != n {
				t.Errorf("%d tensors, want %d", len(c.Tensors()), n)
			}
			if c.Names()[0] != "token_embd.weight" {
				t.Errorf("first tensor %s", c.Names()[0])
			}
		})
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestErrors(t *testing.T) {
	good := Header{Dim: 8, HiddenDim: 12, NLayers: 2, NHeads: 2, NKVHeads: 1, VocabSize: 10, SeqLen: 6, SharedClassifier: true}
	set := func(field int, v int32) []byte {
		b := build(good)
		binary.LittleEndian.PutUint32(b[4*field:], uint32(v))
		return b
	}
	unshared := build(good)
	binary.LittleEndian.PutUint32(unshared[20:], uint32(0xfffffff6)) // vocab -10, but no wcls follows
	huge := set(0, 1<<24)
	binary.LittleEndian.PutUint32(huge[8:], 1<<24)
	magic := make([]byte, 256)
	binary.LittleEndian.PutUint32(magic, versionMagic)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"short", build(good)[:27], "too short"},
		{"magic", magic, `"ak42"`},
		{"zero dim", set(0, 0), "dim 0"},
		{"negative layers", set(2, -1), "n_layers -1"},
		{"huge seq_len", set(6, 1<<30), "seq_len"},
		{"zero vocab", set(5, 0), "vocab_size 0"},
		{"heads not dividing dim", set(3, 3), "not a multiple of n_heads"},
		{"odd head size", set(3, 8), "head size 1 is odd"},
		{"kv heads not dividing", set(4, 3), "n_kv_heads 3"},
		{"more kv heads than heads", set(4, 4), "n_kv_heads 4"},
		{"truncated", build(good)[:len(build(good))-4], "needs exactly"},
		{"trailing", append(build(good), 0, 0, 0, 0), "needs exactly"},
		{"missing wcls", unshared, "separate classifier"},
		{"huge", huge, "implausibly large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse(tc.b)
			if err == nil {
				t.Fatalf("no error; header %+v", c.Header)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "llama2c <memory>: ") {
				t.Errorf("err %q, want it to name the file and mention %q", err, tc.want)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.bin")
	if err := os.WriteFile(p, []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("err %v, want it to name %s", err, p)
	}
	missing := filepath.Join(t.TempDir(), "missing.bin")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("err %v, want it to name %s", err, missing)
	}
}

func TestStories260K(t *testing.T) {
	c, err := Load(testshared.Path(t, "models/stories260K/stories260K.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := Header{Dim: 64, HiddenDim: 172, NLayers: 5, NHeads: 8, NKVHeads: 4, VocabSize: 512, SeqLen: 512, SharedClassifier: true}
	if c.Header != want {
		t.Errorf("header %+v, want %+v", c.Header, want)
	}
	if c.Config.HeadDim != 8 || !c.Config.TiedEmbeddings || c.Config.RopeStyle != model.RopeInterleaved {
		t.Errorf("config %+v", c.Config)
	}
	var params int
	for _, x := range c.Tensors() {
		params += x.NumElements()
	}
	if params != 260032 {
		t.Errorf("%d parameters, want 260032", params)
	}

	var ref map[string]struct {
		Shape []int  `json:"shape"`
		SHA   string `json:"sha256_f32"`
	}
	b, err := os.ReadFile(testshared.Path(t, "models/stories260K-gguf/stories260K-f32.gguf.dequant.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref) != len(c.Tensors())+1 {
		t.Errorf("llama.cpp has %d tensors, we %d (+ output.weight)", len(ref), len(c.Tensors()))
	}
	sha := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	for name, r := range ref {
		ours := name
		if name == "output.weight" {
			ours = "token_embd.weight" // llama.cpp wrote the shared classifier out as a copy
		}
		x, ok := c.Tensor(ours)
		if !ok {
			t.Errorf("%s: missing", ours)
			continue
		}
		// GGUF shapes are innermost first.
		if !reflect.DeepEqual(r.Shape, reversed(x.Shape)) {
			t.Errorf("%s: shape %v, llama.cpp's %v", name, x.Shape, r.Shape)
		}
		// llama-convert-llama2c-to-ggml copies every array as is: llama2.c's
		// Q and K rows are already in ggml's interleaved RoPE order, so
		// (unlike a Hugging Face conversion) nothing is permuted.
		if got := sha(x.Data); got != r.SHA {
			t.Errorf("%s: sha256 %s, llama.cpp's %s", name, got, r.SHA)
		}
	}
}

func reversed(s []int) []int {
	r := make([]int, len(s))
	for i, v := range s {
		r[len(s)-1-i] = v
	}
	return r
}

func FuzzParse(f *testing.F) {
	f.Add(build(Header{Dim: 8, HiddenDim: 12, NLayers: 2, NHeads: 2, NKVHeads: 1, VocabSize: 10, SeqLen: 6, SharedClassifier: true}))
	f.Add(build(Header{Dim: 4, HiddenDim: 4, NLayers: 1, NHeads: 1, NKVHeads: 1, VocabSize: 3, SeqLen: 1}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		if int64(len(b)) != c.Header.FileSize() {
			t.Fatalf("accepted %d bytes for a header that needs %d", len(b), c.Header.FileSize())
		}
		if err := c.Config.Validate(); err != nil {
			t.Fatal(err)
		}
		for _, x := range c.Tensors() {
			if n, _ := x.ByteSize(); n != len(x.Data) {
				t.Fatalf("%s: %d bytes for %v", x.Name, len(x.Data), x.Shape)
			}
		}
	})
}
