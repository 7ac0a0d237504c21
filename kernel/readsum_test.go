package kernel

import (
	"math/rand/v2"
	"testing"
)

// readSumRef is ReadSum's definition written out byte by byte.
func readSumRef(b []byte) uint64 {
	var s uint64
	n := len(b) / 8 * 8
	for i := 0; i < n; i += 8 {
		var w uint64
		for k := 7; k >= 0; k-- {
			w = w<<8 | uint64(b[i+k])
		}
		s += w
	}
	for _, c := range b[n:] {
		s += uint64(c)
	}
	return s
}

// TestReadSum checks ReadSum at every level against the byte-by-byte
// definition: random bytes, all-ones bytes (every word addition wraps),
// every length around the SIMD block and misaligned starts.
func TestReadSum(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	rnd := make([]byte, 3*readBlock+100)
	for i := range rnd {
		rnd[i] = byte(r.Uint32())
	}
	ones := make([]byte, len(rnd))
	for i := range ones {
		ones[i] = 0xff
	}
	var lengths []int
	for n := 0; n <= 70; n++ {
		lengths = append(lengths, n)
	}
	for _, k := range []int{1, 2, 3} {
		for d := -9; d <= 9; d++ {
			lengths = append(lengths, k*readBlock+d)
		}
	}
	inputs := map[string][]byte{"random": rnd, "ones": ones}
	for _, l := range levels() {
		withLevel(t, l, func() {
			for name, buf := range inputs {
				for _, off := range []int{0, 1, 7, 8, 33} {
					for _, n := range lengths {
						if off+n > len(buf) {
							continue
						}
						b := buf[off : off+n]
						if got, want := ReadSum(b), readSumRef(b); got != want {
							t.Fatalf("%s %s: offset %d length %d: ReadSum %#x, want %#x", l, name, off, n, got, want)
						}
					}
				}
			}
		})
	}
}

// BenchmarkReadSum reads a 256 MiB buffer (beyond the caches) on one
// thread at every level.
func BenchmarkReadSum(b *testing.B) {
	buf := make([]byte, 256<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for _, l := range levels() {
		b.Run(l.String(), func(b *testing.B) {
			withLevel(b, l, func() {
				b.SetBytes(int64(len(buf)))
				for b.Loop() {
					ReadSum(buf)
				}
			})
		})
	}
}
