package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/terse-llm/terse/bundled"
)

// Every bad command line gets one clear message naming the flag or file,
// the right exit status, and no panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	empty := write("empty.txt", nil)
	short := write("short.txt", []byte("Once upon a time.\n"))
	binary := write("binary.bin", []byte("\x00\x01\x02\x03\xff\xfe\x00\x00 ab"))
	garbageTok := write("tok.json", []byte(`{"not": "a tokenizer"}`))
	tests := []struct {
		name string
		args []string
		code int
		msgs []string // all must appear in stderr
	}{
		{"eval --ctx 0", []string{"eval", "--ctx", "0"}, 2, []string{"--ctx 0", "at least 2"}},
		{"eval --ctx negative", []string{"eval", "--ctx", "-5"}, 2, []string{"--ctx -5"}},
		{"eval --ctx past training", []string{"eval", "--ctx", "1024"}, 2, []string{"--ctx 1024", "512 tokens", "--allow-long-ctx"}},
		{"eval --windows -1", []string{"eval", "--windows", "-1"}, 2, []string{"--windows -1"}},
		{"eval --doc-eos without --doc-sep", []string{"eval", "--doc-eos"}, 2, []string{"--doc-eos", "--doc-sep"}},
		{"eval --kv bad eviction", []string{"eval", "--kv", "h2o:1.5"}, 2, []string{"--kv", "h2o:1.5"}},
		{"eval repeat with --save-logits", []string{"eval", "--protocol", "repeat", "--save-logits", filepath.Join(dir, "r.logits")}, 1, []string{"repeat", "base-logits"}},
		{"eval --threads -3", []string{"eval", "--threads", "-3"}, 2, []string{"--threads -3"}},
		{"eval --save-top-k 0", []string{"eval", "--save-logits", filepath.Join(dir, "x.logits"), "--save-top-k", "0"}, 2, []string{"--save-top-k 0"}},
		{"eval empty data", []string{"eval", "--data", empty}, 2, []string{empty, "empty"}},
		{"eval binary data", []string{"eval", "--data", binary}, 2, []string{binary, "binary"}},
		{"eval short data", []string{"eval", "--data", short, "--quiet"}, 1, []string{short, "tokens", "one window needs 512 tokens"}},
		{"eval missing data", []string{"eval", "--data", filepath.Join(dir, "nope.txt")}, 1, []string{"--data", "nope.txt"}},
		{"eval bad tokenizer", []string{"eval", "--tokenizer", garbageTok}, 1, []string{garbageTok}},
		{"eval bad flag", []string{"eval", "--nope"}, 2, []string{"flag provided but not defined: -nope", "Example:"}},
		{"eval stray argument", []string{"eval", "extra"}, 2, []string{`unexpected argument "extra"`}},
		{"generate --temp -1", []string{"generate", "--temp", "-1"}, 2, []string{"--temp -1"}},
		{"generate --top-p 2", []string{"generate", "--top-p", "2"}, 2, []string{"--top-p 2", "(0, 1]"}},
		{"generate --top-p 0", []string{"generate", "--top-p", "0"}, 2, []string{"--top-p 0"}},
		{"generate --top-k -3", []string{"generate", "--top-k", "-3"}, 2, []string{"--top-k -3"}},
		{"generate -n -1", []string{"generate", "-n", "-1"}, 2, []string{"-n -1"}},
		{"generate --ctx -1", []string{"generate", "--ctx", "-1"}, 2, []string{"--ctx -1"}},
		{"generate --ctx past training", []string{"generate", "--ctx", "2048"}, 2, []string{"--ctx 2048", "512 tokens"}},
		{"generate --threads -3", []string{"generate", "--threads", "-3"}, 2, []string{"--threads -3"}},
		{"generate empty --stop", []string{"generate", "--stop", ""}, 2, []string{"stop string cannot be empty"}},
		{"generate -n 600", []string{"generate", "-n", "600", "--prompt", "Once", "--json"}, 0, []string{"-n 600", "context of 512", "at most"}},
		{"bench -p -1", []string{"bench", "-p", "-1"}, 2, []string{"-p -1"}},
		{"bench -n -1", []string{"bench", "-n", "-1"}, 2, []string{"-n -1"}},
		{"bench nothing", []string{"bench", "-p", "0", "-n", "0"}, 2, []string{"nothing to measure"}},
		{"bench --reps 0", []string{"bench", "--reps", "0"}, 2, []string{"--reps 0"}},
		{"bench --threads -3", []string{"bench", "--threads", "-3"}, 2, []string{"--threads -3"}},
		{"bench --batch 0", []string{"bench", "--random", "28m", "--batch", "1,0"}, 2, []string{`--batch "1,0"`}},
		{"bench --batch x", []string{"bench", "--random", "28m", "--batch", "four"}, 2, []string{`--batch "four"`}},
		{"bench --batch -n 0", []string{"bench", "--random", "28m", "--batch", "2", "-n", "0"}, 2, []string{"--batch", "-n"}},
		{"bench --roofline-mib -1", []string{"bench", "--roofline-mib", "-1"}, 2, []string{"--roofline-mib -1"}},
		{"bench --save without --random", []string{"bench", "--save", filepath.Join(dir, "r.gguf")}, 2, []string{"--save", "--random"}},
		{"bench --random unknown", []string{"bench", "--random", "7b", "--save", filepath.Join(dir, "r.gguf")}, 1, []string{`"7b"`, "1b"}},
		{"bench --random bad type", []string{"bench", "--random", "28m", "--type", "Q9", "--save", filepath.Join(dir, "r.gguf")}, 1, []string{`--type "Q9"`}},
		{"bench --save missing folder", []string{"bench", "--random", "28m", "--save", filepath.Join(dir, "no", "r.gguf")}, 1, []string{"does not exist"}},
		{"tokenize missing file", []string{"tokenize", "--file", filepath.Join(dir, "nope.txt")}, 1, []string{"--file", "nope.txt"}},
		{"unknown command", []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`, "Usage"}},
		{"version stray argument", []string{"version", "now"}, 2, []string{`unexpected argument "now"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := runCmd(t, tc.args...)
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errs)
			}
			for _, m := range tc.msgs {
				if !strings.Contains(errs, m) {
					t.Errorf("stderr does not say %q:\n%s", m, errs)
				}
			}
			// One message, said once, prefixed once.
			if first, _, _ := strings.Cut(errs, "\n"); first != "" && strings.Count(errs, first) > 1 {
				t.Errorf("stderr repeats %q:\n%s", first, errs)
			}
			if cmd := tc.args[0]; strings.Contains(errs, cmd+": "+cmd+":") {
				t.Errorf("prefix %q printed twice:\n%s", cmd, errs)
			}
		})
	}
}

// A NUL byte is a warning, and the text after it is still evaluated.
func TestEvalNULKeepsText(t *testing.T) {
	text := bundled.Text()[:8000]
	dir := t.TempDir()
	clean, withNUL := filepath.Join(dir, "clean.txt"), filepath.Join(dir, "nul.txt")
	if err := os.WriteFile(clean, text, 0o644); err != nil {
		t.Fatal(err)
	}
	b := append([]byte{}, text[:100]...)
	b = append(append(b, 0), text[100:]...)
	if err := os.WriteFile(withNUL, b, 0o644); err != nil {
		t.Fatal(err)
	}
	windows := func(path string) (int, string) {
		out, errs, code := runCmd(t, "eval", "--data", path, "--ctx", "64", "--json", "--quiet")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", path, code, errs)
		}
		var r struct {
			Windows int    `json:"windows"`
			Data    string `json:"data"`
			Model   string `json:"model"`
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Data != path || r.Model == "" {
			t.Errorf("JSON names model %q and data %q, want data %q", r.Model, r.Data, path)
		}
		return r.Windows, errs
	}
	wc, _ := windows(clean)
	wn, errs := windows(withNUL)
	if wn < wc || wc < 10 {
		t.Errorf("%d windows with a NUL, %d without: the text after the NUL was dropped", wn, wc)
	}
	if !strings.Contains(errs, "warning: --data "+withNUL) || !strings.Contains(errs, "1 NUL") {
		t.Errorf("no warning naming the file and the NUL: %q", errs)
	}
}

func TestHelpAndVersion(t *testing.T) {
	for name := range commands {
		t.Run(name, func(t *testing.T) {
			_, errs, code := runCmd(t, name, "-h")
			if code != 0 {
				t.Errorf("exit %d", code)
			}
			first, _, _ := strings.Cut(errs, "\n")
			if want := "terse " + name + ": " + summary(name); first != want {
				t.Errorf("first line %q, want %q", first, want)
			}
			if !strings.Contains(errs, "Example:\n  terse "+name) {
				t.Errorf("no example:\n%s", errs)
			}
		})
	}
	out, errs, code := runCmd(t, "version", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v.Go, "go") || v.Kernel == "" || v.Module != "github.com/terse-llm/terse" || v.Version == "" {
		t.Errorf("version %+v", v)
	}
}

type genResult struct {
	IDs        []int  `json:"ids"`
	Text       string `json:"text"`
	Generated  int    `json:"generated"`
	StopReason string `json:"stop_reason"`
	Seed       uint64 `json:"seed"`
}

func generate(t *testing.T, args ...string) genResult {
	t.Helper()
	out, errs, code := runCmd(t, append([]string{"generate", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var r genResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return r
}

func TestGenerateSeedAndStop(t *testing.T) {
	a := generate(t, "--prompt", "Once upon a", "-n", "30", "--temp", "1")
	if a.Seed == 0 {
		t.Fatal("no seed reported")
	}
	b := generate(t, "--prompt", "Once upon a", "-n", "30", "--temp", "1", "--seed", jsonNum(a.Seed))
	if b.Seed != a.Seed || !slices.Equal(a.IDs, b.IDs) {
		t.Errorf("the reported seed does not reproduce the run: %v / %v", a.IDs, b.IDs)
	}
	greedy := generate(t, "--prompt", "Once upon a", "-n", "40")
	if !strings.HasPrefix(greedy.Text, "Once upon a time") {
		t.Fatalf("greedy text %q (the continuation must keep its leading space)", greedy.Text)
	}
	tests := []struct {
		stops []string
		want  string // the text must end here
	}{
		{[]string{"girl"}, "Once upon a time, there was a little "},
		{[]string{"Lily", "little"}, "Once upon a time, there was a "},
		{[]string{", there"}, "Once upon a time"},
		{[]string{". She"}, "Once upon a time, there was a little girl named Lily"},
	}
	for _, tc := range tests {
		args := []string{"--prompt", "Once upon a", "-n", "40"}
		for _, s := range tc.stops {
			args = append(args, "--stop", s)
		}
		r := generate(t, args...)
		if r.Text != tc.want || r.StopReason != "stop" {
			t.Errorf("--stop %q: text %q (%s), want %q (stop)", tc.stops, r.Text, r.StopReason, tc.want)
		}
		// Streamed, the same text is printed (the stop string held back).
		out, errs, code := runCmd(t, append([]string{"generate"}, args...)...)
		if code != 0 || strings.TrimSuffix(out, "\n") != tc.want {
			t.Errorf("--stop %q streamed %q (exit %d, %s), want %q", tc.stops, out, code, errs, tc.want)
		}
	}
}

func jsonNum(v uint64) string { b, _ := json.Marshal(v); return string(b) }

func TestStopEscapes(t *testing.T) {
	tests := []struct{ flag, want string }{
		{`\n\n`, "\n\n"},
		{`a\tb`, "a\tb"},
		{`C:\\n`, `C:\n`},
		{"plain", "plain"},
	}
	for _, tc := range tests {
		var s stopList
		if err := s.Set(tc.flag); err != nil || len(s) != 1 || s[0] != tc.want {
			t.Errorf("--stop %s: %q (%v), want %q", tc.flag, s, err, tc.want)
		}
	}
}
