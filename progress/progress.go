// Package progress draws a progress bar for long-running work on a stream
// such as stderr.
//
// On a terminal the bar is redrawn in place with a carriage return at most
// about five times a second:
//
//	eval  42% [==========>              ] 43008/102400 tok  1234 tok/s  ETA 48s
//
// On anything else (a file, a pipe, a test buffer) it writes a plain line at
// most every ten seconds and a final summary line, so logs stay readable.
// A Bar made with a nil writer, and Discard, cost one branch per call.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Discard is a disabled bar: every method is a no-op.
var Discard = &Bar{}

const (
	termInterval  = 200 * time.Millisecond
	plainInterval = 10 * time.Second
	barWidth      = 25
)

// Bar reports the progress of work measured in units (tokens, bytes, …).
// Add may be called from several goroutines at once.
type Bar struct {
	w     io.Writer // nil: disabled
	total int64
	label string
	unit  string
	term  bool
	start time.Time
	now   func() time.Time

	done atomic.Int64
	next atomic.Int64 // earliest UnixNano of the next redraw

	mu       sync.Mutex
	finished bool
	lastLen  int
}

// New returns a bar for total units (0 or less when the total is unknown)
// that writes to w; a nil w gives a disabled bar. label names the work and
// unit is appended to the rate ("tok" gives "1234 tok/s").
func New(w io.Writer, total int64, label, unit string) *Bar {
	if w == nil {
		return Discard
	}
	return newBar(w, total, label, unit, isTerminal(w), time.Now)
}

func newBar(w io.Writer, total int64, label, unit string, term bool, now func() time.Time) *Bar {
	b := &Bar{w: w, total: total, label: label, unit: unit, term: term, now: now}
	b.start = now()
	b.next.Store(b.start.Add(b.interval()).UnixNano())
	return b
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (b *Bar) interval() time.Duration {
	if b.term {
		return termInterval
	}
	return plainInterval
}

// Enabled reports whether the bar writes anything.
func (b *Bar) Enabled() bool { return b != nil && b.w != nil }

// Add records n more units done and redraws when it is time to.
func (b *Bar) Add(n int64) {
	if b == nil || b.w == nil {
		return
	}
	b.done.Add(n)
	next := b.next.Load()
	now := b.now()
	if now.UnixNano() < next {
		return
	}
	// One goroutine wins the right to draw this tick.
	if !b.next.CompareAndSwap(next, now.Add(b.interval()).UnixNano()) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.draw(now, false)
}

// Finish draws the final state followed by a newline. Later calls to Add and
// Finish do nothing.
func (b *Bar) Finish() {
	if b == nil || b.w == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.finished {
		return
	}
	b.finished = true
	b.draw(b.now(), true)
}

// draw writes one status line; b.mu is held.
func (b *Bar) draw(now time.Time, final bool) {
	line := b.line(b.done.Load(), now.Sub(b.start), final)
	if b.term {
		pad := ""
		if n := b.lastLen - len(line); n > 0 {
			pad = strings.Repeat(" ", n)
		}
		b.lastLen = len(line)
		end := ""
		if final {
			end = "\n"
		}
		fmt.Fprintf(b.w, "\r%s%s%s", line, pad, end)
		return
	}
	fmt.Fprintln(b.w, line)
}

// line formats the status for done units after elapsed time.
func (b *Bar) line(done int64, elapsed time.Duration, final bool) string {
	var s strings.Builder
	if b.label != "" {
		s.WriteString(b.label)
		s.WriteString(" ")
	}
	secs := elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(done) / secs
	}
	if b.total > 0 {
		frac := float64(done) / float64(b.total)
		if frac > 1 {
			frac = 1
		}
		fmt.Fprintf(&s, "%3d%% [", int(frac*100))
		fill := int(frac * barWidth)
		s.WriteString(strings.Repeat("=", fill))
		if fill < barWidth {
			s.WriteString(">")
			s.WriteString(strings.Repeat(" ", barWidth-fill-1))
		}
		fmt.Fprintf(&s, "] %d/%d %s", done, b.total, b.unit)
	} else {
		fmt.Fprintf(&s, "%d %s", done, b.unit)
	}
	fmt.Fprintf(&s, "  %s %s/s", formatRate(rate), b.unit)
	switch {
	case final:
		fmt.Fprintf(&s, "  in %s", formatDuration(elapsed))
	case b.total > 0 && rate > 0 && done < b.total:
		eta := time.Duration(float64(b.total-done) / rate * float64(time.Second))
		fmt.Fprintf(&s, "  ETA %s", formatDuration(eta))
	}
	return s.String()
}

func formatRate(r float64) string {
	switch {
	case r >= 100:
		return fmt.Sprintf("%.0f", r)
	case r >= 10:
		return fmt.Sprintf("%.1f", r)
	default:
		return fmt.Sprintf("%.2f", r)
	}
}

func formatDuration(d time.Duration) string {
	switch {
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		d = d.Round(time.Second)
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if m == 0 {
			return fmt.Sprintf("%ds", s)
		}
		return fmt.Sprintf("%dm%02ds", m, s)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
}
