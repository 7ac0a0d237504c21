package serve

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
)

// apiError is the OpenAI API's error object with its HTTP status.
type apiError struct {
	status  int
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func (e *apiError) Error() string { return e.Message }

func ptr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// badRequest is a 400 invalid_request_error about param.
func badRequest(param, code, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, Message: fmt.Sprintf(format, a...),
		Type: "invalid_request_error", Param: ptr(param), Code: ptr(code)}
}

// writeError writes e as {"error": {...}}.
func writeError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/json")
	if e.status == http.StatusServiceUnavailable || e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(struct {
		Error *apiError `json:"error"`
	}{e})
}

// stopField is the API's stop parameter: a string, an array of strings or
// null.
type stopField []string

func (s *stopField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*s = nil
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*s = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// promptField is the completions prompt: a string, an array of one string,
// or an array of token ids.
type promptField struct {
	text   string
	tokens []int
	isText bool
	set    bool
}

func (p *promptField) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	p.set = true
	switch {
	case bytes.Equal(b, []byte("null")):
		p.set = false
		return nil
	case len(b) > 0 && b[0] == '"':
		p.isText = true
		return json.Unmarshal(b, &p.text)
	case len(b) > 0 && b[0] == '[':
		var raw []json.RawMessage
		if err := json.Unmarshal(b, &raw); err != nil {
			return err
		}
		if len(raw) == 0 {
			return fmt.Errorf("prompt is an empty array")
		}
		if t := bytes.TrimSpace(raw[0]); len(t) > 0 && t[0] == '"' {
			if len(raw) != 1 {
				return fmt.Errorf("prompt holds %d strings; this server takes one prompt per request", len(raw))
			}
			p.isText = true
			return json.Unmarshal(raw[0], &p.text)
		}
		if t := bytes.TrimSpace(raw[0]); len(t) > 0 && t[0] == '[' {
			return fmt.Errorf("prompt holds arrays of token ids; this server takes one prompt per request")
		}
		return json.Unmarshal(b, &p.tokens)
	}
	return fmt.Errorf("prompt must be a string, an array of one string or an array of token ids")
}

// streamOptions is the API's stream_options.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// samplingFields are the parameters both endpoints share.
type samplingFields struct {
	Model               string         `json:"model"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Temperature         *float64       `json:"temperature"`
	TopP                *float64       `json:"top_p"`
	N                   *int           `json:"n"`
	Stop                stopField      `json:"stop"`
	Seed                *int64         `json:"seed"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	// IgnoreEOS is llama.cpp's extension (load tests use it): generate
	// past the model's end tokens, up to max_tokens or a stop string.
	IgnoreEOS bool `json:"ignore_eos"`
}

// completionRequest is the body of POST /v1/completions.
type completionRequest struct {
	samplingFields
	Prompt promptField `json:"prompt"`
	Echo   bool        `json:"echo"`
}

// chatMessage is one message of a chat request. Content is a string or an
// array of text parts.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// chatRequest is the body of POST /v1/chat/completions.
type chatRequest struct {
	samplingFields
	Messages []chatMessage `json:"messages"`
}

// text is a message's content as one string: a string, or the text parts
// of an array joined.
func (m chatMessage) text(i int) (string, *apiError) {
	param := fmt.Sprintf("messages[%d].content", i)
	c := bytes.TrimSpace(m.Content)
	switch {
	case len(c) == 0 || bytes.Equal(c, []byte("null")):
		return "", nil
	case c[0] == '"':
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return "", badRequest(param, "invalid_value", "%s: %v", param, err)
		}
		return s, nil
	case c[0] == '[':
		var parts []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}
		if err := json.Unmarshal(c, &parts); err != nil {
			return "", badRequest(param, "invalid_value", "%s: %v", param, err)
		}
		var b strings.Builder
		for j, p := range parts {
			if p.Type != "text" {
				return "", badRequest(param, "invalid_value", "%s[%d]: content parts of type %q are not supported; only text", param, j, p.Type)
			}
			b.WriteString(p.Text)
		}
		return b.String(), nil
	}
	return "", badRequest(param, "invalid_type", "%s must be a string or an array of text parts", param)
}

// params are checked sampling parameters.
type params struct {
	maxTokens   int // 0: not given
	temperature float64
	topP        float64
	seed        uint64
	seeded      bool
	stops       []string
	stream      bool
	usage       bool
	ignoreEOS   bool
}

// check validates the shared fields against the served model name.
func (f *samplingFields) check(model string) (params, *apiError) {
	p := params{temperature: 1, topP: 1, stream: f.Stream, ignoreEOS: f.IgnoreEOS}
	if f.Model == "" {
		return p, badRequest("model", "missing_required_parameter", "you must provide a model parameter")
	}
	if f.Model != model {
		return p, &apiError{status: http.StatusNotFound, Message: fmt.Sprintf("the model %q does not exist; this server serves %q", f.Model, model),
			Type: "invalid_request_error", Param: ptr("model"), Code: ptr("model_not_found")}
	}
	if f.N != nil && *f.N != 1 {
		return p, badRequest("n", "invalid_value", "n = %d: this server generates one choice per request (n must be 1)", *f.N)
	}
	for _, mt := range []struct {
		name string
		v    *int
	}{{"max_tokens", f.MaxTokens}, {"max_completion_tokens", f.MaxCompletionTokens}} {
		if mt.v == nil {
			continue
		}
		if *mt.v < 1 {
			return p, badRequest(mt.name, "invalid_value", "%s = %d: must be at least 1", mt.name, *mt.v)
		}
		p.maxTokens = *mt.v
	}
	if t := f.Temperature; t != nil {
		if !(*t >= 0 && *t <= 2) || math.IsNaN(*t) {
			return p, badRequest("temperature", "invalid_value", "temperature = %v: must be between 0 and 2", *t)
		}
		p.temperature = *t
	}
	if t := f.TopP; t != nil {
		if !(*t > 0 && *t <= 1) {
			return p, badRequest("top_p", "invalid_value", "top_p = %v: must be in (0, 1]", *t)
		}
		p.topP = *t
	}
	if len(f.Stop) > 4 {
		return p, badRequest("stop", "invalid_value", "stop holds %d strings: at most 4", len(f.Stop))
	}
	for _, s := range f.Stop {
		if s != "" {
			p.stops = append(p.stops, s)
		}
	}
	if f.Seed != nil {
		p.seed, p.seeded = uint64(*f.Seed), true
	}
	if f.StreamOptions != nil {
		if !f.Stream {
			return p, badRequest("stream_options", "invalid_value", "stream_options is only allowed when stream is true")
		}
		p.usage = f.StreamOptions.IncludeUsage
	}
	return p, nil
}

// usage is the API's token accounting.
type usage struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

// completionChoice is a choice of a text completion (and of its chunks).
type completionChoice struct {
	Text         string  `json:"text"`
	Index        int     `json:"index"`
	Logprobs     any     `json:"logprobs"`
	FinishReason *string `json:"finish_reason"`
}

// completion is a text_completion object (response or stream chunk).
type completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []completionChoice `json:"choices"`
	Usage   *usage             `json:"usage"`
}

// chatResponseMessage is the assistant's message of a chat completion.
type chatResponseMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
	Refusal any    `json:"refusal"`
}

// chatChoice is a choice of a chat completion.
type chatChoice struct {
	Index        int                 `json:"index"`
	Message      chatResponseMessage `json:"message"`
	Logprobs     any                 `json:"logprobs"`
	FinishReason string              `json:"finish_reason"`
}

// chatCompletion is a chat.completion object.
type chatCompletion struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage"`
}

// chatDelta is the change a chat chunk carries.
type chatDelta struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// chatChunkChoice is a choice of a chat.completion.chunk.
type chatChunkChoice struct {
	Index        int       `json:"index"`
	Delta        chatDelta `json:"delta"`
	Logprobs     any       `json:"logprobs"`
	FinishReason *string   `json:"finish_reason"`
}

// chatChunk is a chat.completion.chunk object.
type chatChunk struct {
	ID      string            `json:"id"`
	Object  string            `json:"object"`
	Created int64             `json:"created"`
	Model   string            `json:"model"`
	Choices []chatChunkChoice `json:"choices"`
	Usage   *usage            `json:"usage"`
}
