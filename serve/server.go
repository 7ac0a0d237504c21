package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tokenizer"
)

// Options configure a Server.
type Options struct {
	// Model and Tokenizer are what is served (required).
	Model     *model.Model
	Tokenizer tokenizer.Tokenizer
	// Name is the model id clients ask for (default "terse").
	Name string
	// KV makes each sequence's cache (nil: float32).
	KV *kv.Spec
	// Ctx is the most positions a request's prompt and completion may
	// take together (0: the model's trained context, or 2048 when it has
	// none).
	Ctx int
	// MaxSeqs is how many sequences are decoded together (0: 16).
	MaxSeqs int
	// QueueSize is how many requests may wait for a slot before new ones
	// are refused with 429 (0: 4 × MaxSeqs).
	QueueSize int
	// PrefillChunk is the most prompt tokens fed in one step, so that a long
	// prompt does not stall the others' decoding (0: 512, the piece
	// `terse generate` prefills in, which keeps greedy output identical to
	// it; see scheduler.step).
	PrefillChunk int
	// ChatTemplate is the model's chat template (Jinja source, see
	// LoadChatTemplate); "" renders the Plain template.
	ChatTemplate string
	// PrefixCache, when set, restores cached prompt prefixes before
	// prefill and saves them after it.
	PrefixCache PrefixCache
	// Logger receives warnings (nil: slog.Default()).
	Logger *slog.Logger
}

// Server is the OpenAI-compatible HTTP handler over one model; see the
// package documentation for the routes. Its scheduler runs from New until
// Shutdown or Close.
type Server struct {
	opt      Options
	template TemplateKind
	ends     []int
	eos      string
	created  int64
	sc       *scheduler
	met      *metrics
	draining atomic.Bool
	inflight sync.WaitGroup
	closeOne sync.Once
}

// New starts a server.
func New(opt Options) (*Server, error) {
	if opt.Model == nil || opt.Tokenizer == nil {
		return nil, errors.New("serve: a model and its tokenizer are required")
	}
	if opt.Name == "" {
		opt.Name = "terse"
	}
	if opt.KV == nil {
		var err error
		if opt.KV, err = kv.Parse("f32"); err != nil {
			return nil, err
		}
	}
	trained := opt.Model.Config.MaxSeqLen
	switch {
	case opt.Ctx < 0:
		return nil, fmt.Errorf("serve: context %d: must be 0 (the model's) or positive", opt.Ctx)
	case opt.Ctx == 0 && trained > 0:
		opt.Ctx = trained
	case opt.Ctx == 0:
		opt.Ctx = 2048
	}
	if opt.MaxSeqs <= 0 {
		opt.MaxSeqs = 16
	}
	if opt.QueueSize <= 0 {
		opt.QueueSize = 4 * opt.MaxSeqs
	}
	if opt.PrefillChunk <= 0 {
		opt.PrefillChunk = 512
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	kind, err := RecognizeTemplate(opt.ChatTemplate)
	if err != nil {
		opt.Logger.Warn("the model's chat template is not one this server knows; using the plain template", "err", err)
	}
	s := &Server{opt: opt, template: kind, ends: tokenizer.EndTokens(opt.Tokenizer), created: time.Now().Unix(), met: newMetrics()}
	if e := opt.Tokenizer.EOS(); e >= 0 {
		s.eos = opt.Tokenizer.Piece(e)
	}
	s.sc = newScheduler(s)
	go s.sc.run()
	return s, nil
}

// Template is the chat template the server renders.
func (s *Server) Template() TemplateKind { return s.template }

// Ctx is the context length requests are limited to.
func (s *Server) Ctx() int { return s.opt.Ctx }

// Shutdown refuses new requests (503), waits for the queued and active ones
// to finish until ctx is done, then ends the rest with an error and stops
// the scheduler. It returns ctx.Err() when requests had to be cut short.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	idle := make(chan struct{})
	go func() { s.inflight.Wait(); close(idle) }()
	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Close()
	return err
}

// Close ends every request at once and stops the scheduler.
func (s *Server) Close() {
	s.draining.Store(true)
	s.closeOne.Do(func() { close(s.sc.quit) })
	<-s.sc.done
}

// ActiveSequences is the number of sequences the engine holds now.
func (s *Server) ActiveSequences() int {
	s.met.mu.Lock()
	defer s.met.mu.Unlock()
	return s.met.active
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ServeHTTP routes a request; a panic in a handler becomes a 500 error
// object (when nothing was written yet) instead of a crash.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if v := recover(); v != nil {
			s.opt.Logger.Error("request panicked", "path", r.URL.Path, "panic", v)
			if sw.status == 0 {
				writeError(sw, &apiError{status: http.StatusInternalServerError, Message: fmt.Sprintf("internal error: %v", v), Type: "server_error"})
			}
		}
		s.met.observe(func(m *metrics) { m.requests[max(sw.status, 200)]++ })
	}()
	path := strings.TrimSuffix(r.URL.Path, "/")
	type route struct {
		method string
		h      func(http.ResponseWriter, *http.Request)
	}
	var rt route
	switch {
	case path == "/v1/completions":
		rt = route{http.MethodPost, s.completions}
	case path == "/v1/chat/completions":
		rt = route{http.MethodPost, s.chat}
	case path == "/v1/models":
		rt = route{http.MethodGet, s.models}
	case strings.HasPrefix(path, "/v1/models/"):
		rt = route{http.MethodGet, s.model}
	case path == "/health":
		rt = route{http.MethodGet, s.health}
	case path == "/metrics":
		rt = route{http.MethodGet, s.metrics}
	default:
		writeError(sw, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("unknown request URL: %s %s", r.Method, r.URL.Path),
			Type: "invalid_request_error", Code: ptr("unknown_url")})
		return
	}
	if r.Method != rt.method && !(rt.method == http.MethodGet && r.Method == http.MethodHead) {
		sw.Header().Set("Allow", rt.method)
		writeError(sw, &apiError{status: http.StatusMethodNotAllowed, Message: fmt.Sprintf("%s %s: this route takes %s", r.Method, r.URL.Path, rt.method),
			Type: "invalid_request_error", Code: ptr("method_not_allowed")})
		return
	}
	rt.h(sw, r)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

type modelObject struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func (s *Server) modelObject() modelObject {
	return modelObject{ID: s.opt.Name, Object: "model", Created: s.created, OwnedBy: "terse"}
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, struct {
		Object string        `json:"object"`
		Data   []modelObject `json:"data"`
	}{"list", []modelObject{s.modelObject()}})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/v1/models/")
	if name != s.opt.Name {
		writeError(w, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("the model %q does not exist; this server serves %q", name, s.opt.Name),
			Type: "invalid_request_error", Param: ptr("model"), Code: ptr("model_not_found")})
		return
	}
	writeJSON(w, s.modelObject())
}

func (s *Server) health(w http.ResponseWriter, _ *http.Request) {
	if s.draining.Load() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"shutting down"}`+"\n")
		return
	}
	writeJSON(w, map[string]string{"status": "ok"})
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	var hits, lookups int64
	if pc := s.opt.PrefixCache; pc != nil {
		hits, lookups = pc.Stats()
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	s.met.write(w, hits, lookups)
}

// maxBody is the largest request body read.
const maxBody = 8 << 20

// decode reads the JSON body into v.
func decode(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("", "", "reading the request body: %v", err)
	}
	if len(body) > maxBody {
		return badRequest("", "", "the request body is over %d bytes", maxBody)
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			field := strings.TrimPrefix(te.Field, "samplingFields.")
			return badRequest(field, "invalid_type", "%s: expected %s, got a JSON %s", field, te.Type, te.Value)
		}
		return badRequest("", "invalid_json", "we could not parse the JSON body of your request: %v", err)
	}
	return nil
}

// prepare checks the prompt's length against the context and makes the job.
func (s *Server) prepare(r *http.Request, p params, prompt []int, defaultMax int, param string) (*job, *apiError) {
	if len(prompt) == 0 {
		return nil, badRequest("prompt", "invalid_value", "the prompt is empty and the model has no BOS token to start from")
	}
	vocab := s.opt.Model.Config.VocabSize
	for i, t := range prompt {
		if t < 0 || t >= vocab {
			return nil, badRequest("prompt", "invalid_value", "prompt token %d at index %d is outside the vocabulary of %d", t, i, vocab)
		}
	}
	room := s.opt.Ctx - len(prompt)
	maxTokens := p.maxTokens
	if maxTokens == 0 {
		maxTokens = min(defaultMax, room)
	}
	if room < 1 || maxTokens > room {
		return nil, badRequest(param, "context_length_exceeded",
			"this model's maximum context length is %d tokens; the prompt takes %d and max_tokens asks for %d more", s.opt.Ctx, len(prompt), max(maxTokens, 1))
	}
	seed := p.seed
	if !p.seeded {
		seed = rand.Uint64()
	}
	temp := p.temperature
	ends := s.ends
	if p.ignoreEOS {
		ends = nil
	}
	j := &job{
		ctx: r.Context(), prompt: prompt, maxTokens: maxTokens,
		sampler: model.NewSampler(temp, 0, p.topP, seed),
		ends:    ends,
		text:    newTextStream(s.opt.Tokenizer, prompt, p.stops),
		events:  make(chan event, maxTokens+2),
		arrived: time.Now(),
	}
	return j, nil
}

// enqueue hands j to the scheduler.
func (s *Server) enqueue(j *job) *apiError {
	if s.draining.Load() {
		return &apiError{status: http.StatusServiceUnavailable, Message: "the server is shutting down", Type: "server_error", Code: ptr("server_shutting_down")}
	}
	if !s.sc.submit(j) {
		return &apiError{status: http.StatusTooManyRequests, Message: fmt.Sprintf("the request queue is full (%d waiting); retry shortly", s.opt.QueueSize),
			Type: "rate_limit_error", Code: ptr("queue_full")}
	}
	return nil
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var req completionRequest
	if e := decode(r, &req); e != nil {
		writeError(w, e)
		return
	}
	p, e := req.check(s.opt.Name)
	if e != nil {
		writeError(w, e)
		return
	}
	if !req.Prompt.set {
		writeError(w, badRequest("prompt", "missing_required_parameter", "you must provide a prompt"))
		return
	}
	prompt := req.Prompt.tokens
	if req.Prompt.isText {
		prompt = s.opt.Tokenizer.Encode(req.Prompt.text, true)
		if len(prompt) == 0 && s.opt.Tokenizer.BOS() >= 0 {
			prompt = []int{s.opt.Tokenizer.BOS()}
		}
	}
	j, e := s.prepare(r, p, prompt, 16, "prompt") // 16: the API's default max_tokens
	if e != nil {
		writeError(w, e)
		return
	}
	echo := ""
	if req.Echo {
		echo = s.opt.Tokenizer.Decode(prompt)
		if req.Prompt.isText {
			echo = req.Prompt.text
		}
	}
	s.inflight.Add(1)
	defer s.inflight.Done()
	if e := s.enqueue(j); e != nil {
		writeError(w, e)
		return
	}
	id, created := newID("cmpl-"), time.Now().Unix()
	mk := func(text string, finish *string, u *usage) completion {
		c := completion{ID: id, Object: "text_completion", Created: created, Model: s.opt.Name, Usage: u, Choices: []completionChoice{}}
		if u == nil || finish != nil || text != "" {
			c.Choices = append(c.Choices, completionChoice{Text: text, FinishReason: finish})
		}
		return c
	}
	if !p.stream {
		text, fin, err := collect(r.Context(), j)
		if err != nil {
			writeError(w, err)
			return
		}
		c := mk(echo+text, &fin.finish, &fin.usage)
		writeJSON(w, c)
		return
	}
	sse := newSSE(w)
	if echo != "" {
		sse.send(mk(echo, nil, nil))
	}
	s.stream(r.Context(), j, sse, func(text string, finish *string) any { return mk(text, finish, nil) },
		func(u usage) any {
			if !p.usage {
				return nil
			}
			c := mk("", nil, &u)
			c.Choices = []completionChoice{}
			return c
		})
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if e := decode(r, &req); e != nil {
		writeError(w, e)
		return
	}
	p, e := req.check(s.opt.Name)
	if e != nil {
		writeError(w, e)
		return
	}
	if len(req.Messages) == 0 {
		writeError(w, badRequest("messages", "missing_required_parameter", "messages must hold at least one message"))
		return
	}
	msgs := make([]Message, len(req.Messages))
	for i, m := range req.Messages {
		if m.Role == "" {
			writeError(w, badRequest(fmt.Sprintf("messages[%d].role", i), "missing_required_parameter", "messages[%d] has no role", i))
			return
		}
		text, e := m.text(i)
		if e != nil {
			writeError(w, e)
			return
		}
		role := m.Role
		if role == "developer" {
			role = "system"
		}
		msgs[i] = Message{Role: role, Content: text}
	}
	prompt := s.opt.Tokenizer.Encode(Render(s.template, msgs, s.eos), true)
	j, e := s.prepare(r, p, prompt, s.opt.Ctx, "messages")
	if e != nil {
		writeError(w, e)
		return
	}
	s.inflight.Add(1)
	defer s.inflight.Done()
	if e := s.enqueue(j); e != nil {
		writeError(w, e)
		return
	}
	id, created := newID("chatcmpl-"), time.Now().Unix()
	if !p.stream {
		text, fin, err := collect(r.Context(), j)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, chatCompletion{ID: id, Object: "chat.completion", Created: created, Model: s.opt.Name, Usage: &fin.usage,
			Choices: []chatChoice{{Message: chatResponseMessage{Role: "assistant", Content: text}, FinishReason: fin.finish}}})
		return
	}
	chunk := func(d chatDelta, finish *string) chatChunk {
		return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opt.Name,
			Choices: []chatChunkChoice{{Delta: d, FinishReason: finish}}}
	}
	sse := newSSE(w)
	empty := ""
	sse.send(chunk(chatDelta{Role: "assistant", Content: &empty}, nil))
	s.stream(r.Context(), j, sse, func(text string, finish *string) any {
		if finish != nil && text == "" {
			return chunk(chatDelta{}, finish)
		}
		return chunk(chatDelta{Content: &text}, finish)
	}, func(u usage) any {
		if !p.usage {
			return nil
		}
		return chatChunk{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.opt.Name, Choices: []chatChunkChoice{}, Usage: &u}
	})
}

// collect waits for all of j's events and returns its text and last event.
func collect(ctx context.Context, j *job) (string, event, *apiError) {
	var b strings.Builder
	for {
		select {
		case <-ctx.Done():
			return "", event{}, &apiError{status: 499, Message: "client closed the request", Type: "invalid_request_error"}
		case ev := <-j.events:
			b.WriteString(ev.text)
			if ev.err != nil {
				status := http.StatusInternalServerError
				if errors.Is(ev.err, errShutdown) {
					status = http.StatusServiceUnavailable
				}
				return "", ev, &apiError{status: status, Message: ev.err.Error(), Type: "server_error"}
			}
			if ev.token < 0 {
				return b.String(), ev, nil
			}
		}
	}
}

// sse writes server-sent events.
type sse struct {
	w http.ResponseWriter
	f http.Flusher
}

func newSSE(w http.ResponseWriter) *sse {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher)
	return &sse{w: w, f: f}
}

// send writes one event and flushes it to the client.
func (e *sse) send(v any) error {
	if err := e.write(v); err != nil {
		return err
	}
	e.flush()
	return nil
}

// write writes one event without flushing it (a stream that has several
// events ready flushes once for all).
func (e *sse) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.w, "data: %s\n\n", b)
	return err
}

func (e *sse) flush() {
	if e.f != nil {
		e.f.Flush()
	}
}

func (e *sse) done() {
	io.WriteString(e.w, "data: [DONE]\n\n")
	if e.f != nil {
		e.f.Flush()
	}
}

// stream sends j's events as chunks that chunk makes, the usage chunk
// (when usageChunk returns one) and [DONE]. Text events that carry
// nothing (a token still completing a rune or a stop string) send nothing.
func (s *Server) stream(ctx context.Context, j *job, e *sse, chunk func(text string, finish *string) any, usageChunk func(usage) any) {
	for {
		select {
		case <-ctx.Done():
			return // the scheduler drops the job at its next step
		case ev := <-j.events:
			if ev.err != nil {
				_ = e.send(struct {
					Error *apiError `json:"error"`
				}{&apiError{Message: ev.err.Error(), Type: "server_error"}})
				e.done()
				return
			}
			if ev.token >= 0 {
				if ev.text != "" && e.write(chunk(ev.text, nil)) != nil {
					return
				}
				if len(j.events) == 0 {
					e.flush() // nothing more is ready: send what is written
				}
				continue
			}
			fin := ev.finish
			_ = e.send(chunk(ev.text, &fin))
			if u := usageChunk(ev.usage); u != nil {
				_ = e.send(u)
			}
			e.done()
			return
		}
	}
}

func newID(prefix string) string {
	return fmt.Sprintf("%s%016x", prefix, rand.Uint64())
}
