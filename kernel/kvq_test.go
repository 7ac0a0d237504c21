package kernel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// TestQDotRows checks the dispatched cache-row dot products against the
// registry's reference dot, on head-sized rows spaced a wider row apart
// (one KV head of a cache row), and DequantRow against Dequantize.
func TestQDotRows(t *testing.T) {
	const hd, heads, rows = 64, 3, 37
	rng := rand.New(rand.NewPCG(5, 6))
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_1, tensor.Q5_0, tensor.Q5_1, tensor.IQ4_NL} {
		t.Run(dt.String(), func(t *testing.T) {
			ty, _ := ggml.Lookup(dt)
			rb := hd * heads / 32 * ty.BlockBytes
			w := make([]byte, rows*rb)
			x := make([]float32, hd*heads)
			for r := 0; r < rows; r++ {
				for i := range x {
					x[i] = float32(rng.NormFloat64())
				}
				ty.Quantize(x, w[r*rb:(r+1)*rb])
			}
			q := make([]float32, hd)
			for i := range q {
				q[i] = float32(rng.NormFloat64())
			}
			a := &ggml.ActRow{Q: make([]int8, hd), D: make([]float32, hd/32), S: make([]float32, hd/32)}
			ggml.QuantizeActQ8_0(a, q)
			hb := hd / 32 * ty.BlockBytes
			for head := 0; head < heads; head++ {
				out := make([]float32, rows)
				if !QDotRows(dt, out, w[head*hb:], rb, a) {
					if ty.Dot != nil {
						t.Fatalf("no integer path")
					}
					copy(out, make([]float32, rows))
				}
				for r, got := range out {
					off := r*rb + head*hb
					var want float32
					if ty.Dot != nil {
						want = ty.Dot(w[off:off+hb], a)
					}
					if math.Abs(float64(got-want)) > 1e-5*(math.Abs(float64(want))+1) {
						t.Fatalf("head %d row %d: %g, reference %g", head, r, got, want)
					}
					fast, ref := make([]float32, hd), make([]float32, hd)
					DequantRow(dt, fast, w[off:off+hb])
					ty.Dequantize(w[off:off+hb], ref)
					for i := range ref {
						if math.Float32bits(fast[i]) != math.Float32bits(ref[i]) {
							t.Fatalf("head %d row %d: dequantized[%d] = %g, reference %g", head, r, i, fast[i], ref[i])
						}
					}
				}
			}
		})
	}
	if QDotRows(tensor.F16, make([]float32, 1), make([]byte, 128), 128, &ggml.ActRow{}) {
		t.Errorf("F16 reported an integer path")
	}
}
