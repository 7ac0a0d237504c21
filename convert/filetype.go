package convert

import (
	"fmt"
	"strings"

	"github.com/terse-llm/terse/tensor"
)

// FileType is llama.cpp's llama_ftype, the value of general.file_type: the
// quantization recipe a file was made with ("mostly Q4_K_M"), not the type
// of every tensor. The numbering is llama.cpp's (include/llama.h); the gaps
// are recipes llama.cpp has retired.
type FileType uint32

// llama.cpp's file types.
const (
	FileTypeAllF32      FileType = 0
	FileTypeMostlyF16   FileType = 1
	FileTypeMostlyQ4_0  FileType = 2
	FileTypeMostlyQ4_1  FileType = 3
	FileTypeMostlyQ8_0  FileType = 7
	FileTypeMostlyQ5_0  FileType = 8
	FileTypeMostlyQ5_1  FileType = 9
	FileTypeMostlyQ2_K  FileType = 10
	FileTypeMostlyQ3_KS FileType = 11
	FileTypeMostlyQ3_KM FileType = 12
	FileTypeMostlyQ3_KL FileType = 13
	FileTypeMostlyQ4_KS FileType = 14
	FileTypeMostlyQ4_KM FileType = 15
	FileTypeMostlyQ5_KS FileType = 16
	FileTypeMostlyQ5_KM FileType = 17
	FileTypeMostlyQ6_K  FileType = 18
	FileTypeIQ2_XXS     FileType = 19
	FileTypeIQ2_XS      FileType = 20
	FileTypeQ2_KS       FileType = 21
	FileTypeIQ3_XS      FileType = 22
	FileTypeIQ3_XXS     FileType = 23
	FileTypeIQ1_S       FileType = 24
	FileTypeIQ4_NL      FileType = 25
	FileTypeIQ3_S       FileType = 26
	FileTypeIQ3_M       FileType = 27
	FileTypeIQ2_S       FileType = 28
	FileTypeIQ2_M       FileType = 29
	FileTypeIQ4_XS      FileType = 30
	FileTypeIQ1_M       FileType = 31
	FileTypeMostlyBF16  FileType = 32
	FileTypeTQ1_0       FileType = 36
	FileTypeTQ2_0       FileType = 37
	FileTypeMXFP4_MOE   FileType = 38
)

// fileTypeNames are the names llama-quantize accepts for each file type.
var fileTypeNames = map[FileType]string{
	FileTypeAllF32: "F32", FileTypeMostlyF16: "F16", FileTypeMostlyBF16: "BF16",
	FileTypeMostlyQ4_0: "Q4_0", FileTypeMostlyQ4_1: "Q4_1", FileTypeMostlyQ5_0: "Q5_0",
	FileTypeMostlyQ5_1: "Q5_1", FileTypeMostlyQ8_0: "Q8_0", FileTypeMostlyQ2_K: "Q2_K",
	FileTypeQ2_KS: "Q2_K_S", FileTypeMostlyQ3_KS: "Q3_K_S", FileTypeMostlyQ3_KM: "Q3_K_M",
	FileTypeMostlyQ3_KL: "Q3_K_L", FileTypeMostlyQ4_KS: "Q4_K_S", FileTypeMostlyQ4_KM: "Q4_K_M",
	FileTypeMostlyQ5_KS: "Q5_K_S", FileTypeMostlyQ5_KM: "Q5_K_M", FileTypeMostlyQ6_K: "Q6_K",
	FileTypeIQ2_XXS: "IQ2_XXS", FileTypeIQ2_XS: "IQ2_XS", FileTypeIQ2_S: "IQ2_S", FileTypeIQ2_M: "IQ2_M",
	FileTypeIQ3_XXS: "IQ3_XXS", FileTypeIQ3_XS: "IQ3_XS", FileTypeIQ3_S: "IQ3_S", FileTypeIQ3_M: "IQ3_M",
	FileTypeIQ1_S: "IQ1_S", FileTypeIQ1_M: "IQ1_M", FileTypeIQ4_NL: "IQ4_NL", FileTypeIQ4_XS: "IQ4_XS",
	FileTypeTQ1_0: "TQ1_0", FileTypeTQ2_0: "TQ2_0", FileTypeMXFP4_MOE: "MXFP4_MOE",
}

// String returns llama-quantize's name for f ("Q4_K_M"), or "FileType(n)".
func (f FileType) String() string {
	if s, ok := fileTypeNames[f]; ok {
		return s
	}
	return fmt.Sprintf("FileType(%d)", uint32(f))
}

// ParseFileType maps a llama-quantize type name ("q4_k_m", "Q8_0", "f16")
// to its FileType. "Q4_K" and "Q5_K" mean their _M recipes, and "Q3_K"
// Q3_K_M, as in llama-quantize.
func ParseFileType(name string) (FileType, error) {
	u := strings.ToUpper(name)
	switch u {
	case "Q4_K":
		return FileTypeMostlyQ4_KM, nil
	case "Q5_K":
		return FileTypeMostlyQ5_KM, nil
	case "Q3_K":
		return FileTypeMostlyQ3_KM, nil
	case "F32", "FP32":
		return FileTypeAllF32, nil
	case "FP16":
		return FileTypeMostlyF16, nil
	}
	for f, s := range fileTypeNames {
		if s == u {
			return f, nil
		}
	}
	return 0, fmt.Errorf("unknown llama.cpp file type %q", name)
}

// FileTypeOf is the file type llama.cpp reports for a file whose weight
// matrices are mostly of type t (its llama_model_loader guess: Q3_K means
// Q3_K_M, Q4_K Q4_K_M, Q5_K Q5_K_M).
func FileTypeOf(t tensor.DType) (FileType, error) {
	switch t {
	case tensor.F32:
		return FileTypeAllF32, nil
	case tensor.F16:
		return FileTypeMostlyF16, nil
	case tensor.BF16:
		return FileTypeMostlyBF16, nil
	case tensor.Q4_0:
		return FileTypeMostlyQ4_0, nil
	case tensor.Q4_1:
		return FileTypeMostlyQ4_1, nil
	case tensor.Q5_0:
		return FileTypeMostlyQ5_0, nil
	case tensor.Q5_1:
		return FileTypeMostlyQ5_1, nil
	case tensor.Q8_0:
		return FileTypeMostlyQ8_0, nil
	case tensor.Q2_K:
		return FileTypeMostlyQ2_K, nil
	case tensor.Q3_K:
		return FileTypeMostlyQ3_KM, nil
	case tensor.Q4_K:
		return FileTypeMostlyQ4_KM, nil
	case tensor.Q5_K:
		return FileTypeMostlyQ5_KM, nil
	case tensor.Q6_K:
		return FileTypeMostlyQ6_K, nil
	case tensor.IQ2_XXS:
		return FileTypeIQ2_XXS, nil
	case tensor.IQ2_XS:
		return FileTypeIQ2_XS, nil
	case tensor.IQ2_S:
		return FileTypeIQ2_S, nil
	case tensor.IQ3_XXS:
		return FileTypeIQ3_XXS, nil
	case tensor.IQ3_S:
		return FileTypeIQ3_S, nil
	case tensor.IQ1_S:
		return FileTypeIQ1_S, nil
	case tensor.IQ1_M:
		return FileTypeIQ1_M, nil
	case tensor.IQ4_NL:
		return FileTypeIQ4_NL, nil
	case tensor.IQ4_XS:
		return FileTypeIQ4_XS, nil
	}
	return 0, fmt.Errorf("no llama.cpp file type stands for %s weights", t)
}

// GuessFileType is the file type of a set of tensors as llama.cpp guesses
// it when a file lacks general.file_type: the type most matrices (tensors
// of two or more dimensions) have; ties go to the type seen first.
func GuessFileType(ts []*tensor.Tensor) (FileType, error) {
	count := map[tensor.DType]int{}
	var order []tensor.DType
	for _, t := range ts {
		if len(t.Shape) < 2 {
			continue
		}
		if count[t.DType] == 0 {
			order = append(order, t.DType)
		}
		count[t.DType]++
	}
	if len(order) == 0 {
		return FileTypeAllF32, nil
	}
	best := order[0]
	for _, d := range order[1:] {
		if count[d] > count[best] {
			best = d
		}
	}
	return FileTypeOf(best)
}
