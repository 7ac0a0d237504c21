package compress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tokenizer"
)

func openStories(t *testing.T) (*load.Checkpoint, string) {
	t.Helper()
	mp, tp, textPath, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(mp, load.Options{Tokenizer: tp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck, textPath
}

// checkSnake fails on any JSON object key in v that is not snake_case.
func checkSnake(t *testing.T, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) {
					t.Errorf("JSON key %q at %s is not snake_case", k, path)
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", doc)
}

// Run end to end on the bundled stories260K, to both output kinds: the
// file loads, runs close to the original on held-out text, and the Result
// says what was written in the one snake_case schema.
func TestRunStories260K(t *testing.T) {
	base, textPath := openStories(t)
	km, err := NewKMeans(kmeans.Config{Bits: 4, GroupSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	vqr, err := NewVQ("vq", vq.Config{Dim: 2, CodeBits: 8, Refine: 1})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		opt    Options
		format Output
		maxKLD float64
	}{
		{"q8_0.gguf", Options{Preset: "q8_0"}, GGUF, 0.001},
		{"q4_k_m-gptq.gguf", Options{Method: GPTQ{Damp: 0.01}, CalibCtx: 256, CalibChunks: 16}, GGUF, 0.02},
		{"kmeans.terse", Options{Method: km, CalibCtx: 256, CalibChunks: 16}, Native, 0.15},      // measured 0.096
		{"vq-refined.terse", Options{Method: vqr, CalibCtx: 256, CalibChunks: 16}, Native, 0.08}, // measured 0.048
	}
	stream := eval.Stream(base.Tokenizer, string(bundled.Text()), "")
	evalTokens := stream[16*256 : 24*256] // after the calibration chunks
	dir := t.TempDir()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt := tc.opt
			opt.Out = filepath.Join(dir, tc.name)
			if opt.Method != nil {
				opt.CalibFile = textPath
				opt.SaveIMatrix = opt.Out + ".imatrix.dat"
			}
			res, err := Run(context.Background(), base, opt)
			if err != nil {
				t.Fatal(err)
			}
			checkSnake(t, res)
			st, err := os.Stat(opt.Out)
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tc.format || res.FileBytes != st.Size() || res.Params != base.Model.NumParams() ||
				res.Out != opt.Out || len(res.Tensors) == 0 || res.CompressedBitsPerWeight <= 0 {
				t.Errorf("result %+v", res)
			}
			if opt.CalibFile != "" {
				if res.CalibChunks != 16 || res.CalibCtx != 256 || res.CalibTokens != 16*256 {
					t.Errorf("calibration %d chunks of %d, %d tokens", res.CalibChunks, res.CalibCtx, res.CalibTokens)
				}
				if _, err := os.Stat(opt.SaveIMatrix); err != nil {
					t.Error(err)
				}
			}
			ck, err := load.Open(opt.Out, load.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if want := map[Output]load.Format{GGUF: load.GGUF, Native: load.Native}[tc.format]; ck.Format != want {
				t.Fatalf("wrote %s, want %s", ck.Format, want)
			}
			if got, want := ck.Tokenizer.Encode("Once upon a time", true), base.Tokenizer.Encode("Once upon a time", true); !slices.Equal(got, want) {
				t.Errorf("tokenizer read back encodes %v, want %v", got, want)
			}
			ev, err := eval.Evaluate(model.NewRunner(ck.Model, 0), evalTokens, eval.Options{Ctx: 256,
				Base: model.NewRunner(base.Model, 0), BaseName: "stories260K"})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %.3f bits/weight (file), %.3f compressed; KLD %.5f", tc.name, res.BitsPerWeight, res.CompressedBitsPerWeight, ev.KLDMean)
			if !(ev.KLDMean > 0 && ev.KLDMean < tc.maxKLD) {
				t.Errorf("KLD %.5f, want in (0, %g)", ev.KLDMean, tc.maxKLD)
			}
		})
	}
}

// Bad input gives an error that names the problem (and the file) before
// any work is done, never a panic.
func TestRunRejects(t *testing.T) {
	base, textPath := openStories(t)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.txt", nil)
	binary := write("binary.txt", []byte("Once upon\x00 a time"))
	short := write("short.txt", []byte("Once upon a time."))
	out := filepath.Join(dir, "out.gguf")
	otherIMatrix := testshared.Path(t, "models/pdtext-llama-28m-gguf/imatrix.dat")
	tests := []struct {
		name string
		opt  Options
		want []string
	}{
		{"no output", Options{}, []string{"no output"}},
		{"output is a folder", Options{Out: dir}, []string{dir, "is a folder"}},
		{"output is the input", Options{Out: base.Path}, []string{base.Path, "is the input"}},
		{"output folder missing", Options{Out: filepath.Join(dir, "none", "x.gguf")}, []string{"does not exist"}},
		{"unknown preset", Options{Out: out, Preset: "Q9_K"}, []string{`"Q9_K"`, "Q4_K_M"}},
		{"GGUF named .terse", Options{Out: filepath.Join(dir, "q.terse")}, []string{"q.terse", "name it .gguf"}},
		{"gptq without text", Options{Out: out, Method: GPTQ{}}, []string{"gptq", "calibration text"}},
		{"empty text", Options{Out: out, CalibFile: empty}, []string{empty, "0 tokens", "one chunk of 512"}},
		{"short text", Options{Out: out, CalibFile: short, CalibCtx: 64}, []string{short, "tokens, need at least one chunk of 64"}},
		{"binary text", Options{Out: out, CalibFile: binary}, []string{binary, "NUL byte"}},
		{"missing text", Options{Out: out, CalibFile: filepath.Join(dir, "nope.txt")}, []string{"nope.txt"}},
		{"context too long", Options{Out: out, CalibFile: textPath, CalibCtx: 1024}, []string{"1024", "trained context of 512"}},
		{"negative chunks", Options{Out: out, CalibFile: textPath, CalibChunks: -1}, []string{"-1"}},
		{"imatrix without text", Options{Out: out, SaveIMatrix: filepath.Join(dir, "i.dat")}, []string{"needs calibration text"}},
		{"imatrix on the model", Options{Out: out, CalibFile: textPath, SaveIMatrix: out}, []string{"both be written"}},
		{"missing imatrix", Options{Out: out, IMatrixFile: filepath.Join(dir, "nope.dat")}, []string{"nope.dat"}},
		{"imatrix of another model", Options{Out: out, IMatrixFile: otherIMatrix}, []string{otherIMatrix, "columns", "another model"}},
		{"native override to a ggml type", Options{Out: filepath.Join(dir, "x.terse"), Method: mustKMeans(t),
			Overrides: []Override{mustOverride(t, "ffn_down=Q4_0")}}, []string{"ffn_down", "Q4_0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Run(context.Background(), base, tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
}

// The llama2.c tokenizer.bin a native file embeds for a llama2.c model is
// byte for byte the file the model came with.
func TestLlama2cTokenizerBytes(t *testing.T) {
	_, tp, _, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(tp)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.ParseLlama2c(tp, want)
	if err != nil {
		t.Fatal(err)
	}
	if got := llama2cBytes(tok); !bytes.Equal(got, want) {
		t.Errorf("%d bytes written back, the file has %d", len(got), len(want))
	}
}

func TestCheckOutput(t *testing.T) {
	hf := t.TempDir()
	weights := filepath.Join(hf, "model.safetensors")
	if err := os.WriteFile(weights, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ out, want string }{
		{filepath.Join(hf, "q4.gguf"), ""},
		{weights, "would overwrite a file of the input model"},
		{hf, "is a folder"},
		{filepath.Join(hf, "sub", "q4.gguf"), "does not exist"},
		{"", "no output"},
	}
	for _, tc := range tests {
		err := CheckOutput(tc.out, hf)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("CheckOutput(%q): %v, want %q", tc.out, err, tc.want)
		}
	}
}

func mustKMeans(t *testing.T) Method {
	m, err := NewKMeans(kmeans.Config{Bits: 4})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustOverride(t *testing.T, s string) Override {
	o, err := ParseOverride(s)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// A quantized model is compressed again only when asked, with a warning;
// the imatrix wins over calibration with a warning; a cancelled context
// stops the run without writing.
func TestRunRequantizeMergeCancel(t *testing.T) {
	base, textPath := openStories(t)
	dir := t.TempDir()
	q8 := filepath.Join(dir, "q8.gguf")
	if _, err := Run(context.Background(), base, Options{Out: q8, Preset: "Q8_0"}); err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(q8, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	out := filepath.Join(dir, "q4.gguf")
	_, err = Run(context.Background(), ck, Options{Out: out})
	if err == nil || !strings.Contains(err.Error(), "already quantized") || !strings.Contains(err.Error(), "Q8_0") {
		t.Fatalf("requantizing: error %v", err)
	}
	var warned []string
	res, err := Run(context.Background(), ck, Options{Out: out, AllowRequantize: true, Warn: func(m string) { warned = append(warned, m) }})
	if err != nil {
		t.Fatal(err)
	}
	if len(warned) != 1 || !strings.Contains(warned[0], "requantizing") || len(res.Warnings) != 1 {
		t.Errorf("warnings %q, result %q", warned, res.Warnings)
	}

	// A coded (native) model is quantized again from its decoded rows.
	km := filepath.Join(dir, "km.terse")
	if _, err := Run(context.Background(), base, Options{Out: km, Method: mustKMeans(t)}); err != nil {
		t.Fatal(err)
	}
	kck, err := load.Open(km, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer kck.Close()
	if _, err := Run(context.Background(), kck, Options{Out: out, Preset: "Q8_0"}); err == nil || !strings.Contains(err.Error(), "Codebook") {
		t.Errorf("requantizing codebooks: error %v", err)
	}
	if _, err := Run(context.Background(), kck, Options{Out: out, Preset: "Q8_0", AllowRequantize: true}); err != nil {
		t.Fatal(err)
	}
	back, err := load.Open(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	back.Close()

	imat := filepath.Join(dir, "imatrix.dat")
	if _, err := Run(context.Background(), base, Options{Out: filepath.Join(dir, "a.gguf"), CalibFile: textPath, CalibChunks: 2, SaveIMatrix: imat}); err != nil {
		t.Fatal(err)
	}
	res, err = Run(context.Background(), base, Options{Out: filepath.Join(dir, "b.gguf"), CalibFile: textPath, CalibChunks: 2, IMatrixFile: imat})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], "imatrix wins") {
		t.Errorf("warnings %q", res.Warnings)
	}

	c, cancel := context.WithCancel(context.Background())
	cancel()
	stopped := filepath.Join(dir, "stopped.gguf")
	for _, opt := range []Options{{Out: stopped}, {Out: stopped, CalibFile: textPath}} {
		_, err = Run(c, base, opt)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled run: error %v", err)
		}
		if _, err := os.Stat(stopped); err == nil {
			t.Error("cancelled run wrote its output")
		}
	}
}
