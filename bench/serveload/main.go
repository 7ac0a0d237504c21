// Command serveload is a load driver for OpenAI-compatible servers (terse
// serve, llama.cpp's llama-server, …): C clients each post R streaming
// /v1/completions requests one after another, all clients at once, and it
// reports the aggregate decode rate, each client's rate, the time to first
// token and the time between tokens.
//
//	go run ./bench/serveload -url http://127.0.0.1:8080 -clients 16 -max-tokens 64
//
// Tokens are counted from the stream's usage chunk when the server sends
// one (stream_options.include_usage), otherwise one per chunk with text.
// Aggregate decode tok/s is all generated tokens over the wall time from
// the first request's start to the last one's end; a client's tok/s is its
// tokens after the first over the time from its first token to its last.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type config struct {
	url, model, prompt string
	clients, requests  int
	maxTokens          int
	ignoreEOS, warmup  bool
	temperature        float64
}

// result is one request's timing.
type result struct {
	start, first, last time.Time
	gaps               []time.Duration
	tokens             int
	err                error
}

// summary is what a run reports (JSON keys with units).
type summary struct {
	URL            string    `json:"url"`
	Model          string    `json:"model"`
	Clients        int       `json:"clients"`
	Requests       int       `json:"requests"`
	Failed         int       `json:"failed"`
	Tokens         int       `json:"tokens"`
	WallS          float64   `json:"wall_s"`
	AggregateTPS   float64   `json:"aggregate_decode_tps"`
	PerClientTPS   []float64 `json:"per_client_tps"`
	MeanClientTPS  float64   `json:"mean_client_tps"`
	TTFTP50S       float64   `json:"ttft_p50_s"`
	TTFTP99S       float64   `json:"ttft_p99_s"`
	InterTokenP50S float64   `json:"inter_token_p50_s"`
	InterTokenP99S float64   `json:"inter_token_p99_s"`
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "http://127.0.0.1:8080", "server base URL (the /v1 routes hang under it)")
	flag.BoolVar(&c.warmup, "warmup", true, "send one request with the same prompt before the measured ones (a server with a prefix cache then answers every measured request from it)")
	flag.StringVar(&c.model, "model", "", "model id to ask for (default: the first of GET /v1/models)")
	flag.StringVar(&c.prompt, "prompt", "Once upon a time, there was a little", "prompt of every request")
	flag.IntVar(&c.clients, "clients", 1, "concurrent clients")
	flag.IntVar(&c.requests, "requests", 2, "requests each client sends, one after another")
	flag.IntVar(&c.maxTokens, "max-tokens", 64, "max_tokens of every request")
	flag.BoolVar(&c.ignoreEOS, "ignore-eos", true, "send ignore_eos (llama.cpp and terse extension) so every request generates max-tokens")
	flag.Float64Var(&c.temperature, "temperature", 0, "sampling temperature")
	jsonOut := flag.Bool("json", false, "print one JSON object")
	flag.Parse()
	if c.clients < 1 || c.requests < 1 || c.maxTokens < 1 {
		fmt.Fprintln(os.Stderr, "serveload: -clients, -requests and -max-tokens must be at least 1")
		os.Exit(2)
	}
	s, err := run(c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "serveload:", err)
		os.Exit(1)
	}
	if *jsonOut {
		json.NewEncoder(os.Stdout).Encode(s)
		return
	}
	fmt.Printf("%s (%s): %d clients × %d requests, %d tokens in %.2f s, %d failed\n", s.URL, s.Model, s.Clients, s.Requests/s.Clients, s.Tokens, s.WallS, s.Failed)
	fmt.Printf("  aggregate decode %.1f tok/s; per client mean %.1f tok/s (min %.1f, max %.1f)\n", s.AggregateTPS, s.MeanClientTPS, slices.Min(s.PerClientTPS), slices.Max(s.PerClientTPS))
	fmt.Printf("  TTFT p50 %.1f ms, p99 %.1f ms; time between tokens p50 %.2f ms, p99 %.2f ms\n", 1e3*s.TTFTP50S, 1e3*s.TTFTP99S, 1e3*s.InterTokenP50S, 1e3*s.InterTokenP99S)
}

func run(c config) (summary, error) {
	if c.model == "" {
		m, err := firstModel(c.url)
		if err != nil {
			return summary{}, err
		}
		c.model = m
	}
	// One warm-up request (page faults, first allocations) outside the
	// clock; without it the first request is cold (to time a prefix
	// cache's misses).
	if c.warmup {
		if r := request(c); r.err != nil {
			return summary{}, fmt.Errorf("warm-up request: %w", r.err)
		}
	}
	results := make([][]result, c.clients)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range c.requests {
				results[i] = append(results[i], request(c))
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	s := summary{URL: c.url, Model: c.model, Clients: c.clients, Requests: c.clients * c.requests, WallS: wall.Seconds()}
	var ttft, gaps []float64
	var firstErr error
	for _, rs := range results {
		var toks int
		var span time.Duration
		for _, r := range rs {
			if r.err != nil {
				s.Failed++
				firstErr = cmpOr(firstErr, r.err)
				continue
			}
			s.Tokens += r.tokens
			toks += r.tokens - 1
			span += r.last.Sub(r.first)
			ttft = append(ttft, r.first.Sub(r.start).Seconds())
			for _, g := range r.gaps {
				gaps = append(gaps, g.Seconds())
			}
		}
		rate := 0.0
		if span > 0 {
			rate = float64(toks) / span.Seconds()
		}
		s.PerClientTPS = append(s.PerClientTPS, rate)
		s.MeanClientTPS += rate / float64(c.clients)
	}
	if s.Failed == s.Requests {
		return s, fmt.Errorf("every request failed: %w", firstErr)
	}
	s.AggregateTPS = float64(s.Tokens) / wall.Seconds()
	s.TTFTP50S, s.TTFTP99S = quantile(ttft, 0.5), quantile(ttft, 0.99)
	s.InterTokenP50S, s.InterTokenP99S = quantile(gaps, 0.5), quantile(gaps, 0.99)
	if firstErr != nil {
		fmt.Fprintln(os.Stderr, "serveload: first failure:", firstErr)
	}
	return s, nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// quantile is the q-quantile of xs (nearest rank).
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(xs))
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func firstModel(url string) (string, error) {
	resp, err := http.Get(url + "/v1/models")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var l struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&l); err != nil || len(l.Data) == 0 {
		return "", fmt.Errorf("GET %s/v1/models: no model listed (%v)", url, err)
	}
	return l.Data[0].ID, nil
}

// client opens a connection per request: servers close idle keep-alive
// connections at different times, and a request must not fail for that.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// request sends one streaming completion and times its chunks.
func request(c config) result {
	body, _ := json.Marshal(map[string]any{
		"model": c.model, "prompt": c.prompt, "max_tokens": c.maxTokens, "temperature": c.temperature,
		"stream": true, "stream_options": map[string]any{"include_usage": true}, "ignore_eos": c.ignoreEOS,
	})
	r := result{start: time.Now()}
	resp, err := client.Post(c.url+"/v1/completions", "application/json", bytes.NewReader(body))
	if err != nil {
		r.err = err
		return r
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		r.err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		return r
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	chunks, usage, done := 0, 0, false
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if data == "[DONE]" {
			done = true
			break
		}
		var ch struct {
			Choices []struct {
				Text string `json:"text"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Error any `json:"error"`
		}
		if err := json.Unmarshal([]byte(data), &ch); err != nil {
			r.err = fmt.Errorf("chunk %q: %w", data, err)
			return r
		}
		if ch.Error != nil {
			r.err = fmt.Errorf("error chunk: %s", data)
			return r
		}
		if ch.Usage != nil && ch.Usage.CompletionTokens > 0 {
			usage = ch.Usage.CompletionTokens
		}
		if len(ch.Choices) > 0 && ch.Choices[0].Text != "" {
			now := time.Now()
			if chunks == 0 {
				r.first = now
			} else {
				r.gaps = append(r.gaps, now.Sub(r.last))
			}
			r.last = now
			chunks++
		}
	}
	if err := sc.Err(); err != nil {
		r.err = err
		return r
	}
	if !done {
		r.err = errors.New("the stream ended without [DONE]")
		return r
	}
	if chunks == 0 {
		r.err = errors.New("no text came back")
		return r
	}
	r.tokens = chunks
	if usage > 0 {
		r.tokens = usage
	}
	return r
}
