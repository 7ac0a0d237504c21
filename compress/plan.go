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
	choose := func(name string, layer int, cols int) tensor.DType {
		t := p.Default
		if !t.Quantized() {
			return t
		}
		switch {
		case name == "output.weight" || (cfg.TiedEmbeddings && name == "token_embd.weight"):
			if cols%t.BlockSize() != 0 {
				t = tensor.Q8_0
			} else if t != tensor.Q8_0 {
				t = tensor.Q6_K
			}
		case name == "token_embd.weight":
		case strings.HasSuffix(name, "attn_v.weight"):
			switch {
			case is("Q2_K"):
				t = tensor.Q3_K
				if gqa >= 4 {
					t = tensor.Q4_K
				}
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
		case strings.HasSuffix(name, "ffn_down.weight"):
			switch {
			case is("Q2_K"):
				t = tensor.Q3_K
			case is("Q3_K_M"):
				t = tensor.Q4_K
				if layer < n/16 {
					t = tensor.Q5_K
				}
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
			case is("Q3_K_M"):
				t = tensor.Q4_K
			case is("Q3_K_L"):
				t = tensor.Q5_K
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
// the type's blocks (k-quants need multiples of 256).
func fallback(t tensor.DType, cols int) tensor.DType {
	if cols%t.BlockSize() == 0 {
		return t
	}
	switch t {
	case tensor.Q2_K, tensor.Q3_K, tensor.IQ4_XS:
		t = tensor.IQ4_NL
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
