package serve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/terse-llm/terse/bundled"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tokenizer"
)

// openStories opens the bundled stories260K model.
func openStories(t testing.TB) *load.Checkpoint {
	t.Helper()
	m, tok, _, err := bundled.Extract()
	if err != nil {
		t.Fatal(err)
	}
	ck, err := load.Open(m, load.Options{Tokenizer: tok})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ck.Close() })
	return ck
}

// newTestServer serves ck through httptest.
func newTestServer(t testing.TB, ck *load.Checkpoint, opt Options) (*Server, *httptest.Server) {
	t.Helper()
	opt.Model, opt.Tokenizer = ck.Model, ck.Tokenizer
	if opt.Name == "" {
		opt.Name = "stories260K"
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

// greedyReference is `terse generate --temp 0`'s code path: one State, the
// prompt in one Forward, then one token at a time; it returns the
// generated ids (stopping at an end token) and their text.
func greedyReference(t testing.TB, m *model.Model, tok tokenizer.Tokenizer, spec *kv.Spec, prompt string, n int) ([]int, string) {
	t.Helper()
	ids := tok.Encode(prompt, true)
	promptLen := len(ids)
	if spec == nil {
		spec = mustKV(t, "f32")
	}
	cache, err := spec.New(&m.Config, promptLen+n)
	if err != nil {
		t.Fatal(err)
	}
	st := m.NewStateWithCache(cache, min(promptLen, 512))
	logits := make([]float32, m.Config.VocabSize)
	if err := st.Forward(ids, logits, false); err != nil {
		t.Fatal(err)
	}
	ends := tokenizer.EndTokens(tok)
	for len(ids)-promptLen < n {
		next := model.Argmax(logits)
		if slices.Contains(ends, next) {
			break
		}
		ids = append(ids, next)
		if len(ids)-promptLen == n {
			break
		}
		if err := st.Forward(ids[len(ids)-1:], logits, false); err != nil {
			t.Fatal(err)
		}
	}
	promptText := tok.Decode(ids[:promptLen])
	text := tok.Decode(ids)
	return ids[promptLen:], strings.TrimPrefix(text, promptText)
}

func postJSON(t testing.TB, url string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}

// streamTokens posts a streaming completion and returns the text of its
// chunks, the finish reason and whether [DONE] came.
func streamCompletion(t testing.TB, url string, body map[string]any) (string, string, bool) {
	t.Helper()
	body["stream"] = true
	b, _ := json.Marshal(body)
	resp, err := http.Post(url+"/v1/completions", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Error(err)
		return "", "", false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Errorf("status %d: %s", resp.StatusCode, msg)
		return "", "", false
	}
	var text strings.Builder
	finish, done := "", false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok {
			t.Errorf("line %q is not an SSE data line", line)
			continue
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c completion
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Errorf("chunk %q: %v", data, err)
			continue
		}
		for _, ch := range c.Choices {
			text.WriteString(ch.Text)
			if ch.FinishReason != nil {
				finish = *ch.FinishReason
			}
		}
	}
	return text.String(), finish, done
}

var greedyPrompts = []string{
	"Once upon a time",
	"The little dog ran to the park and",
	"Lily had a red ball. One day",
	"Tom and Sam were best friends. They liked to play",
}

// TestGreedyMatchesGenerate checks that greedy decoding through the
// scheduler, alone and batched with other requests, produces exactly the
// tokens of the single-sequence path `terse generate --temp 0` runs: on
// stories260K (float32 weights) and, with the shared models, on the
// Q4_K_M GGUF of pdtext-llama-28m, whose kernels route by batch size.
func TestGreedyMatchesGenerate(t *testing.T) {
	stories := openStories(t)
	type model struct {
		name string
		ck   *load.Checkpoint
	}
	models := []model{{"stories260K", stories}}
	if !testing.Short() && testshared.Dir() != "" {
		ck, err := load.Open(testshared.Path(t, "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q4_K_M-imat.gguf"), load.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer ck.Close()
		models = append(models, model{"pdtext-Q4_K_M", ck})
	}
	const n = 40
	for _, m := range models {
		for _, tc := range []struct {
			name  string
			opt   Options
			batch int
		}{
			{"single", Options{}, 1},
			{"four-concurrent", Options{}, 4},
			{"sixteen-concurrent", Options{}, 16},
			{"four-concurrent-f16kv", Options{KV: mustKV(t, "f16")}, 4},
		} {
			if m.ck == stories && tc.batch == 16 {
				continue // TestConcurrentStreams runs 16 on stories260K
			}
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				ck := m.ck
				s, err := New(Options{Model: ck.Model, Tokenizer: ck.Tokenizer, KV: tc.opt.KV})
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				var wg sync.WaitGroup
				for i := 0; i < tc.batch; i++ {
					p := greedyPrompts[i%len(greedyPrompts)]
					if i >= len(greedyPrompts) {
						p = fmt.Sprintf("%s, number %d,", p, i)
					}
					want, wantText := greedyReference(t, ck.Model, ck.Tokenizer, tc.opt.KV, p, n)
					prompt := ck.Tokenizer.Encode(p, true)
					j, e := s.prepare(httptest.NewRequest("POST", "/", nil), params{maxTokens: n, temperature: 0, topP: 1}, prompt, n, "prompt")
					if e != nil {
						t.Fatal(e)
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if e := s.enqueue(j); e != nil {
							t.Error(e)
							return
						}
						var got []int
						var text strings.Builder
						for ev := range j.events {
							text.WriteString(ev.text)
							if ev.token < 0 {
								break
							}
							got = append(got, ev.token)
						}
						if !slices.Equal(got, want) {
							t.Errorf("prompt %d: server tokens %v\nwant %v", i, got, want)
						}
						if text.String() != wantText {
							t.Errorf("prompt %d: server text %q, want %q", i, text.String(), wantText)
						}
					}()
				}
				wg.Wait()
			})
		}
	}
}

func mustKV(t testing.TB, spec string) *kv.Spec {
	s, err := kv.Parse(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestBadRequests checks the error objects and statuses of bad requests.
func TestBadRequests(t *testing.T) {
	ck := openStories(t)
	_, hs := newTestServer(t, ck, Options{})
	long := strings.Repeat("Once upon a time there was a dog. ", 100)
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		param, code              string
	}{
		{"bad json", "POST", "/v1/completions", `{"model": "stories260K", "prompt": `, 400, "", "invalid_json"},
		{"wrong type", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "max_tokens": "ten"}`, 400, "max_tokens", "invalid_type"},
		{"unknown model", "POST", "/v1/completions", `{"model": "gpt-4", "prompt": "a"}`, 404, "model", "model_not_found"},
		{"missing model", "POST", "/v1/chat/completions", `{"messages": [{"role": "user", "content": "hi"}]}`, 400, "model", "missing_required_parameter"},
		{"n=2", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "n": 2}`, 400, "n", "invalid_value"},
		{"negative max_tokens", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "max_tokens": -1}`, 400, "max_tokens", "invalid_value"},
		{"negative max_completion_tokens", "POST", "/v1/chat/completions", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": -5}`, 400, "max_completion_tokens", "invalid_value"},
		{"temperature", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "temperature": 3}`, 400, "temperature", "invalid_value"},
		{"top_p", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "top_p": 0}`, 400, "top_p", "invalid_value"},
		{"five stops", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "stop": ["a","b","c","d","e"]}`, 400, "stop", "invalid_value"},
		{"prompt too long", "POST", "/v1/completions", fmt.Sprintf(`{"model": "stories260K", "prompt": %q}`, long), 400, "prompt", "context_length_exceeded"},
		{"prompt+max_tokens too long", "POST", "/v1/completions", `{"model": "stories260K", "prompt": "a", "max_tokens": 600}`, 400, "prompt", "context_length_exceeded"},
		{"chat too long", "POST", "/v1/chat/completions", `{"model": "stories260K", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 600}`, 400, "messages", "context_length_exceeded"},
		{"token out of vocab", "POST", "/v1/completions", `{"model": "stories260K", "prompt": [1, 99999]}`, 400, "prompt", "invalid_value"},
		{"two prompts", "POST", "/v1/completions", `{"model": "stories260K", "prompt": ["a", "b"]}`, 400, "", "invalid_json"},
		{"no messages", "POST", "/v1/chat/completions", `{"model": "stories260K", "messages": []}`, 400, "messages", "missing_required_parameter"},
		{"image part", "POST", "/v1/chat/completions", `{"model": "stories260K", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}`, 400, "messages[0].content", "invalid_value"},
		{"wrong method", "GET", "/v1/completions", "", 405, "", "method_not_allowed"},
		{"wrong method models", "POST", "/v1/models", "{}", 405, "", "method_not_allowed"},
		{"unknown route", "GET", "/v1/engines", "", 404, "", "unknown_url"},
		{"unknown model object", "GET", "/v1/models/gpt-4", "", 404, "model", "model_not_found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, hs.URL+tc.path, strings.NewReader(tc.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error *struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    *string `json:"code"`
				} `json:"error"`
			}
			raw, _ := io.ReadAll(resp.Body)
			if err := json.Unmarshal(raw, &body); err != nil || body.Error == nil {
				t.Fatalf("status %d, body %q is not an error object (%v)", resp.StatusCode, raw, err)
			}
			e := body.Error
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, tc.status, e.Message)
			}
			if e.Message == "" || e.Type == "" {
				t.Errorf("error %+v lacks a message or type", e)
			}
			if got := deref(e.Param); got != tc.param {
				t.Errorf("param %q, want %q (%s)", got, tc.param, e.Message)
			}
			if got := deref(e.Code); got != tc.code {
				t.Errorf("code %q, want %q (%s)", got, tc.code, e.Message)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestDisconnectFreesSequence cancels a stream after its first chunk and
// waits for the active sequences to drop to 0.
func TestDisconnectFreesSequence(t *testing.T) {
	ck := openStories(t)
	s, hs := newTestServer(t, ck, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, _ := json.Marshal(map[string]any{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 400, "stream": true, "stop": "never-appears-zq"})
	req, _ := http.NewRequestWithContext(ctx, "POST", hs.URL+"/v1/completions", bytes.NewReader(b))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(resp.Body)
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if s.ActiveSequences() != 1 {
		t.Errorf("%d active sequences while streaming, want 1", s.ActiveSequences())
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for s.ActiveSequences() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d active sequences 10 s after the client went away", s.ActiveSequences())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if s.sc.eng.Seq(1) != nil {
		t.Errorf("the engine still holds the sequence of the client that went away")
	}
}

// TestConcurrentStreams runs 16 streaming clients at once, each checked
// against its own greedy reference.
func TestConcurrentStreams(t *testing.T) {
	ck := openStories(t)
	s, hs := newTestServer(t, ck, Options{MaxSeqs: 16})
	const n = 48
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("%s %d", greedyPrompts[i%len(greedyPrompts)], i)
			_, want := greedyReference(t, ck.Model, ck.Tokenizer, nil, p, n)
			text, finish, done := streamCompletion(t, hs.URL, map[string]any{"model": "stories260K", "prompt": p, "max_tokens": n, "temperature": 0})
			if text != want {
				t.Errorf("client %d: text %q, want %q", i, text, want)
			}
			if finish != "length" && finish != "stop" || !done {
				t.Errorf("client %d: finish %q, [DONE] %v", i, finish, done)
			}
		}()
	}
	wg.Wait()
	if a := s.ActiveSequences(); a != 0 {
		t.Errorf("%d active sequences after all clients finished", a)
	}
	resp, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m, _ := io.ReadAll(resp.Body)
	for _, want := range []string{"terse_generated_tokens_total ", "terse_time_to_first_token_seconds_count 16", "terse_active_sequences 0", "terse_prefix_cache_hit_rate 0", "terse_inter_token_seconds_bucket{le=\"+Inf\"}"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
}

// TestStopAndUsage checks a text-level stop string (cut, not emitted) and
// the usage of a non-streaming completion.
func TestStopAndUsage(t *testing.T) {
	ck := openStories(t)
	_, hs := newTestServer(t, ck, Options{})
	const p = "Once upon a time"
	_, full := greedyReference(t, ck.Model, ck.Tokenizer, nil, p, 40)
	i := strings.Index(full[5:], " ")
	if i < 0 {
		t.Fatalf("reference %q has no space to stop at", full)
	}
	stop := full[5+i : 5+i+2]
	want := full[:strings.Index(full, stop)]
	for _, stream := range []bool{false, true} {
		body := map[string]any{"model": "stories260K", "prompt": p, "max_tokens": 40, "temperature": 0, "stop": []string{stop}}
		var text, finish string
		if stream {
			text, finish, _ = streamCompletion(t, hs.URL, body)
		} else {
			resp, raw := postJSON(t, hs.URL+"/v1/completions", body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, raw)
			}
			var c completion
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			text, finish = c.Choices[0].Text, *c.Choices[0].FinishReason
			if c.Usage == nil || c.Usage.PromptTokens != len(ck.Tokenizer.Encode(p, true)) || c.Usage.TotalTokens != c.Usage.PromptTokens+c.Usage.CompletionTokens || c.Usage.CompletionTokens == 0 {
				t.Errorf("usage %+v", c.Usage)
			}
		}
		if text != want || finish != "stop" {
			t.Errorf("stream %v: text %q finish %q, want %q stop (stop string %q)", stream, text, finish, want, stop)
		}
	}
}

// TestQueueFull fills a one-slot, one-place queue and expects 429.
func TestQueueFull(t *testing.T) {
	ck := openStories(t)
	s, err := New(Options{Model: ck.Model, Tokenizer: ck.Tokenizer, MaxSeqs: 1, QueueSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	req := httptest.NewRequest("POST", "/", nil)
	var jobs []*job
	var refused *apiError
	for i := 0; i < 5 && refused == nil; i++ {
		j, e := s.prepare(req, params{maxTokens: 200, topP: 1}, ck.Tokenizer.Encode("Once", true), 200, "prompt")
		if e != nil {
			t.Fatal(e)
		}
		refused = s.enqueue(j)
		jobs = append(jobs, j)
	}
	if refused == nil || refused.status != http.StatusTooManyRequests {
		t.Fatalf("queue of 1 with 1 slot took 5 requests (refusal %v)", refused)
	}
	s.Close()
	if e := s.enqueue(jobs[0]); e == nil || e.status != http.StatusServiceUnavailable {
		t.Errorf("a closed server's refusal is %v, want 503", e)
	}
}

// TestShutdownFinishes checks that Shutdown lets an in-flight request
// finish, then refuses new ones with 503.
func TestShutdownFinishes(t *testing.T) {
	ck := openStories(t)
	s, hs := newTestServer(t, ck, Options{})
	type result struct {
		text, finish string
		done         bool
	}
	res := make(chan result, 1)
	go func() {
		text, finish, done := streamCompletion(t, hs.URL, map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 100, "temperature": 0})
		res <- result{text, finish, done}
	}()
	for s.ActiveSequences() == 0 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-res
	if !r.done || r.finish == "" || r.text == "" {
		t.Errorf("in-flight stream after Shutdown: %+v", r)
	}
	resp, raw := postJSON(t, hs.URL+"/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once"})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Shutdown: status %d %s, want 503", resp.StatusCode, raw)
	}
}

// TestRoutes checks /v1/models, /health and /metrics.
func TestRoutes(t *testing.T) {
	ck := openStories(t)
	_, hs := newTestServer(t, ck, Options{})
	for _, tc := range []struct{ path, want string }{
		{"/v1/models", `"id":"stories260K"`},
		{"/v1/models/stories260K", `"object":"model"`},
		{"/health", `"status":"ok"`},
		{"/metrics", "# TYPE terse_time_to_first_token_seconds histogram"},
	} {
		resp, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %q, want 200 with %q", tc.path, resp.StatusCode, b, tc.want)
		}
	}
}

// fakePrefix is a prefix cache that holds one earlier prompt's cache in
// memory, to check that the scheduler restores and saves through the
// interface (the real one is package serve/prefix).
type fakePrefix struct {
	mu            sync.Mutex
	spec          *kv.Spec
	cfg           *model.Config
	tokens        []int
	k, v          [][]float32 // per layer, positions × KV width, from an f32 cache
	hits, lookups int64
	saves         int
}

func (f *fakePrefix) Restore(_ context.Context, c model.KVCache, tokens []int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups++
	n := 0
	for n < len(f.tokens) && n < len(tokens) && f.tokens[n] == tokens[n] {
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for p := 0; p < n; p++ {
		for l := range f.k {
			d := f.cfg.KVDim(l)
			if err := c.Append(l, f.k[l][p*d:(p+1)*d], f.v[l][p*d:(p+1)*d]); err != nil {
				return 0, err
			}
		}
	}
	f.hits++
	return n, nil
}

func (f *fakePrefix) Save(_ context.Context, c model.KVCache, tokens []int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	if c.Len() != len(tokens) {
		return fmt.Errorf("cache holds %d positions for %d tokens", c.Len(), len(tokens))
	}
	r, ok := c.(model.KVReader)
	if !ok {
		return fmt.Errorf("cache %T cannot be read", c)
	}
	f.tokens = slices.Clone(tokens)
	f.k, f.v = make([][]float32, f.cfg.NLayers), make([][]float32, f.cfg.NLayers)
	for l := range f.k {
		d := f.cfg.KVDim(l)
		f.k[l], f.v[l] = make([]float32, len(tokens)*d), make([]float32, len(tokens)*d)
		if err := r.ReadKV(l, 0, len(tokens), f.k[l], f.v[l]); err != nil {
			return err
		}
	}
	return nil
}

func (f *fakePrefix) Stats() (int64, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits, f.lookups
}

// TestPrefixCacheHook runs the same prompt twice through a prefix cache:
// the second restores the prompt (less its last token) and still decodes
// the greedy reference.
func TestPrefixCacheHook(t *testing.T) {
	ck := openStories(t)
	pc := &fakePrefix{cfg: &ck.Model.Config}
	_, hs := newTestServer(t, ck, Options{PrefixCache: pc})
	const p = "Lily had a red ball. One day she went to the park"
	_, want := greedyReference(t, ck.Model, ck.Tokenizer, nil, p, 30)
	for i := 0; i < 2; i++ {
		text, _, _ := streamCompletion(t, hs.URL, map[string]any{"model": "stories260K", "prompt": p, "max_tokens": 30, "temperature": 0})
		if text != want {
			t.Errorf("run %d: %q, want %q", i, text, want)
		}
	}
	if hits, lookups := pc.Stats(); hits != 1 || lookups != 2 || pc.saves != 2 {
		t.Errorf("prefix cache: %d hits of %d lookups, %d saves; want 1 of 2, 2", hits, lookups, pc.saves)
	}
	resp, _ := http.Get(hs.URL + "/metrics")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "terse_prefix_cache_hit_rate 0.5") {
		t.Errorf("/metrics does not report a hit rate of 0.5:\n%s", b)
	}
}

// panicPrefix is a prefix cache whose Restore or Save panics.
type panicPrefix struct{ inSave bool }

func (p panicPrefix) Restore(context.Context, model.KVCache, []int) (int, error) {
	if !p.inSave {
		panic("restore bug")
	}
	return 0, nil
}

func (p panicPrefix) Save(context.Context, model.KVCache, []int) error {
	if p.inSave {
		panic("save bug")
	}
	return nil
}

func (panicPrefix) Stats() (int64, int64) { return 0, 0 }

// TestSchedulerSurvivesPanic checks that a panic inside the scheduler's
// work ends that request with a 500 error object and the server goes on.
func TestSchedulerSurvivesPanic(t *testing.T) {
	ck := openStories(t)
	for _, inSave := range []bool{false, true} {
		s, hs := newTestServer(t, ck, Options{PrefixCache: panicPrefix{inSave}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		for i := 0; i < 2; i++ {
			resp, raw := postJSON(t, hs.URL+"/v1/completions", map[string]any{"model": "stories260K", "prompt": "Once", "max_tokens": 5})
			if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(string(raw), "internal error") {
				t.Errorf("panic in save %v, request %d: %d %s", inSave, i, resp.StatusCode, raw)
			}
		}
		if a := s.ActiveSequences(); a != 0 {
			t.Errorf("%d active sequences after panics", a)
		}
	}
}
