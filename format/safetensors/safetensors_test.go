package safetensors

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
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

func mustTensor(t testing.TB, name string, dt tensor.DType, shape []int) *tensor.Tensor {
	t.Helper()
	n := 1
	for _, d := range shape {
		n *= d
	}
	data := make([]byte, n*dt.BlockBytes())
	for i := range data {
		data[i] = byte(i*7 + len(name))
	}
	tt, err := tensor.New(name, dt, shape, data)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func sampleTensors(t testing.TB) []*tensor.Tensor {
	return []*tensor.Tensor{
		mustTensor(t, "w.f32", tensor.F32, []int{3, 5}),
		mustTensor(t, "w.f16", tensor.F16, []int{7}),
		mustTensor(t, "w.bf16", tensor.BF16, []int{2, 3, 4}),
		mustTensor(t, "i8", tensor.I8, []int{5}),
		mustTensor(t, "u8", tensor.U8, []int{1, 3}),
		mustTensor(t, "i16", tensor.I16, []int{2}),
		mustTensor(t, "i32", tensor.I32, []int{4}),
		mustTensor(t, "i64", tensor.I64, []int{3}),
		mustTensor(t, "f64", tensor.F64, []int{2}),
		mustTensor(t, "scalar", tensor.F32, []int{}),
		mustTensor(t, "empty", tensor.F32, []int{0, 4}),
		mustTensor(t, "quoted \"name\" ✓", tensor.F32, []int{1}),
	}
}

func writeBytes(t testing.TB, ts []*tensor.Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	ts := sampleTensors(t)
	meta := map[string]string{"format": "pt", "note": "round trip"}
	b := writeBytes(t, ts, meta)
	n := binary.LittleEndian.Uint64(b)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	path := filepath.Join(t.TempDir(), "x.safetensors")
	if err := WriteFile(path, ts, meta); err != nil {
		t.Fatal(err)
	}
	onDisk, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, b) {
		t.Error("WriteFile and Write differ")
	}
	mem, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	file, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	for _, f := range []*File{mem, file} {
		if !reflect.DeepEqual(f.Metadata(), meta) {
			t.Errorf("metadata %v, want %v", f.Metadata(), meta)
		}
		var want []string
		for _, x := range ts {
			want = append(want, x.Name)
		}
		// Names come in offset order; the zero-size "empty" tensor sits at
		// the same offset as the tensor after it, but before it by End.
		got := f.Names()
		if len(got) != len(want) {
			t.Fatalf("names %q, want %q", got, want)
		}
		for _, x := range ts {
			info, err := f.Info(x.Name)
			if err != nil {
				t.Fatal(err)
			}
			if info.DType != x.DType || !reflect.DeepEqual(info.Shape, x.Shape) || info.Name != x.Name {
				t.Errorf("%s: info %+v", x.Name, info)
			}
			y, err := f.Tensor(x.Name)
			if err != nil {
				t.Fatal(err)
			}
			if y.Name != x.Name || y.DType != x.DType || !reflect.DeepEqual(y.Shape, x.Shape) || !bytes.Equal(y.Data, x.Data) {
				t.Errorf("%s: tensor differs: %+v", x.Name, y)
			}
			if cap(y.Data) != len(y.Data) {
				t.Errorf("%s: data slice has spare capacity %d", x.Name, cap(y.Data)-len(y.Data))
			}
		}
	}
	// Rewriting what was read gives the same bytes.
	var again []*tensor.Tensor
	for _, x := range ts {
		y, _ := mem.Tensor(x.Name)
		again = append(again, y)
	}
	if b2 := writeBytes(t, again, meta); !bytes.Equal(b, b2) {
		t.Error("rewrite differs")
	}
}

func TestNoMetadata(t *testing.T) {
	b := writeBytes(t, []*tensor.Tensor{mustTensor(t, "a", tensor.F32, []int{2})}, nil)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Metadata() != nil {
		t.Errorf("metadata %v, want nil", f.Metadata())
	}
	if _, err := f.Tensor("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing tensor: %v", err)
	}
	if _, err := f.Info("b"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing info: %v", err)
	}
	// An empty file (no tensors) is valid too.
	if _, err := Parse(writeBytes(t, nil, nil)); err != nil {
		t.Errorf("no tensors: %v", err)
	}
}

func TestWriteErrors(t *testing.T) {
	a := mustTensor(t, "a", tensor.F32, []int{2})
	for _, tc := range []struct {
		name string
		ts   []*tensor.Tensor
		want string
	}{
		{"duplicate", []*tensor.Tensor{a, a}, "twice"},
		{"quantized", []*tensor.Tensor{{Name: "q", DType: tensor.Q4_0, Shape: []int{32}, Data: make([]byte, 18)}}, "Q4_0"},
		{"short data", []*tensor.Tensor{{Name: "s", DType: tensor.F32, Shape: []int{3}, Data: make([]byte, 8)}}, "needs 12 bytes"},
		{"reserved", []*tensor.Tensor{{Name: "__metadata__", DType: tensor.F32, Shape: []int{1}, Data: make([]byte, 4)}}, "reserved"},
		{"nil", []*tensor.Tensor{nil}, "nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Write(&bytes.Buffer{}, tc.ts, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// raw builds a file from a header string and data length, padding nothing.
func raw(header string, data int) []byte {
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestParseErrors(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, MaxHeaderSize+1)
	past := make([]byte, 16)
	binary.LittleEndian.PutUint64(past, 100)
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"empty", nil, "too short"},
		{"seven bytes", make([]byte, 7), "too short"},
		{"header limit", huge, "limit"},
		{"header past end", past, "past the end"},
		{"zero header", raw("", 0), "JSON object"},
		{"not object", raw(`["a"]`, 0), "JSON object"},
		{"bad json", raw(`{"a":{"dtype":"F32",`, 0), "unexpected EOF"},
		{"truncated", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, 4), "header"},
		{"trailing", raw(`{}xx`, 0), "unexpected"},
		{"unsupported dtype", raw(`{"w":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}}`, 1), `tensor "w": unsupported dtype "F8_E4M3"`},
		{"no dtype", raw(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, 4), "no dtype"},
		{"null entry", raw(`{"w":null}`, 0), "no dtype"},
		{"no shape", raw(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, 4), "no shape"},
		{"negative dim", raw(`{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4), "dimension"},
		{"huge shape", raw(`{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, 4), "too large"},
		{"fractional dim", raw(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4), `"w"`},
		{"one offset", raw(`{"w":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4), "2 numbers"},
		{"decreasing", raw(`{"w":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}}`, 4), "not increasing"},
		{"past data", raw(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "run past"},
		{"size mismatch", raw(`{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 8), "needs 8 bytes"},
		{"overlap", raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlap"},
		{"duplicate name", raw(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "twice"},
		{"metadata not strings", raw(`{"__metadata__":{"n":1}}`, 0), "__metadata__"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.b)
			if err == nil {
				t.Fatalf("no error; names %q", f.Names())
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "safetensors <memory>: ") {
				t.Errorf("err %q, want it to start with the path and mention %q", err, tc.want)
			}
		})
	}
}

func TestParseLenient(t *testing.T) {
	// Space padding after the object, holes between tensors, and unknown
	// fields are all accepted.
	b := raw(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[4,6],"extra":1}}    `, 8)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.Tensor("a")
	if err != nil || len(x.Data) != 2 {
		t.Fatalf("tensor %v, err %v", x, err)
	}
}

func writeDir(t *testing.T, files map[string][]*tensor.Tensor, index map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, ts := range files {
		if err := WriteFile(filepath.Join(dir, name), ts, map[string]string{"format": "pt", "file": name}); err != nil {
			t.Fatal(err)
		}
	}
	if index != nil {
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 1}, "weight_map": index})
		if err := os.WriteFile(filepath.Join(dir, IndexFile), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOpenDir(t *testing.T) {
	a := mustTensor(t, "a", tensor.F32, []int{2})
	b := mustTensor(t, "b", tensor.BF16, []int{3})
	c := mustTensor(t, "c", tensor.I32, []int{1})
	for _, tc := range []struct {
		name      string
		files     map[string][]*tensor.Tensor
		index     map[string]string
		wantNames []string
		wantErr   string
	}{
		{
			name:      "sharded",
			files:     map[string][]*tensor.Tensor{"m-1.safetensors": {a, b}, "m-2.safetensors": {c}, "stray.safetensors": {a}},
			index:     map[string]string{"a": "m-1.safetensors", "b": "m-1.safetensors", "c": "m-2.safetensors"},
			wantNames: []string{"a", "b", "c"},
		},
		{
			name:      "single",
			files:     map[string][]*tensor.Tensor{"model.safetensors": {c, a}, "other.safetensors": {a}},
			wantNames: []string{"c", "a"},
		},
		{
			name:      "glob",
			files:     map[string][]*tensor.Tensor{"y.safetensors": {c}, "x.safetensors": {a, b}},
			wantNames: []string{"a", "b", "c"},
		},
		{
			name:    "duplicate across shards",
			files:   map[string][]*tensor.Tensor{"m-1.safetensors": {a, b}, "m-2.safetensors": {b}},
			index:   map[string]string{"a": "m-1.safetensors", "b": "m-2.safetensors"},
			wantErr: `tensor "b": also in`,
		},
		{
			name:    "duplicate across globbed files",
			files:   map[string][]*tensor.Tensor{"x.safetensors": {a}, "y.safetensors": {a}},
			wantErr: `tensor "a": also in`,
		},
		{
			name:    "index names wrong shard",
			files:   map[string][]*tensor.Tensor{"m-1.safetensors": {a}, "m-2.safetensors": {c}},
			index:   map[string]string{"a": "m-1.safetensors", "c": "m-1.safetensors"},
			wantErr: `tensor "c": listed in shard m-1.safetensors`,
		},
		{
			name:    "missing shard",
			files:   map[string][]*tensor.Tensor{"m-1.safetensors": {a}},
			index:   map[string]string{"a": "m-1.safetensors", "c": "m-2.safetensors"},
			wantErr: "m-2.safetensors",
		},
		{
			name:    "escaping shard path",
			files:   map[string][]*tensor.Tensor{"m-1.safetensors": {a}},
			index:   map[string]string{"a": "../m-1.safetensors"},
			wantErr: "not a file name",
		},
		{
			name:    "empty index",
			files:   map[string][]*tensor.Tensor{"m-1.safetensors": {a}},
			index:   map[string]string{},
			wantErr: "weight_map",
		},
		{
			name:    "no files",
			files:   map[string][]*tensor.Tensor{},
			wantErr: "no model.safetensors.index.json",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeDir(t, tc.files, tc.index)
			ck, err := OpenDir(dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			if got := ck.Names(); !reflect.DeepEqual(got, tc.wantNames) {
				t.Errorf("names %q, want %q", got, tc.wantNames)
			}
			for _, want := range []*tensor.Tensor{a, b, c} {
				if !contains(tc.wantNames, want.Name) {
					continue
				}
				got, err := ck.Tensor(want.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, want.Data) || got.DType != want.DType {
					t.Errorf("%s differs", want.Name)
				}
				if info, err := ck.Info(want.Name); err != nil || !reflect.DeepEqual(info.Shape, want.Shape) {
					t.Errorf("%s: info %+v, %v", want.Name, info, err)
				}
			}
			if _, err := ck.Tensor("zzz"); !errors.Is(err, ErrNotFound) {
				t.Errorf("missing: %v", err)
			}
			if ck.Metadata()["format"] != "pt" {
				t.Errorf("metadata %v", ck.Metadata())
			}
			var size int64
			for _, f := range ck.Files() {
				size += f.Bytes()
			}
			if size != ck.Bytes() || size == 0 {
				t.Errorf("Bytes %d, files sum to %d", ck.Bytes(), size)
			}
			if err := ck.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := ck.Tensor(tc.wantNames[0]); err == nil {
				t.Error("Tensor after Close: no error")
			}
		})
	}
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}

func TestOpenErrorNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.safetensors")
	if err := os.WriteFile(p, raw(`{"w":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), `"BOOL"`) {
		t.Errorf("err %v", err)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.safetensors")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestPdtext reads the real sharded bf16 checkpoint and checks a norm
// against llama.cpp's conversion, which keeps norms as exact F32.
func TestPdtext(t *testing.T) {
	dir := filepath.Dir(testshared.Path(t, "models/pdtext-llama-28m/model.safetensors.index.json"))
	ck, err := OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if n := len(ck.Names()); n != 2+8*9+1 {
		t.Errorf("%d tensors, want %d", n, 2+8*9+1)
	}
	if len(ck.Files()) != 5 {
		t.Errorf("%d files, want 5", len(ck.Files()))
	}
	var params int
	for _, name := range ck.Names() {
		x, err := ck.Tensor(name)
		if err != nil {
			t.Fatal(err)
		}
		if x.DType != tensor.BF16 {
			t.Errorf("%s: %s, want BF16", name, x.DType)
		}
		params += x.NumElements()
	}
	if params != 28320256 {
		t.Errorf("%d parameters, want 28320256", params)
	}
	for name, shape := range map[string][]int{
		"model.embed_tokens.weight":              {4096, 512},
		"lm_head.weight":                         {4096, 512},
		"model.layers.0.self_attn.k_proj.weight": {128, 512},
		"model.layers.7.mlp.down_proj.weight":    {512, 1536},
		"model.norm.weight":                      {512},
	} {
		info, err := ck.Info(name)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(info.Shape, shape) {
			t.Errorf("%s: shape %v, want %v", name, info.Shape, shape)
		}
	}
	dq := testshared.Path(t, "models/pdtext-llama-28m-gguf/pdtext-llama-28m-Q8_0.gguf.dequant.json")
	var ref map[string]struct {
		SHA string `json:"sha256_f32"`
	}
	b, err := os.ReadFile(dq)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	for hfName, ggufName := range map[string]string{
		"model.norm.weight":                              "output_norm.weight",
		"model.layers.0.input_layernorm.weight":          "blk.0.attn_norm.weight",
		"model.layers.7.post_attention_layernorm.weight": "blk.7.ffn_norm.weight",
	} {
		x, err := ck.Tensor(hfName)
		if err != nil {
			t.Fatal(err)
		}
		f32 := make([]byte, 4*x.NumElements())
		for i := range x.NumElements() {
			v := tensor.BF16ToF32(binary.LittleEndian.Uint16(x.Data[2*i:]))
			binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(v))
		}
		sum := sha256.Sum256(f32)
		if got := hex.EncodeToString(sum[:]); got != ref[ggufName].SHA {
			t.Errorf("%s: sha256 %s, llama.cpp's %s has %s", hfName, got, ggufName, ref[ggufName].SHA)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(writeBytes(f, sampleTensors(f), map[string]string{"format": "pt"}))
	f.Add(writeBytes(f, []*tensor.Tensor{mustTensor(f, "a", tensor.F32, []int{2, 2})}, nil))
	f.Add(raw(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Parse(b)
		if err != nil {
			return
		}
		var ts []*tensor.Tensor
		for _, name := range file.Names() {
			x, err := file.Tensor(name)
			if err != nil {
				t.Fatalf("%s: listed but unreadable: %v", name, err)
			}
			ts = append(ts, x)
		}
		// Whatever parses can be written and parses back the same.
		var buf bytes.Buffer
		if err := Write(&buf, ts, file.Metadata()); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("reparse: %v", err)
		}
		if len(again.Names()) != len(ts) {
			t.Fatalf("reparse: %d tensors, want %d", len(again.Names()), len(ts))
		}
	})
}

// TestWriteFileKeepsOld: a write that fails leaves the existing file
// untouched and no temporary in the folder.
func TestWriteFileKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	ts := sampleTensors(t)
	if err := WriteFile(path, ts, nil); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := append(ts[:len(ts):len(ts)], ts[0]) // a duplicate name
	if err := WriteFile(path, bad, nil); err == nil {
		t.Fatal("WriteFile with a duplicate tensor succeeded")
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, old) {
		t.Errorf("the old file changed (%v)", err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Errorf("folder holds %d entries, want only x.safetensors", len(es))
	}
}
