package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestDisabled(t *testing.T) {
	for _, b := range []*Bar{New(nil, 10, "x", "tok"), Discard, nil} {
		b.Add(5)
		b.Finish()
		if b.Enabled() {
			t.Fatal("disabled bar reports Enabled")
		}
	}
	if n := testing.AllocsPerRun(100, func() { Discard.Add(1) }); n != 0 {
		t.Fatalf("Discard.Add allocates %v", n)
	}
}

func TestPlainOutput(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	b := newBar(&buf, 1000, "eval", "tok", false, c.now)
	for i := 0; i < 100; i++ {
		c.advance(100 * time.Millisecond)
		b.Add(10)
	}
	b.Finish()
	b.Finish()
	b.Add(5)
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	// 10 s elapsed: one periodic line at 10 s, then the final line.
	if len(lines) != 2 {
		t.Fatalf("got %d lines, want 2:\n%s", len(lines), buf.String())
	}
	last := lines[len(lines)-1]
	for _, want := range []string{"eval", "100%", "1000/1000 tok", "100 tok/s", "in 10s"} {
		if !strings.Contains(last, want) {
			t.Errorf("final line %q lacks %q", last, want)
		}
	}
	if strings.Contains(buf.String(), "\r") {
		t.Error("plain output contains a carriage return")
	}
}

func TestTerminalOutput(t *testing.T) {
	var buf bytes.Buffer
	c := &clock{t: time.Unix(1000, 0)}
	b := newBar(&buf, 400, "eval", "tok", true, c.now)
	for i := 0; i < 40; i++ {
		c.advance(50 * time.Millisecond)
		b.Add(5)
	}
	out := buf.String()
	if n := strings.Count(out, "\r"); n < 8 || n > 11 {
		t.Errorf("%d redraws in 2 s, want about 10", n)
	}
	if !strings.Contains(out, "ETA") || !strings.Contains(out, "100 tok/s") {
		t.Errorf("no ETA or rate in %q", out)
	}
	b.Finish()
	if !strings.HasSuffix(buf.String(), "\n") {
		t.Error("Finish does not end the line")
	}
}

func TestConcurrentAdd(t *testing.T) {
	var buf bytes.Buffer
	b := newBar(&buf, 0, "", "B", true, time.Now)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				b.Add(1)
			}
		}()
	}
	wg.Wait()
	b.Finish()
	if !strings.Contains(buf.String(), "8000 B") {
		t.Errorf("final line %q lacks the count 8000", buf.String())
	}
}

func TestFormatDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{1500 * time.Millisecond, "1.5s"}, {42 * time.Second, "42s"}, {125 * time.Second, "2m05s"}, {2*time.Hour + 3*time.Minute, "2h03m"}} {
		if got := formatDuration(tc.d); got != tc.want {
			t.Errorf("formatDuration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
