package ggml

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// allTypes returns every type Dequantize supports: the registry
// (registry_test.go checks that it holds today's types). It is a function:
// the registry fills in the type files' init functions, after package
// variables are initialized.
func allTypes() []tensor.DType { return Types() }

// randomBlocks returns n blocks of dt with random quants and finite,
// moderate binary16 scales, so results are finite.
func randomBlocks(r *rand.Rand, dt tensor.DType, n int) []byte {
	b := make([]byte, n*dt.BlockBytes())
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	h := func(off int) {
		binary.LittleEndian.PutUint16(b[off:], tensor.F32ToF16(float32(r.NormFloat64()*0.01)))
	}
	for blk := 0; blk < n; blk++ {
		o := blk * dt.BlockBytes()
		switch dt {
		case tensor.BF16:
			binary.LittleEndian.PutUint16(b[o:], tensor.F32ToBF16(float32(r.NormFloat64())))
		case tensor.F32:
			binary.LittleEndian.PutUint32(b[o:], math.Float32bits(float32(r.NormFloat64())))
		default:
			for _, off := range lookup(dt).Scales {
				h(o + off)
			}
			if set := lookup(dt).SetScale; set != nil {
				set(b[o:o+dt.BlockBytes()], tensor.F32ToF16(float32(r.NormFloat64()*0.01)))
			}
		}
	}
	return b
}

// TestQ5_1 checks Q5_1, which no llama.cpp fixture holds, against a direct
// per-element reading of the layout.
func TestQ5_1(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	src := randomBlocks(r, tensor.Q5_1, 64)
	dst := make([]float32, 64*32)
	if err := Dequantize(tensor.Q5_1, src, dst); err != nil {
		t.Fatal(err)
	}
	for i := range dst {
		b := src[(i/32)*24:]
		j := i % 32
		d := tensor.F16ToF32(binary.LittleEndian.Uint16(b))
		m := tensor.F16ToF32(binary.LittleEndian.Uint16(b[2:]))
		qh := binary.LittleEndian.Uint32(b[4:])
		var q uint32
		if j < 16 {
			q = uint32(b[8+j] & 15)
		} else {
			q = uint32(b[8+j-16] >> 4)
		}
		q |= (qh >> j & 1) << 4
		want := float32(float32(q)*d) + m
		if math.Float32bits(dst[i]) != math.Float32bits(want) {
			t.Fatalf("element %d = %v, want %v", i, dst[i], want)
		}
	}
}

// TestHandBlocks checks one hand-made block per type against values worked
// out from the layout by hand.
func TestHandBlocks(t *testing.T) {
	one := []byte{0x00, 0x3c}  // binary16 1.0
	half := []byte{0x00, 0x38} // binary16 0.5
	cat := func(parts ...[]byte) []byte {
		return []byte(strings.Join(func() []string {
			s := make([]string, len(parts))
			for i, p := range parts {
				s[i] = string(p)
			}
			return s
		}(), ""))
	}
	rep := func(b byte, n int) []byte { return []byte(strings.Repeat(string([]byte{b}), n)) }

	tests := []struct {
		name string
		dt   tensor.DType
		src  []byte
		want map[int]float32 // element -> value
	}{
		{"q8_0", tensor.Q8_0, cat(half, []byte{0xff, 2}, rep(0x80, 30)), map[int]float32{0: -0.5, 1: 1, 31: -64}},
		{"q4_0", tensor.Q4_0, cat(one, []byte{0xf0}, rep(0x88, 15)), map[int]float32{0: -8, 16: 7, 1: 0, 31: 0}},
		{"q4_1", tensor.Q4_1, cat(half, one, []byte{0x3f}, rep(0, 15)), map[int]float32{0: 8.5, 16: 2.5, 5: 1}},
		{"q5_0", tensor.Q5_0, cat(one, []byte{0x01, 0, 0x01, 0}, []byte{0x00}, rep(0, 15)), map[int]float32{0: 0, 16: 0, 1: -16, 17: -16}},
		{"q5_1", tensor.Q5_1, cat(one, one, []byte{0, 0, 0, 0x80}, rep(0xff, 16)), map[int]float32{0: 16, 15: 16, 31: 32}},
		{"iq4_nl", tensor.IQ4_NL, cat(half, []byte{0xf0}, rep(0x88, 15)), map[int]float32{0: -63.5, 16: 56.5, 1: 0.5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]float32, tc.dt.BlockSize())
			if err := Dequantize(tc.dt, tc.src, dst); err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if dst[i] != w {
					t.Errorf("element %d = %v, want %v", i, dst[i], w)
				}
			}
		})
	}
}

// TestQ4KScales checks the packed 6-bit scale/min unpacking against the
// packing rule written the other way round (as ggml's quantizer does).
func TestQ4KScales(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := 0; trial < 1000; trial++ {
		var ls, lm [8]byte
		var q [12]byte
		for j := 0; j < 8; j++ {
			ls[j], lm[j] = byte(r.IntN(64)), byte(r.IntN(64))
			if j < 4 {
				q[j] = ls[j]
				q[j+4] = lm[j]
			} else {
				q[j+4] = ls[j]&15 | (lm[j]&15)<<4
				q[j-4] |= ls[j] >> 4 << 6
				q[j] |= lm[j] >> 4 << 6
			}
		}
		for j := 0; j < 8; j++ {
			sc, m := scaleMinK4(j, q[:])
			if sc != ls[j] || m != lm[j] {
				t.Fatalf("sub-block %d: got %d,%d want %d,%d", j, sc, m, ls[j], lm[j])
			}
		}
	}
}

func TestDequantizeErrors(t *testing.T) {
	tests := []struct {
		name string
		dt   tensor.DType
		src  int
		dst  int
		want string
	}{
		{"partial block", tensor.Q4_K, 144, 255, "multiple of the block size"},
		{"short src", tensor.Q8_0, 33, 32, "need 34 bytes"},
		{"long src", tensor.Q8_0, 35, 32, "need 34 bytes"},
		{"unsupported", tensor.Q8_1, 36, 32, "not supported"},
		{"q8_k", tensor.Q8_K, 292, 256, "not supported"},
		{"unknown", tensor.DType(77), 4, 1, "unknown element type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Dequantize(tc.dt, make([]byte, tc.src), make([]float32, tc.dst))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	for _, dt := range allTypes() {
		if !Supported(dt) {
			t.Errorf("Supported(%s) = false", dt)
		}
		if err := Dequantize(dt, nil, nil); err != nil {
			t.Errorf("%s: empty input: %v", dt, err)
		}
	}
	if Supported(tensor.Q8_1) {
		t.Error("Supported(Q8_1) = true")
	}
}

func TestDequantizeTensor(t *testing.T) {
	tt := tensor.FromFloat32("x", []int{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	v, err := DequantizeTensor(tt)
	if err != nil || len(v) != 6 || v[5] != 6 {
		t.Fatalf("got %v, %v", v, err)
	}
	tt.Data = tt.Data[:20]
	if _, err := DequantizeTensor(tt); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Fatalf("short data: err = %v", err)
	}
}

func TestNoAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, dt := range allTypes() {
		n := 256
		src := randomBlocks(r, dt, n/dt.BlockSize())
		dst := make([]float32, n)
		allocs := testing.AllocsPerRun(10, func() {
			if err := Dequantize(dt, src, dst); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per call", dt, allocs)
		}
		for i, v := range dst {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s: element %d = %v", dt, i, v)
			}
		}
	}
}

// FuzzDequantize feeds arbitrary bytes to every type's dequantizer: it must
// neither panic nor fail on whole blocks.
func FuzzDequantize(f *testing.F) {
	f.Add(uint8(0), []byte{1, 2, 3, 4})
	f.Add(uint8(3), make([]byte, 144))
	f.Add(uint8(9), make([]byte, 2*84))
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		dt := allTypes()[int(which)%len(allTypes())]
		nb := len(data) / dt.BlockBytes()
		src := data[:nb*dt.BlockBytes()]
		dst := make([]float32, nb*dt.BlockSize())
		if err := Dequantize(dt, src, dst); err != nil {
			t.Fatalf("%s, %d blocks: %v", dt, nb, err)
		}
		if len(data) > len(src) {
			if err := Dequantize(dt, data, dst); err == nil {
				t.Fatalf("%s: %d bytes for %d elements accepted", dt, len(data), len(dst))
			}
		}
	})
}

func BenchmarkDequantize(b *testing.B) {
	r := rand.New(rand.NewPCG(7, 8))
	const n = 1 << 16
	for _, dt := range allTypes() {
		src := randomBlocks(r, dt, n/dt.BlockSize())
		dst := make([]float32, n)
		b.Run(dt.String(), func(b *testing.B) {
			b.SetBytes(4 * n)
			for b.Loop() {
				if err := Dequantize(dt, src, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
