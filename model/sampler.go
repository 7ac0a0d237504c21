package model

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Sampler picks the next token from logits: greedily at temperature 0,
// otherwise from the softmax at that temperature, restricted to the top-k
// tokens (k > 0) and to the smallest set whose mass reaches top-p (p < 1).
type Sampler struct {
	Temp float64
	TopK int
	TopP float64
	rng  *rand.Rand
	idx  []int
	prob []float64
}

// NewSampler makes a sampler; seed fixes its random stream.
func NewSampler(temp float64, topK int, topP float64, seed uint64) *Sampler {
	return &Sampler{Temp: temp, TopK: topK, TopP: topP, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Argmax is the index of the largest logit (the first, on ties).
func Argmax(logits []float32) int {
	best := 0
	for i, v := range logits {
		if v > logits[best] {
			best = i
		}
	}
	return best
}

// Sample picks a token id from logits.
func (s *Sampler) Sample(logits []float32) int {
	if s.Temp <= 0 {
		return Argmax(logits)
	}
	n := len(logits)
	if cap(s.idx) < n {
		s.idx = make([]int, n)
		s.prob = make([]float64, n)
	}
	idx, prob := s.idx[:n], s.prob[:n]
	maxv := float64(logits[Argmax(logits)])
	for i, v := range logits {
		idx[i] = i
		prob[i] = math.Exp((float64(v) - maxv) / s.Temp)
	}
	keep := n
	if (s.TopK > 0 && s.TopK < n) || (s.TopP > 0 && s.TopP < 1) {
		sort.Slice(idx, func(a, b int) bool { return prob[idx[a]] > prob[idx[b]] })
		if s.TopK > 0 && s.TopK < n {
			keep = s.TopK
		}
		if s.TopP > 0 && s.TopP < 1 {
			var total float64
			for _, i := range idx[:keep] {
				total += prob[i]
			}
			var cum float64
			for j, i := range idx[:keep] {
				cum += prob[i]
				if cum >= s.TopP*total {
					keep = j + 1
					break
				}
			}
		}
	}
	var total float64
	for _, i := range idx[:keep] {
		total += prob[i]
	}
	r := s.rng.Float64() * total
	for _, i := range idx[:keep] {
		r -= prob[i]
		if r <= 0 {
			return i
		}
	}
	return idx[keep-1]
}
