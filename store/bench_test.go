package store

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkStore puts and gets 256 KiB blocks (about a 128-token KV block
// of a small model) in each backend.
func BenchmarkStore(b *testing.B) {
	const size = 256 << 10
	data := blob(9, size)
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			fresh := be.setup(b)
			s, err := Open(context.Background(), fresh())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			b.Run("put", func(b *testing.B) {
				b.SetBytes(size)
				for i := 0; b.Loop(); i++ {
					if err := s.Put(ctx, fmt.Sprintf("b%d", i), data); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("get", func(b *testing.B) {
				b.SetBytes(size)
				if err := s.Put(ctx, "g", data); err != nil {
					b.Fatal(err)
				}
				for b.Loop() {
					if _, err := s.Get(ctx, "g"); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
