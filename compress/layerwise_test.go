package compress

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
)

// matrices reads the weight matrices of a written model by name.
func matrices(t *testing.T, path string) map[string][]byte {
	t.Helper()
	ck, err := load.Open(path, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	out := map[string][]byte{}
	for _, m := range ck.Model.Weights.Matrices() {
		out[m.Name] = m.Data
	}
	return out
}

// GPTQ calibrates and compresses one block at a time. In the default mode
// that changes nothing: the file is byte for byte what quantizing with the
// whole-model collection (calib.Run, every Hessian at once) gives, and the
// saved imatrix is the one the whole-model pass of RTN saves. In
// sequential mode block 0 (whose inputs are the same) is unchanged, later
// blocks differ, and the model still runs close to the original.
func TestRunLayerwiseGPTQ(t *testing.T) {
	base, textPath := openStories(t)
	const ctxLen, chunks = 256, 4
	dir := t.TempDir()
	method := GPTQ{Damp: 0.01}
	run := func(name string, opt Options) (*Result, string) {
		t.Helper()
		opt.Out = filepath.Join(dir, name)
		opt.CalibFile, opt.CalibCtx, opt.CalibChunks = textPath, ctxLen, chunks
		opt.SaveIMatrix = opt.Out + ".imatrix"
		res, err := Run(context.Background(), base, opt)
		if err != nil {
			t.Fatal(err)
		}
		return res, opt.Out
	}
	lres, lout := run("layerwise.gguf", Options{Method: method})
	rres, rout := run("rtn.gguf", Options{})
	sres, sout := run("sequential.gguf", Options{Method: method, Sequential: true})
	for _, c := range []struct {
		res  *Result
		mode string
	}{{lres, "layerwise"}, {rres, "whole-model"}, {sres, "sequential"}} {
		if c.res.CalibMode != c.mode || c.res.CalibChunks != chunks {
			t.Errorf("calibration mode %q over %d chunks, want %q over %d", c.res.CalibMode, c.res.CalibChunks, c.mode, chunks)
		}
	}

	// The imatrix saved layer by layer is the whole-model one.
	a, err := os.ReadFile(lout + ".imatrix")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(rout + ".imatrix")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("the imatrix saved by the layer-by-layer calibration differs from the whole-model one")
	}

	// Reference: every Hessian from one whole-model pass, then Quantize.
	m := base.Model
	ts, err := convert.Tensors(base, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	plan := MakePlan(&m.Config, m.Weights, Presets["Q4_K_M"], true, nil)
	col := &calib.Collector{Hessians: func(name string) bool { dt, ok := plan[name]; return ok && !dt.Float() }}
	tokens := base.Tokenizer.Encode(string(bundled.Text()), true)[:chunks*ctxLen]
	if err := calib.Run(m, tokens, ctxLen, col, nil); err != nil {
		t.Fatal(err)
	}
	var emb []float32
	if !m.Config.TiedEmbeddings {
		emb = EmbeddingImportance(m.Weights)
	}
	qts, reports, err := Quantize(context.Background(), ts, QuantizeOptions{Plan: plan, Method: method, Stats: func(name string) *quant.Stats {
		if name == "token_embd.weight" && emb != nil {
			return &quant.Stats{Importance: emb}
		}
		return col.Stats(name)
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := matrices(t, lout)
	hessians := 0
	for _, q := range qts {
		if _, ok := plan[q.Name]; !ok {
			continue
		}
		if !bytes.Equal(got[q.Name], q.Data) {
			t.Errorf("%s: layer-by-layer GPTQ differs from the whole-model GPTQ", q.Name)
		}
	}
	for i, r := range reports {
		lr := lres.Tensors[i]
		if lr.Name != r.Name || lr.Method != r.Method || lr.Hessian != r.Hessian || lr.Type != r.Type {
			t.Errorf("report %d: %s %s %s hessian %v, want %s %s %s %v", i, lr.Name, lr.Type, lr.Method, lr.Hessian, r.Name, r.Type, r.Method, r.Hessian)
		}
		if r.Hessian {
			hessians++
		}
	}
	if len(reports) != len(lres.Tensors) || hessians == 0 {
		t.Errorf("%d reports (%d with Hessians), want %d", len(lres.Tensors), hessians, len(reports))
	}

	seq := matrices(t, sout)
	differ := 0
	for name, data := range got {
		same := bytes.Equal(seq[name], data)
		if strings.HasPrefix(name, "blk.0.") && !same {
			t.Errorf("%s: block 0 sees the same inputs in sequential mode, yet differs", name)
		}
		if !same {
			differ++
		}
	}
	if differ == 0 {
		t.Error("sequential GPTQ wrote the same file as the default mode")
	}
	stream := eval.Stream(base.Tokenizer, string(bundled.Text()), "")
	evalTokens := stream[16*256 : 20*256]
	ck, err := load.Open(sout, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	ev, err := eval.Evaluate(model.NewRunner(ck.Model, 0), evalTokens, eval.Options{Ctx: 256, Base: model.NewRunner(m, 0), BaseName: "stories260K"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sequential GPTQ Q4_K_M: KLD %.5f over %d tensors that differ from the default mode", ev.KLDMean, differ)
	if !(ev.KLDMean > 0 && ev.KLDMean < 0.02) {
		t.Errorf("sequential GPTQ: KLD %.5f, want in (0, 0.02)", ev.KLDMean)
	}
}

func TestRunSequentialRejectsAndStops(t *testing.T) {
	base, textPath := openStories(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "x.gguf")
	_, err := Run(context.Background(), base, Options{Out: out, CalibFile: textPath, Sequential: true})
	if err == nil || !strings.Contains(err.Error(), "sequential") || !strings.Contains(err.Error(), "rtn") {
		t.Errorf("sequential RTN: error %v", err)
	}
	c, cancel := context.WithCancel(context.Background())
	cancel()
	for _, seq := range []bool{false, true} {
		_, err = Run(c, base, Options{Out: out, Method: GPTQ{}, CalibFile: textPath, CalibCtx: 64, Sequential: seq})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled layer-by-layer run: error %v", err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Error("cancelled run wrote its output")
		}
	}
}

// The codebook methods that use Hessians compress layer by layer too, and
// in sequential mode run their coded blocks (codebook decoders) to make
// the next block's inputs.
func TestRunLayerwiseCodebooks(t *testing.T) {
	base, textPath := openStories(t)
	km, err := NewKMeans(kmeans.Config{Bits: 4, GroupSize: 64, GPTQ: true})
	if err != nil {
		t.Fatal(err)
	}
	vqr, err := NewVQ("vq", vq.Config{Dim: 2, CodeBits: 8, Refine: 1})
	if err != nil {
		t.Fatal(err)
	}
	stream := eval.Stream(base.Tokenizer, string(bundled.Text()), "")
	evalTokens := stream[16*256 : 20*256]
	dir := t.TempDir()
	for _, tc := range []struct {
		name   string
		method Method
		seq    bool
		maxKLD float64
	}{
		{"kmeans-gptq", km, false, 0.15},
		{"kmeans-gptq-sequential", km, true, 0.15},
		{"vq-refined-sequential", vqr, true, 0.08},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".terse")
			res, err := Run(context.Background(), base, Options{Out: out, Method: tc.method, CalibFile: textPath,
				CalibCtx: 256, CalibChunks: 4, Sequential: tc.seq})
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{false: "layerwise", true: "sequential"}[tc.seq]; res.CalibMode != want {
				t.Errorf("calibration mode %q, want %q", res.CalibMode, want)
			}
			ck, err := load.Open(out, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			ev, err := eval.Evaluate(model.NewRunner(ck.Model, 0), evalTokens, eval.Options{Ctx: 256, Base: model.NewRunner(base.Model, 0), BaseName: "stories260K"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: KLD %.5f", tc.name, ev.KLDMean)
			if !(ev.KLDMean > 0 && ev.KLDMean < tc.maxKLD) {
				t.Errorf("KLD %.5f, want in (0, %g)", ev.KLDMean, tc.maxKLD)
			}
		})
	}
}
