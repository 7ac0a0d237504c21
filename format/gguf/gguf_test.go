package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/tensor"
)

// sampleMeta has one value of every kind the format holds.
func sampleMeta() []KV {
	return []KV{
		{"general.architecture", "llama"},
		{"general.alignment", uint32(64)},
		{"u8", uint8(200)},
		{"i8", int8(-100)},
		{"u16", uint16(60000)},
		{"i16", int16(-30000)},
		{"u32", uint32(4000000000)},
		{"i32", int32(-2000000000)},
		{"f32", float32(1.5)},
		{"bool", true},
		{"str", "héllo"},
		{"u64", uint64(math.MaxUint64)},
		{"i64", int64(math.MinInt64)},
		{"f64", math.Pi},
		{"a.u8", []uint8{1, 2, 3}},
		{"a.i8", []int8{-1, 2}},
		{"a.u16", []uint16{1, 65535}},
		{"a.i16", []int16{-2, 3}},
		{"a.u32", []uint32{7}},
		{"a.i32", []int32{-7, 8, 9}},
		{"a.f32", []float32{0.25, -1}},
		{"a.bool", []bool{true, false, true}},
		{"a.str", []string{"a", "", "ccc"}},
		{"a.u64", []uint64{1 << 40}},
		{"a.i64", []int64{-1 << 40}},
		{"a.f64", []float64{2.5}},
		{"a.empty", []string{}},
		{"a.nested", []any{[]int32{1, 2}, []string{"x"}, []any{[]bool{false}}}},
	}
}

// sampleTensors has tensors of several types, sizes and ranks.
func sampleTensors() []*tensor.Tensor {
	mk := func(name string, dt tensor.DType, shape []int) *tensor.Tensor {
		t := &tensor.Tensor{Name: name, DType: dt, Shape: shape}
		n, err := t.ByteSize()
		if err != nil {
			panic(err)
		}
		t.Data = make([]byte, n)
		for i := range t.Data {
			t.Data[i] = byte(i*7 + len(name))
		}
		return t
	}
	return []*tensor.Tensor{
		mk("token_embd.weight", tensor.Q4_K, []int{3, 512}),
		mk("norm", tensor.F32, []int{5}),
		mk("blk.0.w", tensor.Q8_0, []int{2, 1, 64}),
		mk("half", tensor.F16, []int{1, 2, 3, 3}),
		mk("empty", tensor.F32, []int{0, 4}),
		mk("xs", tensor.IQ4_XS, []int{256}),
	}
}

func writeSample(t testing.TB) []byte {
	var buf bytes.Buffer
	if err := Write(&buf, sampleMeta(), sampleTensors()); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func checkSample(t *testing.T, f *File) {
	t.Helper()
	meta := sampleMeta()
	if len(f.Keys) != len(meta) {
		t.Fatalf("%d keys, want %d", len(f.Keys), len(meta))
	}
	for i, kv := range meta {
		if f.Keys[i] != kv.Key {
			t.Errorf("key %d = %q, want %q", i, f.Keys[i], kv.Key)
		}
		if got := f.Metadata[kv.Key]; !reflect.DeepEqual(got, kv.Value) {
			t.Errorf("%s = %#v, want %#v", kv.Key, got, kv.Value)
		}
	}
	if f.Version != 3 || f.Alignment != 64 || f.DataOffset%64 != 0 {
		t.Errorf("version %d, alignment %d, data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	want := sampleTensors()
	if len(f.Tensors) != len(want) {
		t.Fatalf("%d tensors, want %d", len(f.Tensors), len(want))
	}
	for i, w := range want {
		ti := f.Tensors[i]
		if ti.Name != w.Name || ti.DType != w.DType || !reflect.DeepEqual(ti.Shape, w.Shape) || ti.Size != int64(len(w.Data)) || ti.Offset%64 != 0 {
			t.Errorf("tensor %d = %+v, want %s %s %v", i, ti, w.Name, w.DType, w.Shape)
		}
		got, err := f.Tensor(w.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Data, w.Data) || got.DType != w.DType || !reflect.DeepEqual(got.Shape, w.Shape) {
			t.Errorf("tensor %s differs after the round trip", w.Name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	data := writeSample(t)
	t.Run("Parse", func(t *testing.T) {
		f, err := Parse(data)
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, f)
		// A second write of what was read is byte-identical.
		var again bytes.Buffer
		var ts []*tensor.Tensor
		for i := range f.Tensors {
			tt, _ := f.TensorAt(i)
			ts = append(ts, tt)
		}
		if err := Write(&again, f.KVs(), ts); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Bytes(), data) {
			t.Error("rewrite differs")
		}
	})
	t.Run("ReaderAt", func(t *testing.T) {
		f, err := ParseReaderAt(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, f)
	})
	t.Run("Open", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "x.gguf")
		if err := WriteFile(path, sampleMeta(), sampleTensors()); err != nil {
			t.Fatal(err)
		}
		f, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, f)
		if f.Path != path {
			t.Errorf("Path = %q", f.Path)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Tensor("norm"); err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Tensor after Close: %v", err)
		}
	})
}

func TestDefaultAlignment(t *testing.T) {
	var buf bytes.Buffer
	ts := []*tensor.Tensor{tensor.FromFloat32("a", []int{3}, []float32{1, 2, 3}), tensor.FromFloat32("b", []int{1}, []float32{4})}
	if err := Write(&buf, []KV{{"k", "v"}}, ts); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 32 || f.Tensors[1].Offset != 32 || f.DataOffset%32 != 0 || int64(buf.Len()) != f.DataOffset+64 {
		t.Errorf("alignment %d, offsets %d, data %d, size %d", f.Alignment, f.Tensors[1].Offset, f.DataOffset, buf.Len())
	}
}

func TestGetters(t *testing.T) {
	f, err := Parse(writeSample(t))
	if err != nil {
		t.Fatal(err)
	}
	if s, ok := f.String("general.architecture"); !ok || s != "llama" {
		t.Errorf("String = %q, %v", s, ok)
	}
	if _, ok := f.String("u8"); ok {
		t.Error("String of a uint8")
	}
	for key, want := range map[string]uint64{"u8": 200, "u16": 60000, "u32": 4000000000, "u64": math.MaxUint64} {
		if v, ok := f.Uint(key); !ok || v != want {
			t.Errorf("Uint(%s) = %d, %v", key, v, ok)
		}
	}
	if _, ok := f.Uint("i8"); ok {
		t.Error("Uint of a negative int8")
	}
	if v, ok := f.Int("i16"); !ok || v != -30000 {
		t.Errorf("Int(i16) = %d, %v", v, ok)
	}
	if _, ok := f.Int("u64"); ok {
		t.Error("Int of MaxUint64")
	}
	if v, ok := f.Float("f32"); !ok || v != 1.5 {
		t.Errorf("Float(f32) = %v, %v", v, ok)
	}
	if v, ok := f.Float("f64"); !ok || v != math.Pi {
		t.Errorf("Float(f64) = %v, %v", v, ok)
	}
	if v, ok := f.Bool("bool"); !ok || !v {
		t.Errorf("Bool = %v, %v", v, ok)
	}
	if v, ok := f.Strings("a.str"); !ok || len(v) != 3 || v[2] != "ccc" {
		t.Errorf("Strings = %v, %v", v, ok)
	}
	if v, ok := f.Float32s("a.f32"); !ok || len(v) != 2 {
		t.Errorf("Float32s = %v, %v", v, ok)
	}
	if v, ok := f.Int32s("a.i32"); !ok || len(v) != 3 {
		t.Errorf("Int32s = %v, %v", v, ok)
	}
	if v, ok := f.Ints("a.u16"); !ok || !reflect.DeepEqual(v, []int64{1, 65535}) {
		t.Errorf("Ints = %v, %v", v, ok)
	}
	if _, ok := f.Value("missing"); ok {
		t.Error("Value of a missing key")
	}
	if ti, ok := f.Lookup("norm"); !ok || ti.NumElements() != 5 {
		t.Errorf("Lookup = %+v, %v", ti, ok)
	}
	if _, err := f.Tensor("missing"); err == nil || !strings.Contains(err.Error(), `"missing"`) {
		t.Errorf("Tensor(missing) = %v", err)
	}
}

// raw builds GGUF bytes field by field, to make malformed files.
type raw struct{ b []byte }

func (r *raw) u32(v uint32) *raw { r.b = binary.LittleEndian.AppendUint32(r.b, v); return r }
func (r *raw) u64(v uint64) *raw { r.b = binary.LittleEndian.AppendUint64(r.b, v); return r }
func (r *raw) str(s string) *raw { r.u64(uint64(len(s))); r.b = append(r.b, s...); return r }
func (r *raw) bytes(b ...byte) *raw {
	r.b = append(r.b, b...)
	return r
}
func header(version uint32, nt, nkv uint64) *raw {
	r := &raw{b: []byte(Magic)}
	return r.u32(version).u64(nt).u64(nkv)
}

// tinfo appends a tensor info with GGUF-order dims.
func (r *raw) tinfo(name string, dt tensor.DType, off uint64, ne ...uint64) *raw {
	r.str(name).u32(uint32(len(ne)))
	for _, n := range ne {
		r.u64(n)
	}
	return r.u32(uint32(dt)).u64(off)
}

// padTo pads to a multiple of n and appends size data bytes.
func (r *raw) data(n, size int) *raw {
	for len(r.b)%n != 0 {
		r.b = append(r.b, 0)
	}
	r.b = append(r.b, make([]byte, size)...)
	return r
}

func TestParseErrors(t *testing.T) {
	valid := writeSample(t)
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "truncated"},
		{"bad magic", append([]byte("GGML"), valid[4:]...), "bad magic"},
		{"version 1", header(1, 0, 0).b, "version 1"},
		{"version 9", header(9, 0, 0).b, "unsupported GGUF version 9"},
		{"big endian", header(3<<24, 0, 0).b, "big-endian"},
		{"huge kv count", header(3, 0, 1<<62).b, "metadata entries"},
		{"huge tensor count", header(3, 1<<40, 0).b, "tensors"},
		{"kv past end", header(3, 0, 2).str("a").u32(uint32(TypeUint8)).bytes(1).str("").u32(uint32(TypeUint64)).bytes(1).b, "truncated"},
		{"huge string", header(3, 0, 1).u64(1 << 62).u64(0).b, "string length"},
		{"string past end", header(3, 0, 1).u64(100).bytes('a', 'b', 'c', 'd', 'e').b, "runs past the end"},
		{"unknown value type", header(3, 0, 1).str("k").u32(13).b, "unknown value type 13"},
		{"bad bool", header(3, 0, 1).str("k").u32(uint32(TypeBool)).bytes(2).b, "neither 0 nor 1"},
		{"bad bool array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeBool)).u64(1).bytes(5).b, "neither 0 nor 1"},
		{"huge array", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint64)).u64(1 << 40).b, "exceeds the limit"},
		{"array past end", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(uint32(TypeUint32)).u64(1000).u32(0).b, "runs past the end"},
		{"array of unknown", header(3, 0, 1).str("k").u32(uint32(TypeArray)).u32(99).u64(0).b, "unknown value type 99"},
		{"deep nesting", func() []byte {
			r := header(3, 0, 1).str("k").u32(uint32(TypeArray))
			for i := 0; i < 10; i++ {
				r.u32(uint32(TypeArray)).u64(1)
			}
			return r.u32(uint32(TypeUint8)).u64(0).b
		}(), "nested deeper"},
		{"duplicate key", header(3, 0, 2).str("k").u32(uint32(TypeUint8)).bytes(1).str("k").u32(uint32(TypeUint8)).bytes(1).b, `"k" appears twice`},
		{"alignment type", header(3, 0, 1).str(KeyAlignment).u32(uint32(TypeUint64)).u64(32).b, "want uint32"},
		{"alignment zero", header(3, 0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(0).b, "not a power of two"},
		{"alignment 48", header(3, 0, 1).str(KeyAlignment).u32(uint32(TypeUint32)).u32(48).b, "not a power of two"},
		{"too many dims", header(3, 1, 0).tinfo("t", tensor.F32, 0, 1, 1, 1, 1, 1).data(32, 4).b, "5 dimensions"},
		{"negative dim", header(3, 1, 0).tinfo("t", tensor.F32, 0, 1<<63).data(32, 4).b, "negative"},
		{"overflowing shape", header(3, 1, 0).tinfo("t", tensor.F32, 0, 1<<32, 1<<32).data(32, 4).b, "overflows"},
		{"unknown type", header(3, 1, 0).tinfo("t", 5, 0, 4).data(32, 16).b, "unknown ggml type 5"},
		{"u8 not ggml", header(3, 1, 0).tinfo("t", tensor.U8, 0, 4).data(32, 16).b, "unknown ggml type 1000"},
		{"partial block", header(3, 1, 0).tinfo("t", tensor.Q4_K, 0, 100).data(32, 144).b, "multiple of the block size"},
		{"misaligned", header(3, 1, 0).tinfo("t", tensor.F32, 4, 1).data(32, 64).b, "not a multiple of the alignment"},
		{"past end", header(3, 1, 0).tinfo("t", tensor.F32, 0, 16).data(32, 60).b, "run past the end"},
		{"offset past end", header(3, 1, 0).tinfo("t", tensor.F32, 1<<40, 1).data(32, 60).b, "run past the end"},
		{"huge offset", header(3, 1, 0).tinfo("t", tensor.F32, 1<<63, 1).data(32, 60).b, "out of range"},
		{"data past end", header(3, 1, 0).tinfo("t", tensor.F32, 0, 0).b, "past the end"},
		{"duplicate tensor", header(3, 2, 0).tinfo("t", tensor.F32, 0, 1).tinfo("t", tensor.F32, 32, 1).data(32, 64).b, `"t" appears twice`},
		{"overlap", header(3, 2, 0).tinfo("a", tensor.F32, 0, 16).tinfo("b", tensor.F32, 32, 16).data(32, 128).b, "overlap"},
		{"tensor name too long", header(3, 1, 0).str(strings.Repeat("n", 1<<17)).b, "exceeds the limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in)
			if err == nil {
				t.Fatal("parsed")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "gguf ") {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			_, err2 := ParseReaderAt(bytes.NewReader(tc.in), int64(len(tc.in)))
			if err2 == nil || !strings.Contains(err2.Error(), tc.want) {
				t.Fatalf("ParseReaderAt err = %v, want it to mention %q", err2, tc.want)
			}
		})
	}
}

// TestOpenErrorsNameFile checks that Open's errors carry the path.
func TestOpenErrorsNameFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string][]byte{
		"short.gguf": []byte("GGUF"),
		"bad.gguf":   header(3, 1, 0).tinfo("w", 99, 0, 4).data(32, 16).b,
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing.gguf")); err == nil {
		t.Error("opened a missing file")
	}
}

// TestTruncations parses every prefix of a valid file: all but the whole
// must fail cleanly.
func TestTruncations(t *testing.T) {
	data := writeSample(t)
	full, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	// The padding after the last tensor may be cut; nothing else.
	last := full.Tensors[len(full.Tensors)-1]
	end := int(full.DataOffset + last.Offset + last.Size)
	for n := 0; n < len(data); n++ {
		_, err := Parse(data[:n])
		if n < end && err == nil {
			t.Fatalf("prefix of %d/%d bytes parsed", n, len(data))
		}
		if n >= end && err != nil {
			t.Fatalf("prefix of %d/%d bytes: %v", n, len(data), err)
		}
	}
}

func TestWriteErrors(t *testing.T) {
	f32 := func(name string) *tensor.Tensor { return tensor.FromFloat32(name, []int{2}, []float32{1, 2}) }
	tests := []struct {
		name    string
		meta    []KV
		tensors []*tensor.Tensor
		want    string
	}{
		{"int value", []KV{{"k", 3}}, nil, "Go type int"},
		{"map value", []KV{{"k", map[string]int{}}}, nil, "no GGUF type"},
		{"bad nested", []KV{{"k", []any{"x"}}}, nil, "may only hold arrays"},
		{"duplicate key", []KV{{"k", "a"}, {"k", "b"}}, nil, "twice"},
		{"bad alignment", []KV{{KeyAlignment, uint32(3)}}, nil, "power of two"},
		{"alignment type", []KV{{KeyAlignment, uint64(32)}}, nil, "power of two"},
		{"duplicate tensor", nil, []*tensor.Tensor{f32("a"), f32("a")}, "twice"},
		{"long name", nil, []*tensor.Tensor{f32(strings.Repeat("x", 64))}, "at most 63"},
		{"empty name", nil, []*tensor.Tensor{f32("")}, "empty name"},
		{"nil tensor", nil, []*tensor.Tensor{nil}, "nil tensor"},
		{"size mismatch", nil, []*tensor.Tensor{{Name: "a", DType: tensor.F32, Shape: []int{3}, Data: make([]byte, 8)}}, "needs 12 bytes"},
		{"partial block", nil, []*tensor.Tensor{{Name: "a", DType: tensor.Q8_0, Shape: []int{16}, Data: make([]byte, 17)}}, "block size"},
		{"u8", nil, []*tensor.Tensor{{Name: "a", DType: tensor.U8, Shape: []int{1}, Data: make([]byte, 1)}}, "no ggml id"},
		{"5 dims", nil, []*tensor.Tensor{{Name: "a", DType: tensor.F32, Shape: []int{1, 1, 1, 1, 1}, Data: make([]byte, 4)}}, "5 dimensions"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tc.meta, tc.tensors)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestScalarTensor(t *testing.T) {
	var buf bytes.Buffer
	s := tensor.FromFloat32("s", nil, []float32{7})
	if err := Write(&buf, nil, []*tensor.Tensor{s}); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Tensors[0].Shape, []int{1}) {
		t.Errorf("shape %v", f.Tensors[0].Shape)
	}
}

// fixtures lists llama.cpp's GGUF files in the shared folder.
func fixtures(t *testing.T) []string {
	var files []string
	for _, dir := range []string{"models/pdtext-llama-28m-gguf", "models/stories260K-gguf"} {
		m, _ := filepath.Glob(filepath.Join(testshared.Path(t, dir), "*.gguf"))
		files = append(files, m...)
	}
	return files
}

// TestFixturesRewrite reads each llama.cpp file and writes it back: the
// output must be byte-identical, which checks the reader and that the
// writer lays files out as llama.cpp does.
func TestFixturesRewrite(t *testing.T) {
	for _, path := range fixtures(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			arch, _ := f.String("general.architecture")
			if arch != "llama" {
				t.Errorf("general.architecture = %q", arch)
			}
			if n, ok := f.Uint("llama.block_count"); !ok || n == 0 {
				t.Errorf("llama.block_count = %d, %v", n, ok)
			}
			if toks, ok := f.Strings("tokenizer.ggml.tokens"); !ok || len(toks) < 256 {
				t.Errorf("tokenizer.ggml.tokens: %d, %v", len(toks), ok)
			}
			var ts []*tensor.Tensor
			for i := range f.Tensors {
				tt, err := f.TensorAt(i)
				if err != nil {
					t.Fatal(err)
				}
				ts = append(ts, tt)
			}
			// The io.ReaderAt path reads the same file the same way.
			osf, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer osf.Close()
			st, _ := osf.Stat()
			rf, err := ParseReaderAt(osf, st.Size())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(rf.Metadata, f.Metadata) || !reflect.DeepEqual(rf.Tensors, f.Tensors) || rf.DataOffset != f.DataOffset {
				t.Error("ParseReaderAt and Open disagree")
			}
			if last, err := rf.TensorAt(len(rf.Tensors) - 1); err != nil || !bytes.Equal(last.Data, ts[len(ts)-1].Data) {
				t.Errorf("ParseReaderAt tensor data differs: %v", err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, f.KVs(), ts); err != nil {
				t.Fatal(err)
			}
			orig, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), orig) {
				n := 0
				for n < len(orig) && n < buf.Len() && orig[n] == buf.Bytes()[n] {
					n++
				}
				t.Errorf("rewrite differs from the original at byte %d (sizes %d, %d; data offset %d)", n, buf.Len(), len(orig), f.DataOffset)
			}
		})
	}
}

// FuzzParse checks that no input makes the parser panic, and that whatever
// parses can be read back in full and rewritten.
func FuzzParse(f *testing.F) {
	f.Add(writeSample(f))
	var small bytes.Buffer
	if err := Write(&small, []KV{{"a", uint32(1)}, {"b", []string{"x", "yz"}}}, []*tensor.Tensor{tensor.FromFloat32("t", []int{2, 2}, []float32{1, 2, 3, 4})}); err != nil {
		f.Fatal(err)
	}
	f.Add(small.Bytes())
	f.Add(header(3, 1, 0).tinfo("t", tensor.Q4_0, 0, 32).data(32, 18).b)
	if d := testshared.Dir(); d != "" {
		m, _ := filepath.Glob(filepath.Join(d, "models", "stories260K-gguf", "*.gguf"))
		for _, p := range m {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b[:min(len(b), 4096)]) // a truncated real header
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		gf, err := Parse(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "gguf ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		var ts []*tensor.Tensor
		for i := range gf.Tensors {
			tt, err := gf.TensorAt(i)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tensor.New(tt.Name, tt.DType, tt.Shape, tt.Data); err != nil {
				t.Fatalf("tensor %d inconsistent: %v", i, err)
			}
			ts = append(ts, tt)
		}
		if _, err := ParseReaderAt(bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatalf("Parse accepted, ParseReaderAt rejected: %v", err)
		}
		// Whatever parses must write and parse again. Names and keys beyond
		// llama.cpp's limits, and values out of the writer's range, may be
		// refused by the writer.
		var buf bytes.Buffer
		if err := Write(&buf, gf.KVs(), ts); err != nil {
			return
		}
		g2, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("rewrite does not parse: %v", err)
		}
		if len(g2.Tensors) != len(gf.Tensors) || len(g2.Keys) != len(gf.Keys) {
			t.Fatal("rewrite lost entries")
		}
	})
}

// TestWriteFileKeepsOld: a write that fails (here a duplicate tensor name)
// leaves the existing file untouched and no temporary in the folder, and a
// folder under the output name is named in the error.
func TestWriteFileKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.gguf")
	if err := WriteFile(path, sampleMeta(), sampleTensors()); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ts := sampleTensors()
	ts = append(ts, ts[0])
	if err := WriteFile(path, sampleMeta(), ts); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Fatalf("WriteFile with a duplicate tensor: %v", err)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
		t.Errorf("the old file changed (%v)", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("folder holds %d entries, want only x.gguf", len(es))
	}
	err = WriteFile(dir, sampleMeta(), sampleTensors())
	if err == nil || !strings.Contains(err.Error(), dir+": is a directory") {
		t.Errorf("WriteFile onto a folder: %v", err)
	}
}

// TestWriteStream checks that streaming the tensors' bytes writes the very
// file Write does, that data is asked for each tensor once and in order,
// and that a wrong length or a failing source is an error naming the tensor.
func TestWriteStream(t *testing.T) {
	want := writeSample(t)
	ts := sampleTensors()
	heads := make([]*tensor.Tensor, len(ts))
	for i, x := range ts {
		heads[i] = &tensor.Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape}
	}
	next := 0
	var buf bytes.Buffer
	err := WriteStream(&buf, sampleMeta(), heads, func(i int) ([]byte, error) {
		if i != next {
			t.Fatalf("data(%d) asked for when %d was due", i, next)
		}
		next++
		return ts[i].Data, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != len(ts) || !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("streamed %d of %d tensors; file equal to Write's: %v", next, len(ts), bytes.Equal(buf.Bytes(), want))
	}
	bad := []struct {
		name string
		data func(i int) ([]byte, error)
		want string
	}{
		{"short", func(i int) ([]byte, error) { return ts[i].Data[:len(ts[i].Data)/2], nil }, `"token_embd.weight": q4_k`},
		{"failing", func(i int) ([]byte, error) { return nil, errors.New("disk on fire") }, `tensor "token_embd.weight": disk on fire`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			err := WriteStream(&bytes.Buffer{}, sampleMeta(), heads, tc.data)
			if err == nil || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.want)) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}
