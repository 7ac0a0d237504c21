package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
)

// testBlock is a KV block shaped like a real one: per-channel offsets
// (keys' outlier channels), a few large outliers, smooth drift over
// tokens, and an all-constant channel.
func testBlock(seed uint64, layers, n int, dims []int) *model.KVBlock {
	rng := rand.New(rand.NewPCG(seed, 99))
	b := &model.KVBlock{Start: 17, Len: n, KVDim: make([]int, layers), K: make([][]float32, layers), V: make([][]float32, layers)}
	for l := range layers {
		d := dims[l%len(dims)]
		b.KVDim[l] = d
		for kv := range 2 {
			x := make([]float32, n*d)
			for c := 0; c < d; c++ {
				off := float32(rng.NormFloat64() * 3)
				sd := float32(0.2 + rng.Float64()*2)
				for t := 0; t < n; t++ {
					v := off + sd*float32(rng.NormFloat64()) + float32(math.Sin(float64(t)/9))
					if rng.IntN(500) == 0 {
						v *= 30
					}
					if c == 1 {
						v = 2.5
					}
					if c == 2 && t == 0 {
						v = -5000 // a spike far out of its channel
					}
					x[t*d+c] = v
				}
			}
			if kv == 0 {
				b.K[l] = x
			} else {
				b.V[l] = x
			}
		}
	}
	return b
}

// planeScales reads a plane's scales (as the format says: an anchor
// plane's first W bytes, one per channel; a mean plane's first byte, its
// one scale, returned in the first of W) of layer l, keys (kv 0) or
// values, head h.
func planeScales(t *testing.T, data []byte, b *model.KVBlock, l, kv, h, w int) []float32 {
	t.Helper()
	r := bytes.NewReader(data[len(Magic)+1:])
	rd := func() int {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			t.Fatal(err)
		}
		return int(v)
	}
	L := rd()
	rd()
	rd()
	rd()
	for range L {
		rd()
		rd()
		var u [8]byte
		r.Read(u[:])
	}
	for ll := range L {
		for k := range 2 {
			for hh := 0; hh < b.KVDim[ll]/w; hh++ {
				n := rd()
				p := make([]byte, n)
				r.Read(p)
				if ll == l && k == kv && hh == h {
					s := make([]float32, w)
					group := planeGroup(t, data)
					for c := range s {
						if group == 0 && c > 0 {
							break
						}
						e := p[c]
						s[c] = float32(math.Ldexp(1+float64(e&7)/8, int(e>>3)-16))
					}
					return s
				}
			}
		}
	}
	t.Fatal("plane not found")
	return nil
}

// planeGroup reads a stream's group field.
func planeGroup(t *testing.T, data []byte) int {
	t.Helper()
	r := bytes.NewReader(data[len(Magic)+1:])
	var g uint64
	for range 4 {
		var err error
		if g, err = binary.ReadUvarint(r); err != nil {
			t.Fatal(err)
		}
	}
	return int(g)
}

func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		layers int
		n      int
		dims   []int
		o      Options
	}{
		{"defaults", 3, 64, []int{32}, Options{}},
		{"heads", 4, 50, []int{64, 32}, Options{PlaneWidth: 16, Bits: 4}},
		{"anchors", 3, 70, []int{24}, Options{Predict: PredictAnchor, Bits: 7}},
		{"anchors group 5", 2, 33, []int{8}, Options{Predict: PredictAnchor, Group: 5, Bits: 3, EarlyBits: -1}},
		{"one token", 2, 1, []int{16}, Options{}},
		{"no tokens", 2, 0, []int{16}, Options{}},
		{"fine", 1, 20, []int{16}, Options{Bits: 12}},
		{"finest", 3, 20, []int{16}, Options{Bits: 12, EarlyBits: 4}},
		{"coarse", 6, 20, []int{16}, Options{Bits: 1, EarlyBits: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := testBlock(uint64(len(tc.name)), tc.layers, tc.n, tc.dims)
			data, err := Encode(b, tc.o)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if got.Start != b.Start || got.Len != b.Len || len(got.KVDim) != len(b.KVDim) {
				t.Fatalf("header: start %d len %d layers %d, want %d %d %d", got.Start, got.Len, len(got.KVDim), b.Start, b.Len, len(b.KVDim))
			}
			o, _ := tc.o.withDefaults()
			for l := range b.K {
				d := b.KVDim[l]
				w := tc.o.PlaneWidth
				if w == 0 {
					w = d
				}
				mk, mv, _ := tc.o.Bins(l, tc.layers)
				if got.KVDim[l] != d {
					t.Fatalf("layer %d: width %d, want %d", l, got.KVDim[l], d)
				}
				for kv, pair := range [2][2][]float32{{b.K[l], got.K[l]}, {b.V[l], got.V[l]}} {
					m := [2]float32{mk, mv}[kv]
					x, y := pair[0], pair[1]
					for h := 0; h < d/w && tc.n > 0; h++ {
						sc := planeScales(t, data, b, l, kv, h, w)
						if o.Predict == PredictMean {
							// One scale for the plane: the root mean square
							// of its channels' deviations, each variance
							// clipped at 16× the median's, floored so the
							// largest magnitude is within 2^22 bins.
							vars := make([]float64, w)
							var amax float64
							for c := range vars {
								var s1, s2 float64
								for p := 0; p < tc.n; p++ {
									v := float64(x[p*d+h*w+c])
									s1, s2, amax = s1+v, s2+v*v, max(amax, math.Abs(v))
								}
								m := s1 / float64(tc.n)
								vars[c] = max(0, s2/float64(tc.n)-m*m)
							}
							sorted := append([]float64(nil), vars...)
							sort.Float64s(sorted)
							var sum float64
							for _, v := range vars {
								sum += min(v, 16*sorted[w/2])
							}
							want := max(math.Sqrt(sum/float64(w)), amax/(float64(m)*(1<<22)))
							if r := float64(sc[0]) / want; want > 1e-4 && (r < 1/1.07 || r > 1.07) {
								t.Fatalf("layer %d head %d: plane scale %g, want %g", l, h, sc[0], want)
							}
							for c := 1; c < w; c++ {
								sc[c] = sc[0]
							}
						}
						for c := 0; c < w; c++ {
							// The scale is the channel's deviation to within
							// the exponent's 1/16 rounding, floored.
							var s1, s2, amax float64
							for p := 0; p < tc.n; p++ {
								v := float64(x[p*d+h*w+c])
								s1, s2, amax = s1+v, s2+v*v, max(amax, math.Abs(v))
							}
							sd := max(math.Sqrt(max(0, s2/float64(tc.n)-(s1/float64(tc.n))*(s1/float64(tc.n)))), amax/1024)
							if r := float64(sc[c]) / sd; o.Predict == PredictAnchor && sd > 1e-4 && (r < 1/1.07 || r > 1.07) {
								t.Fatalf("layer %d channel %d: scale %g for deviation %g", l, h*w+c, sc[c], sd)
							}
							step := m * sc[c]
							for p := 0; p < tc.n; p++ {
								i := p*d + h*w + c
								e := math.Abs(float64(x[i] - y[i]))
								if e > float64(step)/2*(1+1e-4)+4e-7*math.Abs(float64(x[i]))+2.4e-7*math.Abs(s1/float64(tc.n)) {
									t.Fatalf("layer %d token %d channel %d: %v decoded as %v, bin %g", l, p, h*w+c, x[i], y[i], step)
								}
								if o.Predict == PredictMean {
									// The plain reference quantizer: the nearest
									// point of the bin's grid (either one at a
									// tie).
									// Its grid is offset by the channel's mean
									// (to an eighth of a bin).
									fine := step / 8
									mu := float32(float32(math.Round(s1/float64(tc.n)/float64(fine))) * fine)
									r := float64(x[i]-mu) / float64(step)
									ref := mu + float32(math.Round(r))*step
									tie := math.Abs(math.Abs(r-math.Trunc(r))-0.5) < 1e-3
									// (Up to float32 rounding of the mean plus
									// the difference.)
									mean := math.Abs(s1 / float64(tc.n))
									if !tie && math.Abs(float64(ref-y[i])) > 1e-5*float64(step)+1e-6*math.Abs(float64(ref))+2.4e-7*mean {
										t.Fatalf("layer %d token %d channel %d: %v, the reference quantizer %v", l, p, h*w+c, y[i], ref)
									}
								}
							}
						}
					}
				}
			}
		})
	}
}

func TestRate(t *testing.T) {
	// Finer bins cost more, about a bit per bit of quality (above the
	// coarsest, where channels of small spread cost next to nothing).
	b := testBlock(5, 2, 256, []int{64})
	var prev int
	for bits := 4.0; bits <= 10; bits += 2 {
		data, err := Encode(b, Options{Bits: bits, EarlyBits: -1})
		if err != nil {
			t.Fatal(err)
		}
		if prev > 0 {
			perElem := float64(len(data)-prev) * 8 / float64(2*2*256*64)
			if perElem < 1.2 || perElem > 2.8 {
				t.Errorf("%g bits: %.2f more bits per element than %g bits, want about 2", bits, perElem, bits-2)
			}
		}
		prev = len(data)
	}
}

func TestEncodeErrors(t *testing.T) {
	good := func() *model.KVBlock { return testBlock(1, 2, 8, []int{8}) }
	for _, tc := range []struct {
		name string
		mod  func(*model.KVBlock)
		o    Options
		want string
	}{
		{"nan", func(b *model.KVBlock) { b.V[1][5] = float32(math.NaN()) }, Options{}, "not finite"},
		{"inf", func(b *model.KVBlock) { b.K[0][0] = float32(math.Inf(1)) }, Options{}, "not finite"},
		{"short layer", func(b *model.KVBlock) { b.K[1] = b.K[1][:8] }, Options{}, "floats for"},
		{"plane width", func(*model.KVBlock) {}, Options{PlaneWidth: 3}, "plane width"},
		{"bits", func(*model.KVBlock) {}, Options{Bits: 13}, "bits"},
		{"no layers", func(b *model.KVBlock) { b.KVDim, b.K, b.V = nil, nil, nil }, Options{}, "layers"},
	} {
		b := good()
		tc.mod(b)
		_, err := Encode(b, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}

// withCRC replaces a stream's checksum with the right one for its bytes.
func withCRC(data []byte) []byte {
	if len(data) < 4 {
		return data
	}
	out := append([]byte(nil), data...)
	binary.LittleEndian.PutUint32(out[len(out)-4:], crc32.Checksum(out[:len(out)-4], castagnoli))
	return out
}

func TestDecodeErrors(t *testing.T) {
	data, err := Encode(testBlock(2, 2, 40, []int{16}), Options{PlaneWidth: 8})
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(data); n++ {
		if _, err := Decode(data[:n]); err == nil {
			t.Fatalf("cut to %d of %d bytes: no error", n, len(data))
		}
		// Cut with a valid checksum: the structure itself must fail.
		if _, err := Decode(withCRC(append(data[:n:n], 0, 0, 0, 0))); err == nil && n < len(data)-4 {
			t.Fatalf("cut to %d of %d bytes, checksum fixed: no error", n, len(data))
		}
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 2000; i++ {
		bad := append([]byte(nil), data...)
		bad[rng.IntN(len(bad))] ^= byte(1 << rng.IntN(8))
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) && !strings.Contains(fmtErr(err), "version") {
			t.Fatalf("flipped bit: %v", err)
		}
		// With the checksum fixed, decoding may succeed (a flipped scale
		// is still a valid stream) but must not panic.
		_, _ = Decode(withCRC(bad))
	}
	v2 := append([]byte(nil), data...)
	v2[len(Magic)] = Version + 1
	if _, err := Decode(withCRC(v2)); err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Errorf("another version: %v", err)
	}
	if _, err := Decode([]byte("GGUF\x01\x00\x00\x00\x00")); !IsCorrupt(err) || !strings.Contains(err.Error(), "magic") {
		t.Errorf("another format: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func FuzzDecode(f *testing.F) {
	for i, o := range []Options{{}, {Predict: PredictAnchor, Group: 3}, {PlaneWidth: 4, Bits: 2}} {
		data, err := Encode(testBlock(uint64(i), 2, 9, []int{8}), o)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, d := range [][]byte{data, withCRC(data)} {
			b, err := Decode(d)
			if err != nil {
				continue
			}
			if len(b.K) != len(b.KVDim) || len(b.V) != len(b.KVDim) {
				t.Fatalf("decoded block of %d widths, %d and %d layers", len(b.KVDim), len(b.K), len(b.V))
			}
			for l, w := range b.KVDim {
				if len(b.K[l]) != w*b.Len || len(b.V[l]) != w*b.Len {
					t.Fatalf("layer %d: %d, %d floats for %d×%d", l, len(b.K[l]), len(b.V[l]), b.Len, w)
				}
			}
		}
	})
}

func benchBlock() *model.KVBlock { return testBlock(3, 8, 256, []int{128}) }

func BenchmarkEncode(b *testing.B) {
	blk := benchBlock()
	b.SetBytes(blk.Bytes())
	for b.Loop() {
		if _, err := Encode(blk, Options{PlaneWidth: 64}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	blk := benchBlock()
	data, err := Encode(blk, Options{PlaneWidth: 64})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(blk.Bytes())
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
