package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

// llamaPPL matches llama-perplexity's closing line.
var llamaPPL = regexp.MustCompile(`Final estimate: PPL = ([0-9.]+)`)

// runLlamaPerplexity runs llama.cpp's own perplexity tool on a GGUF file
// with a float32 KV cache and returns its final PPL. It skips the test when
// the binary cannot run on this CPU (the shared binaries are built for one
// machine kind; elsewhere they die of SIGILL).
func runLlamaPerplexity(t *testing.T, bin, gguf, text string, ctx, chunks int) float64 {
	t.Helper()
	cmd := exec.Command(bin, "-m", gguf, "-f", text, "-c", strconv.Itoa(ctx), "--chunks", strconv.Itoa(chunks),
		"-t", "2", "-b", strconv.Itoa(ctx), "-ctk", "f32", "-ctv", "f32")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGILL {
			t.Skipf("llama.cpp's %s does not run on this CPU (illegal instruction): it was built for another machine kind", filepath.Base(bin))
		}
		if c := ee.ExitCode(); c == 126 || c == 127 {
			t.Skipf("llama.cpp's %s cannot start here (exit %d: a missing shared library?):\n%s", filepath.Base(bin), c, tail(out, 500))
		}
	}
	var xe *exec.Error
	if errors.As(err, &xe) {
		t.Skipf("llama.cpp's %s cannot start here: %v", filepath.Base(bin), err)
	}
	if err != nil {
		t.Fatalf("llama-perplexity on %s: %v\n%s", gguf, err, tail(out, 2000))
	}
	m := llamaPPL.FindSubmatch(out)
	if m == nil {
		t.Fatalf("llama-perplexity on %s printed no final estimate:\n%s", gguf, tail(out, 2000))
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// TestLlamaCppLoadsTerseGGUF checks "llama.cpp loads it" by running
// llama.cpp: GGUF files terse writes (llama.cpp's recipe, and GPTQ onto its
// grids) are loaded by llama-perplexity, which scores them as terse does
// under the same protocol (BOS per window, second half scored, float32 KV
// cache).
func TestLlamaCppLoadsTerseGGUF(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses a model and runs llama.cpp on it")
	}
	bin := testshared.Path(t, "peer/llama.cpp/bin/llama-perplexity")
	// pdtext-llama-28m, so that the K-quant presets apply as they are (the
	// tiny stories260K falls back to Q8_0/Q5_0, whose llama.cpp kernels in
	// the shared build need instructions some machines of this kind lack).
	model := testshared.Path(t, "models/pdtext-llama-28m")
	src := testshared.Path(t, "data/pdtext-calib.txt")
	val, err := os.ReadFile(testshared.Path(t, "data/pdtext-val.txt"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	text := filepath.Join(dir, "val.txt")
	// llama.cpp reads the text as one stream: drop the document separators.
	if err := os.WriteFile(text, []byte(strings.ReplaceAll(string(val), "<|doc|>\n", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	const ctx, chunks = 512, 4
	for _, tc := range []struct{ name, typ, method string }{
		{"q4_k_m-rtn", "Q4_K_M", "rtn"},
		{"q3_k_m-gptq", "Q3_K_M", "gptq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".gguf")
			args := []string{"compress", "--model", model, "--type", tc.typ, "--method", tc.method, "--out", out, "--quiet", "--json"}
			if tc.method == "gptq" {
				args = append(args, "--calib", src, "--calib-chunks", "8")
			}
			if _, errs, code := runCmd(t, args...); code != 0 {
				t.Fatalf("compress exit %d: %s", code, errs)
			}
			theirs := runLlamaPerplexity(t, bin, out, text, ctx, chunks)
			res, errs, code := runCmd(t, "eval", "--model", out, "--data", text, "--protocol", "llamacpp",
				"--ctx", strconv.Itoa(ctx), "--windows", strconv.Itoa(chunks), "--quiet", "--json")
			if code != 0 {
				t.Fatalf("eval exit %d: %s", code, errs)
			}
			var r struct {
				PPL float64 `json:"ppl"`
			}
			if err := json.Unmarshal([]byte(res), &r); err != nil {
				t.Fatalf("%v: %s", err, res)
			}
			t.Logf("%s: terse PPL %.4f, llama.cpp PPL %.4f", tc.name, r.PPL, theirs)
			// The same weights under the same protocol agree to about 1e-4
			// (README); 0.5% leaves room for llama.cpp's own kernels and still
			// catches a file it misreads, which scores far off.
			if math.Abs(r.PPL/theirs-1) > 5e-3 {
				t.Errorf("terse PPL %.4f, llama.cpp %.4f on the same file: more than 0.5%% apart", r.PPL, theirs)
			}
		})
	}
}
