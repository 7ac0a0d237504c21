package native

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tensor"
)

var tinyCfg = model.Config{
	Arch: "llama", Dim: 32, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 8,
	FFNDim: 48, VocabSize: 64, MaxSeqLen: 64, NormEps: 1e-5, RopeTheta: 10000,
	BOS: 1, EOS: 2,
}

// tinyTensors is a random tiny model with its matrices coded by a mix of
// methods (the embedding included, to exercise the coded lookup).
func tinyTensors(t *testing.T) (coded, decoded []*tensor.Tensor) {
	t.Helper()
	cfg := tinyCfg
	rng := rand.New(rand.NewPCG(1, 1))
	qs := []quant.Quantizer{
		kmeans.Config{Bits: 4, GroupSize: 16},
		vq.Config{Dim: 4, CodeBits: 6},
		vq.Config{Dim: 2, CodeBits: 4, Stages: 2},
		vq.Config{Dim: 4, CodeBits: 4, Segments: 2, RowGroup: 8},
		kmeans.Config{Bits: 3},
	}
	i := 0
	add := func(name string, shape []int, scale, offset float64) {
		n := 1
		for _, d := range shape {
			n *= d
		}
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(offset + scale*(2*rng.Float64()-1))
		}
		ft := tensor.FromFloat32(name, shape, v)
		if len(shape) == 1 {
			coded, decoded = append(coded, ft), append(decoded, ft)
			return
		}
		q := qs[i%len(qs)]
		i++
		ct, err := q.Quantize(ft, nil)
		if err != nil {
			t.Fatal(err)
		}
		coded = append(coded, ct)
		decoded = append(decoded, tensor.FromFloat32(name, shape, dequant(t, ct)))
	}
	q, kv := cfg.NHeads*cfg.HeadDim, cfg.NKVHeads*cfg.HeadDim
	add("token_embd.weight", []int{cfg.VocabSize, cfg.Dim}, 1, 0)
	add("output_norm.weight", []int{cfg.Dim}, 0.2, 1)
	add("output.weight", []int{cfg.VocabSize, cfg.Dim}, 0.3, 0)
	for l := 0; l < cfg.NLayers; l++ {
		p := fmt.Sprintf("blk.%d.", l)
		add(p+"attn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"ffn_norm.weight", []int{cfg.Dim}, 0.2, 1)
		add(p+"attn_q.weight", []int{q, cfg.Dim}, 0.3, 0)
		add(p+"attn_k.weight", []int{kv, cfg.Dim}, 0.3, 0)
		add(p+"attn_v.weight", []int{kv, cfg.Dim}, 0.3, 0)
		add(p+"attn_output.weight", []int{cfg.Dim, q}, 0.3, 0)
		add(p+"ffn_gate.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_up.weight", []int{cfg.FFNDim, cfg.Dim}, 0.3, 0)
		add(p+"ffn_down.weight", []int{cfg.Dim, cfg.FFNDim}, 0.3, 0)
	}
	return coded, decoded
}

func dequant(t *testing.T, ct *tensor.Tensor) []float32 {
	t.Helper()
	v := make([]float32, ct.NumElements())
	for r := 0; r < ct.Rows(); r++ {
		if err := ct.Decoder.DecodeRow(r, v[r*ct.Cols():(r+1)*ct.Cols()]); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func loadModel(t *testing.T, ts []*tensor.Tensor) *model.Model {
	t.Helper()
	by := map[string]*tensor.Tensor{}
	for _, x := range ts {
		by[x.Name] = x
	}
	m, err := model.Load(tinyCfg, func(name string) (*tensor.Tensor, bool, error) {
		x, ok := by[name]
		return x, ok, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// Write → Open gives the same decoded weights, and the model run from the
// coded file gives the logits of the model built from the decoded floats.
func TestRoundTripAndLogits(t *testing.T) {
	coded, decoded := tinyTensors(t)
	path := filepath.Join(t.TempDir(), "tiny.terse")
	tok := []byte(`{"model":{"type":"BPE"}}`)
	if err := WriteFile(path, tinyCfg, TokenizerHF, tok, coded); err != nil {
		t.Fatal(err)
	}
	if !Sniff(path) {
		t.Error("Sniff does not recognise the file")
	}
	f, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !bytes.Equal(f.TokenizerData, tok) {
		t.Error("tokenizer bytes differ")
	}
	if f.Meta.Config.Dim != tinyCfg.Dim || f.Meta.Config.BOS != 1 {
		t.Errorf("config %+v", f.Meta.Config)
	}
	if len(f.Tensors) != len(coded) {
		t.Fatalf("%d tensors, wrote %d", len(f.Tensors), len(coded))
	}
	for i, want := range decoded {
		got, ok := f.Tensor(want.Name)
		if !ok {
			t.Fatalf("%s missing", want.Name)
		}
		if f.Tensors[i].Name != want.Name {
			t.Errorf("tensor %d is %s, want %s", i, f.Tensors[i].Name, want.Name)
		}
		var gv []float32
		if got.Decoder != nil {
			gv = dequant(t, got)
			if got.Decoder.Bits() != coded[i].Decoder.Bits() {
				t.Errorf("%s: bits %g, wrote %g", want.Name, got.Decoder.Bits(), coded[i].Decoder.Bits())
			}
		} else {
			gv = make([]float32, got.NumElements())
			for j := range gv {
				gv[j] = math.Float32frombits(uint32(got.Data[4*j]) | uint32(got.Data[4*j+1])<<8 | uint32(got.Data[4*j+2])<<16 | uint32(got.Data[4*j+3])<<24)
			}
		}
		wv := dequant32(want)
		for j := range wv {
			if gv[j] != wv[j] {
				t.Fatalf("%s: element %d is %g, want %g", want.Name, j, gv[j], wv[j])
			}
		}
	}
	mc, mf := loadModel(t, f.Tensors), loadModel(t, decoded)
	toks := []int{1, 5, 9, 33, 2, 63, 0, 17, 40, 41, 12}
	for _, batch := range []int{1, 4, 16} {
		a := make([]float32, len(toks)*tinyCfg.VocabSize)
		b := make([]float32, len(a))
		sa, sb := mc.NewState(32, batch), mf.NewState(32, batch)
		if err := sa.Forward(toks, a, true); err != nil {
			t.Fatal(err)
		}
		if err := sb.Forward(toks, b, true); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if math.Abs(float64(a[i]-b[i])) > 1e-5 {
				t.Fatalf("batch %d: logit %d is %g coded, %g decoded", batch, i, a[i], b[i])
			}
		}
	}
}

func dequant32(t *tensor.Tensor) []float32 {
	v := make([]float32, t.NumElements())
	for j := range v {
		d := t.Data[4*j:]
		v[j] = math.Float32frombits(uint32(d[0]) | uint32(d[1])<<8 | uint32(d[2])<<16 | uint32(d[3])<<24)
	}
	return v
}

func TestReaderRejects(t *testing.T) {
	coded, _ := tinyTensors(t)
	var buf bytes.Buffer
	if err := Write(&buf, tinyCfg, TokenizerHF, []byte("{}"), coded); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	for _, c := range []struct{ from, to, want string }{
		{`"terse-native"`, `"terse-nativ1"`, "not a terse native file"},
		{`\"format_version\":2`, `\"format_version\":3`, "newer than this terse reads"},
		{`\"format_version\":2`, `\"format_version\":0`, "format_version 0"},
		{`\"method\":\"kmeans\"`, `\"method\":\"kmeanz\"`, "unknown method"},
		{`\"bits\":4`, `\"bits\":5`, "want U8"},
		{`\"dim\":32`, `\"dim\":-1`, "config"},
		{`\"attn_bias\"`, `\"attn_bais\"`, "unknown field"},
		{`\"rope_style\":\"interleaved\"`, `\"rope_style\":\"sideways123\"`, "rope_style"},
		{`\"kind\":\"hf-json\"`, `\"kind\":\"hf-yaml\"`, "tokenizer"},
		{`\"row_group\":8`, `\"row_group\":7`, "want F16"},
	} {
		bad := strings.Replace(good, c.from, c.to, 1)
		if bad == good {
			t.Fatalf("%q not in the header", c.from)
		}
		// Keep the header length: pad or trim spaces at its end.
		if d := len(bad) - len(good); d != 0 {
			t.Logf("header length changes by %d; skipping %q", d, c.from)
			continue
		}
		_, err := Parse("bad.terse", []byte(bad))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "bad.terse") {
			t.Errorf("%s → %s: error %v, want one naming the file and %q", c.from, c.to, err, c.want)
		}
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none.terse")); err == nil {
		t.Error("missing file opened")
	}
	// A plain quantized ggml tensor cannot be written.
	q := &tensor.Tensor{Name: "x", DType: tensor.Q8_0, Shape: []int{1, 32}, Data: make([]byte, 34)}
	if err := Write(&bytes.Buffer{}, tinyCfg, TokenizerHF, []byte("{}"), []*tensor.Tensor{q}); err == nil {
		t.Error("Q8_0 tensor written")
	}
	_ = os.Remove
}

// The metadata document is snake_case throughout, and versions other than
// this one are refused with a message that says what to do.
func TestDocumentSchema(t *testing.T) {
	coded, _ := tinyTensors(t)
	md, _, err := layout(tinyCfg, TokenizerLlama2c, []byte{1, 2, 3, 4}, coded)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal([]byte(md[KeyDocument]), &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if path != "/tensors" && !snake.MatchString(k) {
					t.Errorf("key %q at %s is not snake_case", k, path)
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path, x)
			}
		}
	}
	walk("", doc)
	for _, k := range []string{"format_version", "config", "tokenizer", "tensors"} {
		if _, ok := doc.(map[string]any)[k]; !ok {
			t.Errorf("document has no %q", k)
		}
	}
	m, err := ParseMetadata(md)
	if err != nil {
		t.Fatal(err)
	}
	if m.Tokenizer.Kind != TokenizerLlama2c || !reflect.DeepEqual(m.Config, tinyCfg) {
		t.Errorf("read back %+v, %+v", m.Tokenizer, m.Config)
	}
	tests := []struct{ format, doc, want string }{
		{"terse-native/1", md[KeyDocument], "older version"},
		{"", md[KeyDocument], "not a terse native file"},
		{Marker, strings.Replace(md[KeyDocument], `"format_version":2`, `"format_version":7`, 1), "newer than this terse reads (2)"},
		{Marker, strings.Replace(md[KeyDocument], `"bos":1`, `"bos":64`, 1), "bos 64"},
		{Marker, "", "missing"},
	}
	for _, tc := range tests {
		_, err := ParseMetadata(map[string]string{KeyFormat: tc.format, KeyDocument: tc.doc})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("format %q: error %v, want %q", tc.format, err, tc.want)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	coded, _ := tinyTensors(&testing.T{})
	md, _, err := layout(tinyCfg, TokenizerHF, []byte("{}"), coded)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(md[KeyDocument])
	f.Add(`{"format_version":2,"config":{},"tokenizer":{"kind":"hf-json","tensor":"t"},"tensors":{"a":{"method":"vq","shape":[4,8],"bits":2,"d":2,"stages":1,"segments":1,"row_group":4,"codes":"c","codebooks":"b","scales":"s"}}}`)
	f.Fuzz(func(t *testing.T, doc string) {
		m, err := ParseMetadata(map[string]string{KeyFormat: Marker, KeyDocument: doc})
		if err != nil {
			return
		}
		for name, e := range m.Tensors {
			if len(e.Shape) != 2 || e.Shape[0] <= 0 || e.Shape[1] <= 0 || e.Codes == "" || e.Codes == name {
				t.Fatalf("accepted bad entry %q: %+v", name, e)
			}
		}
	})
}

// TestConfigRoundTrip checks that every model.Config field survives the
// file's schema, per-layer shapes and RoPE scaling included.
func TestConfigRoundTrip(t *testing.T) {
	c := model.Config{Arch: "llama", Dim: 64, NLayers: 3, NHeads: 4, NKVHeads: 2, HeadDim: 16, FFNDim: 96,
		VocabSize: 50, MaxSeqLen: 128, NormEps: 1e-5, RopeTheta: 5e5, RopeStyle: model.RopeHalf,
		RopeScaling:    &model.RopeScaling{Type: "llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPos: 64},
		TiedEmbeddings: true, AttnBias: true, SlidingWindow: 32, BOS: 1, EOS: 2,
		Layers: []model.LayerShape{{}, {NHeads: 2, NKVHeads: 1, FFNDim: 48}, {FFNDim: 80}}}
	got, err := ConfigOf(c).Model()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, c) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
}
