//go:build !purego

package kernel

import (
	"math/rand/v2"
	"syscall"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// TestIQ23RowsAtPageEnd runs the lattice and ternary row dots on weight
// rows that end exactly where an inaccessible page begins, so a kernel
// that reads past its row faults, and checks the results against the
// reference dot.
func TestIQ23RowsAtPageEnd(t *testing.T) {
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Skipf("mmap: %v", err)
	}
	defer syscall.Munmap(mem)
	if err := syscall.Mprotect(mem[page:], syscall.PROT_NONE); err != nil {
		t.Skipf("mprotect: %v", err)
	}
	r := rand.New(rand.NewPCG(91, 92))
	types := []tensor.DType{tensor.IQ3_XXS, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ3_S, tensor.IQ2_S,
		tensor.TQ2_0, tensor.IQ1_S, tensor.IQ1_M, tensor.TQ1_0}
	for _, dt := range types {
		qt, _ := qTypeOf(dt)
		const nb = 2
		rb := nb * dt.BlockBytes()
		w := mem[page-rb : page]
		copy(w, randBlocks(r, dt, nb, 0))
		a := exactAct(r, dt, nb*dt.BlockSize(), 0, 0)
		want := qt.generic(w, a)
		for _, l := range levels() {
			if got := qdotFor(l, dt, qt.generic)(w, a); !sameFloat(got, want) {
				t.Errorf("%s/%v: %g, reference %g", dt, l, got, want)
			}
		}
	}
}
