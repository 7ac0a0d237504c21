package eval

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// saveBase evaluates base with SaveLogits and returns the file bytes.
func saveBase(t testing.TB, base Model, stream []int, opt Options) ([]byte, *Result) {
	t.Helper()
	var buf bytes.Buffer
	opt.SaveLogits = &buf
	r, err := Evaluate(base, stream, opt)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), r
}

func TestLogitsFileRoundTrip(t *testing.T) {
	const v = 300
	stream := testStream(6*24+5, v, 21)
	base := &hashModel{vocab: v, seed: 3, scale: 4, ctxWeight: 1}
	m := &hashModel{vocab: v, seed: 3, scale: 4, ctxWeight: 1, noise: 0.3, noiseSeed: 8}
	for _, tc := range []struct {
		name    string
		proto   Protocol
		topK    int
		samples int
	}{
		{"all, full vocabulary", ProtocolAll, v, 0},
		{"llama.cpp, full vocabulary", ProtocolLlamaCpp, v, 0},
		{"all, top-16, lower bound", ProtocolAll, 16, -1},
		{"all, top-1, lower bound", ProtocolAll, 1, -1},
		{"all, top-16 + 64 samples", ProtocolAll, 16, 64},
		{"llama.cpp, top-4 + 32 samples", ProtocolLlamaCpp, 4, 32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := Options{Protocol: tc.proto, Ctx: 24, BOS: 2, SaveTopK: tc.topK, SaveTailSamples: tc.samples, PerPosition: true}
			file, baseRes := saveBase(t, base, stream, opt)
			live, err := Evaluate(m, stream, Options{Protocol: tc.proto, Ctx: 24, BOS: 2, Base: base, PerPosition: true})
			if err != nil {
				t.Fatal(err)
			}
			// The stream may be omitted: the file's tokens are used.
			fromFile, err := Evaluate(m, nil, Options{BaseLogits: bytes.NewReader(file), BaseLogitsName: "base.tlg", PerPosition: true})
			if err != nil {
				t.Fatal(err)
			}
			if fromFile.Tokens != live.Tokens || fromFile.NLL != live.NLL || fromFile.Protocol != tc.proto.String() {
				t.Fatalf("tokens %d/%d nll %v/%v protocol %s", fromFile.Tokens, live.Tokens, fromFile.NLL, live.NLL, fromFile.Protocol)
			}
			if !near(fromFile.BaseNLL, baseRes.NLL, 1e-6) || !near(fromFile.BaseNLL, live.BaseNLL, 1e-6) {
				t.Errorf("base NLL from file %v, live %v, saved run %v", fromFile.BaseNLL, live.BaseNLL, baseRes.NLL)
			}
			if fromFile.Top1 != live.Top1 || !near(fromFile.DeltaPRMS, live.DeltaPRMS, 1e-5) {
				t.Errorf("top1 %v/%v, dp %v/%v", fromFile.Top1, live.Top1, fromFile.DeltaPRMS, live.DeltaPRMS)
			}
			for i, k := range fromFile.PerPositionKLD {
				lk := live.PerPositionKLD[i]
				// Without samples, a lower bound up to quantization error.
				if tc.samples < 0 && float64(k) > float64(lk)*(1+1e-4)+1e-7 {
					t.Fatalf("position %d: file KLD %v above live %v", i, k, lk)
				}
				if tc.topK == v && !near(float64(k), float64(lk), 1e-4) {
					t.Fatalf("position %d: full-vocabulary file KLD %v, live %v", i, k, lk)
				}
			}
			if tc.samples > 0 && math.Abs(fromFile.KLDMean-live.KLDMean) > 0.05*live.KLDMean {
				t.Errorf("file KLD %v, live %v: more than 5%% apart", fromFile.KLDMean, live.KLDMean)
			}
			if fromFile.BaseSource != "base.tlg" || fromFile.BaseTopK != tc.topK {
				t.Errorf("base %q top-K %d", fromFile.BaseSource, fromFile.BaseTopK)
			}
			// The base against its own file: zero up to quantization.
			self, err := Evaluate(base, stream, Options{BaseLogits: bytes.NewReader(file)})
			if err != nil {
				t.Fatal(err)
			}
			if self.KLDMax > 1e-7 || self.Top1 != 100 || math.Abs(self.PPLRatio-1) > 1e-6 {
				t.Errorf("self against file: kld max %v top1 %v ratio %v", self.KLDMax, self.Top1, self.PPLRatio)
			}
			// Fewer windows than the file holds.
			part, err := Evaluate(m, stream, Options{Windows: 2, BaseLogits: bytes.NewReader(file)})
			if err != nil || part.Windows != 2 {
				t.Errorf("partial read: %v, %d windows", err, part.Windows)
			}
		})
	}
}

// TestLogitsFileZipf measures what a top-K file loses on realistic
// distributions: a 32K vocabulary with Zipf-like rows and Gaussian logit
// noise of two sizes (about Q8 and Q4 levels of KLD).
func TestLogitsFileZipf(t *testing.T) {
	const v, ctx, windows = 32768, 64, 3
	stream := testStream(ctx*windows, v, 5)
	base := &cachedModel{Model: &zipfModel{vocab: v, seed: 1}}
	type variant struct{ k, samples int }
	variants := []variant{{16, -1}, {64, -1}, {16, 32}, {64, 32}}
	files := map[variant][]byte{}
	for _, vr := range variants {
		files[vr], _ = saveBase(t, base, stream, Options{Ctx: ctx, SaveTopK: vr.k, SaveTailSamples: vr.samples})
	}
	for _, noise := range []float64{0.03, 0.15} {
		m := &cachedModel{Model: &zipfModel{vocab: v, seed: 1, noise: noise, noiseSeed: 99}}
		live, err := Evaluate(m, stream, Options{Ctx: ctx, Base: base})
		if err != nil {
			t.Fatal(err)
		}
		for _, vr := range variants {
			k, file := vr.k, files[vr]
			r, err := Evaluate(m, stream, Options{BaseLogits: bytes.NewReader(file)})
			if err != nil {
				t.Fatal(err)
			}
			rel := (live.KLDMean - r.KLDMean) / live.KLDMean
			perTok := float64(len(file)-4*ctx*windows) / float64(r.Tokens)
			t.Logf("noise %.2f top-%-3d + %3d samples: %5.0f bytes/token, KLD live %.6f file %.6f (%.1f%% low), p99 %.5f/%.5f, top1 %.2f/%.2f, PPL(base) %.4f/%.4f",
				noise, k, max(vr.samples, 0), perTok, live.KLDMean, r.KLDMean, 100*rel, live.KLDP99, r.KLDP99, live.Top1, r.Top1, live.BasePPL, r.BasePPL)
			if vr.samples < 0 && rel < -1e-6 {
				t.Errorf("top-%d: file KLD %v above live %v", k, r.KLDMean, live.KLDMean)
			}
			if vr.samples > 0 && math.Abs(rel) > 0.03 {
				t.Errorf("top-%d + %d samples: file KLD %.1f%% off live", k, vr.samples, 100*rel)
			}
			if r.Top1 != live.Top1 || !near(r.BasePPL, live.BasePPL, 1e-6) {
				t.Errorf("top-%d: top1 or base PPL differ", k)
			}
		}
	}
}

// cachedModel memoizes Logits by input, so tests can rerun a slow model.
type cachedModel struct {
	Model
	cache map[string][]float32
}

func (c *cachedModel) Logits(tokens []int, out []float32) error {
	key := fmt.Sprint(tokens)
	if l, ok := c.cache[key]; ok {
		copy(out, l)
		return nil
	}
	if err := c.Model.Logits(tokens, out); err != nil {
		return err
	}
	if c.cache == nil {
		c.cache = map[string][]float32{}
	}
	c.cache[key] = slices.Clone(out[:len(tokens)*c.VocabSize()])
	return nil
}

func TestLogitsFileErrors(t *testing.T) {
	const v, ctx = 50, 16
	stream := testStream(4*ctx, v, 8)
	base := &hashModel{vocab: v, seed: 4, scale: 3}
	file, _ := saveBase(t, base, stream, Options{Ctx: ctx, SaveTopK: 8})
	eval := func(m Model, s []int, data []byte, opt Options) error {
		opt.BaseLogits = bytes.NewReader(data)
		opt.BaseLogitsName = "base.tlg"
		_, err := Evaluate(m, s, opt)
		return err
	}
	other := append([]int(nil), stream...)
	other[37] = (other[37] + 1) % v
	corrupt := append([]byte(nil), file...)
	corrupt[len(corrupt)-20] ^= 0x40
	badHeader := append([]byte(nil), file...)
	badHeader[50] ^= 1 // inside the tokens
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"different tokens", eval(base, other, file, Options{}), "position 37"},
		{"shorter text", eval(base, stream[:ctx], file, Options{}), "not the same text"},
		{"vocabulary", eval(&hashModel{vocab: v + 1}, nil, file, Options{}), "vocabulary of 50"},
		{"protocol", eval(base, nil, file, Options{Protocol: ProtocolLlamaCpp}), "protocol"},
		{"context", eval(base, nil, file, Options{Ctx: 32}), "context 16"},
		{"windows", eval(base, nil, file, Options{Windows: 5}), "holds 4 windows"},
		{"corrupt window", eval(base, nil, corrupt, Options{}), "checksum"},
		{"corrupt header", eval(base, nil, badHeader, Options{}), ""},
		{"truncated", eval(base, nil, file[:len(file)-3], Options{}), "truncated"},
		{"trailing", eval(base, nil, append(file[:len(file):len(file)], 0), Options{}), "trailing data"},
		{"magic", eval(base, nil, []byte("GGUF....xxxxxxxx"), Options{}), "not a terse base-logits file"},
		{"empty", eval(base, nil, nil, Options{}), "truncated"},
		{"both bases", func() error {
			_, err := Evaluate(base, stream, Options{Base: base, BaseLogits: bytes.NewReader(file)})
			return err
		}(), "both"},
	} {
		if tc.err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error %q lacks %q", tc.name, tc.err, tc.want)
		}
		if tc.name != "both bases" && !strings.Contains(tc.err.Error(), "base.tlg") {
			t.Errorf("%s: error %q does not name the file", tc.name, tc.err)
		}
	}
}

func TestLogitsHeader(t *testing.T) {
	stream := testStream(3*10, 20, 2)
	file, _ := saveBase(t, &hashModel{vocab: 20, scale: 1}, stream, Options{Protocol: ProtocolLlamaCpp, Ctx: 10, BOS: 3, SaveTopK: 100})
	lr, err := NewLogitsReader(bytes.NewReader(file), "")
	if err != nil {
		t.Fatal(err)
	}
	h := lr.Header()
	if h.Vocab != 20 || h.Ctx != 10 || h.Protocol != ProtocolLlamaCpp || h.BOS != 3 || h.Windows != 3 || h.TopK != 20 || len(h.Tokens) != 30 {
		t.Errorf("header %+v", h)
	}
	if err := lr.readAll(); err != nil {
		t.Error(err)
	}
}

func FuzzLogitsReader(f *testing.F) {
	stream := testStream(2*8, 12, 1)
	for _, k := range []int{1, 5, 12} {
		var buf bytes.Buffer
		if _, err := Evaluate(&hashModel{vocab: 12, scale: 2, ctxWeight: 1}, stream, Options{Ctx: 8, SaveLogits: &buf, SaveTopK: k}); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(buf.Bytes()[:buf.Len()/2])
	}
	f.Add([]byte(logitsMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		lr, err := NewLogitsReader(bytes.NewReader(data), "fuzz")
		if err != nil {
			return
		}
		h := lr.Header()
		if len(h.Tokens) != h.Windows*h.Ctx || 4*len(h.Tokens) > len(data) {
			t.Fatalf("header %d tokens for %d×%d from %d bytes", len(h.Tokens), h.Windows, h.Ctx, len(data))
		}
		_ = lr.readAll()
	})
}
