package gptqggml

import (
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/tensor"
)

var allTypes = []tensor.DType{
	tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1,
	tensor.Q2_K, tensor.Q3_K, tensor.Q4_K, tensor.Q5_K, tensor.Q6_K,
	tensor.IQ4_NL, tensor.IQ4_XS, tensor.TQ1_0, tensor.TQ2_0,
}

// layer is a synthetic linear layer: weights W (rows×cols) and correlated
// inputs X = Z·A + noise with column scales varying by a factor of e²,
// summarised by H = XᵀX over samples rows.
type layer struct {
	rows, cols, samples int
	w                   []float32
	h                   []float64
}

func newLayer(seed uint64, rows, cols, samples int) *layer {
	r := rand.New(rand.NewPCG(seed, 13))
	l := &layer{rows: rows, cols: cols, samples: samples}
	l.w = make([]float32, rows*cols)
	for i := range l.w {
		l.w[i] = float32(0.02 * r.NormFloat64())
	}
	k := cols / 4
	a := make([]float64, k*cols)
	for i := range a {
		a[i] = r.NormFloat64()
	}
	scale := make([]float64, cols)
	for j := range scale {
		scale[j] = math.Exp(2 * r.Float64())
	}
	x := make([]float64, cols)
	z := make([]float64, k)
	l.h = make([]float64, cols*cols)
	for s := 0; s < samples; s++ {
		for i := range z {
			z[i] = r.NormFloat64()
		}
		clear(x)
		for i, zi := range z {
			ai := a[i*cols : (i+1)*cols]
			for j := range x {
				x[j] += zi * ai[j]
			}
		}
		for j := range x {
			x[j] = (x[j]/math.Sqrt(float64(k)) + 0.1*r.NormFloat64()) * scale[j]
		}
		for i, xi := range x {
			hi := l.h[i*cols : (i+1)*cols]
			for j := i; j < cols; j++ {
				hi[j] += xi * x[j]
			}
		}
	}
	for i := 0; i < cols; i++ {
		for j := 0; j < i; j++ {
			l.h[i*cols+j] = l.h[j*cols+i]
		}
	}
	return l
}

// outErr is ‖(W−Ŵ)Xᵀ‖² = Σ_rows δ H δᵀ.
func outErr(w, q []float32, rows, cols int, h []float64) float64 {
	var e float64
	d := make([]float64, cols)
	for r := 0; r < rows; r++ {
		for j := range d {
			d[j] = float64(w[r*cols+j]) - float64(q[r*cols+j])
		}
		for i, di := range d {
			if di == 0 {
				continue
			}
			hi := h[i*cols : (i+1)*cols]
			var s float64
			for j, dj := range d {
				s += hi[j] * dj
			}
			e += di * s
		}
	}
	return e
}

func diagImportance(h []float64, cols, samples int) []float32 {
	return Importance(&quant.Stats{Hessian: h, Samples: samples}, cols)
}

// rtnValues is plain ggml.Quantize with importance, dequantized.
func rtnValues(t testing.TB, dt tensor.DType, w []float32, cols int, imp []float32) []float32 {
	b, err := ggml.QuantizeRows(dt, w, cols, imp)
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(w))
	if err := ggml.Dequantize(dt, b, y); err != nil {
		t.Fatal(err)
	}
	return y
}

func dequant(t testing.TB, dt tensor.DType, b []byte, n int) []float32 {
	t.Helper()
	y := make([]float32, n)
	if err := ggml.Dequantize(dt, b, y); err != nil {
		t.Fatal(err)
	}
	return y
}

// TestBytesMatchValues: the assembled bytes dequantize bit for bit to
// GPTQ's values, for every type and column order.
func TestBytesMatchValues(t *testing.T) {
	l := newLayer(1, 12, 512, 600)
	stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
	for _, cfg := range []gptq.Config{{}, {ActOrder: true}, {ActOrder: true, StaticGroups: true, BlockSize: 64}} {
		f, err := NewFactor(stats, l.cols, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range allTypes {
			data, res, err := QuantizeFactor(dt, f, l.w, l.rows, cfg)
			if err != nil {
				t.Fatalf("%s: %v", dt, err)
			}
			if want, _ := dt.RowBytes(l.rows * l.cols); len(data) != want {
				t.Fatalf("%s: %d bytes, want %d", dt, len(data), want)
			}
			y := dequant(t, dt, data, l.rows*l.cols)
			for i, v := range res.Values {
				if math.Float32bits(v) != math.Float32bits(y[i]) {
					t.Fatalf("%s %+v: element %d: GPTQ value %g, bytes dequantize to %g", dt, cfg, i, v, y[i])
				}
			}
		}
	}
}

// TestMatchesQuantizeWithoutCompensation: with a diagonal Hessian GPTQ
// spreads no error, so every block keeps the scales ggml.Quantize chose for
// the original values (the ternary types: ternaryScale's), and each element is rounded to its nearest grid
// value: never farther from the weight than llama.cpp's own rounding
// (which divides by the scale and may differ at near-ties).
func TestMatchesQuantizeWithoutCompensation(t *testing.T) {
	const rows, cols = 6, 512
	r := rand.New(rand.NewPCG(2, 3))
	w := make([]float32, rows*cols)
	for i := range w {
		w[i] = float32(r.NormFloat64())
	}
	h := make([]float64, cols*cols)
	for j := 0; j < cols; j++ {
		h[j*cols+j] = math.Exp(r.NormFloat64())
	}
	stats := &quant.Stats{Hessian: h, Samples: 1}
	imp := Importance(stats, cols)
	for _, dt := range allTypes {
		got, err := QuantizeMatrix(dt, w, rows, cols, stats, gptq.Config{})
		if err != nil {
			t.Fatalf("%s: %v", dt, err)
		}
		bs, bb := dt.BlockSize(), dt.BlockBytes()
		same := 0
		for b := 0; b < rows*cols/bs; b++ {
			want := make([]byte, bb)
			c := b % (cols / bs) * bs
			x := w[b*bs : (b+1)*bs]
			if err := ggml.Quantize(dt, x, want, imp[c:c+bs]); err != nil {
				t.Fatal(err)
			}
			if isTernary(dt) {
				setTernaryScale(dt, want, ternaryScale(x, imp[c:c+bs]))
			}
			blk := got[b*bb : (b+1)*bb]
			g1, err := ggml.NewBlockGrid(dt, blk)
			if err != nil {
				t.Fatal(err)
			}
			g2, _ := ggml.NewBlockGrid(dt, want)
			if *g1 != *g2 {
				t.Fatalf("%s: block %d: scales differ from ggml.Quantize's", dt, b)
			}
			if string(blk) == string(want) {
				same++
			}
			y1, y2 := dequant(t, dt, blk, bs), dequant(t, dt, want, bs)
			for i := range x {
				if math.Abs(float64(x[i]-y1[i])) > math.Abs(float64(x[i]-y2[i])) {
					t.Fatalf("%s: block %d element %d: %g rounded to %g, ggml to %g", dt, b, i, x[i], y1[i], y2[i])
				}
			}
		}
		t.Logf("%s: %d of %d blocks byte-identical with ggml.Quantize", dt, same, rows*cols/bs)
	}
}

// maxRatio bounds GPTQ's output error over importance-weighted ggml
// quantization on the synthetic layer, loosely: the measured ratios are
// 0.17–0.32 without act-order (the layer's inputs are strongly correlated).
var maxRatio = map[tensor.DType]float64{
	tensor.Q2_K: 0.75, tensor.Q3_K: 0.75, tensor.Q4_K: 0.75, tensor.Q6_K: 0.75,
	tensor.Q4_0: 0.75, tensor.IQ4_XS: 0.75, tensor.TQ1_0: 0.75, tensor.TQ2_0: 0.75,
}

// TestBeatsImatrixQuantize compares the output error ‖(W−Ŵ)Xᵀ‖² of GPTQ
// onto each block type with that of plain ggml.Quantize weighted by
// diag(H), on a 256×512 layer with correlated inputs.
func TestBeatsImatrixQuantize(t *testing.T) {
	l := newLayer(7, 256, 512, 2048)
	stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
	imp := diagImportance(l.h, l.cols, l.samples)
	cfgs := []gptq.Config{{}, {ActOrder: true}}
	if testing.Short() {
		cfgs = cfgs[:1]
	}
	for _, cfg := range cfgs {
		f, err := NewFactor(stats, l.cols, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for _, dt := range allTypes {
			_, bound := maxRatio[dt]
			if testing.Short() && !bound {
				continue
			}
			base := outErr(l.w, rtnValues(t, dt, l.w, l.cols, imp), l.rows, l.cols, l.h)
			start := time.Now()
			_, res, err := QuantizeFactor(dt, f, l.w, l.rows, cfg)
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			got := outErr(l.w, res.Values, l.rows, l.cols, l.h)
			ratio := got / base
			t.Logf("%-7s act-order %-5v: output error GPTQ/imatrix-quantize = %.3f (%.4g / %.4g) in %v", dt, cfg.ActOrder, ratio, got, base, el.Round(time.Millisecond))
			if m, ok := maxRatio[dt]; ok && !cfg.ActOrder && ratio > m {
				t.Errorf("%s: ratio %.3f > %.2f", dt, ratio, m)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	h := make([]float64, 64*64)
	for j := 0; j < 64; j++ {
		h[j*64+j] = 1
	}
	stats := &quant.Stats{Hessian: h, Samples: 1}
	if _, err := QuantizeMatrix(tensor.Q4_K, make([]float32, 64), 1, 64, stats, gptq.Config{}); err == nil {
		t.Error("Q4_K accepted 64 columns")
	}
	if _, err := QuantizeMatrix(tensor.F16, make([]float32, 64), 1, 64, stats, gptq.Config{}); err == nil {
		t.Error("F16 accepted")
	}
	if _, err := QuantizeMatrix(tensor.Q4_0, make([]float32, 64), 1, 64, nil, gptq.Config{}); err == nil {
		t.Error("no Hessian accepted")
	}
	w := make([]float32, 64)
	w[3] = float32(math.Inf(1))
	if _, err := QuantizeMatrix(tensor.Q4_0, w, 1, 64, stats, gptq.Config{}); err == nil {
		t.Error("infinite weight accepted")
	}
	// All-zero rows and all-zero importance are fine.
	b, err := QuantizeMatrix(tensor.Q4_K, make([]float32, 2*256), 2, 256, &quant.Stats{Hessian: make([]float64, 256*256), Samples: 1}, gptq.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range dequant(t, tensor.Q4_K, b, 512) {
		if v != 0 {
			t.Fatalf("zero matrix dequantizes to %g", v)
		}
	}
}

// realModel runs pdtext-llama-28m over a few chunks of the shared text file
// data, collecting Hessians for the tensors keep selects.
func realModel(t *testing.T, data string, chunks int, keep func(string) bool) (*load.Checkpoint, *calib.Collector) {
	t.Helper()
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	text, err := os.ReadFile(testshared.Path(t, data))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(dir, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	const ctx = 256
	toks := ck.Tokenizer.Encode(string(text), true)
	if n := chunks * ctx; n < len(toks) {
		toks = toks[:n]
	}
	col := &calib.Collector{Hessians: keep}
	start := time.Now()
	if err := calib.Run(ck.Model, toks, ctx, col, nil); err != nil {
		t.Fatal(err)
	}
	if err := col.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("calibration: %d tokens in %v", len(toks), time.Since(start).Round(time.Millisecond))
	return ck, col
}

func matrix(t *testing.T, ck *load.Checkpoint, name string) *tensor.Tensor {
	t.Helper()
	for _, m := range ck.Model.Weights.Matrices() {
		if m.Name == name {
			return m
		}
	}
	t.Fatalf("no matrix %s", name)
	return nil
}

// TestRealLayer compares GPTQ with importance-weighted ggml.Quantize on
// layer 3's attn_q and ffn_down of pdtext-llama-28m, with the Hessian of
// real activations on 4096 tokens of calibration text, measuring
// ‖(W−Ŵ)Xᵀ‖² on those inputs and on 2048 held-out tokens.
//
// 4096 tokens are 8× attn_q's input width but under 3× ffn_down's, whose
// Hessian is then too noisy: GPTQ overfits it (in-sample ratio ≈ 0.6,
// held-out ≈ 1.35; with 16384 tokens ≈ 0.75 and ≈ 0.99). So the held-out
// bound is asserted for attn_q only.
func TestRealLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates a model")
	}
	names := []string{"blk.3.attn_q.weight", "blk.3.ffn_down.weight"}
	keep := func(n string) bool { return n == names[0] || n == names[1] }
	ck, col := realModel(t, "data/pdtext-calib.txt", 16, keep)
	_, val := realModel(t, "data/pdtext-val.txt", 8, keep)
	for k, name := range names {
		m := matrix(t, ck, name)
		w, err := ggml.DequantizeTensor(m)
		if err != nil {
			t.Fatal(err)
		}
		rows, cols := m.Rows(), m.Cols()
		stats := col.Stats(name)
		hv, _ := val.Hessian(name)
		for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q3_K, tensor.Q2_K, tensor.Q6_K} {
			ref := rtnValues(t, dt, w, cols, stats.Importance)
			base, baseVal := outErr(w, ref, rows, cols, stats.Hessian), outErr(w, ref, rows, cols, hv)
			start := time.Now()
			data, err := QuantizeMatrix(dt, w, rows, cols, stats, gptq.Config{})
			if err != nil {
				t.Fatal(err)
			}
			el := time.Since(start)
			y := dequant(t, dt, data, rows*cols)
			ratio := outErr(w, y, rows, cols, stats.Hessian) / base
			ratioVal := outErr(w, y, rows, cols, hv) / baseVal
			t.Logf("%s %dx%d %-5s: output error GPTQ/imatrix-quantize = %.3f calibration, %.3f held-out (%v)",
				name, rows, cols, dt, ratio, ratioVal, el.Round(time.Millisecond))
			if ratio > 0.8 || (k == 0 && ratioVal > 0.85) {
				t.Errorf("%s %s: GPTQ output error ratio %.3f (held-out %.3f)", name, dt, ratio, ratioVal)
			}
		}
	}
}

// TestWholeModelTiming runs GPTQ to Q4_K over every layer matrix of
// pdtext-llama-28m with real Hessians and reports the time. It is slow
// (calibration included), so it runs only with TERSE_GPTQGGML_FULL=1.
func TestWholeModelTiming(t *testing.T) {
	if os.Getenv("TERSE_GPTQGGML_FULL") == "" {
		t.Skip("set TERSE_GPTQGGML_FULL=1 to time GPTQ over the whole model")
	}
	ck, col := realModel(t, "data/pdtext-calib.txt", 8, func(n string) bool { return strings.HasPrefix(n, "blk.") })
	for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q3_K, tensor.IQ2_S, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ2_0} {
		var n int
		var factor, total time.Duration
		var ratioNum, ratioDen float64
		for _, m := range ck.Model.Weights.Matrices() {
			if !strings.HasPrefix(m.Name, "blk.") {
				continue
			}
			w, err := ggml.DequantizeTensor(m)
			if err != nil {
				t.Fatal(err)
			}
			stats := col.Stats(m.Name)
			fs := time.Now()
			f, err := NewFactor(stats, m.Cols(), gptq.Config{})
			if err != nil {
				t.Fatal(err)
			}
			factor += time.Since(fs)
			data, _, err := QuantizeFactor(dt, f, w, m.Rows(), gptq.Config{})
			if err != nil {
				t.Fatal(err)
			}
			total += time.Since(fs)
			n++
			if strings.HasPrefix(m.Name, "blk.5.") {
				ratioNum += outErr(w, dequant(t, dt, data, len(w)), m.Rows(), m.Cols(), stats.Hessian)
				ratioDen += outErr(w, rtnValues(t, dt, w, m.Cols(), stats.Importance), m.Rows(), m.Cols(), stats.Hessian)
			}
		}
		t.Logf("%s: GPTQ over %d matrices in %v (factorisations %v); layer 5 output error ratio %.3f",
			dt, n, total.Round(time.Millisecond), factor.Round(time.Millisecond), ratioNum/ratioDen)
	}
}

// BenchmarkMatrix times GPTQ (factorisation included) on the two ffn
// shapes of pdtext-llama-28m (synthetic weights; the cost does not depend
// on them), and, for comparison, ggml.Quantize of the same matrix with
// importance: the llama.cpp search that Fit runs once per block.
func BenchmarkMatrix(b *testing.B) {
	for _, shape := range [][2]int{{1536, 512}, {512, 1536}} {
		rows, cols := shape[0], shape[1]
		l := newLayer(3, 1, cols, 2*cols)
		w := make([]float32, rows*cols)
		r := rand.New(rand.NewPCG(1, 1))
		for i := range w {
			w[i] = float32(0.02 * r.NormFloat64())
		}
		stats := &quant.Stats{Hessian: l.h, Samples: l.samples}
		imp := Importance(stats, cols)
		name := strconv.Itoa(rows) + "x" + strconv.Itoa(cols)
		b.Run("factor/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, err := NewFactor(stats, cols, gptq.Config{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		for _, dt := range []tensor.DType{tensor.Q4_K, tensor.Q3_K, tensor.IQ2_S, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ2_0} {
			b.Run("gptq/"+dt.String()+"/"+name, func(b *testing.B) {
				for b.Loop() {
					if _, err := QuantizeMatrix(dt, w, rows, cols, stats, gptq.Config{}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("ggml/"+dt.String()+"/"+name, func(b *testing.B) {
				b.SetBytes(int64(4 * len(w)))
				for b.Loop() {
					if _, err := ggml.QuantizeRows(dt, w, cols, imp); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
