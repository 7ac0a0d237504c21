package kernel

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// levels lists every implementation this machine can run.
func levels() []level {
	var ls []level
	for l := levelGeneric; l <= supported; l++ {
		ls = append(ls, l)
	}
	return ls
}

// withLevel runs f with the dispatch level forced to l.
func withLevel(t testing.TB, l level, f func()) {
	t.Helper()
	old := active
	active = l
	defer func() { active = old }()
	f()
}

func randVec(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	return v
}

// testLengths covers empty, every tail up to 130, and some long vectors.
func testLengths() []int {
	var ns []int
	for n := 0; n <= 130; n++ {
		ns = append(ns, n)
	}
	return append(ns, 255, 256, 257, 1000, 1536, 4097)
}

// refDot returns the float64 dot product and Σ|aᵢbᵢ|.
func refDot(a, b []float32) (dot, mag float64) {
	for i := range a {
		p := float64(a[i]) * float64(b[i])
		dot += p
		mag += math.Abs(p)
	}
	return dot, mag
}

func closeTo(got float32, want, mag float64) bool {
	return math.Abs(float64(got)-want) <= 1e-5*mag+1e-30
}

func TestChooseLevel(t *testing.T) {
	for _, c := range []struct {
		env  string
		best level
		want level
	}{
		{"", levelAVX512, levelAVX512},
		{"generic", levelAVX512, levelGeneric},
		{"AVX2", levelAVX512, levelAVX2},
		{"avx512", levelAVX2, levelAVX2},
		{"avx512", levelAVX512, levelAVX512},
		{"bogus", levelAVX2, levelAVX2},
	} {
		if got := chooseLevel(c.env, c.best); got != c.want {
			t.Errorf("chooseLevel(%q, %v) = %v, want %v", c.env, c.best, got, c.want)
		}
	}
	t.Logf("supported %v, active %v", supported, Kernel())
}

func TestDot(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, l := range levels() {
		for _, n := range testLengths() {
			for off := 0; off < 3; off++ {
				a := randVec(r, n+off)[off:]
				b := randVec(r, n+off+2)[off+1:] // longer, differently aligned
				want, mag := refDot(a, b[:n])
				got := dot(l, a, b[:n])
				if !closeTo(got, want, mag) {
					t.Fatalf("%v: n=%d off=%d: got %g, want %g (mag %g)", l, n, off, got, want, mag)
				}
				if g := dotGeneric(a, b[:n]); !closeTo(g, want, mag) {
					t.Fatalf("generic: n=%d: got %g, want %g", n, g, want)
				}
			}
		}
	}
	// Via the exported entry point, len(b) > len(a).
	a, b := randVec(r, 77), randVec(r, 90)
	want, mag := refDot(a, b[:77])
	if got := Dot(a, b); !closeTo(got, want, mag) {
		t.Fatalf("Dot: got %g, want %g", got, want)
	}
}

func TestDotSpecial(t *testing.T) {
	inf := float32(math.Inf(1))
	nan := float32(math.NaN())
	for _, l := range levels() {
		for _, n := range []int{1, 7, 8, 15, 16, 17, 33, 64, 65, 130} {
			for pos := 0; pos < n; pos += max(1, n/5) {
				a, b := make([]float32, n), make([]float32, n)
				for i := range a {
					a[i], b[i] = 1, 1
				}
				a[pos] = nan
				if got := dot(l, a, b); !math.IsNaN(float64(got)) {
					t.Errorf("%v n=%d: NaN at %d gave %g", l, n, pos, got)
				}
				a[pos] = inf
				if got := dot(l, a, b); !math.IsInf(float64(got), 1) {
					t.Errorf("%v n=%d: +Inf at %d gave %g", l, n, pos, got)
				}
				b[pos] = 0
				if got := dot(l, a, b); !math.IsNaN(float64(got)) {
					t.Errorf("%v n=%d: Inf·0 at %d gave %g", l, n, pos, got)
				}
			}
			// Denormals: products and sums far below the normal range.
			a, b := make([]float32, n), make([]float32, n)
			for i := range a {
				a[i] = math.Float32frombits(uint32(i%7 + 1)) // tiny subnormals
				b[i] = float32(1 << 20)
			}
			want, mag := refDot(a, b)
			if got := dot(l, a, b); !closeTo(got, want, mag) {
				t.Errorf("%v n=%d denormals: got %g, want %g", l, n, got, want)
			}
		}
	}
}

func TestAxpy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, l := range levels() {
		for _, n := range testLengths() {
			off := n % 3
			x := randVec(r, n+off)[off:]
			y0 := randVec(r, n+1+5)[1:]
			y := append([]float32(nil), y0...)
			a := float32(r.NormFloat64())
			axpy(l, a, x, y[:n])
			for i := 0; i < n; i++ {
				want := float64(y0[i]) + float64(a)*float64(x[i])
				mag := math.Abs(float64(y0[i])) + math.Abs(float64(a)*float64(x[i]))
				if math.Abs(float64(y[i])-want) > 1e-6*mag {
					t.Fatalf("%v n=%d i=%d: got %g, want %g", l, n, i, y[i], want)
				}
			}
			for i := n; i < len(y); i++ {
				if y[i] != y0[i] {
					t.Fatalf("%v n=%d: wrote past the end at %d", l, n, i)
				}
			}
		}
		// NaN and Inf propagate.
		x := []float32{1, float32(math.NaN()), float32(math.Inf(1)), 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
		y := make([]float32, len(x))
		axpy(l, 2, x, y)
		if !math.IsNaN(float64(y[1])) || !math.IsInf(float64(y[2]), 1) || y[16] != 30 {
			t.Errorf("%v: special values: %v", l, y)
		}
	}
	x, y := []float32{1, 2, 3}, []float32{1, 1, 1, 1}
	Axpy(2, x, y)
	if y[0] != 3 || y[2] != 7 || y[3] != 1 {
		t.Errorf("Axpy: %v", y)
	}
}

func sameFloat(a, b float32) bool {
	if math.IsNaN(float64(a)) {
		return math.IsNaN(float64(b))
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func TestHalfConversionExhaustive(t *testing.T) {
	src := make([]byte, 2*65536+1)
	for i := 0; i < 65536; i++ {
		src[1+2*i], src[2+2*i] = byte(i), byte(i>>8)
	}
	odd := src[1:] // unaligned source
	for _, l := range levels() {
		dst := make([]float32, 65536)
		f16ToF32(l, dst, odd)
		for i, v := range dst {
			if want := tensor.F16ToF32(uint16(i)); !sameFloat(v, want) {
				t.Fatalf("%v f16 %#04x: got %#08x, want %#08x", l, i, math.Float32bits(v), math.Float32bits(want))
			}
		}
		bf16ToF32(l, dst, odd)
		for i, v := range dst {
			if want := tensor.BF16ToF32(uint16(i)); math.Float32bits(v) != math.Float32bits(want) {
				t.Fatalf("%v bf16 %#04x: got %#08x, want %#08x", l, i, math.Float32bits(v), math.Float32bits(want))
			}
		}
	}
}

func TestHalfConversionLengths(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, l := range levels() {
		for _, n := range testLengths() {
			src := make([]byte, 2*n+7)
			for i := range src {
				src[i] = byte(r.Uint32())
			}
			s := src[n%3:]
			for _, conv := range []struct {
				name string
				fast func(level, []float32, []byte)
				ref  func([]float32, []byte)
			}{{"f16", f16ToF32, f16ToF32Generic}, {"bf16", bf16ToF32, bf16ToF32Generic}} {
				got := make([]float32, n+4)
				want := make([]float32, n+4)
				for i := n; i < n+4; i++ {
					got[i], want[i] = 42, 42
				}
				conv.fast(l, got[:n], s)
				conv.ref(want[:n], s)
				for i := range got {
					if !sameFloat(got[i], want[i]) {
						t.Fatalf("%v %s n=%d i=%d: got %g, want %g", l, conv.name, n, i, got[i], want[i])
					}
				}
			}
		}
	}
	dst := make([]float32, 2)
	F16ToF32Row(dst, []byte{0x00, 0x3c, 0x00, 0xc0, 0xff}) // 1, -2
	if dst[0] != 1 || dst[1] != -2 {
		t.Errorf("F16ToF32Row: %v", dst)
	}
	BF16ToF32Row(dst, []byte{0x80, 0x3f, 0x00, 0xc0})
	if dst[0] != 1 || dst[1] != -2 {
		t.Errorf("BF16ToF32Row: %v", dst)
	}
}

func TestDotHalf(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, l := range levels() {
		for _, n := range testLengths() {
			x := randVec(r, n+1)[1:]
			w := randVec(r, n)
			wf16 := make([]byte, 2*n+1)[1:]
			wbf := make([]byte, 2*n)
			for i, v := range w {
				h := tensor.F32ToF16(v)
				wf16[2*i], wf16[2*i+1] = byte(h), byte(h>>8)
				b := tensor.F32ToBF16(v)
				wbf[2*i], wbf[2*i+1] = byte(b), byte(b>>8)
			}
			wide := make([]float32, n)
			f16ToF32Generic(wide, wf16)
			want, mag := refDot(wide, x)
			if got := dotF16(l, wf16, x); !closeTo(got, want, mag) {
				t.Fatalf("%v f16 n=%d: got %g, want %g", l, n, got, want)
			}
			bf16ToF32Generic(wide, wbf)
			want, mag = refDot(wide, x)
			if got := dotBF16(l, wbf, x); !closeTo(got, want, mag) {
				t.Fatalf("%v bf16 n=%d: got %g, want %g", l, n, got, want)
			}
		}
	}
}

func TestMicroKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, l := range levels() {
		nr := microNR(l)
		for _, k := range testLengths() {
			if k == 0 {
				continue
			}
			var ws, xs [4][]float32
			var wp, xp [4]*float32
			for i := range ws {
				ws[i] = randVec(r, k+i)[i:]
				xs[i] = randVec(r, k+2)[1:]
				wp[i], xp[i] = &ws[i][0], &xs[i][0]
			}
			var out [16]float32
			micro(l, &wp, &xp, k, &out)
			for i := 0; i < 4; i++ {
				for j := 0; j < nr; j++ {
					want, mag := refDot(ws[i][:k], xs[j][:k])
					if got := out[4*i+j]; !closeTo(got, want, mag) {
						t.Fatalf("%v k=%d (%d,%d): got %g, want %g", l, k, i, j, got, want)
					}
				}
			}
		}
	}
}
