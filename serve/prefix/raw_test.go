package prefix

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/terse-llm/terse/model"
)

// prefixCache is the interface the server calls the cache through.
type prefixCache interface {
	Restore(ctx context.Context, c model.KVCache, tokens []int) (int, error)
	Save(ctx context.Context, c model.KVCache, tokens []int) error
	Stats() (hits, lookups int64)
}

var _ prefixCache = (*Cache)(nil)

func randomBlock(rng *rand.Rand, cfg *model.Config, start, n int) *model.KVBlock {
	b := model.NewKVBlock(cfg, start, n)
	for l := range b.K {
		for i := range b.K[l] {
			b.K[l][i] = float32(rng.NormFloat64())
			b.V[l][i] = float32(rng.NormFloat64())
		}
	}
	return b
}

func TestRawRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	cfg := testCfg
	cfg.Layers = []model.LayerShape{{}, {NHeads: 4, NKVHeads: 4}}
	for _, n := range []int{0, 1, 7, 32} {
		b := randomBlock(rng, &cfg, 3*n, n)
		b.K[0] = append(b.K[0][:0:0], b.K[0]...)
		if n > 0 {
			b.K[0][0] = float32(math.Copysign(0, -1))
			b.V[1][n-1] = math.SmallestNonzeroFloat32
		}
		data, err := EncodeRaw(b)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeRaw(data)
		if err != nil {
			t.Fatal(err)
		}
		if err := got.Check(&cfg); err != nil {
			t.Fatal(err)
		}
		if got.Start != b.Start || got.Len != n {
			t.Fatalf("start %d len %d, want %d %d", got.Start, got.Len, b.Start, n)
		}
		for l := range b.K {
			for i := range b.K[l] {
				if math.Float32bits(got.K[l][i]) != math.Float32bits(b.K[l][i]) || math.Float32bits(got.V[l][i]) != math.Float32bits(b.V[l][i]) {
					t.Fatalf("layer %d float %d changed", l, i)
				}
			}
		}
		if again, _ := EncodeRaw(got); !bytes.Equal(again, data) {
			t.Fatal("re-encoding a decoded block changed the bytes")
		}
	}
}

func TestRawErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	good, err := EncodeRaw(randomBlock(rng, &testCfg, 8, 4))
	if err != nil {
		t.Fatal(err)
	}
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"nil", nil, "shorter than the header"},
		{"magic", mod(func(b []byte) []byte { b[0] = 'X'; return b }), "magic"},
		{"version", mod(func(b []byte) []byte { b[4] = 2; return b }), "version 2"},
		{"too many layers", mod(func(b []byte) []byte { b[19] = 0x7f; return b }), "layers"},
		{"huge length", mod(func(b []byte) []byte { b[15] = 0x7f; return b }), "positions"},
		{"zero width", mod(func(b []byte) []byte { copy(b[20:24], []byte{0, 0, 0, 0}); return b }), "width 0"},
		{"width overflow", mod(func(b []byte) []byte { copy(b[20:24], []byte{0, 0, 0, 1}); return b }), "width"},
		{"length mismatch", mod(func(b []byte) []byte { b[12]++; return b }), "header describes"},
		{"padded", mod(func(b []byte) []byte { return append(b, 0) }), "header describes"},
		{"payload bit", mod(func(b []byte) []byte { b[40] ^= 1; return b }), "checksum"},
		{"checksum bit", mod(func(b []byte) []byte { b[len(b)-1] ^= 0x80; return b }), "checksum"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRaw(tc.data)
			if err == nil || !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want a corrupt-block error saying %q", err, tc.want)
			}
		})
	}
	bad := randomBlock(rng, &testCfg, 0, 2)
	bad.K[1] = bad.K[1][:3]
	if _, err := EncodeRaw(bad); err == nil {
		t.Fatal("encoding an inconsistent block succeeded")
	}
}

// FuzzDecodeRaw: any input decodes to a consistent block or fails, and a
// block that decodes re-encodes to the same bytes.
func FuzzDecodeRaw(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{0, 1, 3} {
		b, _ := EncodeRaw(randomBlock(rng, &testCfg, n, n))
		f.Add(b)
	}
	f.Add([]byte("TKVB"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeRaw(data)
		if err != nil {
			return
		}
		for l, d := range b.KVDim {
			if len(b.K[l]) != b.Len*d || len(b.V[l]) != b.Len*d {
				t.Fatalf("layer %d: %d and %d floats for %d×%d", l, len(b.K[l]), len(b.V[l]), b.Len, d)
			}
		}
		again, err := EncodeRaw(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, data) {
			t.Fatal("a decoded block re-encodes to other bytes")
		}
	})
}
