package codec

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
)

// symbolsCase is a sequence of symbols and the alphabet they are drawn from.
type symbolsCase struct {
	name   string
	alpha  int
	syms   []int
	maxOut float64 // bound on output bytes per symbol, 0 for none
}

func ransCases() []symbolsCase {
	rng := rand.New(rand.NewPCG(1, 2))
	uniform := make([]int, 20000)
	for i := range uniform {
		uniform[i] = rng.IntN(256)
	}
	skewed := make([]int, 20000)
	for i := range skewed {
		s := 0
		for rng.Float64() < 0.3 && s < 40 {
			s++
		}
		skewed[i] = s
	}
	one := make([]int, 5000)
	for i := range one {
		one[i] = 7
	}
	return []symbolsCase{
		{"empty", 4, nil, 0},
		{"single", 3, []int{2}, 0},
		{"uniform256", 256, uniform, 1.01},
		{"skewed", 41, skewed, 0.2},
		{"one symbol", 8, one, 0.01},
		{"two symbols rare", 2, append(make([]int, 9999), 1), 0.01},
	}
}

// entropy is the empirical entropy of syms in bytes.
func entropy(syms []int) float64 {
	cnt := map[int]float64{}
	for _, s := range syms {
		cnt[s]++
	}
	var h float64
	for _, c := range cnt {
		p := c / float64(len(syms))
		h -= c * math.Log2(p)
	}
	return h / 8
}

func TestRANSRoundTrip(t *testing.T) {
	for _, tc := range ransCases() {
		t.Run(tc.name, func(t *testing.T) {
			counts := make([]uint64, tc.alpha)
			for _, s := range tc.syms {
				counts[s]++
			}
			tab, err := NewTable(counts)
			if err != nil {
				t.Fatal(err)
			}
			var sum int
			for s := 0; s < tab.Len(); s++ {
				sum += tab.Freq(s)
				if (counts[s] > 0) != (tab.Freq(s) > 0) {
					t.Fatalf("symbol %d: count %d, frequency %d", s, counts[s], tab.Freq(s))
				}
			}
			if len(tc.syms) > 0 && sum != 1<<ProbBits {
				t.Fatalf("frequencies sum to %d", sum)
			}
			// Through the serialized table, as a stream carries it.
			tab2, err := ReadTable(bytes.NewReader(AppendTable(nil, tab)))
			if err != nil {
				t.Fatal(err)
			}
			var e Encoder
			for _, s := range tc.syms {
				if err := e.Put(tab, s); err != nil {
					t.Fatal(err)
				}
			}
			var buf bytes.Buffer
			if _, err := e.WriteTo(&buf); err != nil {
				t.Fatal(err)
			}
			out := buf.Bytes()
			if tc.maxOut > 0 {
				if h := entropy(tc.syms); float64(len(out)) > h*1.02+8 || float64(len(out)) > tc.maxOut*float64(len(tc.syms))+8 {
					t.Errorf("%d bytes for %d symbols of entropy %.0f bytes", len(out), len(tc.syms), h)
				}
			}
			d, err := NewDecoder(bytes.NewReader(out))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range tc.syms {
				got, err := d.Get(tab2)
				if err != nil || got != want {
					t.Fatalf("symbol %d: got %d, %v; want %d", i, got, err, want)
				}
			}
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRANSTables interleaves symbols of several tables in one stream.
func TestRANSTables(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	tabs := make([]*Table, 3)
	for i := range tabs {
		counts := make([]uint64, 10+i*20)
		for s := range counts {
			counts[s] = uint64(rng.IntN(100) * (i + 1))
		}
		counts[0] = 1
		var err error
		if tabs[i], err = NewTable(counts); err != nil {
			t.Fatal(err)
		}
	}
	var puts []put
	var e Encoder
	for len(puts) < 5000 {
		ti := rng.IntN(3)
		s := rng.IntN(tabs[ti].Len())
		if tabs[ti].Freq(s) == 0 {
			if e.Put(tabs[ti], s) == nil {
				t.Fatal("a symbol without probability was accepted")
			}
			continue
		}
		if err := e.Put(tabs[ti], s); err != nil {
			t.Fatal(err)
		}
		puts = append(puts, put{ti, s})
	}
	out := e.Append(nil)
	d, err := NewDecoder(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range puts {
		if got, err := d.Get(tabs[p.tab]); err != nil || got != p.sym {
			t.Fatalf("symbol %d: %d, %v; want %d", i, got, err, p.sym)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Every truncation is an error, in Get or in Close.
	for n := 0; n < len(out); n++ {
		if decodeAll(out[:n], tabs, puts) == nil {
			t.Fatalf("stream cut to %d of %d bytes decoded without error", n, len(out))
		}
	}
}

type put struct{ tab, sym int }

func decodeAll(b []byte, tabs []*Table, puts []put) error {
	d, err := NewDecoder(bytes.NewReader(b))
	if err != nil {
		return err
	}
	for _, p := range puts {
		if _, err := d.Get(tabs[p.tab]); err != nil {
			return err
		}
	}
	return d.Close()
}

func TestTableErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty input", nil},
		{"too many symbols", []byte{0x81, 0x02}},
		{"truncated", []byte{3, 1}},
		{"sum too small", []byte{2, 1, 1}},
		{"sum too large", []byte{2, 0x80, 0x20, 1}},
	} {
		_, err := ReadTable(bytes.NewReader(tc.b))
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v, want a corrupt-stream error", tc.name, err)
		}
	}
	if _, err := NewTable(make([]uint64, MaxSymbols+1)); err == nil {
		t.Error("an alphabet over MaxSymbols was accepted")
	}
	empty, err := NewTable([]uint64{0, 0})
	if err != nil || empty.Len() != 0 {
		t.Fatalf("all-zero counts: %v, %d symbols", err, empty.Len())
	}
	d, err := NewDecoder(bytes.NewReader([]byte{0, 0x80, 0, 0}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Get(empty); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a symbol under an empty table: %v", err)
	}
	if _, err := NewDecoder(bytes.NewReader([]byte{0, 0, 0, 1})); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a state below the range: %v", err)
	}
}
