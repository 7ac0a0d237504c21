package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestWidenPlanes packs random codes into bit-plane rows bit by bit from
// the layout's definition and checks WidenPlanes at every level this CPU
// supports against scales[e]·table[code] of the codes as drawn, bit for
// bit, and DotPlanes and AxpyPlanes against float64 sums over those
// values, over bit widths 1 to 8, partial hi groups and row gaps.
func TestWidenPlanes(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	var scales [256]float32
	for e := 1; e < 256; e++ {
		scales[e] = float32(math.Exp2(float64(e-128) / 8))
	}
	type tc struct{ hd, lo, nHi, gap int }
	var cases []tc
	for lo := 1; lo <= 8; lo++ {
		for _, hd := range []int{16, 64, 24, 128, 256} {
			his := []int{0}
			if lo < 8 {
				his = append(his, hd, 1, hd/2+3, 16, 24)
			}
			for _, nHi := range his {
				if nHi <= hd {
					cases = append(cases, tc{hd, lo, nHi, rng.IntN(3)})
				}
			}
		}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("hd%d_b%d_hi%d", c.hd, c.lo, c.nHi), func(t *testing.T) {
			const n = 9
			rb := PlaneRowBytes(c.hd, c.lo, c.nHi) + c.gap
			rows := make([]byte, (n-1)*rb+PlaneReadBytes(c.hd, c.lo, c.nHi))
			for i := range rows {
				rows[i] = byte(rng.Uint32()) // the gaps and the read-past bytes hold junk
			}
			loTab, hiTab := make([]float32, 1<<c.lo), make([]float32, 2<<c.lo)
			for i := range loTab {
				loTab[i] = float32(rng.NormFloat64())
			}
			for i := range hiTab {
				hiTab[i] = float32(rng.NormFloat64())
			}
			want := make([]float32, n*c.hd)
			for r := 0; r < n; r++ {
				row := rows[r*rb:]
				e := rng.IntN(256)
				if r == 2 {
					e = 0
				}
				row[0] = byte(e)
				for i := 0; i < c.hd; i++ {
					bits, tab := c.lo, loTab
					if i < c.nHi {
						bits, tab = c.lo+1, hiTab
					}
					q := rng.IntN(1 << bits)
					for b := 0; b < bits; b++ {
						pos := 8 + b*c.hd + i
						row[pos/8] &^= 1 << (pos % 8)
						row[pos/8] |= byte(q>>b&1) << (pos % 8)
					}
					want[r*c.hd+i] = scales[e] * tab[q]
				}
			}
			q, w, out0 := make([]float32, c.hd), make([]float32, n), make([]float32, c.hd)
			for i := range q {
				q[i], out0[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
			}
			for i := range w {
				w[i] = float32(rng.Float64())
			}
			wantDot, dotTol := make([]float64, n), make([]float64, n)
			wantAxpy, axpyTol := make([]float64, c.hd), make([]float64, c.hd)
			for i := range out0 {
				wantAxpy[i], axpyTol[i] = float64(out0[i]), math.Abs(float64(out0[i]))
			}
			for r := 0; r < n; r++ {
				for i := 0; i < c.hd; i++ {
					x := float64(want[r*c.hd+i])
					wantDot[r] += float64(q[i]) * x
					dotTol[r] += math.Abs(float64(q[i]) * x)
					wantAxpy[i] += float64(w[r]) * x
					axpyTol[i] += math.Abs(float64(w[r]) * x)
				}
			}
			for _, l := range levels() {
				got := make([]float32, n*c.hd)
				withLevel(t, l, func() { WidenPlanes(got, c.hd, rows, rb, c.lo, c.nHi, loTab, hiTab, &scales) })
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%v: row %d channel %d: %g, want %g", l, i/c.hd, i%c.hd, got[i], want[i])
					}
				}
				dots := make([]float32, n)
				withLevel(t, l, func() { DotPlanes(dots, q, rows, rb, c.lo, c.nHi, loTab, hiTab, &scales) })
				for r, d := range dots {
					if math.Abs(float64(d)-wantDot[r]) > 1e-5*dotTol[r]+1e-30 {
						t.Fatalf("%v: dot of row %d: %g, want %g", l, r, d, wantDot[r])
					}
				}
				acc := append([]float32(nil), out0...)
				withLevel(t, l, func() { AxpyPlanes(acc, w, rows, rb, c.lo, c.nHi, loTab, hiTab, &scales) })
				for i, x := range acc {
					if math.Abs(float64(x)-wantAxpy[i]) > 1e-5*axpyTol[i] {
						t.Fatalf("%v: sum channel %d: %g, want %g", l, i, x, wantAxpy[i])
					}
				}
			}
		})
	}
}

// BenchmarkWidenPlanes widens 64 rows of 64 channels at 3, 4 and 4.375
// bits per channel (and takes their dots and weighted sum).
func BenchmarkWidenPlanes(b *testing.B) {
	var scales [256]float32
	for e := range scales {
		scales[e] = float32(e)
	}
	tab := make([]float32, 256)
	for _, f := range []struct{ lo, nHi int }{{3, 0}, {4, 0}, {4, 24}} {
		for _, l := range levels() {
			for _, op := range []string{"widen", "dot", "axpy"} {
				b.Run(fmt.Sprintf("b%d_hi%d/%s/%v", f.lo, f.nHi, op, l), func(b *testing.B) {
					const hd, n = 64, 64
					rb := PlaneRowBytes(hd, f.lo, f.nHi)
					rows := make([]byte, n*rb+8)
					dst := make([]float32, n*hd)
					q, w := make([]float32, hd), make([]float32, n)
					withLevel(b, l, func() {
						for i := 0; i < b.N; i++ {
							switch op {
							case "widen":
								WidenPlanes(dst, hd, rows, rb, f.lo, f.nHi, tab, tab, &scales)
							case "dot":
								DotPlanes(w, q, rows, rb, f.lo, f.nHi, tab, tab, &scales)
							case "axpy":
								AxpyPlanes(q, w, rows, rb, f.lo, f.nHi, tab, tab, &scales)
							}
						}
					})
				})
			}
		}
	}
}
