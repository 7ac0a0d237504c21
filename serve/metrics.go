package serve

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// histogram is a Prometheus histogram with fixed upper bounds (seconds).
type histogram struct {
	bounds []float64
	counts []uint64 // per bound, not cumulative; the last is +Inf
	sum    float64
	n      uint64
}

func newHistogram(bounds ...float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.n++
}

// quantile estimates the q-quantile from the buckets (the upper bound of
// the bucket it falls in), for tests and logs.
func (h *histogram) quantile(q float64) float64 {
	if h.n == 0 {
		return 0
	}
	target := uint64(math.Ceil(q * float64(h.n)))
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= target {
			if i < len(h.bounds) {
				return h.bounds[i]
			}
			return math.Inf(1)
		}
	}
	return math.Inf(1)
}

func (h *histogram) write(w io.Writer, name, help string) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i]
		fmt.Fprintf(w, "%s_bucket{le=\"%g\"} %d\n", name, b, cum)
	}
	cum += h.counts[len(h.bounds)]
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %g\n%s_count %d\n", name, cum, name, h.sum, name, h.n)
}

// rateWindow is how far back the tokens/s gauge looks.
const rateWindow = 10 * time.Second

// metrics are the server's counters, written by the scheduler and the
// handlers and read by /metrics.
type metrics struct {
	mu               sync.Mutex
	promptTokens     uint64
	generatedTokens  uint64
	requests         map[int]uint64 // by HTTP status
	queue, active    int
	ttft, interToken *histogram
	recent           []tokenEvent // decode steps within rateWindow
}

type tokenEvent struct {
	at time.Time
	n  int
}

func newMetrics() *metrics {
	b := []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	return &metrics{requests: map[int]uint64{}, ttft: newHistogram(b...), interToken: newHistogram(b...)}
}

// generated records n tokens sampled at now.
func (m *metrics) generated(now time.Time, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.generatedTokens += uint64(n)
	m.recent = append(m.recent, tokenEvent{now, n})
	m.trim(now)
}

// trim drops rate events older than the window.
func (m *metrics) trim(now time.Time) {
	i := 0
	for i < len(m.recent) && now.Sub(m.recent[i].at) > rateWindow {
		i++
	}
	if i > 0 {
		m.recent = append(m.recent[:0], m.recent[i:]...)
	}
}

// tokensPerSecond is the generation rate over the last window.
func (m *metrics) tokensPerSecond(now time.Time) float64 {
	m.trim(now)
	if len(m.recent) == 0 {
		return 0
	}
	n := 0
	for _, e := range m.recent {
		n += e.n
	}
	span := now.Sub(m.recent[0].at)
	if span < time.Second {
		span = time.Second
	}
	return float64(n) / span.Seconds()
}

func (m *metrics) observe(f func(m *metrics)) {
	m.mu.Lock()
	f(m)
	m.mu.Unlock()
}

// write renders the Prometheus text exposition format (version 0.0.4).
func (m *metrics) write(w io.Writer, hits, lookups int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	counter("terse_prompt_tokens_total", "Prompt tokens prefilled (or restored from the prefix cache).", m.promptTokens)
	counter("terse_generated_tokens_total", "Tokens generated.", m.generatedTokens)
	fmt.Fprintf(w, "# HELP terse_requests_total Requests answered, by HTTP status.\n# TYPE terse_requests_total counter\n")
	for _, code := range sortedKeys(m.requests) {
		fmt.Fprintf(w, "terse_requests_total{code=\"%d\"} %d\n", code, m.requests[code])
	}
	gauge("terse_tokens_per_second", fmt.Sprintf("Tokens generated per second over the last %v.", rateWindow), m.tokensPerSecond(now))
	gauge("terse_queue_length", "Requests waiting for a sequence slot.", float64(m.queue))
	gauge("terse_active_sequences", "Sequences being prefilled or decoded.", float64(m.active))
	rate := 0.0
	if lookups > 0 {
		rate = float64(hits) / float64(lookups)
	}
	gauge("terse_prefix_cache_hit_rate", "Fraction of prefix-cache lookups that restored a prefix (0 without a prefix cache).", rate)
	m.ttft.write(w, "terse_time_to_first_token_seconds", "Time from a request's arrival to its first generated token.")
	m.interToken.write(w, "terse_inter_token_seconds", "Time between consecutive generated tokens of a sequence.")
}

func sortedKeys(m map[int]uint64) []int { return slices.Sorted(maps.Keys(m)) }
