package compress

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant"
)

// End to end on the bundled stories260K: calibrate, compress, write GGUF,
// load it back and measure KL-divergence against the original on held-out
// text. Thresholds sit a margin above what was measured (in comments); the
// ANCHORS numbers for llama.cpp on this model are Q8_0 0.00069 and its
// "Q4_K_M" fallback mix 0.0131 (with imatrix).
func TestCompressStories260KEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("calibrates and evaluates stories260K")
	}
	mp, tp, _, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	base, err := load.Open(mp, load.Options{Tokenizer: tp})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	stream := eval.Stream(base.Tokenizer, string(bundled.Text()), "")
	// Calibrate on the first 16 windows, evaluate on the next 16.
	const ctx = 256
	calibTokens, evalTokens := stream[:16*ctx], stream[16*ctx:32*ctx]
	col := &calib.Collector{Hessians: func(string) bool { return true }}
	if err := calib.Run(base.Model, calibTokens, ctx, col, nil); err != nil {
		t.Fatal(err)
	}
	stats := func(name string) *quant.Stats { return col.Stats(name) }
	tests := []struct {
		preset string
		method Method
		maxKLD float64
	}{
		{"Q8_0", RTN{}, 0.001},              // measured 0.00025
		{"Q4_K_M", RTN{}, 0.02},             // measured 0.0125
		{"Q4_K_M", GPTQ{Damp: 0.01}, 0.015}, // measured 0.0094
		{"Q4_0", GPTQ{Damp: 0.01}, 0.08},    // measured 0.043
	}
	for _, tc := range tests {
		t.Run(tc.preset+"-"+tc.method.Name(), func(t *testing.T) {
			p := Presets[tc.preset]
			plan := MakePlan(&base.Model.Config, base.Model.Weights, p, true, nil)
			ts, err := convert.Tensors(base, convert.Options{Untie: true})
			if err != nil {
				t.Fatal(err)
			}
			qts, _, err := Quantize(context.Background(), ts, QuantizeOptions{Plan: plan, Method: tc.method, Stats: stats})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "m.gguf")
			ft := convert.FileType(p.FileType)
			if err := convert.Write(out, base, qts, convert.Options{FileType: &ft, Untie: true}); err != nil {
				t.Fatal(err)
			}
			ck, err := load.Open(out, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			res, err := eval.Evaluate(model.NewRunner(ck.Model, 0), evalTokens, eval.Options{Ctx: ctx,
				Base: model.NewRunner(base.Model, 0), BaseName: "stories260K"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s %s: KLD %.5f, top-1 %.2f%%, PPL %.4f (base %.4f)", tc.preset, tc.method.Name(),
				res.KLDMean, res.Top1, res.PPL, res.BasePPL)
			if res.KLDMean > tc.maxKLD || res.KLDMean <= 0 {
				t.Errorf("KLD %.5f, want in (0, %g]", res.KLDMean, tc.maxKLD)
			}
		})
	}
}
