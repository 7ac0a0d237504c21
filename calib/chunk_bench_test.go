package calib

import (
	"context"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/terse-llm/terse/load"
)

// BenchmarkBlockChunk times one calibration chunk through one block of the
// model at $TERSE_BENCH_MODEL (skipped without it): the forward pass alone,
// and with the Hessians GPTQ collects (every projection's XᵀX). Its
// per-chunk cost times chunks × blocks is the part of a layer-by-layer GPTQ
// run that grows with the calibration text.
func BenchmarkBlockChunk(b *testing.B) {
	path := os.Getenv("TERSE_BENCH_MODEL")
	if path == "" {
		b.Skip("TERSE_BENCH_MODEL not set")
	}
	ck, err := load.Open(path, load.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer ck.Close()
	m := ck.Model
	const n = 512
	r := rand.New(rand.NewPCG(1, 2))
	tokens := randomTokens(r, n, m.Config.VocabSize)
	x := make([]float32, n*m.Config.Dim)
	if err := m.Embed(tokens, x); err != nil {
		b.Fatal(err)
	}
	br := m.NewBlockRunner(n)
	work := make([]float32, len(x))
	for _, hess := range []bool{false, true} {
		name := "forward"
		if hess {
			name = "forward+hessians"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				copy(work, x)
				col := &Collector{Include: func(s string) bool { return strings.HasPrefix(s, "blk.0.") }}
				if hess {
					col.Hessians = func(string) bool { return true }
				}
				if err := br.Run(context.Background(), 0, work, n, col); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
