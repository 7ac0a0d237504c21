package kernel

import (
	"fmt"
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

// TestCodes packs random codes with PutCode and checks Code, and the dot
// and axpy kernels at every level this CPU supports, against float64 sums
// over the codes as drawn.
func TestCodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, b := range []int{2, 4, 8} {
		for _, n := range []int{32, 64, 128, 96} {
			q := make([]int, n)
			codes := make([]byte, n*b/8)
			w := make([]float32, n)
			for c := range q {
				q[c] = rng.IntN(1 << b)
				PutCode(codes, c, b, q[c])
				w[c] = float32(rng.NormFloat64())
			}
			var want, mag float64
			for c := range q {
				if got := Code(codes, c, b); got != q[c] {
					t.Fatalf("%d bits: Code(%d) = %d, stored %d", b, c, got, q[c])
				}
				want += float64(w[c]) * float64(q[c])
				mag += math.Abs(float64(w[c]) * float64(q[c]))
			}
			for l := levelGeneric; l <= supported; l++ {
				if got := dotCodes(l, w, codes, b); math.Abs(float64(got)-want) > 1e-6*mag {
					t.Errorf("%s, %d bits, %d channels: dot %g, want %g", l, b, n, got, want)
				}
				out := make([]float32, n)
				for c := range out {
					out[c] = float32(c)
				}
				axpyCodes(l, out, 0.75, codes, b)
				for c, x := range out {
					if want := float32(c) + 0.75*float32(q[c]); x != want {
						t.Fatalf("%s, %d bits, %d channels: axpy[%d] = %g, want %g", l, b, n, c, x, want)
					}
				}
			}
		}
	}
}

// TestCodesRows checks the row-batched forms against float64 sums.
func TestCodesRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	for _, b := range []int{2, 4, 8} {
		for _, n := range []int{32, 64, 128} {
			const rows = 7
			k := n / CodeBlock
			q := make([]int, rows*n)
			codes := make([]byte, rows*n*b/8)
			for i := range q {
				q[i] = rng.IntN(1 << b)
				PutCode(codes[i/n*n*b/8:], i%n, b, q[i])
			}
			w, a := make([]float32, n), make([]float32, rows*k)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			for i := range a {
				a[i] = float32(rng.NormFloat64())
			}
			dst := make([]float32, rows)
			DotCodesRows(dst, w, codes, b)
			for r := range dst {
				var want, mag float64
				for c := 0; c < n; c++ {
					want += float64(w[c]) * float64(q[r*n+c])
					mag += math.Abs(float64(w[c]) * float64(q[r*n+c]))
				}
				if math.Abs(float64(dst[r])-want) > 1e-6*mag {
					t.Errorf("%d bits, %d channels: row %d dot %g, want %g", b, n, r, dst[r], want)
				}
			}
			for l := levelGeneric; l <= supported; l++ {
				out := make([]float32, n)
				axpyCodesRows(l, out, a, codes, b)
				for c := range out {
					var want, mag float64
					for r := 0; r < rows; r++ {
						want += float64(a[r*k+c/CodeBlock]) * float64(q[r*n+c])
						mag += math.Abs(float64(a[r*k+c/CodeBlock]) * float64(q[r*n+c]))
					}
					if math.Abs(float64(out[c])-want) > 1e-6*mag {
						t.Errorf("%s, %d bits, %d channels: axpy rows [%d] = %g, want %g", l, b, n, c, out[c], want)
					}
				}
			}
		}
	}
}

// BenchmarkCodesRows is one KV head's keys (scores) and values (weighted
// sum) at a context of 1024, head_dim 64, as packed 2- and 4-bit codes.
func BenchmarkCodesRows(b *testing.B) {
	const n, hd = 1024, 64
	for _, bits := range []int{2, 4} {
		codes := make([]byte, n*hd*bits/8)
		for i := range codes {
			codes[i] = byte(i * 37)
		}
		w, dst, a, out := make([]float32, hd), make([]float32, n), make([]float32, n*hd/CodeBlock), make([]float32, hd)
		for i := range w {
			w[i] = float32(i)
		}
		for i := range a {
			a[i] = 1e-3
		}
		b.Run(fmt.Sprintf("dot%d", bits), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				DotCodesRows(dst, w, codes, bits)
			}
		})
		b.Run(fmt.Sprintf("axpy%d", bits), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				AxpyCodesRows(out, a, codes, bits)
			}
		})
	}
}
