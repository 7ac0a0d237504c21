package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/terse-llm/terse/bundled"
)

// snakeKeys fails on every JSON object key in doc that is not snake_case.
func snakeKeys(t *testing.T, what, doc string) map[string]any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(doc), &v); err != nil {
		t.Fatalf("%s: %v: %s", what, err, doc)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if !snake.MatchString(k) {
					t.Errorf("%s: key %q at %s is not snake_case", what, k, path)
				}
				walk(path+"/"+k, x)
			}
		case []any:
			for _, x := range v {
				walk(path+"[]", x)
			}
		}
	}
	walk("", v)
	m, _ := v.(map[string]any)
	return m
}

// compress --json writes one snake_case schema for both output kinds, and
// inspect --json reads each file back in snake_case too.
func TestCompressJSON(t *testing.T) {
	dir := t.TempDir()
	_, _, text, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		args   []string
		format string
	}{
		{"q8_0.gguf", []string{"--type", "Q8_0"}, "gguf"},
		{"q4_k_m.gguf", []string{"--calib", text, "--calib-chunks", "4"}, "gguf"},
		{"q4_k_m-gptq-sequential.gguf", []string{"--method", "gptq", "--sequential", "--calib", text, "--calib-chunks", "2", "--calib-ctx", "256"}, "gguf"},
		{"kmeans.terse", []string{"--method", "kmeans", "--group", "64", "--calib", text, "--calib-chunks", "2", "--calib-ctx", "256"}, "native"},
	}
	for _, tc := range tests {
		out := filepath.Join(dir, tc.name)
		stdout, errs, code := runCmd(t, append([]string{"compress", "--out", out, "--json", "--quiet"}, tc.args...)...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, errs)
		}
		r := snakeKeys(t, "compress "+tc.name, stdout)
		for _, k := range []string{"model", "out", "format", "method", "params", "file_bytes", "bits_per_weight", "seconds", "tensors"} {
			if _, ok := r[k]; !ok {
				t.Errorf("%s: no %q in %s", tc.name, k, stdout)
			}
		}
		if r["format"] != tc.format || r["out"] != out {
			t.Errorf("%s: format %v, out %v", tc.name, r["format"], r["out"])
		}
		stdout, errs, code = runCmd(t, "inspect", "--model", out, "--json")
		if code != 0 {
			t.Fatalf("inspect %s: exit %d: %s", tc.name, code, errs)
		}
		in := snakeKeys(t, "inspect "+tc.name, stdout)
		if c, _ := in["config"].(map[string]any); c == nil || c["n_layers"] != 5.0 || c["rope_style"] != "interleaved" {
			t.Errorf("inspect %s: config %v", tc.name, in["config"])
		}
	}
}

// Bad input to compress: a clear message naming the flag or file, a
// non-zero exit, no panic, nothing written.
func TestCompressRejects(t *testing.T) {
	dir := t.TempDir()
	mp, _, text, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.txt")
	binary := filepath.Join(dir, "binary.txt")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(binary, []byte{'a', 0, 1, 2, 'b'}, 0o644); err != nil {
		t.Fatal(err)
	}
	q8 := filepath.Join(dir, "q8.gguf")
	if _, errs, code := runCmd(t, "compress", "--type", "Q8_0", "--out", q8, "--quiet"); code != 0 {
		t.Fatal(errs)
	}
	out := filepath.Join(dir, "out.gguf")
	tests := []struct {
		name string
		args []string
		code int
		msg  []string
	}{
		{"calib-ctx 0", []string{"--calib", text, "--calib-ctx", "0"}, 2, []string{"--calib-ctx 0"}},
		{"calib-ctx past the trained context", []string{"--calib", text, "--calib-ctx", "4096"}, 1, []string{"4096", "trained context of 512"}},
		{"calib-chunks -1", []string{"--calib", text, "--calib-chunks", "-1"}, 2, []string{"--calib-chunks -1"}},
		{"threads -3", []string{"--threads", "-3"}, 2, []string{"--threads -3"}},
		{"damp -0.1", []string{"--method", "gptq", "--calib", text, "--damp", "-0.1"}, 2, []string{"--damp -0.1"}},
		{"damp 1", []string{"--method", "gptq", "--calib", text, "--damp", "1"}, 2, []string{"--damp 1"}},
		{"bits 0", []string{"--method", "kmeans", "--bits", "0"}, 2, []string{"--bits 0"}},
		{"bits 9 kmeans", []string{"--method", "kmeans", "--bits", "9"}, 2, []string{"--bits 9", "1 to 8"}},
		{"bits 17 vq", []string{"--method", "vq", "--bits", "17"}, 2, []string{"--bits 17"}},
		{"group -1", []string{"--method", "kmeans", "--group", "-1"}, 2, []string{"--group -1"}},
		{"vq-dim 0", []string{"--method", "vq", "--vq-dim", "0"}, 2, []string{"--vq-dim 0"}},
		{"vq-dim 9", []string{"--method", "rvq", "--vq-dim", "9"}, 2, []string{"--vq-dim 9"}},
		{"segments 1", []string{"--method", "pq", "--segments", "1"}, 2, []string{"--segments 1"}},
		{"refine -1", []string{"--method", "vq", "--refine", "-1"}, 2, []string{"--refine -1"}},
		{"unknown method", []string{"--method", "magic"}, 2, []string{`"magic"`}},
		{"unknown type", []string{"--type", "Q9_K"}, 2, []string{`"Q9_K"`}},
		{"bad override", []string{"--override", "nope"}, 2, []string{"--override"}},
		{"gptq without calib", []string{"--method", "gptq"}, 2, []string{"--calib"}},
		{"sequential rtn", []string{"--calib", text, "--sequential"}, 2, []string{"--sequential", "rtn"}},
		{"save-imatrix without calib", []string{"--save-imatrix", filepath.Join(dir, "i.dat")}, 2, []string{"--save-imatrix"}},
		{"calib-cache without calib", []string{"--method", "gptq", "--calib-cache", filepath.Join(dir, "cc")}, 2, []string{"--calib-cache", "--calib"}},
		{"calib-cache sequential", []string{"--method", "gptq", "--calib", text, "--sequential", "--calib-cache", filepath.Join(dir, "cc")}, 2, []string{"--calib-cache", "--sequential"}},
		{"calib-cache a file", []string{"--method", "gptq", "--calib", text, "--calib-cache", text}, 1, []string{text, "is a file"}},
		{"empty calib", []string{"--calib", empty}, 1, []string{empty, "0 tokens, need at least one chunk of 512"}},
		{"binary calib", []string{"--calib", binary}, 1, []string{binary, "NUL byte"}},
		{"missing calib", []string{"--calib", filepath.Join(dir, "none.txt")}, 1, []string{"none.txt"}},
		{"requantize", []string{"--model", q8}, 1, []string{q8, "already quantized", "allow"}},
	}
	for _, tc := range tests {
		args := append([]string{"compress", "--out", out, "--quiet"}, tc.args...)
		_, errs, code := runCmd(t, args...)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d: %s", tc.name, code, tc.code, errs)
		}
		for _, m := range tc.msg {
			if !strings.Contains(errs, m) {
				t.Errorf("%s: stderr %q does not say %q", tc.name, errs, m)
			}
		}
		if strings.Contains(errs, "panic") || strings.Contains(errs, "compress: compress:") {
			t.Errorf("%s: stderr %q", tc.name, errs)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%s: wrote %s", tc.name, out)
		}
	}
	// Output paths, checked before any work.
	for _, tc := range []struct{ name, out, msg string }{
		{"out is a folder", dir, "is a folder"},
		{"out is the input", mp, "is the input"},
	} {
		_, errs, code := runCmd(t, "compress", "--out", tc.out, "--quiet")
		if code != 1 || !strings.Contains(errs, tc.out) || !strings.Contains(errs, tc.msg) || strings.Contains(errs, "rename") {
			t.Errorf("%s: exit %d, stderr %q", tc.name, code, errs)
		}
	}
	// Requantizing when asked: a warning, and the file.
	_, errs, code := runCmd(t, "compress", "--model", q8, "--out", out, "--allow-requantize", "--quiet")
	if code != 0 || !strings.Contains(errs, "warning") || !strings.Contains(errs, "requantizing") {
		t.Errorf("--allow-requantize: exit %d, stderr %q", code, errs)
	}
}
