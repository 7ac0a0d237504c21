package serve

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/terse-llm/terse/load"
)

// BenchmarkStreams measures the server end to end on stories260K (or the
// checkpoint $TERSE_BENCH_MODEL names): c streaming clients at once, 128
// tokens each (ignore_eos), per iteration.
func BenchmarkStreams(b *testing.B) {
	ck := openStories(b)
	if p := os.Getenv("TERSE_BENCH_MODEL"); p != "" {
		var err error
		if ck, err = load.Open(p, load.Options{}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { ck.Close() })
	}
	for _, c := range []int{1, 16} {
		b.Run(fmt.Sprintf("clients=%d", c), func(b *testing.B) {
			_, hs := newTestServer(b, ck, Options{})
			const n = 128
			for b.Loop() {
				var wg sync.WaitGroup
				for range c {
					wg.Add(1)
					go func() {
						defer wg.Done()
						streamCompletion(b, hs.URL, map[string]any{"model": "stories260K", "prompt": "Once upon a time", "max_tokens": n, "temperature": 0, "ignore_eos": true})
					}()
				}
				wg.Wait()
			}
			b.ReportMetric(float64(c*n*b.N)/b.Elapsed().Seconds(), "tok/s")
		})
	}
}
