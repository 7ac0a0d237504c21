// Package compress turns a loaded model into a smaller one. Run owns the
// whole job:
//
//  1. check the options and the output path before any work;
//  2. statistics: a llama.cpp imatrix.dat, and/or a calibration run over
//     text in chunks (package calib) measuring each matrix's importance
//     and, when the method needs them, Hessians; the imatrix's importance
//     wins where both have a tensor (with a warning); the token embedding,
//     which calibration cannot weight, gets EmbeddingImportance for
//     Hessian methods;
//  3. the plan: a target type for every matrix (llama.cpp's presets with
//     its fallbacks, then overrides; for a native output, codebooks for the
//     block matrices);
//  4. per-tensor compression through a Method (RTN and GPTQ onto ggml's
//     block grids; k-means, VQ, RVQ, PQ codebooks);
//  5. the output: GGUF (package convert) or terse's native file (package
//     format/native), and one Result.
//
// `terse compress` is flags around Run and a table (or Result's JSON).
package compress

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Preset is one of llama.cpp's file types ("Q4_K_M"): a default element
// type plus rules that give some tensors more bits.
type Preset struct {
	Name     string
	Default  tensor.DType
	FileType uint32 // llama.cpp's LLAMA_FTYPE value, written as general.file_type
}

// Presets are the llama.cpp file types terse can write, by name.
var Presets = map[string]Preset{
	"F32":    {"F32", tensor.F32, 0},
	"F16":    {"F16", tensor.F16, 1},
	"BF16":   {"BF16", tensor.BF16, 32},
	"Q4_0":   {"Q4_0", tensor.Q4_0, 2},
	"Q4_1":   {"Q4_1", tensor.Q4_1, 3},
	"Q8_0":   {"Q8_0", tensor.Q8_0, 7},
	"Q5_0":   {"Q5_0", tensor.Q5_0, 8},
	"Q5_1":   {"Q5_1", tensor.Q5_1, 9},
	"Q2_K":   {"Q2_K", tensor.Q2_K, 10},
	"Q3_K_S": {"Q3_K_S", tensor.Q3_K, 11},
	"Q3_K_M": {"Q3_K_M", tensor.Q3_K, 12},
	"Q3_K_L": {"Q3_K_L", tensor.Q3_K, 13},
	"Q4_K_S": {"Q4_K_S", tensor.Q4_K, 14},
	"Q4_K_M": {"Q4_K_M", tensor.Q4_K, 15},
	"Q5_K_S": {"Q5_K_S", tensor.Q5_K, 16},
	"Q5_K_M": {"Q5_K_M", tensor.Q5_K, 17},
	"Q6_K":   {"Q6_K", tensor.Q6_K, 18},
	"IQ4_NL": {"IQ4_NL", tensor.IQ4_NL, 25},
	"IQ4_XS": {"IQ4_XS", tensor.IQ4_XS, 30},
	// The i-quant and ternary presets. Their default types are
	// llama.cpp's llama_ftype_get_default_type: IQ2_S's default is IQ2_XS
	// and IQ2_M's is IQ2_S; IQ3_XS and IQ3_M default to IQ3_S.
	"IQ2_XXS": {"IQ2_XXS", tensor.IQ2_XXS, 19},
	"IQ2_XS":  {"IQ2_XS", tensor.IQ2_XS, 20},
	"IQ3_XS":  {"IQ3_XS", tensor.IQ3_S, 22},
	"IQ3_XXS": {"IQ3_XXS", tensor.IQ3_XXS, 23},
	"IQ1_S":   {"IQ1_S", tensor.IQ1_S, 24},
	"IQ3_S":   {"IQ3_S", tensor.IQ3_S, 26},
	"IQ3_M":   {"IQ3_M", tensor.IQ3_S, 27},
	"IQ2_S":   {"IQ2_S", tensor.IQ2_XS, 28},
	"IQ2_M":   {"IQ2_M", tensor.IQ2_S, 29},
	"IQ1_M":   {"IQ1_M", tensor.IQ1_M, 31},
	"TQ1_0":   {"TQ1_0", tensor.TQ1_0, 36},
	"TQ2_0":   {"TQ2_0", tensor.TQ2_0, 37},
}

// PresetNames lists the presets.
func PresetNames() string {
	var n []string
	for k := range Presets {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// Override forces the type of the tensors whose names match a pattern.
type Override struct {
	Pattern *regexp.Regexp
	Type    tensor.DType
}

// ParseOverride reads "REGEX=TYPE" (e.g. "ffn_down=Q6_K").
func ParseOverride(s string) (Override, error) {
	i := strings.LastIndex(s, "=")
	if i <= 0 {
		return Override{}, fmt.Errorf("override %q: want PATTERN=TYPE", s)
	}
	re, err := regexp.Compile(s[:i])
	if err != nil {
		return Override{}, fmt.Errorf("override %q: %w", s, err)
	}
	dt, err := tensor.ParseDType(s[i+1:])
	if err != nil {
		return Override{}, fmt.Errorf("override %q: %w", s, err)
	}
	return Override{re, dt}, nil
}

// Plan is the element type chosen for every weight matrix, by name.
type Plan map[string]tensor.DType

// MakePlan applies llama.cpp's per-tensor rules for preset p (its
// llama_tensor_get_type as of early 2025) to the weight matrices of cfg,
// then the overrides. hasImatrix matters to a few rules, as in llama.cpp.
func MakePlan(cfg *model.Config, w *model.Weights, p Preset, hasImatrix bool, overrides []Override) Plan {
	plan := Plan{}
	n := cfg.NLayers
	gqa := cfg.NHeads / cfg.NKVHeads
	moreBits := func(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }
	is := func(names ...string) bool {
		for _, s := range names {
			if p.Name == s {
				return true
			}
		}
		return false
	}
	// lowBit are the presets whose rules llama.cpp keeps apart (its
	// 1- and 2-bit i-quant mixes).
	lowBit := is("IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ2_M", "IQ1_S", "IQ1_M")
	// iq2sm: the two presets that spend IQ3_S where the others spend Q2_K.
	iq2sm := is("IQ2_S", "IQ2_M")
	choose := func(name string, layer int, cols int) tensor.DType {
		t := p.Default
		if !t.Quantized() {
			return t
		}
		switch {
		case name == "output.weight" || (cfg.TiedEmbeddings && name == "token_embd.weight"):
			switch {
			case cols%t.BlockSize() != 0:
				t = tensor.Q8_0
			case lowBit || is("IQ3_XXS"):
				t = tensor.Q5_K
			case t != tensor.Q8_0:
				t = tensor.Q6_K
			}
		case name == "token_embd.weight":
			switch {
			case is("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"):
				t = tensor.Q2_K
			case iq2sm || is("IQ3_XXS"):
				t = tensor.IQ3_S
			case is("TQ1_0", "TQ2_0"):
				t = tensor.Q4_K
			}
		case lowBit:
			switch {
			case strings.HasSuffix(name, "attn_v.weight"):
				switch {
				case gqa >= 4:
					t = tensor.Q4_K
				case iq2sm:
					t = tensor.IQ3_S
				default:
					t = tensor.Q2_K
				}
			case strings.HasSuffix(name, "ffn_down.weight"):
				if layer < n/8 {
					t = tensor.Q2_K
					if iq2sm {
						t = tensor.IQ3_S
					}
				}
			case strings.HasSuffix(name, "attn_output.weight"):
				switch {
				case is("IQ1_S", "IQ1_M"):
					t = tensor.IQ2_XXS
				case iq2sm:
					t = tensor.IQ3_S
				}
			}
		case strings.HasSuffix(name, "attn_v.weight"):
			switch {
			case is("Q2_K"):
				t = tensor.Q3_K
				if gqa >= 4 {
					t = tensor.Q4_K
				}
			case is("IQ3_XXS"):
				switch {
				case gqa >= 4:
					t = tensor.Q4_K
				case !hasImatrix:
					t = tensor.IQ3_S
				}
			case is("IQ3_XS", "IQ3_S") && gqa >= 4:
				t = tensor.Q4_K
			case is("IQ3_M"):
				t = tensor.Q4_K
			case is("Q3_K_M"):
				t = tensor.Q4_K
				if layer < 2 {
					t = tensor.Q5_K
				}
			case is("Q3_K_L"):
				t = tensor.Q5_K
			case is("IQ4_NL", "IQ4_XS") && gqa >= 4:
				t = tensor.Q5_K
			case is("Q4_K_M", "Q5_K_M") && moreBits(layer, n):
				t = tensor.Q6_K
			case is("Q4_K_S") && layer < 4:
				t = tensor.Q5_K
			}
		case strings.HasSuffix(name, "attn_k.weight"), strings.HasSuffix(name, "attn_q.weight"):
			switch {
			case is("IQ3_XS"):
				t = tensor.IQ3_XXS
			case is("IQ3_XXS"):
				t = tensor.IQ2_S
			}
		case strings.HasSuffix(name, "ffn_down.weight"):
			switch {
			case is("Q2_K"):
				t = tensor.Q3_K
			case is("IQ3_XXS") && !hasImatrix:
				t = tensor.Q3_K
				if layer < n/8 {
					t = tensor.Q4_K
				}
			case is("Q3_K_M"):
				t = tensor.Q4_K
				if layer < n/16 {
					t = tensor.Q5_K
				}
			case is("IQ3_M") && layer < n/8:
				t = tensor.Q4_K
			case is("Q3_K_L"):
				t = tensor.Q5_K
			case is("Q4_K_M"):
				if moreBits(layer, n) {
					t = tensor.Q6_K
				}
			case layer < n/8 && is("IQ4_NL", "IQ4_XS") && !hasImatrix:
				t = tensor.Q5_K
			case is("Q5_K_M") && moreBits(layer, n):
				t = tensor.Q6_K
			case is("Q4_K_S") && layer < n/8:
				t = tensor.Q5_K
			case is("Q4_0", "Q5_0") && hasImatrix && layer < n/8:
				t = tensor.Q4_1
				if is("Q5_0") {
					t = tensor.Q5_1
				}
			}
		case strings.HasSuffix(name, "attn_output.weight"):
			switch {
			case is("Q2_K"):
				t = tensor.Q3_K
			case is("IQ3_XXS"):
				t = tensor.IQ3_S
			case is("Q3_K_M", "IQ3_M"):
				t = tensor.Q4_K
			case is("Q3_K_L"):
				t = tensor.Q5_K
			}
		case strings.Contains(name, "ffn_gate"), strings.Contains(name, "ffn_up"):
			if is("IQ3_XS") && layer >= n/8 && layer < 7*n/8 {
				t = tensor.IQ3_XXS
			}
		}
		return fallback(t, cols)
	}
	for _, m := range w.Matrices() {
		layer := -1
		if rest, ok := strings.CutPrefix(m.Name, "blk."); ok {
			if i := strings.IndexByte(rest, '.'); i > 0 {
				layer, _ = strconv.Atoi(rest[:i])
			}
		}
		plan[m.Name] = choose(m.Name, layer, m.Cols())
	}
	for _, o := range overrides {
		for name := range plan {
			if o.Pattern.MatchString(name) {
				plan[name] = o.Type
			}
		}
	}
	return plan
}

// fallback is llama.cpp's substitute when a row is not a whole number of
// the type's blocks (k-quants, i-quants and the ternary types need
// multiples of 256).
func fallback(t tensor.DType, cols int) tensor.DType {
	if cols%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case tensor.Q2_K, tensor.Q3_K, tensor.IQ4_XS,
		tensor.IQ1_S, tensor.IQ1_M, tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ3_XXS, tensor.IQ3_S:
		t = tensor.IQ4_NL
	case tensor.TQ1_0, tensor.TQ2_0:
		t = tensor.Q4_0
	case tensor.Q4_K:
		t = tensor.Q5_0
	case tensor.Q5_K:
		t = tensor.Q5_1
	case tensor.Q6_K:
		t = tensor.Q8_0
	}
	if cols%t.BlockSize() != 0 {
		return tensor.F16
	}
	return t
}

// Check reports, before any work, why the plan cannot be written: a
// tensor planned as a type terse can read but not yet quantize, or (when
// hasImportance is false) a type that llama.cpp, and terse, refuse to
// quantize without importance weights. preset names the --type in the
// message.
func (pl Plan) Check(preset string, hasImportance bool) error {
	names := make([]string, 0, len(pl))
	for name := range pl {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		dt := pl[name]
		if !dt.Quantized() {
			continue
		}
		if !ggml.QuantizeSupported(dt) {
			return fmt.Errorf("preset %s: tensor %q: terse reads %s but cannot write it yet; choose another --type or override the tensor (--override)", preset, name, dt)
		}
		if !hasImportance && needsImportance(name, dt) {
			return fmt.Errorf("preset %s: tensor %q: %s needs importance weights (llama-quantize refuses it without an imatrix); give --imatrix or --calib text", preset, name, dt)
		}
	}
	return nil
}

// needsImportance is llama-quantize's rule (early 2025) for the tensors it
// refuses to quantize without an imatrix: IQ2_XXS, IQ2_XS, IQ2_S and IQ1_S
// anywhere, IQ1_M but for the token embedding and the output; and any type
// terse's own quantizer cannot run without importance.
func needsImportance(name string, dt tensor.DType) bool {
	switch dt {
	case tensor.IQ2_XXS, tensor.IQ2_XS, tensor.IQ2_S, tensor.IQ1_S:
		return true
	case tensor.IQ1_M:
		return name != "token_embd.weight" && name != "output.weight"
	}
	d, _ := ggml.Lookup(dt)
	return d.NeedsImportance
}
