package bench

import (
	"encoding/binary"
	"testing"

	"github.com/terse-llm/terse/kernel"
)

// goRead is the plain Go loop the bandwidth probe must be at least as fast
// as: one 64-bit load and add per word.
func goRead(b []byte) uint64 {
	var s uint64
	for i := 0; i+8 <= len(b); i += 8 {
		s += binary.LittleEndian.Uint64(b[i:])
	}
	return s
}

// TestBandwidth runs the probe and the plain Go loop over the same buffer
// size and reports both; speeds are not asserted (tests never time), only
// that the probe measures something. The probe's kernel is checked against
// its definition in package kernel (TestReadSum).
func TestBandwidth(t *testing.T) {
	size := 256 << 20
	if testing.Short() {
		size = 32 << 20
	}
	probe := bandwidth(size, 3, kernel.ReadSum)
	plain := bandwidth(size, 3, goRead)
	if probe <= 0 || plain <= 0 {
		t.Fatalf("bandwidth %v GB/s (probe), %v GB/s (Go loop)", probe, plain)
	}
	t.Logf("%d MiB, %d threads: probe (kernel.ReadSum, %s) %.1f GB/s, plain Go loop %.1f GB/s (%.2f×)",
		size>>20, kernel.Threads(), kernel.Kernel(), probe, plain, probe/plain)
	if got := bandwidth(100, 1, kernel.ReadSum); got != 0 {
		t.Errorf("a buffer smaller than a page per thread measured %v GB/s, want 0 (nothing to measure)", got)
	}
}

// TestRunBatch runs the batched decode test on a small random model and
// checks its shape: one entry per sequence count, B = 1 at 1×, and the
// roofline fraction filled in.
func TestRunBatch(t *testing.T) {
	m, err := RandomModel(Random{Shape: "28m", Type: "Q8_0", Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(m, "random-28m", Options{Gen: 3, Reps: 1, Depth: 5, Batch: []int{1, 3}, RooflineBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Batch) != 2 || r.Batch[0].Seqs != 1 || r.Batch[1].Seqs != 3 {
		t.Fatalf("batch results %+v", r.Batch)
	}
	if r.Batch[0].VsOne != 1 || r.Batch[1].TPS <= 0 || r.Batch[1].VsOne <= 0 {
		t.Errorf("batch results %+v", r.Batch)
	}
	if r.RooflineGBps <= 0 || r.RooflineFrac <= 0 {
		t.Errorf("roofline %v GB/s, decode at %v of it", r.RooflineGBps, r.RooflineFrac)
	}
	if _, err := Run(m, "x", Options{Batch: []int{2}, Prompt: 4, RooflineBytes: -1}); err == nil {
		t.Errorf("batched decode without decode steps: no error")
	}
	if _, err := Run(m, "x", Options{Gen: 1, Batch: []int{0}, RooflineBytes: -1}); err == nil {
		t.Errorf("batch of 0 sequences: no error")
	}
}
