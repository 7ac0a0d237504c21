package calib

import (
	"bytes"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
)

func TestIMatrixFixture(t *testing.T) {
	path := testshared.Path(t, "models/pdtext-llama-28m-gguf/imatrix.dat")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ReadIMatrix(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	// llama-imatrix -c 512 over pdtext-calib.txt, 288 chunks; 8 layers × 7
	// matrices, no output.weight (no --process-output).
	if len(m.Entries) != 56 || m.LastChunk != 288 || m.Dataset != "pdtext-calib.txt" {
		t.Fatalf("%d entries, last chunk %d, dataset %q", len(m.Entries), m.LastChunk, m.Dataset)
	}
	canon := regexp.MustCompile(`^blk\.[0-7]\.(attn_[qkv]|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$`)
	seen := map[string]bool{}
	for _, e := range m.Entries {
		if !canon.MatchString(e.Name) || seen[e.Name] {
			t.Errorf("unexpected or repeated entry %q", e.Name)
		}
		seen[e.Name] = true
		want := 512
		if strings.Contains(e.Name, "ffn_down") { // attn_output's input is n_head·head_dim = 512
			want = 1536
		}
		if len(e.Values) != want {
			t.Errorf("%s: %d values, want %d", e.Name, len(e.Values), want)
		}
		if e.NCall != 288 {
			t.Errorf("%s: ncall %d, want 288", e.Name, e.NCall)
		}
		for j, v := range e.Importance() {
			if !(v >= 0) || math.IsInf(float64(v), 0) {
				t.Fatalf("%s[%d] = %g", e.Name, j, v)
			}
		}
	}
	// q, k and v multiply the same input, so llama.cpp saw identical sums.
	q, k := m.Importance("blk.3.attn_q.weight"), m.Importance("blk.3.attn_k.weight")
	for j := range q {
		if q[j] != k[j] {
			t.Fatalf("blk.3 attn_q and attn_k importance differ at %d: %g vs %g", j, q[j], k[j])
		}
	}
	var buf bytes.Buffer
	n, err := m.WriteTo(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(raw)) || !bytes.Equal(buf.Bytes(), raw) {
		t.Fatalf("rewritten file differs: %d bytes (reported %d), original %d", buf.Len(), n, len(raw))
	}
}

func TestIMatrixRoundTrip(t *testing.T) {
	m := &IMatrix{
		Entries: []Entry{
			{Name: "blk.0.ffn_down.weight", NCall: 3, Values: []float32{1, 2.5, 0, 7}},
			{Name: "blk.0.attn_q.weight", NCall: 1, Values: []float32{0.125}},
		},
		LastChunk: 3,
		Dataset:   "calib.txt",
	}
	var buf bytes.Buffer
	if _, err := m.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := ReadIMatrix(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.LastChunk != 3 || got.Dataset != "calib.txt" || len(got.Entries) != 2 {
		t.Fatalf("read back %+v", got)
	}
	if imp := got.Importance("blk.0.ffn_down.weight"); imp[1] != 2.5/3 || imp[3] != 7.0/3 {
		t.Errorf("importance %v", imp)
	}
	if got.Importance("nope") != nil {
		t.Error("importance of a missing tensor")
	}
	// Without the trailer (older llama.cpp) the file still reads.
	short := buf.Bytes()[:buf.Len()-4-4-len("calib.txt")]
	old, err := ReadIMatrix(bytes.NewReader(short))
	if err != nil || old.LastChunk != 0 || old.Dataset != "" || len(old.Entries) != 2 {
		t.Fatalf("trailerless file: %+v, %v", old, err)
	}
}

func TestIMatrixRejects(t *testing.T) {
	good := func() []byte {
		var buf bytes.Buffer
		(&IMatrix{Entries: []Entry{{Name: "a", NCall: 1, Values: []float32{1, 2}}}, Dataset: "d"}).WriteTo(&buf)
		return buf.Bytes()
	}
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"zero entries", []byte{0, 0, 0, 0}},
		{"negative name length", append([]byte{1, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff)},
		{"huge value count", append([]byte{1, 0, 0, 0, 1, 0, 0, 0, 'a', 1, 0, 0, 0}, 0xff, 0xff, 0xff, 0x7f)},
		{"truncated values", good()[:20]},
		{"trailing garbage", append(good(), 0)},
		{"truncated trailer", good()[:len(good())-2]},
	}
	for _, c := range cases {
		if _, err := ReadIMatrix(bytes.NewReader(c.data)); err == nil {
			t.Errorf("%s: no error", c.name)
		}
	}
	if _, err := (&IMatrix{}).WriteTo(&bytes.Buffer{}); err == nil {
		t.Error("writing an empty imatrix: no error")
	}
}

func FuzzReadIMatrix(f *testing.F) {
	var buf bytes.Buffer
	(&IMatrix{Entries: []Entry{{Name: "blk.0.attn_q.weight", NCall: 2, Values: []float32{1, 2, 3}}}, LastChunk: 2, Dataset: "x"}).WriteTo(&buf)
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()-9])
	f.Add([]byte{1, 0, 0, 0, 1, 0, 0, 0, 'a', 1, 0, 0, 0, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadIMatrix(bytes.NewReader(data))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if _, err := m.WriteTo(&out); err != nil {
			t.Fatalf("read but cannot write: %v", err)
		}
		// Byte-identical, or the trailerless input plus an empty trailer.
		b := out.Bytes()
		if !bytes.Equal(b, data) && !(len(b) == len(data)+8 && bytes.Equal(b[:len(data)], data) && bytes.Equal(b[len(data):], make([]byte, 8))) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}
