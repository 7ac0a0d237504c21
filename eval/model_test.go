package eval

import (
	"fmt"
	"math"
)

// mix is splitmix64's finaliser: a cheap, well-spread hash.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// unit maps a hash to [-1, 1).
func unit(h uint64) float64 { return float64(h>>11)/(1<<52) - 1 }

// gauss maps a hash to an approximately standard normal value (Irwin–Hall).
func gauss(h uint64) float64 {
	var s float64
	for i := 0; i < 4; i++ {
		h = mix(h)
		s += float64(h>>11) / (1 << 53)
	}
	return (s - 2) * math.Sqrt(3)
}

// hashModel is a small deterministic language model: row t's logits are a
// fixed pseudo-random function of tokens[t] (a bigram table) plus, with
// ctxWeight, a function of a running hash of tokens[0..t], plus, with
// noise, Gaussian perturbation keyed on noiseSeed (a "compressed" copy).
type hashModel struct {
	vocab     int
	seed      uint64
	scale     float64
	ctxWeight float64
	noise     float64
	noiseSeed uint64

	calls  int
	inputs [][]int // recorded when record is set
	record bool
}

func (m *hashModel) VocabSize() int { return m.vocab }

func (m *hashModel) Logits(tokens []int, out []float32) error {
	if len(out) < len(tokens)*m.vocab {
		return fmt.Errorf("out too short")
	}
	m.calls++
	if m.record {
		m.inputs = append(m.inputs, append([]int(nil), tokens...))
	}
	h := m.seed
	for t, tok := range tokens {
		h = mix(h ^ uint64(tok))
		row := out[t*m.vocab : (t+1)*m.vocab]
		tb := mix(m.seed ^ uint64(tok)<<24)
		for v := range row {
			x := m.scale * unit(mix(tb^uint64(v)))
			if m.ctxWeight != 0 {
				x += m.ctxWeight * unit(mix(h^uint64(v)<<1))
			}
			if m.noise != 0 {
				x += m.noise * gauss(m.noiseSeed^h^uint64(v)<<32)
			}
			row[v] = float32(x)
		}
	}
	return nil
}

// zipfModel has Zipf-like next-token distributions over a large vocabulary,
// closer to a real LM's than hashModel's: the logit of the id at rank r
// (a context-dependent permutation, frequent ids biased low) is −s·ln r with
// a context-dependent exponent s, plus optional Gaussian noise.
type zipfModel struct {
	vocab     int
	seed      uint64
	noise     float64
	noiseSeed uint64
	perm      []int32
}

func (m *zipfModel) VocabSize() int { return m.vocab }

func (m *zipfModel) Logits(tokens []int, out []float32) error {
	if m.perm == nil {
		// A fixed permutation shared by all rows, then a per-row rotation of
		// the top ranks, keeps it cheap while varying the argmax.
		m.perm = make([]int32, m.vocab)
		for i := range m.perm {
			m.perm[i] = int32(i)
		}
		for i := len(m.perm) - 1; i > 0; i-- {
			j := int(mix(m.seed^uint64(i)) % uint64(i+1))
			m.perm[i], m.perm[j] = m.perm[j], m.perm[i]
		}
	}
	h := m.seed
	for t, tok := range tokens {
		h = mix(h ^ uint64(tok))
		row := out[t*m.vocab : (t+1)*m.vocab]
		s := 0.8 + 1.4*float64(h>>11)/(1<<53) // exponent in [0.8, 2.2)
		shift := int(h % uint64(m.vocab))
		for r := 0; r < m.vocab; r++ {
			id := m.perm[(r+shift)%m.vocab]
			x := -s*math.Log(float64(r+1)) + 0.3*unit(mix(h^uint64(id)))
			if m.noise != 0 {
				x += m.noise * gauss(m.noiseSeed^h^uint64(id)<<32)
			}
			row[id] = float32(x)
		}
	}
	return nil
}

// stream returns n pseudo-random tokens in [0, vocab).
func testStream(n, vocab int, seed uint64) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = int(mix(seed^uint64(i)) % uint64(vocab))
	}
	return s
}
