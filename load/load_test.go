package load

import (
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/model"
)

// reference is the oracle transformers computed for pdtext-llama-28m.
type reference struct {
	First64IDs       []int       `json:"first64_ids"`
	First64NLL       []float64   `json:"first64_nll"`
	First8Top5       [][]int     `json:"first8_top5"`
	First8LogitsHead [][]float64 `json:"first8_logits_head"`
	GreedyPromptIDs  []int       `json:"greedy_prompt_ids"`
	GreedyIDs        []int       `json:"greedy_ids"`
	GreedyText       string      `json:"greedy_text"`
}

func readReference(t *testing.T) reference {
	t.Helper()
	b, err := os.ReadFile(testshared.Path(t, "models/pdtext-llama-28m/reference.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r reference
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func logSoftmax(row []float32) []float64 {
	maxv := math.Inf(-1)
	for _, v := range row {
		maxv = math.Max(maxv, float64(v))
	}
	var sum float64
	for _, v := range row {
		sum += math.Exp(float64(v) - maxv)
	}
	out := make([]float64, len(row))
	lse := maxv + math.Log(sum)
	for i, v := range row {
		out[i] = float64(v) - lse
	}
	return out
}

func top5(row []float32) []int {
	idx := make([]int, 0, 5)
	for k := 0; k < 5; k++ {
		best := -1
		for i, v := range row {
			taken := false
			for _, j := range idx {
				taken = taken || j == i
			}
			if !taken && (best < 0 || v > row[best]) {
				best = i
			}
		}
		idx = append(idx, best)
	}
	return idx
}

// checkPdtext runs the cheap oracle checks on an opened pdtext-llama-28m.
func checkPdtext(t *testing.T, ck *Checkpoint, ref reference) {
	m := ck.Model
	V := m.Config.VocabSize
	st := m.NewState(64, 64)
	logits := make([]float32, 64*V)
	if err := st.Forward(ref.First64IDs, logits, true); err != nil {
		t.Fatal(err)
	}
	for p := 0; p < 63; p++ {
		row := logits[p*V : (p+1)*V]
		nll := -logSoftmax(row)[ref.First64IDs[p+1]]
		if d := math.Abs(nll - ref.First64NLL[p]); d > 1e-2 {
			t.Errorf("position %d: NLL %.5f, reference %.5f", p, nll, ref.First64NLL[p])
		}
		if p < 8 {
			got := top5(row)
			for i := range got {
				if got[i] != ref.First8Top5[p][i] {
					t.Errorf("position %d: top-5 %v, reference %v", p, got, ref.First8Top5[p])
					break
				}
			}
			for i, want := range ref.First8LogitsHead[p] {
				if d := math.Abs(float64(row[i]) - want); d > 1e-2 {
					t.Errorf("position %d logit %d: %.5f, reference %.5f", p, i, row[i], want)
				}
			}
		}
	}
	// Greedy decoding from the prompt.
	ids := append([]int(nil), ref.GreedyPromptIDs...)
	st = m.NewState(len(ref.GreedyIDs), 16)
	last := make([]float32, V)
	if err := st.Forward(ids, last, false); err != nil {
		t.Fatal(err)
	}
	for len(ids) < len(ref.GreedyIDs) {
		next := model.Argmax(last)
		ids = append(ids, next)
		if len(ids) == len(ref.GreedyIDs) {
			break
		}
		if err := st.Forward([]int{next}, last, false); err != nil {
			t.Fatal(err)
		}
	}
	for i := range ids {
		if ids[i] != ref.GreedyIDs[i] {
			t.Fatalf("greedy ids differ at %d:\n got %v\nwant %v", i, ids, ref.GreedyIDs)
		}
	}
	if txt := ck.Tokenizer.Decode(ids); txt != ref.GreedyText {
		t.Errorf("greedy text %q, want %q", txt, ref.GreedyText)
	}
}

func TestPdtextHF(t *testing.T) {
	ref := readReference(t)
	ck, err := Open(testshared.Path(t, "models/pdtext-llama-28m"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if got := ck.Tokenizer.Encode("The state of the Union is", false); !equalInts(got, ref.GreedyPromptIDs) {
		t.Errorf("prompt ids %v, want %v", got, ref.GreedyPromptIDs)
	}
	checkPdtext(t, ck, ref)
}

func TestPdtextGGUFQ8(t *testing.T) {
	ref := readReference(t)
	ck, err := Open(testshared.Path(t, "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q8_0.gguf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Model.Config.RopeStyle != model.RopeInterleaved || ck.Model.Config.NKVHeads != 2 {
		t.Fatalf("config %+v", ck.Model.Config)
	}
	// Q8_0 moves logits by ~0.01–0.05: check only what must survive it.
	V := ck.Model.Config.VocabSize
	st := ck.Model.NewState(64, 64)
	logits := make([]float32, 64*V)
	if err := st.Forward(ref.First64IDs, logits, true); err != nil {
		t.Fatal(err)
	}
	var sum, sumRef float64
	for p := 0; p < 63; p++ {
		sum += -logSoftmax(logits[p*V : (p+1)*V])[ref.First64IDs[p+1]]
		sumRef += ref.First64NLL[p]
	}
	if d := math.Abs(sum-sumRef) / 63; d > 0.02 {
		t.Errorf("Q8_0 mean NLL over 63 positions %.4f, reference %.4f", sum/63, sumRef/63)
	}
	if got := ck.Tokenizer.Encode("The state of the Union is", false); !equalInts(got, ref.GreedyPromptIDs) {
		t.Errorf("GGUF vocabulary: prompt ids %v, want %v", got, ref.GreedyPromptIDs)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestStories260KLlama2cMatchesGGUF(t *testing.T) {
	a, err := Open(testshared.Path(t, "models/stories260K/stories260K.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(testshared.Path(t, "models/stories260K-gguf/stories260K-f32.gguf"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	text := "Once upon a time, there was a little girl named Lily. She loved to play outside."
	ta, tb := a.Tokenizer.Encode(text, true), b.Tokenizer.Encode(text, true)
	if !equalInts(ta, tb) {
		t.Fatalf("tokenizers differ:\n llama2c %v\n gguf    %v", ta, tb)
	}
	V := a.Model.Config.VocabSize
	la, lb := make([]float32, len(ta)*V), make([]float32, len(ta)*V)
	if err := a.Model.NewState(64, 64).Forward(ta, la, true); err != nil {
		t.Fatal(err)
	}
	if err := b.Model.NewState(64, 64).Forward(ta, lb, true); err != nil {
		t.Fatal(err)
	}
	var worst float64
	for i := range la {
		worst = math.Max(worst, math.Abs(float64(la[i]-lb[i])))
	}
	t.Logf("llama2.c vs llama.cpp GGUF: largest logit difference %g over %d positions", worst, len(ta))
	if worst > 1e-4 {
		t.Errorf("llama2.c and GGUF logits differ by up to %g", worst)
	}
}

func TestStories260KThreeStories(t *testing.T) {
	ck, err := Open(testshared.Path(t, "models/stories260K/stories260K.bin"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	raw, err := os.ReadFile(testshared.Path(t, "data/tinystories-valid-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var stories []string
	for _, s := range strings.Split(string(raw), "\n\n") {
		if s = strings.TrimSpace(s); s != "" {
			stories = append(stories, s)
		}
	}
	want := []struct {
		tokens int
		first  []int
		nll    float64
	}{
		{620, []int{1, 403, 407, 261, 378, 432, 322, 261, 370, 272, 414, 276}, 1.30613},
		{234, []int{1, 403, 407, 261, 378, 432, 322, 261, 262, 423, 388, 348}, 1.17641},
		{388, []int{1, 403, 407, 261, 378, 432, 383, 286, 261, 308, 277, 428}, 1.05257},
	}
	V := ck.Model.Config.VocabSize
	var total float64
	var count int
	for i, w := range want {
		ids := ck.Tokenizer.Encode(stories[i], true)
		if len(ids) != w.tokens || !equalInts(ids[:12], w.first) {
			t.Fatalf("story %d: %d tokens starting %v, want %d starting %v", i+1, len(ids), ids[:12], w.tokens, w.first)
		}
		// Story 1 runs past the model's 512-position training context; the
		// reference scores it anyway (RoPE is defined at every position).
		n := len(ids)
		logits := make([]float32, n*V)
		if err := ck.Model.NewState(n, 128).Forward(ids[:n], logits, true); err != nil {
			t.Fatal(err)
		}
		var sum float64
		for p := 0; p+1 < n; p++ {
			sum += -logSoftmax(logits[p*V : (p+1)*V])[ids[p+1]]
		}
		t.Logf("story %d: %d tokens, mean NLL %.5f (reference %.5f)", i+1, n, sum/float64(n-1), w.nll)
		if got := sum / float64(n-1); math.Abs(got-w.nll) > 1e-3 {
			t.Errorf("story %d: mean NLL %.5f, want %.5f", i+1, got, w.nll)
		}
		total += sum
		count += n - 1
	}
	if got := total / float64(count); math.Abs(got-1.20253) > 1e-3 {
		t.Errorf("all stories: mean NLL %.5f, want 1.20253", got)
	}
}
