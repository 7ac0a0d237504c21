package model

import (
	"context"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// BenchmarkDecode reports the cost and allocations of one decode step, at
// positions cycling through 0–255 so that the cost does not grow with b.N.
func BenchmarkDecode(b *testing.B) {
	cfg := Config{Arch: "llama", Dim: 256, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 64, FFNDim: 512,
		VocabSize: 1000, NormEps: 1e-5, RopeTheta: 10000}
	t := &testing.T{}
	m, _ := randomModel(t, cfg, tensor.F16, 1)
	st := m.NewState(256, 1)
	logits := make([]float32, cfg.VocabSize)
	tok := []int{3}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if st.Pos() == 256 {
			st.Reset()
		}
		if err := st.Forward(tok, logits, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrefill reports the cost of one 128-token prefill.
func BenchmarkPrefill(b *testing.B) {
	cfg := Config{Arch: "llama", Dim: 256, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 64, FFNDim: 512,
		VocabSize: 1000, NormEps: 1e-5, RopeTheta: 10000}
	t := &testing.T{}
	m, _ := randomModel(t, cfg, tensor.F16, 1)
	const n = 128
	st := m.NewState(n, n)
	logits := make([]float32, cfg.VocabSize)
	tokens := make([]int, n)
	for i := range tokens {
		tokens[i] = (i * 7) % cfg.VocabSize
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		st.Reset()
		if err := st.Forward(tokens, logits, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeBatch16 reports one decode step of 16 sequences in one
// batch (the server's shape), at positions cycling through 0–127.
func BenchmarkDecodeBatch16(b *testing.B) {
	cfg := Config{Arch: "llama", Dim: 256, NLayers: 2, NHeads: 4, NKVHeads: 2, HeadDim: 64, FFNDim: 512,
		VocabSize: 1000, NormEps: 1e-5, RopeTheta: 10000}
	t := &testing.T{}
	m, _ := randomModel(t, cfg, tensor.F16, 1)
	const seqs, ctx = 16, 128
	e := m.NewEngine(ctx, seqs)
	bt := Batch{Tokens: make([]int, seqs), Seqs: make([]int, seqs), Pos: make([]int, seqs)}
	for i := range seqs {
		if _, err := e.AddSeq(i, nil); err != nil {
			b.Fatal(err)
		}
		bt.Tokens[i], bt.Seqs[i] = 3+i, i
	}
	logits := make([]float32, seqs*cfg.VocabSize)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if bt.Pos[0] == ctx {
			for s := range seqs {
				e.Seq(s).Truncate(0)
				bt.Pos[s] = 0
			}
		}
		if err := e.Forward(context.Background(), bt, logits); err != nil {
			b.Fatal(err)
		}
		for s := range bt.Pos {
			bt.Pos[s]++
		}
	}
}
