// Package convert turns an opened checkpoint (load.Checkpoint: Hugging
// Face, llama2.c or GGUF, possibly with compressed weights) into the GGUF
// file llama.cpp and ollama load: the metadata llama.cpp's
// convert_hf_to_gguf.py writes (general.*, <arch>.* hyperparameters and the
// tokenizer.ggml.* vocabulary), and the tensors under llama.cpp's names in
// the order its loader and llama-quantize use, with Q and K rows permuted
// for ggml's RoPE pairing where the source uses Hugging Face's.
//
// The pieces are separate so that a compressor can replace the matrices:
//
//	ts, err := convert.Tensors(ck, opt)        // canonical names, llama.cpp order
//	... quantize ts ...
//	err = convert.Write(path, ck, ts, opt)     // metadata for ts, then the file
//
// or, for a plain conversion, convert.WriteGGUF(path, ck, opt).
//
// The fixtures llama.cpp itself made (pdtext-llama-28m's GGUFs, stories260K's)
// are the oracle; the tests compare metadata key by key and tensors byte by
// byte, and differences are documented on Metadata.
package convert

import (
	"fmt"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/tensor"
)

// Options adjust a conversion. The zero value converts as llama.cpp's
// convert_hf_to_gguf.py does with the source's own precision.
type Options struct {
	// Name is general.name; empty uses the source file or folder name.
	Name string
	// Float, when set ("f32", "f16" or "bf16"), converts every weight matrix
	// to that type (quantized ones are dequantized first); empty keeps the
	// stored types. Norms and biases are always F32.
	Float string
	// Untie writes output.weight as a copy of token_embd.weight for a model
	// with tied embeddings, as llama.cpp's llama2.c converter does;
	// convert_hf_to_gguf.py (and the default) omits it, and llama.cpp then
	// uses token_embd for the output.
	Untie bool
	// AddBOS overrides tokenizer.ggml.add_bos_token (nil: see Metadata).
	AddBOS *bool
	// FileType overrides general.file_type (nil: guessed from the tensors
	// as llama.cpp's loader does).
	FileType *FileType
}

// WriteGGUF converts ck to a GGUF file at path: Tensors, then Write.
func WriteGGUF(path string, ck *load.Checkpoint, opt Options) error {
	ts, err := Tensors(ck, opt)
	if err != nil {
		return fmt.Errorf("convert %s: %w", path, err)
	}
	return Write(path, ck, ts, opt)
}

// Write writes tensors (typically from Tensors, possibly quantized since)
// with ck's metadata to a GGUF file at path. general.file_type is
// opt.FileType or guessed from tensors.
func Write(path string, ck *load.Checkpoint, tensors []*tensor.Tensor, opt Options) error {
	ft, err := fileType(tensors, opt)
	if err != nil {
		return fmt.Errorf("convert %s: %w", path, err)
	}
	meta, err := Metadata(ck, ft, opt)
	if err != nil {
		return fmt.Errorf("convert %s: %w", path, err)
	}
	return gguf.WriteFile(path, meta, tensors)
}

func fileType(ts []*tensor.Tensor, opt Options) (FileType, error) {
	if opt.FileType != nil {
		return *opt.FileType, nil
	}
	return GuessFileType(ts)
}
