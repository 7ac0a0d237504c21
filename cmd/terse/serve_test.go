package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/terse-llm/terse/internal/testshared"
)

func TestServeFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--bogus"}, "flag provided but not defined"},
		{[]string{"serve", "--max-seqs", "0"}, "--max-seqs 0"},
		{[]string{"serve", "--store", "ftp://host/x"}, `scheme "ftp"`},
		{[]string{"serve", "--store", "s3://"}, "names no bucket"},
		{[]string{"serve", "--addr", "nohost"}, "--addr"},
		{[]string{"serve", "--kv", "q9_9"}, "--kv"},
		{[]string{"serve", "extra"}, "unexpected argument"},
	} {
		_, errs, code := runCmd(t, tc.args...)
		if code != 2 || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errs, tc.want)
		}
	}
	for _, u := range []string{"file://ctx.db", "file:///tmp/ctx.db", "redis://127.0.0.1:6379/0", "s3://bucket/prefix"} {
		if err := checkStoreURL(u); err != nil {
			t.Errorf("--store %s: %v", u, err)
		}
	}
}

// startServe runs serveUntil in-process and returns its base URL and a
// function that stops it and returns its error.
func startServe(t *testing.T, args ...string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	errc := make(chan error, 1)
	var stderr bytes.Buffer
	go func() { errc <- serveUntil(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), &stderr, ready) }()
	select {
	case addr := <-ready:
		return "http://" + addr, func() error { cancel(); return <-errc }
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v\n%s", err, stderr.String())
	}
	return "", nil
}

// completeText posts a greedy completion and returns its text.
func completeText(t *testing.T, url, model, prompt string, n int, stream bool) string {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": n, "temperature": 0, "stream": stream})
	resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return ""
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		raw, _ := io.ReadAll(resp.Body)
		t.Errorf("status %d: %s", resp.StatusCode, raw)
		return ""
	}
	type choice struct {
		Text string `json:"text"`
	}
	if !stream {
		var c struct{ Choices []choice }
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || len(c.Choices) != 1 {
			t.Errorf("decoding the completion: %v", err)
			return ""
		}
		return c.Choices[0].Text
	}
	var text strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var c struct{ Choices []choice }
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Errorf("chunk %q: %v", data, err)
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
		}
	}
	return text.String()
}

// TestServeGreedyMatchesGenerate checks that `terse serve` answers greedy
// requests, one alone and four at once (batched), with exactly the text
// `terse generate --temp 0` prints for the same prompts: on the bundled
// stories260K and, with the shared models, on pdtext-llama-28m's Q4_K_M
// GGUF (quantized weights, byte-level BPE).
func TestServeGreedyMatchesGenerate(t *testing.T) {
	prompts := []string{"Once upon a time", "The little dog", "Lily had a red ball. One day", "Tom and Sam were friends"}
	models := []struct{ name, path string }{{"stories260K", ""}}
	if !testing.Short() && testshared.Dir() != "" {
		prompts := "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q4_K_M-imat.gguf"
		models = append(models, struct{ name, path string }{"pdtext-llama-28m-Q4_K_M-imat", testshared.Path(t, prompts)})
	}
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			var modelArgs []string
			if m.path != "" {
				modelArgs = []string{"--model", m.path}
			}
			const n = 32
			want := make([]string, len(prompts))
			for i, p := range prompts {
				out, errs, code := runCmd(t, append([]string{"generate", "--temp", "0", "-n", fmt.Sprint(n), "--json", "--prompt", p}, modelArgs...)...)
				if code != 0 {
					t.Fatalf("generate: exit %d: %s", code, errs)
				}
				var g struct {
					Text string `json:"text"`
				}
				if err := json.Unmarshal([]byte(out), &g); err != nil {
					t.Fatal(err)
				}
				k := strings.Index(g.Text, p) // after the BOS's text, where the tokenizer renders it
				if k < 0 {
					t.Fatalf("generate's text %q does not hold the prompt %q", g.Text, p)
				}
				want[i] = g.Text[k+len(p):]
			}
			url, stop := startServe(t, modelArgs...)
			if got := completeText(t, url, m.name, prompts[0], n, false); got != want[0] {
				t.Errorf("single request: %q, generate printed %q", got, want[0])
			}
			var wg sync.WaitGroup
			for i, p := range prompts {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if got := completeText(t, url, m.name, p, n, i%2 == 0); got != want[i] {
						t.Errorf("concurrent request %d: %q, generate printed %q", i, got, want[i])
					}
				}()
			}
			wg.Wait()
			if err := stop(); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// TestServeSIGTERM builds terse, serves, streams a long request, sends
// SIGTERM mid-stream and expects the stream to finish and the process to
// exit 0.
func TestServeSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the terse binary")
	}
	bin := filepath.Join(t.TempDir(), "terse")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewScanner(stderr)
	if !lines.Scan() {
		t.Fatal("no startup line")
	}
	first := lines.Text()
	i := strings.Index(first, "http://")
	if i < 0 {
		t.Fatalf("startup line %q names no address", first)
	}
	url := strings.Fields(first[i:])[0]
	go func() {
		for lines.Scan() {
		}
	}()
	b, _ := json.Marshal(map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 300, "stream": true, "stop": "zq-never"})
	resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if !strings.Contains(string(rest), `"finish_reason":"`) || !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("the in-flight stream did not finish after SIGTERM: ...%q", rest[max(0, len(rest)-200):])
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("terse serve after SIGTERM: %v, want exit 0", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("terse serve did not exit 60 s after SIGTERM")
	}
}

// TestServePrefixCacheAndStore serves with the prefix cache over a bbolt
// store: a long prompt asked twice gives generate's greedy text both times
// (the second restored from the cache), and a second server on the same
// store file restores it from the store.
func TestServePrefixCacheAndStore(t *testing.T) {
	prompt := strings.Repeat("Once upon a time there was a little girl named Lily. She liked to play in the park with her dog. ", 4)
	const n = 24
	out, errs, code := runCmd(t, "generate", "--temp", "0", "-n", fmt.Sprint(n), "--json", "--prompt", prompt)
	if code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errs)
	}
	var g struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	k := strings.Index(g.Text, prompt)
	if k < 0 {
		t.Fatalf("generate's text %q does not hold the prompt", g.Text)
	}
	want := g.Text[k+len(prompt):]
	hitRate := func(url string) string {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "terse_prefix_cache_hit_rate ") {
				return strings.TrimPrefix(line, "terse_prefix_cache_hit_rate ")
			}
		}
		t.Fatalf("no hit rate in /metrics:\n%s", b)
		return ""
	}
	for _, codec := range []string{"raw", "cachegen:6"} {
		db := "file://" + filepath.Join(t.TempDir(), "ctx.db")
		for round := 0; round < 2; round++ {
			url, stop := startServe(t, "--store", db, "--prefix-block", "16", "--store-codec", codec)
			for i := 0; i < 2; i++ {
				got := completeText(t, url, "stories260K", prompt, n, i == 1)
				// A block restored from a lossy store gives other floats.
				exact := codec == "raw" || round == 0
				if exact && got != want || got == "" {
					t.Errorf("%s: server %d, request %d: %q, generate printed %q", codec, round, i, got, want)
				}
			}
			// Server 0: a miss then a hit; server 1: both hits (from the store,
			// then from memory).
			wantRate := map[int]string{0: "0.5", 1: "1"}[round]
			if got := hitRate(url); got != wantRate {
				t.Errorf("%s: server %d: prefix-cache hit rate %s, want %s", codec, round, got, wantRate)
			}
			if err := stop(); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
		}
	}
}
