package ggml_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/format/safetensors"
	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// pdtext-llama-28m's attention layout (config.json).
const (
	pdtextHeads   = 8
	pdtextKVHeads = 2
)

// TestQuantizeMatchesLlamaCpp re-quantizes every tensor of llama.cpp's own
// quantizations of pdtext-llama-28m from the bf16 source weights (with the
// imatrix the -imat files used, where the tensor has an entry) and
// compares the bytes with the file's.
func TestQuantizeMatchesLlamaCpp(t *testing.T) {
	dir := testshared.Path(t, "models/pdtext-llama-28m-gguf")
	hfDir := testshared.Path(t, "models/pdtext-llama-28m")
	imat, err := readIMatrix(filepath.Join(dir, "imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	ck, err := safetensors.OpenDir(hfDir)
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	src := newSourceCache(ck)

	files := []string{
		"pdtext-llama-28m-Q8_0.gguf",
		"pdtext-llama-28m-Q4_0-imat.gguf",
		"pdtext-llama-28m-Q4_K_M-imat.gguf",
		"pdtext-llama-28m-Q3_K_M-imat.gguf",
		"pdtext-llama-28m-Q2_K-imat.gguf",
		"pdtext-llama-28m-IQ4_XS-imat.gguf",
	}
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			checkRequantize(t, filepath.Join(dir, name), strings.Contains(name, "-imat"), imat, src)
		})
	}
	// llama.cpp's i-quant presets, quantized with the same imatrix: mixes
	// of IQ3_XXS, IQ3_S, IQ2_S, Q4_K, Q5_K and of IQ2_XS, Q2_K, Q4_K, Q5_K
	iq := testshared.Path(t, "models/pdtext-llama-28m-iquants")
	for _, name := range []string{"pdtext-llama-28m-IQ3_XXS-imat.gguf", "pdtext-llama-28m-IQ2_XS-imat.gguf"} {
		t.Run(name, func(t *testing.T) {
			checkRequantize(t, filepath.Join(iq, name), true, imat, src)
		})
	}
}

type typeTally struct {
	tensors, identical int
	withImat           int // tensors quantized with importance weights
	blocks, sameBlocks int
	maxDiff            float64
}

// weightSource returns a tensor's source weights as float32 under its
// GGUF name.
type weightSource interface {
	get(ggufName string) ([]float32, error)
}

func checkRequantize(t *testing.T, path string, useImat bool, imat map[string][]float32, src weightSource) {
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tally := map[tensor.DType]*typeTally{}
	var order []tensor.DType
	for i, ti := range f.Tensors {
		want, err := f.TensorAt(i)
		if err != nil {
			t.Fatal(err)
		}
		x, err := src.get(ti.Name)
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		if len(x) != ti.NumElements() {
			t.Fatalf("%s: source has %d elements, file %d", ti.Name, len(x), ti.NumElements())
		}
		cols := ti.Shape[len(ti.Shape)-1]
		var qw []float32
		if useImat {
			qw = imat[ti.Name]
			if qw != nil && len(qw) != cols {
				t.Fatalf("%s: imatrix has %d values for rows of %d", ti.Name, len(qw), cols)
			}
		}
		got, err := ggml.QuantizeRows(ti.DType, x, cols, qw)
		if err != nil {
			t.Fatalf("%s: %v", ti.Name, err)
		}
		tt := tally[ti.DType]
		if tt == nil {
			tt = &typeTally{}
			tally[ti.DType] = tt
			order = append(order, ti.DType)
		}
		tt.tensors++
		if qw != nil {
			tt.withImat++
		}
		if bytes.Equal(got, want.Data) {
			tt.identical++
			continue
		}
		bb := ti.DType.BlockBytes()
		nb := len(got) / bb
		same := 0
		for b := 0; b < nb; b++ {
			if bytes.Equal(got[b*bb:(b+1)*bb], want.Data[b*bb:(b+1)*bb]) {
				same++
			}
		}
		tt.blocks += nb
		tt.sameBlocks += same
		g := make([]float32, len(x))
		w := make([]float32, len(x))
		if err := ggml.Dequantize(ti.DType, got, g); err != nil {
			t.Fatal(err)
		}
		if err := ggml.Dequantize(ti.DType, want.Data, w); err != nil {
			t.Fatal(err)
		}
		var md float64
		for k := range g {
			md = max(md, math.Abs(float64(g[k])-float64(w[k])))
		}
		tt.maxDiff = max(tt.maxDiff, md)
		t.Errorf("%s (%s, imatrix %v): %d of %d blocks identical, max |Δ| dequantized %.3g",
			ti.Name, ti.DType, qw != nil, same, nb, md)
	}
	for _, dt := range order {
		tt := tally[dt]
		line := fmt.Sprintf("%s: %s %d/%d tensors identical (%d with imatrix)", filepath.Base(path), dt, tt.identical, tt.tensors, tt.withImat)
		if tt.blocks > 0 {
			line += fmt.Sprintf("; differing tensors: %d/%d blocks identical, max |Δ| %.3g",
				tt.sameBlocks, tt.blocks, tt.maxDiff)
		}
		t.Log(line)
	}
}

// TestQuantizeMatchesLlamaCppIQuants re-quantizes the i-quant fixtures
// (rand256-<TYPE>.gguf, llama-quantize --pure --imatrix from
// rand256-f32.gguf) from their F32 source and compares the bytes. It lists
// the types terse can write; the read-only ones (registry_test.go's
// readOnly) join it as their quantizers land.
func TestQuantizeMatchesLlamaCppIQuants(t *testing.T) {
	dir := testshared.Path(t, "models/iquant-fixtures")
	imat, err := readIMatrix(filepath.Join(dir, "rand256-imatrix.dat"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.Open(filepath.Join(dir, "rand256-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	src := ggufSource{f}
	for _, dt := range []tensor.DType{tensor.TQ1_0, tensor.TQ2_0, tensor.IQ3_XXS, tensor.IQ3_S, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ1_S, tensor.IQ1_M} {
		name := "rand256-" + dt.String() + ".gguf"
		t.Run(name, func(t *testing.T) {
			checkRequantize(t, filepath.Join(dir, name), true, imat, src)
		})
	}
}

// ggufSource reads F32 source weights from a GGUF file.
type ggufSource struct{ f *gguf.File }

func (s ggufSource) get(name string) ([]float32, error) {
	tn, err := s.f.Tensor(name)
	if err != nil {
		return nil, err
	}
	if tn.DType != tensor.F32 {
		return nil, fmt.Errorf("%s is %s, want F32", name, tn.DType)
	}
	v := make([]float32, tn.NumElements())
	if err := ggml.Dequantize(tensor.F32, tn.Data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// sourceCache reads pdtext-llama-28m's bf16 weights under their GGUF names,
// widened to float32 and with attn_q / attn_k rows permuted the way
// llama.cpp's converter does for ggml's RoPE.
type sourceCache struct {
	ck    *safetensors.Checkpoint
	cache map[string][]float32
}

func newSourceCache(ck *safetensors.Checkpoint) *sourceCache {
	return &sourceCache{ck: ck, cache: map[string][]float32{}}
}

func (s *sourceCache) get(ggufName string) ([]float32, error) {
	if v, ok := s.cache[ggufName]; ok {
		return v, nil
	}
	hf, heads, err := hfName(ggufName)
	if err != nil {
		return nil, err
	}
	tn, err := s.ck.Tensor(hf)
	if err != nil {
		return nil, err
	}
	if tn.DType != tensor.BF16 {
		return nil, fmt.Errorf("%s is %s, want BF16", hf, tn.DType)
	}
	v := make([]float32, tn.NumElements())
	if err := ggml.Dequantize(tensor.BF16, tn.Data, v); err != nil {
		return nil, err
	}
	if heads > 0 {
		v = permuteRoPE(v, tn.Shape[0], tn.Shape[1], heads)
	}
	s.cache[ggufName] = v
	return v, nil
}

// permuteRoPE reorders the rows of a [rows, cols] Q or K projection as
// convert_hf_to_gguf.py's permute does: per head, view its rows as
// [2, rows/heads/2] and transpose to [rows/heads/2, 2].
func permuteRoPE(v []float32, rows, cols, heads int) []float32 {
	out := make([]float32, len(v))
	half := rows / heads / 2
	for h := 0; h < heads; h++ {
		for i := 0; i < half; i++ {
			for s := 0; s < 2; s++ {
				dst := h*2*half + i*2 + s
				srcRow := h*2*half + s*half + i
				copy(out[dst*cols:(dst+1)*cols], v[srcRow*cols:(srcRow+1)*cols])
			}
		}
	}
	return out
}

// hfName maps a GGUF tensor name to the Hugging Face one, with the head
// count to permute by (0 for none).
func hfName(g string) (string, int, error) {
	switch g {
	case "token_embd.weight":
		return "model.embed_tokens.weight", 0, nil
	case "output.weight":
		return "lm_head.weight", 0, nil
	case "output_norm.weight":
		return "model.norm.weight", 0, nil
	}
	rest, ok := strings.CutPrefix(g, "blk.")
	if !ok {
		return "", 0, fmt.Errorf("unknown tensor %q", g)
	}
	layer, suffix, ok := strings.Cut(rest, ".")
	if _, err := strconv.Atoi(layer); !ok || err != nil {
		return "", 0, fmt.Errorf("unknown tensor %q", g)
	}
	p := "model.layers." + layer + "."
	switch suffix {
	case "attn_q.weight":
		return p + "self_attn.q_proj.weight", pdtextHeads, nil
	case "attn_k.weight":
		return p + "self_attn.k_proj.weight", pdtextKVHeads, nil
	case "attn_v.weight":
		return p + "self_attn.v_proj.weight", 0, nil
	case "attn_output.weight":
		return p + "self_attn.o_proj.weight", 0, nil
	case "ffn_gate.weight":
		return p + "mlp.gate_proj.weight", 0, nil
	case "ffn_up.weight":
		return p + "mlp.up_proj.weight", 0, nil
	case "ffn_down.weight":
		return p + "mlp.down_proj.weight", 0, nil
	case "attn_norm.weight":
		return p + "input_layernorm.weight", 0, nil
	case "ffn_norm.weight":
		return p + "post_attention_layernorm.weight", 0, nil
	}
	return "", 0, fmt.Errorf("unknown tensor %q", g)
}

// readIMatrix reads llama.cpp's legacy imatrix.dat (int32 entry count;
// per entry: int32 name length, name, int32 ncall, int32 value count,
// float32 values; then a trailer this test ignores) and returns what
// llama-quantize uses: each entry's values divided by its ncall.
func readIMatrix(path string) (map[string][]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := bytes.NewReader(raw)
	var n int32
	if err := binary.Read(r, binary.LittleEndian, &n); err != nil {
		return nil, err
	}
	out := map[string][]float32{}
	for i := int32(0); i < n; i++ {
		var nameLen int32
		if err := binary.Read(r, binary.LittleEndian, &nameLen); err != nil {
			return nil, err
		}
		if nameLen < 0 || int(nameLen) > r.Len() {
			return nil, fmt.Errorf("imatrix entry %d: bad name length %d", i, nameLen)
		}
		name := make([]byte, nameLen)
		if _, err := io.ReadFull(r, name); err != nil {
			return nil, err
		}
		var hdr [2]int32
		if err := binary.Read(r, binary.LittleEndian, &hdr); err != nil {
			return nil, err
		}
		ncall, nval := hdr[0], hdr[1]
		if nval < 0 || int(nval)*4 > r.Len() {
			return nil, fmt.Errorf("imatrix entry %s: bad value count %d", name, nval)
		}
		v := make([]float32, nval)
		if err := binary.Read(r, binary.LittleEndian, v); err != nil {
			return nil, err
		}
		if ncall > 0 {
			for k := range v {
				v[k] /= float32(ncall)
			}
		}
		out[string(name)] = v
	}
	return out, nil
}

// TestQuantizeStories260K re-quantizes llama.cpp's "Q4_K_M" and "Q2_K"
// files of stories260K (their tensors fell back to Q5_0, Q8_0, IQ4_NL and
// F16) from the F32 conversion, without importance weights. The imatrix
// those files used is not in shared/, so only the tensors llama-imatrix
// collects nothing for (token_embd, output) and the float ones must match;
// the others are logged.
func TestQuantizeStories260K(t *testing.T) {
	dir := testshared.Path(t, "models/stories260K-gguf")
	srcFile, err := gguf.Open(filepath.Join(dir, "stories260K-f32.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer srcFile.Close()
	for _, name := range []string{"stories260K-Q4_K_M-imat.gguf", "stories260K-Q2_K-imat.gguf"} {
		f, err := gguf.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		same, other := map[tensor.DType]int{}, map[tensor.DType]int{}
		for i, ti := range f.Tensors {
			want, err := f.TensorAt(i)
			if err != nil {
				t.Fatal(err)
			}
			st, err := srcFile.Tensor(ti.Name)
			if err != nil {
				t.Fatal(err)
			}
			x, err := ggml.DequantizeTensor(st)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ggml.QuantizeRows(ti.DType, x, ti.Shape[len(ti.Shape)-1], nil)
			if err != nil {
				t.Fatalf("%s: %v", ti.Name, err)
			}
			noImat := ti.DType.Float() || ti.Name == "token_embd.weight" || ti.Name == "output.weight"
			switch {
			case bytes.Equal(got, want.Data):
				same[ti.DType]++
			case noImat:
				t.Errorf("%s %s (%s, no imatrix): bytes differ", name, ti.Name, ti.DType)
			default:
				other[ti.DType]++
			}
		}
		f.Close()
		for dt, n := range same {
			t.Logf("%s: %s %d tensors identical, %d differ (those used the imatrix shared/ lacks)", name, dt, n, other[dt])
		}
	}
}
