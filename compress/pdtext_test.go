package compress

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
)

// kldThreshold bounds the mean KL divergence (nats) of 4-bit k-means (per
// group of 256 columns, importance-weighted, 4 calibration chunks of 256
// tokens) from the bf16 pdtext-llama-28m on 4 windows of 256 tokens of
// pdtext-val. Measured 0.0178 ± 0.0005 at 5.00 bits/weight (NLL 3.4243
// against 3.4133). With GPTQ over the learned grid it was 0.0218: the
// 1,024 calibration tokens are too few for a 1,536-wide Hessian.
const kldThreshold = 0.03

// End to end on the shared checkpoint: calibrate, compress to a native
// file, load it with load.Open (the model runs from the codes), and
// compare its predictions with the original's. TERSE_COMPRESS_ALL=1 runs
// every codebook method; TERSE_COMPRESS_OUT=DIR keeps the files.
func TestPdtextCodebooks(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m")
	calibFile := testshared.Path(t, "data/pdtext-calib.txt")
	val, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	base, err := load.Open(dir, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	must := func(m *Codebook, err error) Method {
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	type variant struct {
		name   string
		method Method
	}
	variants := []variant{{"kmeans", must(NewKMeans(kmeans.Config{Bits: 4, GroupSize: 256}))}}
	if os.Getenv("TERSE_COMPRESS_ALL") != "" {
		variants = append(variants,
			variant{"kmeans-gptq", must(NewKMeans(kmeans.Config{Bits: 4, GroupSize: 256, GPTQ: true}))},
			variant{"kmeans-b3-row", must(NewKMeans(kmeans.Config{Bits: 3, GPTQ: true}))},
			variant{"vq", must(NewVQ("vq", vq.Config{Dim: 2, CodeBits: 8, Iters: 10}))},
			variant{"vq-refined", must(NewVQ("vq", vq.Config{Dim: 2, CodeBits: 8, Iters: 10, Refine: 1}))},
			variant{"rvq", must(NewVQ("rvq", vq.Config{Dim: 4, CodeBits: 8, Stages: 2, Iters: 10}))},
			variant{"pq", must(NewVQ("pq", vq.Config{Dim: 2, CodeBits: 6, Segments: 4, Iters: 10}))},
		)
	}
	stream := valStream(base, string(val))
	for _, v := range variants {
		out := filepath.Join(t.TempDir(), v.name+".terse")
		if d := os.Getenv("TERSE_COMPRESS_OUT"); d != "" {
			out = filepath.Join(d, v.name+".terse")
		}
		res, err := Run(context.Background(), base, Options{Out: out, Method: v.method, CalibFile: calibFile,
			CalibCtx: 256, CalibChunks: 4})
		if err != nil {
			t.Fatal(err)
		}
		ck, err := load.Open(out, load.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if ck.Format != load.Native {
			t.Fatalf("format %s", ck.Format)
		}
		ev, err := eval.Evaluate(model.NewRunner(ck.Model, 256), stream, eval.Options{Ctx: 256, Windows: 4,
			Base: model.NewRunner(base.Model, 256), BaseName: "bf16"})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %.4f bits/weight over the block matrices, file %.1f MB, compress %.1fs; KLD %.4f ± %.4f, NLL %.4f (bf16 %.4f)",
			v.name, res.CompressedBitsPerWeight, float64(res.FileBytes)/1e6, res.Seconds, ev.KLDMean, ev.KLDPM, ev.NLL, ev.BaseNLL)
		if v.name == "kmeans" && !(ev.KLDMean < kldThreshold) {
			t.Errorf("KLD %g over the threshold %g", ev.KLDMean, kldThreshold)
		}
		ck.Close()
	}
}

func valStream(ck *load.Checkpoint, text string) []int {
	var s []int
	for _, doc := range strings.Split(text, "<|doc|>") {
		doc = strings.TrimSpace(doc)
		if doc == "" {
			continue
		}
		s = append(s, 0)
		s = append(s, ck.Tokenizer.Encode(doc, false)...)
		if len(s) > 4*256 {
			break
		}
	}
	return s
}
