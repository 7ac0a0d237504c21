package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
)

// refPos is one scored position computed by the float64 brute force.
type refPos struct {
	nll, nllBase, kld float64
	same              bool
}

func logSoftmax64(row []float32) []float64 {
	mx := math.Inf(-1)
	for _, v := range row {
		mx = math.Max(mx, float64(v))
	}
	var s float64
	for _, v := range row {
		s += math.Exp(float64(v) - mx)
	}
	z := mx + math.Log(s)
	out := make([]float64, len(row))
	for i, v := range row {
		out[i] = float64(v) - z
	}
	return out
}

func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// reference scores windows of stream directly from the protocol's definition.
func reference(m, base Model, stream []int, proto Protocol, ctx, windows, bos int) []refPos {
	v := m.VocabSize()
	first := 0
	if proto == ProtocolLlamaCpp {
		first = ctx / 2
	}
	var out []refPos
	lm := make([]float32, ctx*v)
	lb := make([]float32, ctx*v)
	for w := 0; w < windows; w++ {
		in := slices.Clone(stream[w*ctx : (w+1)*ctx])
		if proto == ProtocolLlamaCpp && bos >= 0 {
			in[0] = bos
		}
		m.Logits(in, lm)
		if base != nil {
			base.Logits(in, lb)
		}
		for t := first; t <= ctx-2; t++ {
			next := stream[w*ctx+t+1]
			rm := lm[t*v : (t+1)*v]
			pm := logSoftmax64(rm)
			p := refPos{nll: -pm[next]}
			if base != nil {
				rb := lb[t*v : (t+1)*v]
				pb := logSoftmax64(rb)
				p.nllBase = -pb[next]
				for i := range pb {
					p.kld += math.Exp(pb[i]) * (pb[i] - pm[i])
				}
				p.same = argmax(rm) == argmax(rb)
			}
			out = append(out, p)
		}
	}
	return out
}

func refMedian(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 0 {
		return 0.5 * (sorted[n/2] + sorted[n/2-1])
	}
	return sorted[n/2]
}

func near(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestProtocolCounts(t *testing.T) {
	for _, tc := range []struct {
		name             string
		proto            Protocol
		ctx, windows     int
		streamLen        int
		wantWin, wantTok int
	}{
		{"reference settings", ProtocolAll, 512, 200, 512*200 + 100, 200, 102200},
		{"all full windows", ProtocolAll, 512, 0, 1300, 2, 1022},
		{"default protocol and ctx", ProtocolDefault, 0, 0, 1100, 2, 1022},
		{"llama.cpp 350 chunks", ProtocolLlamaCpp, 512, 0, 512*350 + 511, 350, 350 * 255},
		{"llama.cpp ctx 8", ProtocolLlamaCpp, 8, 3, 100, 3, 9},
		{"llama.cpp odd ctx", ProtocolLlamaCpp, 9, 2, 18, 2, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &hashModel{vocab: 4} // all-zero logits: NLL = ln 4 everywhere
			r, err := Evaluate(m, testStream(tc.streamLen, 4, 1), Options{Protocol: tc.proto, Ctx: tc.ctx, Windows: tc.windows, BOS: 0})
			if err != nil {
				t.Fatal(err)
			}
			if r.Windows != tc.wantWin || r.Tokens != tc.wantTok || m.calls != tc.wantWin {
				t.Errorf("windows %d tokens %d calls %d, want %d %d %d", r.Windows, r.Tokens, m.calls, tc.wantWin, tc.wantTok, tc.wantWin)
			}
			if !near(r.NLL, math.Log(4), 1e-10) || !near(r.PPL, 4, 1e-10) || r.PPLPM > 1e-6 {
				t.Errorf("NLL %v PPL %v ± %v, want ln 4, 4 ± 0", r.NLL, r.PPL, r.PPLPM)
			}
		})
	}
}

func TestNotEnoughTokens(t *testing.T) {
	m := &hashModel{vocab: 4}
	for _, opt := range []Options{{Ctx: 1001}, {Ctx: 100, Windows: 11}, {Ctx: 1}, {Protocol: ProtocolLlamaCpp, Ctx: 2}} {
		if _, err := Evaluate(m, testStream(1000, 4, 1), opt); err == nil {
			t.Errorf("%+v: no error", opt)
		}
	}
	if _, err := Evaluate(m, []int{0, 1, 5, 2}, Options{Ctx: 4}); err == nil || !strings.Contains(err.Error(), "position 2") {
		t.Errorf("out-of-vocabulary token: %v", err)
	}
}

func TestLlamaCppBOS(t *testing.T) {
	const v, ctx, bos = 40, 16, 7
	stream := testStream(5*ctx, v, 3)
	for _, b := range []int{bos, -1} {
		m := &hashModel{vocab: v, seed: 5, scale: 3, ctxWeight: 1, record: true}
		r, err := Evaluate(m, stream, Options{Protocol: ProtocolLlamaCpp, Ctx: ctx, BOS: b, PerPosition: true})
		if err != nil {
			t.Fatal(err)
		}
		for w, in := range m.inputs {
			want := slices.Clone(stream[w*ctx : (w+1)*ctx])
			if b >= 0 {
				want[0] = b
			}
			if !slices.Equal(in, want) {
				t.Fatalf("bos %d window %d: input %v, want %v", b, w, in, want)
			}
		}
		ref := reference(&hashModel{vocab: v, seed: 5, scale: 3, ctxWeight: 1}, nil, stream, ProtocolLlamaCpp, ctx, 5, b)
		if len(ref) != len(r.PerPositionNLL) || r.Tokens != 5*(ctx-1-ctx/2) {
			t.Fatalf("%d positions, reference %d", len(r.PerPositionNLL), len(ref))
		}
		for i, p := range ref {
			if !near(float64(r.PerPositionNLL[i]), p.nll, 1e-6) {
				t.Fatalf("position %d: NLL %v, reference %v", i, r.PerPositionNLL[i], p.nll)
			}
		}
	}
}

func TestAgainstReference(t *testing.T) {
	const v = 50
	for _, tc := range []struct {
		name         string
		proto        Protocol
		ctx, windows int
		noise        float64
	}{
		{"all, small noise", ProtocolAll, 16, 8, 0.05},
		{"all, large noise", ProtocolAll, 16, 8, 1.0},
		{"llama.cpp", ProtocolLlamaCpp, 20, 6, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := testStream(tc.ctx*tc.windows+3, v, 11)
			base := &hashModel{vocab: v, seed: 9, scale: 4, ctxWeight: 1}
			m := &hashModel{vocab: v, seed: 9, scale: 4, ctxWeight: 1, noise: tc.noise, noiseSeed: 77}
			r, err := Evaluate(m, stream, Options{Protocol: tc.proto, Ctx: tc.ctx, BOS: 1, Base: base, BaseName: "f32", PerPosition: true})
			if err != nil {
				t.Fatal(err)
			}
			ref := reference(m, base, stream, tc.proto, tc.ctx, tc.windows, 1)
			if r.Tokens != len(ref) {
				t.Fatalf("tokens %d, reference %d", r.Tokens, len(ref))
			}
			var sn, snb, sk, sk2 float64
			same := 0
			klds := make([]float64, len(ref))
			for i, p := range ref {
				sn += p.nll
				snb += p.nllBase
				sk += p.kld
				sk2 += p.kld * p.kld
				klds[i] = p.kld
				if p.same {
					same++
				}
				if !near(float64(r.PerPositionKLD[i]), p.kld, 1e-6) {
					t.Fatalf("position %d: KLD %v, reference %v", i, r.PerPositionKLD[i], p.kld)
				}
			}
			n := float64(len(ref))
			slices.Sort(klds)
			mean := sk / n
			se := math.Sqrt((sk2/n - mean*mean) / (n - 1))
			checks := []struct {
				name      string
				got, want float64
			}{
				{"nll", r.NLL, sn / n},
				{"base nll", r.BaseNLL, snb / n},
				{"ln ppl ratio", r.LnPPLRatio, (sn - snb) / n},
				{"ppl ratio", r.PPLRatio, math.Exp((sn - snb) / n)},
				{"kld mean", r.KLDMean, mean},
				{"kld pm", r.KLDPM, se},
				{"kld median", r.KLDMedian, refMedian(klds)},
				{"kld max", r.KLDMax, klds[len(klds)-1]},
				{"kld p99", r.KLDP99, klds[int(0.99*(n-1))] + (0.99*(n-1)-math.Floor(0.99*(n-1)))*(klds[int(0.99*(n-1))+1]-klds[int(0.99*(n-1))])},
				{"top1", r.Top1, 100 * float64(same) / n},
			}
			for _, c := range checks {
				if !near(c.got, c.want, 1e-9) {
					t.Errorf("%s = %.12g, reference %.12g", c.name, c.got, c.want)
				}
			}
			if r.BaseSource != "f32" || r.KLDMean <= 0 || r.NLLCorr <= 0 || r.NLLCorr > 1 {
				t.Errorf("base %q, kld %v, corr %v", r.BaseSource, r.KLDMean, r.NLLCorr)
			}
		})
	}
}

func TestSelfKLD(t *testing.T) {
	m := &hashModel{vocab: 64, seed: 2, scale: 5, ctxWeight: 2}
	r, err := Evaluate(m, testStream(1000, 64, 4), Options{Ctx: 32, Base: m})
	if err != nil {
		t.Fatal(err)
	}
	if r.KLDMean != 0 || r.KLDMax != 0 || r.Top1 != 100 || r.DeltaPRMS != 0 || r.PPLRatio != 1 || r.BasePPL != r.PPL {
		t.Errorf("self comparison: kld %v max %v top1 %v dp %v ratio %v", r.KLDMean, r.KLDMax, r.Top1, r.DeltaPRMS, r.PPLRatio)
	}
	if math.Abs(r.NLLCorr-1) > 1e-9 {
		t.Errorf("self correlation %v", r.NLLCorr)
	}
}

func TestPercentile(t *testing.T) {
	v := []float64{1, 2, 3, 4}
	for _, tc := range []struct{ f, want float64 }{{0, 1}, {0.5, 2.5}, {0.9, 3.7}, {1, 4}, {-1, 1}, {2, 4}} {
		if got := percentile(v, tc.f); !near(got, tc.want, 1e-12) {
			t.Errorf("percentile(%v) = %v, want %v", tc.f, got, tc.want)
		}
	}
	if percentile(nil, 0.5) != 0 || percentile([]float64{3}, 0.99) != 3 {
		t.Error("degenerate percentiles")
	}
}

func TestResultOutput(t *testing.T) {
	base := &hashModel{vocab: 30, seed: 1, scale: 3}
	m := &hashModel{vocab: 30, seed: 1, scale: 3, noise: 0.2, noiseSeed: 5}
	stream := testStream(300, 30, 6)
	var prog bytes.Buffer
	kv := &KVInfo{Spec: "q4_0", BitsPerElement: 4.5, BytesPerToken: 1152}
	r, err := Evaluate(m, stream, Options{Ctx: 32, Base: base, Progress: &prog, KV: kv})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(prog.String(), "eval 100%") {
		t.Errorf("progress output %q", prog.String())
	}
	var js bytes.Buffer
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got["kv_spec"] != "q4_0" || got["kv_bits_per_element"] != 4.5 || got["kv_bytes_per_token"] != 1152.0 {
		t.Errorf("JSON's KV fields: %s", js.String())
	}
	for _, k := range []string{"tokens", "nll", "ppl", "ppl_pm", "kld_mean", "kld_p99", "top1", "dp_rms", "base_ppl", "ppl_ratio", "ln_ppl_ratio"} {
		if _, ok := got[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, js.String())
		}
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back.Comparison == nil || back.KLDMean != r.KLDMean {
		t.Errorf("JSON round trip: %v %+v", err, back.Comparison)
	}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"tokens scored", "PPL", "mean KLD", "same top-1", "RMS Δp", "q4_0 (4.500 bits per element, 1152 bytes per token)"} {
		if !strings.Contains(tb.String(), s) {
			t.Errorf("table lacks %q:\n%s", s, tb.String())
		}
	}

	plain, err := Evaluate(m, stream, Options{Ctx: 32})
	if err != nil {
		t.Fatal(err)
	}
	js.Reset()
	plain.WriteJSON(&js)
	if strings.Contains(js.String(), "kld_mean") || strings.Contains(js.String(), "kv_spec") {
		t.Errorf("JSON without a base or KV info has their fields: %s", js.String())
	}
	tb.Reset()
	plain.WriteTable(&tb)
	if strings.Contains(tb.String(), "KLD") {
		t.Errorf("table without a base has KLD rows:\n%s", tb.String())
	}
}

func TestNotEnoughTokensNamesData(t *testing.T) {
	m := &hashModel{vocab: 4}
	_, err := Evaluate(m, testStream(1, 4, 1), Options{DataName: "empty.txt"})
	if err == nil {
		t.Fatal("no error for a 1-token stream")
	}
	for _, want := range []string{"empty.txt", "1 tokens", "needs 512 tokens"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

func TestResultNamesModelAndData(t *testing.T) {
	r, err := Evaluate(&hashModel{vocab: 4}, testStream(64, 4, 1), Options{Ctx: 32, ModelName: "m.gguf", DataName: "d.txt"})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"model": "m.gguf"`, `"data": "d.txt"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("JSON %s lacks %s", b.String(), want)
		}
	}
}

func TestCheckText(t *testing.T) {
	tests := []struct {
		name      string
		data      string
		err, warn string // substrings; "" for none
	}{
		{"plain", "Once upon a time.\n", "", ""},
		{"unicode", "naïve café 日本 😀\n", "", ""},
		{"empty", "", "is empty", ""},
		{"white space", " \n\t\n", "only white space", ""},
		{"one NUL", "Once upon a time\x00 there was a cat who sat on the mat.", "", "1 NUL"},
		{"binary", "\x00\x01\x02\xff\xfe abc", "looks binary", ""},
		{"latin-1", "caf\xe9 au lait, s'il vous pla\xeet, avec du sucre et du lait chaud", "", "2 invalid UTF-8"},
	}
	for _, tc := range tests {
		warn, err := CheckText("f.txt", []byte(tc.data))
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "f.txt")):
			t.Errorf("%s: error %v, want one naming f.txt and saying %q", tc.name, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%s: unexpected error %v", tc.name, err)
		case tc.warn != "" && !strings.Contains(warn, tc.warn):
			t.Errorf("%s: warning %q, want %q", tc.name, warn, tc.warn)
		case tc.warn == "" && warn != "":
			t.Errorf("%s: unexpected warning %q", tc.name, warn)
		}
	}
}
