package search

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/eval"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// TestSearchStories runs a whole search on stories260K between Q4_0 and
// Q8_0: the file must land at or under the target, load, and its KLD as
// the eval package measures it (an independent meter) must be the
// objective the search reported.
func TestSearchStories(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two levels and searches (about a minute)")
	}
	ckPath := testshared.Path(t, "models/stories260K/stories260K.bin")
	text := testshared.Path(t, "data/tinystories-valid-sample.txt")
	ck, err := load.Open(ckPath, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	dir := t.TempDir()
	dbDir := filepath.Join(dir, "levels")
	levels := []tensor.DType{tensor.Q4_0, tensor.Q8_0}
	db, err := BuildLevels(context.Background(), ck, BuildOptions{Dir: dbDir, Types: levels, CalibFile: text, CalibChunks: 4, CalibCtx: 128})
	if err != nil {
		t.Fatal(err)
	}
	lo, hi := db.Size(make([]int, len(db.Units))), db.Size(func() []int {
		a := make([]int, len(db.Units))
		for i := range a {
			a[i] = 1
		}
		return a
	}())
	if got := db.Levels[0].Bytes; got != lo {
		t.Fatalf("predicted size of the all-%s file %d, the file has %d bytes", db.Levels[0].Type, lo, got)
	}
	if got := db.Levels[1].Bytes; got != hi {
		t.Fatalf("predicted size of the all-%s file %d, the file has %d bytes", db.Levels[1].Type, hi, got)
	}
	db.Close()

	target := (lo + hi) / 2
	out := filepath.Join(dir, "out.gguf")
	o := Options{Out: out, TargetBytes: target, Levels: levels, LevelDB: dbDir, CalibFile: text, CalibChunks: 4, FitChunks: 2,
		CalibCtx: 128, Evo: EvoOptions{Generations: 2, Offspring: 4, Seed: 7, State: filepath.Join(dir, "state.json")}}
	res, err := Run(context.Background(), ck, o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() > target || st.Size() != res.FileBytes {
		t.Fatalf("file of %d bytes (reported %d) for a target of %d", st.Size(), res.FileBytes, target)
	}
	if res.FitnessKLD > res.DPKLD {
		t.Fatalf("evo ended worse (%g) than the DP start (%g)", res.FitnessKLD, res.DPKLD)
	}
	// The written file, measured by package eval on the objective's last
	// stage tokens, against the original model.
	got, err := load.Open(out, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	text2, _ := os.ReadFile(text)
	tokens := ck.Tokenizer.Encode(string(text2), true)
	tokens = tokens[4*128:]
	r, err := eval.Evaluate(model.NewRunner(got.Model, 128), tokens[:2*128], eval.Options{Protocol: eval.ProtocolAll, Ctx: 128,
		Base: model.NewRunner(ck.Model, 128)})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(r.KLDMean-res.FitnessKLD) > 1e-4*max(1, r.KLDMean)+0.02*r.KLDMean {
		t.Fatalf("eval measures KLD %g for the written file, the search's objective said %g", r.KLDMean, res.FitnessKLD)
	}
	// A largest KLD: the smallest DP allocation that reaches the KLD the
	// target search found is no bigger than that search's file.
	ko := o
	ko.TargetBytes, ko.MaxKLD, ko.Method, ko.Out = 0, res.FitnessKLD*1.0001, "dp", filepath.Join(dir, "kld.gguf")
	kres, err := Run(context.Background(), ck, ko)
	if err != nil {
		t.Fatal(err)
	}
	if kres.FitnessKLD > ko.MaxKLD {
		t.Fatalf("--max-kld %g gave a file of KLD %g", ko.MaxKLD, kres.FitnessKLD)
	}
	if kres.FileBytes > kres.TargetBytes || kres.TargetBytes > hi {
		t.Fatalf("--max-kld: file of %d bytes for a found size of %d (all-top %d)", kres.FileBytes, kres.TargetBytes, hi)
	}
	// Resuming a finished search does no more generations and gives the
	// same answer.
	os.Remove(out)
	res2, err := Run(context.Background(), ck, o)
	if err != nil {
		t.Fatal(err)
	}
	if res2.FitnessKLD != res.FitnessKLD || res2.FileBytes != res.FileBytes {
		t.Fatalf("resumed search gave %g at %d bytes, first run %g at %d", res2.FitnessKLD, res2.FileBytes, res.FitnessKLD, res.FileBytes)
	}
}
