package codec

import (
	"math"
	"sync"
)

// Parametric probability models of a channel's quantized differences, used
// by planes coded with channel means (PredictMean): rather than a table
// counted over the plane and stored, each channel names one of 256 fixed
// tables with one byte, its model code m. The low 7 bits give the spread
// s = 2^((m&127 − spreadBias)/8) bins; the top bit the family, a
// discretized Laplace distribution of scale s (0) or Gaussian of standard
// deviation s (1), centred on 0. A table gives every symbol of the
// alphabet a nonzero frequency, so any difference can be coded under any
// model.
const (
	modelCodes = 256
	spreadBias = 40
)

var (
	modelOnce   sync.Once
	modelTables [modelCodes]*Table
	modelCost   [modelCodes][maxSym]float64 // −log2 of each symbol's probability
)

// spreadOf is the spread in bins of model code m.
func spreadOf(m int) float64 { return math.Exp2(float64(m&127-spreadBias) / 8) }

// tailMass is P(|Q| ≥ a) for an integer a ≥ 1 of the discretized
// distribution of model code m (Q the nearest integer to a draw).
func tailMass(m int, a float64) float64 {
	s := spreadOf(m)
	if m&128 == 0 {
		return math.Exp(-(a - 0.5) / s)
	}
	return math.Erfc((a - 0.5) / (s * math.Sqrt2))
}

// buildModels computes the 256 tables. A symbol's probability is the mass
// of the zigzag values it covers: z = 2q for q ≥ 0, −2q−1 below, so the
// values z ≥ 2a (a ≥ 1) are q = a and |Q| > a, mass ½(T(a) + T(a+1))
// with T(a) = P(|Q| ≥ a).
func buildModels() {
	for m := range modelCodes {
		var p [maxSym]float64
		for z := 0; z < directSyms; z++ {
			q := math.Abs(float64(unzigzag(uint64(z))))
			if q == 0 {
				p[z] = 1 - tailMass(m, 1)
			} else {
				p[z] = (tailMass(m, q) - tailMass(m, q+1)) / 2
			}
		}
		// Symbols above: bit length n ≥ 5, half h, z in [(2+h)·2^(n−2),
		// (3+h)·2^(n−2)); the last takes the tail.
		for s := directSyms; s < maxSym; s++ {
			k := s - directSyms
			n := uint(k/2 + 5)
			lo := float64(uint64(2|k&1) << (n - 2))
			hi := float64(uint64(3+k&1) << (n - 2))
			above := func(z float64) float64 { return (tailMass(m, z/2) + tailMass(m, z/2+1)) / 2 }
			if s == maxSym-1 {
				p[s] = above(lo)
			} else {
				p[s] = above(lo) - above(hi)
			}
		}
		// Frequencies: one each, the rest in proportion (rounded down),
		// what rounding leaves to the likeliest symbol; NewTable keeps
		// counts that already sum to the total.
		var counts [maxSym]uint64
		var sum float64
		for _, x := range p {
			sum += max(x, 0)
		}
		left, big := uint64(probTotal), 0
		for s, x := range p {
			counts[s] = 1 + uint64(max(x, 0)/sum*(probTotal-maxSym))
			left -= counts[s]
			if x > p[big] {
				big = s
			}
		}
		counts[big] += left
		t, err := NewTable(counts[:])
		if err != nil {
			panic("codec: model table: " + err.Error()) // counts are in range by construction
		}
		modelTables[m] = t
		for s := range maxSym {
			modelCost[m][s] = ProbBits - math.Log2(float64(t.Freq(s)))
		}
	}
}

// modelTable returns the table of model code m.
func modelTable(m byte) *Table {
	modelOnce.Do(buildModels)
	return modelTables[m]
}

// chooseModel returns the model code under which the symbols syms (each
// a channel's difference's symbol) cost the fewest bits, searching near
// the spreads fitted to the differences (mean |q| for the Laplace family,
// the root mean square for the Gaussian).
func chooseModel(syms []uint8, meanAbs, rms float64) byte {
	modelOnce.Do(buildModels)
	best, bestCost := byte(0), math.Inf(1)
	for fam, s := range [2]float64{meanAbs, rms} {
		c0 := 0 // all zeros: the narrowest spread
		if s > 0 {
			c0 = int(math.Round(8*math.Log2(s))) + spreadBias
		}
		for c := c0 - 2; c <= c0+2; c++ {
			if c < 0 || c > 127 {
				continue
			}
			m := fam<<7 | c
			var cost float64
			for _, sym := range syms {
				cost += modelCost[m][sym]
			}
			if cost < bestCost {
				best, bestCost = byte(m), cost
			}
		}
	}
	return best
}
