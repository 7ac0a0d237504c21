package kernel

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// TestMatMul (matmul_test.go) holds quantized weights to float-path
// accuracy (1e-5 of Σ|w·x|) at every n, which the integer path cannot meet
// by design (activations are rounded to 8 bits). Until that test learns a
// looser tolerance for n <= qMaxN, the kernel tests run with the integer
// path off and the tests below switch it on.

// withQ runs f with the integer path on (or off).
func withQ(on bool, f func()) {
	defer withConfig(func(c *Config) { c.QDisabled = !on })()
	f()
}

// qTestTypes are the weight types with an integer path: every type in
// quant/ggml's registry with a reference dot product.
var qTestTypes = func() []tensor.DType {
	var ts []tensor.DType
	for _, dt := range ggml.Types() {
		if _, ok := qTypeOf(dt); ok {
			ts = append(ts, dt)
		}
	}
	return ts
}()

// randAct returns a random activation in format f over cols columns; mode
// selects random quants (0), all +127 (1), all -127 (2) or zero (3).
func randAct(r *rand.Rand, f actFormat, cols, mode int) *q8Act {
	blk := q8Block
	if f == actQ8_K {
		blk = qkBlock
	}
	a := &q8Act{Q: make([]int8, cols), D: make([]float32, cols/blk)}
	for i := range a.Q {
		switch mode {
		case 0:
			a.Q[i] = int8(r.IntN(255) - 127)
		case 1:
			a.Q[i] = 127
		case 2:
			a.Q[i] = -127
		}
	}
	for b := range a.D {
		a.D[b] = float32(math.Ldexp(1+r.Float64(), r.IntN(12)-10))
	}
	a.S = make([]float32, len(a.D))
	a.BS = make([]int16, cols/16)
	for b := range a.D {
		var s int32
		for _, q := range a.Q[b*blk : (b+1)*blk] {
			s += int32(q)
		}
		a.S[b] = a.D[b] * float32(s)
	}
	for j := range a.BS {
		var s int16
		for _, q := range a.Q[16*j : 16*j+16] {
			s += int16(q)
		}
		a.BS[j] = s
	}
	return a
}

// randBlocks returns nb random blocks of dt; mode 0: random bytes (with
// finite scales), 1: all bytes 0x00, 2: all bytes 0xff in the quants, 3:
// random quants with extreme (largest finite binary16) scales.
func randBlocks(r *rand.Rand, dt tensor.DType, nb, mode int) []byte {
	bb, be := dt.BlockBytes(), dt.BlockSize()
	data := make([]byte, nb*bb)
	tmp := make([]float32, be)
	for b := 0; b < nb; b++ {
		blk := data[b*bb : (b+1)*bb]
		for {
			for i := range blk {
				switch mode {
				case 1:
					blk[i] = 0
				case 2:
					blk[i] = 0xff
				default:
					blk[i] = byte(r.Uint32())
				}
			}
			if mode == 1 || mode == 2 {
				// keep the quants, make the binary16 scales sane
				for _, off := range f16Offsets(dt) {
					h := tensor.F32ToF16(float32(r.NormFloat64()))
					blk[off], blk[off+1] = byte(h), byte(h>>8)
				}
				if t, _ := ggml.Lookup(dt); t.SetScale != nil {
					t.SetScale(blk, tensor.F32ToF16(float32(r.NormFloat64())))
				}
			}
			if mode == 3 {
				for _, off := range f16Offsets(dt) {
					h := uint16(0x7bff) // 65504
					if r.IntN(2) == 0 {
						h |= 0x8000
					}
					blk[off], blk[off+1] = byte(h), byte(h>>8)
				}
				if t, _ := ggml.Lookup(dt); t.SetScale != nil {
					t.SetScale(blk, 0x7bff)
				}
			}
			if err := ggml.Dequantize(dt, blk, tmp); err != nil {
				panic(err)
			}
			ok := true
			for _, v := range tmp {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					ok = false
				}
			}
			if ok {
				break
			}
		}
	}
	return data
}

// f16Offsets lists the byte offsets of a block's binary16 scales (from
// the type's registry descriptor).
func f16Offsets(dt tensor.DType) []int {
	t, _ := ggml.Lookup(dt)
	return t.Scales
}

// actFloats dequantizes a in float64.
func actFloats(a *q8Act) []float64 {
	blk := len(a.Q) / len(a.D)
	x := make([]float64, len(a.Q))
	for i, q := range a.Q {
		x[i] = float64(q) * float64(a.D[i/blk])
	}
	return x
}

// refQDot is the float64 dot of the dequantized weight row with the
// dequantized activation, with Σ|products|.
func refQDot(t *testing.T, dt tensor.DType, w []byte, a *q8Act) (dot, mag float64) {
	t.Helper()
	wf := make([]float32, len(a.Q))
	if err := ggml.Dequantize(dt, w, wf); err != nil {
		t.Fatal(err)
	}
	for i, x := range actFloats(a) {
		p := float64(wf[i]) * x
		dot += p
		mag += math.Abs(p)
	}
	return dot, mag
}

func TestQDotKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for _, dt := range qTestTypes {
		qt, _ := qTypeOf(dt)
		for _, nb := range []int{1, 2, 3, 5, 7, 8} {
			cols := nb * dt.BlockSize()
			for wmode := 0; wmode < 4; wmode++ {
				for amode := 0; amode < 4; amode++ {
					w := randBlocks(r, dt, nb, wmode)
					a := randAct(r, qt.act, cols, amode)
					want, mag := refQDot(t, dt, w, a)
					for _, l := range levels() {
						got := qdotFor(l, dt, qt.generic)(w, a)
						// Float32 scale products and accumulation; Q4_1, Q5_1 and
						// the k-quants split each weight into scale and
						// minimum terms, which may cancel.
						tol := 1e-5*mag + 1e-30
						if dt == tensor.Q4_1 || dt == tensor.Q5_1 || dt == tensor.Q4_K || dt == tensor.Q5_K {
							tol = 2e-4*mag + 1e-30
						}
						if d := math.Abs(float64(got) - want); !(d <= tol) {
							t.Errorf("%s/%v nb=%d wmode=%d amode=%d: got %g, want %g (mag %g)",
								dt, l, nb, wmode, amode, got, want, mag)
						}
					}
				}
			}
		}
	}
}

func TestQuantizeAct(t *testing.T) {
	r := rand.New(rand.NewPCG(23, 24))
	for _, f := range []actFormat{actQ8_0, actQ8_K} {
		for _, cols := range []int{256, 1024} {
			x := randVec(r, cols)
			for i := 0; i < 32; i++ {
				x[i] = 0 // a zero block
			}
			x[40] = 1e4 // a large outlier
			a := randAct(r, f, cols, 0)
			blk := q8Block
			if f == actQ8_K {
				blk = qkBlock
				ggml.QuantizeActQ8_K(a, x)
			} else {
				ggml.QuantizeActQ8_0(a, x)
			}
			for i, v := range actFloats(a) {
				d := math.Abs(float64(a.D[i/blk]))
				// Q8_0 rounds with the exact scale but stores d in binary16.
				if math.Abs(v-float64(x[i])) > 0.6*d+1e-30 {
					t.Fatalf("format %d: x[%d]=%g quantized to %g (d %g)", f, i, x[i], v, d)
				}
			}
			if f == actQ8_K {
				for j, s := range a.BS {
					var want int16
					for _, q := range a.Q[16*j : 16*j+16] {
						want += int16(q)
					}
					if s != want {
						t.Fatalf("bsum %d = %d, want %d", j, s, want)
					}
				}
			}
		}
	}
}

// TestQuantQ8_0Levels checks that every level's Q8_0 activation quantizer
// matches ggml.QuantizeActQ8_0 bit for bit.
func TestQuantQ8_0Levels(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	for _, cols := range []int{32, 64, 512, 1536} {
		for mode := 0; mode < 3; mode++ {
			x := randVec(r, cols)
			switch mode {
			case 1:
				clear(x[:32]) // a zero block
				x[cols-1] = 1e4
			case 2:
				for i := range x {
					x[i] = float32(r.IntN(9)-4) * 0.25 // ties
				}
			}
			want := randAct(r, actQ8_0, cols, 0)
			ggml.QuantizeActQ8_0(want, x)
			for _, l := range levels() {
				got := randAct(r, actQ8_0, cols, 0)
				quantQ8_0(l, got, x)
				for i := range want.Q {
					if got.Q[i] != want.Q[i] {
						t.Fatalf("%v cols=%d mode=%d: q[%d] = %d, want %d", l, cols, mode, i, got.Q[i], want.Q[i])
					}
				}
				for b := range want.D {
					if math.Float32bits(got.D[b]) != math.Float32bits(want.D[b]) ||
						math.Float32bits(got.S[b]) != math.Float32bits(want.S[b]) {
						t.Fatalf("%v cols=%d mode=%d: block %d d,s = %g,%g, want %g,%g",
							l, cols, mode, b, got.D[b], got.S[b], want.D[b], want.S[b])
					}
				}
			}
		}
	}
}

func TestQMatMul(t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	defer SetThreads(0)
	for _, dt := range qTestTypes {
		for _, sh := range [][2]int{{1, 256}, {7, 512}, {130, 256}, {67, 1024}, {300, 2048}} { // 300×2048: several decode tiles
			rows, cols := sh[0], sh[1]
			w, err := makeWeight(r, dt, rows, cols)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 2, 3, 4, 7, qMaxN} {
				x := randVec(r, n*cols)
				want, mag := refMatMul(t, x, n, w)
				for _, l := range levels() {
					for _, th := range []int{1, 2, 3} {
						SetThreads(th)
						out := make([]float32, n*rows+1)
						out[n*rows] = 42
						withLevel(t, l, func() {
							withQ(true, func() {
								if err := MatMul(out, x, n, w); err != nil {
									t.Fatal(err)
								}
							})
						})
						for i := 0; i < n*rows; i++ {
							// Activations are rounded to 8 bits: error up to
							// ~max|x|/254 per element, mostly cancelling.
							if d := math.Abs(float64(out[i]) - want[i]); !(d <= 1e-2*mag[i]) {
								t.Fatalf("%s %dx%d n=%d %v threads=%d: out[%d] = %g, want %g (mag %g)",
									dt, rows, cols, n, l, th, i, out[i], want[i], mag[i])
							}
						}
						if out[n*rows] != 42 {
							t.Fatal("wrote past n*rows")
						}
					}
				}
			}
		}
	}
}

// TestQMatMulRoute checks which calls take the integer path.
func TestQMatMulRoute(t *testing.T) {
	withQ(true, func() {
		for _, c := range []struct {
			dt   tensor.DType
			n    int
			want bool
		}{
			{tensor.Q4_0, 1, true}, {tensor.Q6_K, qMaxN, true}, {tensor.Q4_0, qMaxN + 1, false},
			{tensor.F32, 1, false}, {tensor.F16, 1, false}, {tensor.Q5_1, 1, true},
		} {
			if got := qRoute(c.dt, c.n); got != c.want {
				t.Errorf("qRoute(%s, %d) = %v, want %v", c.dt, c.n, got, c.want)
			}
		}
	})
}

func TestQMatMulAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(27, 28))
	defer SetThreads(0)
	for _, dt := range []tensor.DType{tensor.Q8_0, tensor.Q4_0, tensor.Q4_K, tensor.Q6_K} {
		rows, cols := 256, 1024
		w, err := makeWeight(r, dt, rows, cols)
		if err != nil {
			t.Fatal(err)
		}
		for _, th := range []int{1, 2} {
			SetThreads(th)
			for _, n := range []int{1, qMaxN} {
				x := randVec(r, n*cols)
				out := make([]float32, n*rows)
				withQ(true, func() {
					_ = MatMul(out, x, n, w) // warm up scratch
					allocs := testing.AllocsPerRun(20, func() {
						if err := MatMul(out, x, n, w); err != nil {
							t.Fatal(err)
						}
					})
					if allocs != 0 {
						t.Errorf("%s threads=%d n=%d: %v allocs per MatMul", dt, th, n, allocs)
					}
				})
			}
		}
	}
}

// TestQMatMulConcurrent runs integer-path MatMuls from several goroutines
// at once (pool busy: fallback jobs).
func TestQMatMulConcurrent(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	w, err := makeWeight(r, tensor.Q4_K, 64, 512)
	if err != nil {
		t.Fatal(err)
	}
	x := randVec(r, 512)
	withQ(true, func() {
		want := make([]float32, 64)
		if err := MatMul(want, x, 1, w); err != nil {
			t.Fatal(err)
		}
		done := make(chan []float32)
		for g := 0; g < 4; g++ {
			go func() {
				out := make([]float32, 64)
				for i := 0; i < 50; i++ {
					_ = MatMul(out, x, 1, w)
				}
				done <- out
			}()
		}
		for g := 0; g < 4; g++ {
			out := <-done
			for i := range out {
				if out[i] != want[i] {
					t.Errorf("goroutine result %d = %g, want %g", i, out[i], want[i])
					break
				}
			}
		}
	})
}

var _ = fmt.Sprint

// TestDequantRow checks the SIMD row dequantizers (of any registered block
// type) against ggml.Dequantize bit for bit.
func TestDequantRow(t *testing.T) {
	r := rand.New(rand.NewPCG(29, 30))
	for _, dt := range ggml.Types() {
		if !dt.Quantized() {
			continue
		}
		for _, nb := range []int{1, 2, 7, 24} {
			for mode := 0; mode < 4; mode++ {
				w := randBlocks(r, dt, nb, mode)
				n := nb * dt.BlockSize()
				want := make([]float32, n)
				if err := ggml.Dequantize(dt, w, want); err != nil {
					t.Fatal(err)
				}
				for _, l := range levels() {
					got := make([]float32, n+1)
					got[n] = 42
					if !dequantRow(l, dt, got[:n], w) {
						continue
					}
					for i := range want {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
							t.Fatalf("%s/%v nb=%d mode=%d: [%d] = %g, want %g", dt, l, nb, mode, i, got[i], want[i])
						}
					}
					if got[n] != 42 {
						t.Fatalf("%s/%v: wrote past the row", dt, l)
					}
				}
			}
		}
	}
}

// TestQRowsKernels checks the multi-row kernels against the single-row
// kernel of the same level, which runs the same arithmetic.
func TestQRowsKernels(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 32))
	for _, dt := range qTestTypes {
		qt, _ := qTypeOf(dt)
		for _, l := range levels() {
			rowsFn := qrowsFor(l, dt)
			if rowsFn == nil {
				continue
			}
			dot := qdotFor(l, dt, qt.generic)
			for _, nb := range []int{1, 2, 3, 5, 7, 8} {
				for k, rows := range []int{1, 2, 5, 9} {
					// Cycle through the weight and activation modes
					// (extreme scales included).
					rb := nb * dt.BlockBytes()
					w := randBlocks(r, dt, nb*rows, (nb+k)%4)
					a := randAct(r, qt.act, nb*dt.BlockSize(), (nb+2*k)%4)
					out := make([]float32, rows+1)
					out[rows] = 42
					rowsFn(out[:rows], w, rb, a)
					for i := 0; i < rows; i++ {
						if want := dot(w[i*rb:(i+1)*rb], a); out[i] != want {
							t.Fatalf("%s/%v nb=%d row %d: %g, want %g", dt, l, nb, i, out[i], want)
						}
					}
					if out[rows] != 42 {
						t.Fatalf("%s/%v: wrote past the rows", dt, l)
					}
				}
			}
		}
	}
}

// TestMatMulMulti checks that one job over several weights gives exactly
// what separate MatMul calls give, on the shared path and the fallback.
func TestMatMulMulti(t *testing.T) {
	r := rand.New(rand.NewPCG(33, 34))
	defer SetThreads(0)
	sets := [][]tensor.DType{
		{tensor.Q4_0, tensor.Q4_0, tensor.Q8_0},
		{tensor.Q4_K, tensor.Q6_K},
		{tensor.Q4_0, tensor.Q6_K},   // different activation formats
		{tensor.Q8_0, tensor.F32},    // not all integer-path
		{tensor.Q4_1, tensor.IQ4_NL}, // no multi-row kernels
		{tensor.Q8_0, tensor.Q8_0, tensor.Q8_0},
		{tensor.IQ4_XS, tensor.IQ4_XS}, // one sixteen-row job at prefill sizes
	}
	const cols = 512
	for _, set := range sets {
		var ws []*tensor.Tensor
		for i, dt := range set {
			w, err := makeWeight(r, dt, 40+70*i, cols)
			if err != nil {
				t.Fatal(err)
			}
			ws = append(ws, w)
		}
		for _, n := range []int{1, 3, 8, qMaxN + 1, 43} {
			x := randVec(r, n*cols)
			for _, th := range []int{1, 2} {
				SetThreads(th)
				outs := make([][]float32, len(ws))
				for i, w := range ws {
					outs[i] = make([]float32, n*w.Rows())
				}
				if err := MatMulMulti(x, n, outs, ws); err != nil {
					t.Fatal(err)
				}
				for i, w := range ws {
					want := make([]float32, n*w.Rows())
					if err := MatMul(want, x, n, w); err != nil {
						t.Fatal(err)
					}
					for k := range want {
						if outs[i][k] != want[k] {
							t.Fatalf("%v n=%d threads=%d: weight %d [%d] = %g, want %g", set, n, th, i, k, outs[i][k], want[k])
						}
					}
				}
			}
		}
	}
}

// TestQKernelRegistry walks quant/ggml's type registry and the kernel's
// override table: every override belongs to a registered type (with a
// reference dot where it overrides a dot), and for every registered type
// with a reference dot, the kernel chosen at every level equals that
// reference on activations quantized from random data.
// TestQKernelPick checks the dispatch rule: the highest level not above
// the CPU's wins whatever the registration order (init functions run file
// by file), the last registered among equals, and a kernel without the
// wanted function does not count.
func TestQKernelPick(t *testing.T) {
	f := func([]byte, *q8Act) float32 { return 0 }
	hasDot := func(k *qKernel) bool { return k.dot != nil }
	cases := []struct {
		ks   []qKernel
		l    level
		want int
	}{
		{[]qKernel{{min: levelAVX512, dot: f}, {min: levelAVX2, dot: f}}, levelAVX512, 0},
		{[]qKernel{{min: levelAVX512, dot: f}, {min: levelAVX2, dot: f}}, levelAVX2, 1},
		{[]qKernel{{min: levelAVX512, dot: f}, {min: levelAVX2, dot: f}}, levelGeneric, -1},
		{[]qKernel{{min: levelAVX2, dot: f}, {min: levelAVX2, dot: f}}, levelAVX512, 1},
		{[]qKernel{{min: levelAVX2, dot: f}, {min: levelAVX512}}, levelAVX512, 0},
		{nil, levelAVX512, -1},
	}
	for i, c := range cases {
		if got := qKernelPick(c.ks, c.l, hasDot); got != c.want {
			t.Errorf("case %d at %v: picked %d, want %d", i, c.l, got, c.want)
		}
	}
}

func TestQKernelRegistry(t *testing.T) {
	for i, ks := range qKernels {
		dt := tensor.DType(i)
		if len(ks) == 0 {
			continue
		}
		if !ggml.Supported(dt) {
			t.Errorf("kernel overrides for %s, which quant/ggml does not register", dt)
		}
		for _, k := range ks {
			if _, ok := qTypeOf(dt); (k.dot != nil || k.rows != nil) && !ok {
				t.Errorf("%s: dot override at %v without a reference dot", dt, k.min)
			}
		}
	}
	r := rand.New(rand.NewPCG(35, 36))
	covered := 0
	for _, dt := range ggml.Types() {
		desc, _ := ggml.Lookup(dt)
		if desc.Dot == nil {
			continue
		}
		covered++
		const nb = 6
		cols := nb * dt.BlockSize()
		blk := desc.Act.BlockSize()
		if blk == 0 || cols%blk != 0 {
			t.Fatalf("%s: activation format %v does not tile %d columns", dt, desc.Act, cols)
		}
		for mode := 0; mode < 4; mode++ {
			w := randBlocks(r, dt, nb, mode)
			x := randVec(r, cols)
			a := &q8Act{Q: make([]int8, cols), D: make([]float32, cols/blk),
				S: make([]float32, cols/blk), BS: make([]int16, cols/16)}
			desc.Act.Quantize(a, x)
			want := desc.Dot(w, a)
			_, mag := refQDot(t, dt, w, a)
			for _, l := range levels() {
				got := qdotFor(l, dt, desc.Dot)(w, a)
				if d := math.Abs(float64(got) - float64(want)); !(d <= 2e-4*mag+1e-30) {
					t.Errorf("%s/%v mode=%d: dispatched dot %g, reference %g (mag %g)", dt, l, mode, got, want, mag)
				}
			}
		}
	}
	if covered != len(qTestTypes) || covered < 9 {
		t.Errorf("%d registered types with a dot, %d test types", covered, len(qTestTypes))
	}
}
