// Package pack compresses an opened checkpoint with a codebook method
// (quant/kmeans: learned scalar codebooks; quant/vq: VQ, residual VQ,
// product quantization) and writes the result as a native file
// (format/native) that load.Open runs directly. It is the entry point of
// `terse compress --method kmeans|vq|rvq|pq`.
package pack

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tensor"
)

// Options choose the method and its statistics.
type Options struct {
	// Method is "kmeans", "vq", "rvq" or "pq".
	Method string
	// KMeans configures Method "kmeans".
	KMeans kmeans.Config
	// VQ configures "vq", "rvq" and "pq" (Stages and Segments are checked
	// against the method name: rvq needs Stages > 1, pq Segments > 1).
	VQ vq.Config
	// Stats gives a matrix's calibration statistics, or nil. kmeans uses
	// Importance (or diag Hessian); kmeans with GPTQ and vq with Refine
	// need the Hessian (calib.Collector with Hessians, see Calibrate).
	Stats func(name string) *quant.Stats
	// Include selects the matrices to compress (nil: every "blk." matrix;
	// the embedding and output projection stay as they are).
	Include func(name string) bool
	// Log, when set, gets one line per matrix.
	Log func(format string, args ...any)
}

// TensorReport is what happened to one matrix.
type TensorReport struct {
	Name          string  `json:"name"`
	Method        string  `json:"method"`
	Shape         []int   `json:"shape"`
	BitsPerWeight float64 `json:"bits_per_weight"`
	Seconds       float64 `json:"seconds"`
}

// Report sums up a Compress.
type Report struct {
	Tensors []TensorReport `json:"tensors"`
	// BitsPerWeight is over the compressed matrices only, codebooks and
	// scales included.
	BitsPerWeight float64 `json:"bits_per_weight"`
	FileBytes     int64   `json:"file_bytes"`
}

// Quantizer is the quant.Quantizer opt asks for.
func (opt Options) Quantizer() (quant.Quantizer, error) {
	switch opt.Method {
	case "kmeans":
		return opt.KMeans, opt.KMeans.Validate()
	case "vq", "rvq", "pq":
		c := opt.VQ
		if got := c.Method(); got != opt.Method {
			return nil, fmt.Errorf("pack: method %s with %d stages and %d segments is %s", opt.Method, c.Stages, c.Segments, got)
		}
		return c, c.Validate()
	}
	return nil, fmt.Errorf("pack: unknown method %q (want kmeans, vq, rvq or pq)", opt.Method)
}

// Compress quantizes ck's matrices under opt and writes the model to path
// as a native file. The tokenizer is embedded: ck must come from a Hugging
// Face folder (its tokenizer.json) or a native file.
func Compress(ck *load.Checkpoint, path string, opt Options) (*Report, error) {
	if ck.Model == nil {
		return nil, fmt.Errorf("pack: checkpoint %s has no model", ck.Path)
	}
	q, err := opt.Quantizer()
	if err != nil {
		return nil, err
	}
	tok, err := tokenizerJSON(ck)
	if err != nil {
		return nil, err
	}
	include := opt.Include
	if include == nil {
		include = calib.BlockTensors
	}
	rep := &Report{}
	var bits, elems float64
	ts, err := Tensors(ck.Model, func(t *tensor.Tensor) (*tensor.Tensor, error) {
		if !include(t.Name) {
			return t, nil
		}
		start := time.Now()
		var st *quant.Stats
		if opt.Stats != nil {
			st = opt.Stats(t.Name)
		}
		out, err := q.Quantize(t, st)
		if err != nil {
			return nil, err
		}
		r := TensorReport{Name: t.Name, Method: q.Name(), Shape: t.Shape, BitsPerWeight: out.Decoder.Bits(),
			Seconds: time.Since(start).Seconds()}
		rep.Tensors = append(rep.Tensors, r)
		n := float64(t.NumElements())
		bits += r.BitsPerWeight * n
		elems += n
		if opt.Log != nil {
			opt.Log("%s %v: %s, %.4f bits/weight, %.2fs", r.Name, r.Shape, r.Method, r.BitsPerWeight, r.Seconds)
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	if elems > 0 {
		rep.BitsPerWeight = bits / elems
	}
	if err := native.WriteFile(path, ck.Model.Config, tok, ts); err != nil {
		return nil, err
	}
	if st, err := os.Stat(path); err == nil {
		rep.FileBytes = st.Size()
	}
	return rep, nil
}

// Tensors lists m's tensors under canonical names, matrices passed through
// conv (which returns the tensor to store), vectors as F32; quantized ggml
// matrices are widened to F32 first (native files keep float or coded
// tensors).
func Tensors(m *model.Model, conv func(*tensor.Tensor) (*tensor.Tensor, error)) ([]*tensor.Tensor, error) {
	var out []*tensor.Tensor
	mat := func(l model.Linear) error {
		t, ok := model.DenseTensor(l)
		if !ok {
			return fmt.Errorf("pack: tensor %q: a %T projection has no native form", l.Name(), l)
		}
		if t.Decoder == nil && !t.DType.Float() {
			v, err := ggml.DequantizeTensor(t)
			if err != nil {
				return err
			}
			t = tensor.FromFloat32(t.Name, t.Shape, v)
		}
		c, err := conv(t)
		if err != nil {
			return fmt.Errorf("pack: tensor %q: %w", t.Name, err)
		}
		out = append(out, c)
		return nil
	}
	vec := func(name string, v []float32) {
		if v != nil {
			out = append(out, tensor.FromFloat32(name, []int{len(v)}, v))
		}
	}
	w := m.Weights
	if err := mat(model.NewDense(w.TokEmbd)); err != nil {
		return nil, err
	}
	for i := range w.Layers {
		l := &w.Layers[i]
		p := fmt.Sprintf("blk.%d.", i)
		vec(p+"attn_norm.weight", l.AttnNorm)
		for _, t := range []model.Linear{l.Wq, l.Wk, l.Wv, l.Wo} {
			if err := mat(t); err != nil {
				return nil, err
			}
		}
		vec(p+"attn_q.bias", model.BiasOf(l.Wq))
		vec(p+"attn_k.bias", model.BiasOf(l.Wk))
		vec(p+"attn_v.bias", model.BiasOf(l.Wv))
		vec(p+"ffn_norm.weight", l.FFNNorm)
		for _, t := range []model.Linear{l.Gate, l.Up, l.Down} {
			if err := mat(t); err != nil {
				return nil, err
			}
		}
	}
	vec("output_norm.weight", w.OutNorm)
	if !w.Tied() {
		if err := mat(w.Output); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func tokenizerJSON(ck *load.Checkpoint) ([]byte, error) {
	switch ck.Format {
	case load.HF:
		b, err := os.ReadFile(filepath.Join(ck.Path, "tokenizer.json"))
		if err != nil {
			return nil, fmt.Errorf("pack: %w", err)
		}
		return b, nil
	case load.Native:
		f, err := native.Open(ck.Path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return append([]byte(nil), f.TokenizerJSON...), nil
	}
	return nil, fmt.Errorf("pack: %s is a %s checkpoint; native files embed a Hugging Face tokenizer.json, so convert from a Hugging Face folder", ck.Path, ck.Format)
}

// Calibrate runs ck's model over chunks of ctx tokens of text (encoded
// with the tokenizer's special tokens) and returns the statistics Compress
// needs: per-column importance for every matrix and, with hessians, XᵀX
// for the "blk." matrices.
func Calibrate(ck *load.Checkpoint, text string, ctx, chunks int, hessians bool) (func(string) *quant.Stats, error) {
	toks := ck.Tokenizer.Encode(strings.TrimSpace(text), true)
	if chunks > 0 && len(toks) > chunks*ctx {
		toks = toks[:chunks*ctx]
	}
	col := &calib.Collector{}
	if hessians {
		col.Hessians = calib.BlockTensors
	}
	if err := calib.Run(ck.Model, toks, ctx, col, nil); err != nil {
		return nil, err
	}
	if err := col.Err(); err != nil {
		return nil, err
	}
	return col.Stats, nil
}
