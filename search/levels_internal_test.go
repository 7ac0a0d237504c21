package search

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/tensor"
)

// TestLevelMethod: GPTQ for the grid and lattice types, which are every
// quantized type (IQ1 and the ternary types included).
func TestLevelMethod(t *testing.T) {
	for _, c := range []struct {
		dt   tensor.DType
		want string
	}{
		{tensor.Q4_K, compress.MethodGPTQ},
		{tensor.IQ4_XS, compress.MethodGPTQ},
		{tensor.IQ2_XS, compress.MethodGPTQ},
		{tensor.IQ3_XXS, compress.MethodGPTQ},
		{tensor.IQ1_S, compress.MethodGPTQ},
		{tensor.IQ1_M, compress.MethodGPTQ},
		{tensor.TQ2_0, compress.MethodGPTQ},
	} {
		if got := levelMethod(c.dt); got != c.want {
			t.Errorf("%s: method %s, want %s", c.dt, got, c.want)
		}
	}
}

// TestKeptLevels: a build keeps the levels whose file is there and whose
// method is the current one; a lattice or ternary level from llama.cpp's
// quantizer (made before GPTQ had their grids) and a level without its
// file are made again.
func TestKeptLevels(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Q4_K.gguf", "IQ2_XS.gguf", "IQ1_S.gguf", "TQ2_0.gguf"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	levels := []LevelInfo{
		{Type: "Q4_K", File: "Q4_K.gguf", Method: "gptq"},
		{Type: "IQ2_XS", File: "IQ2_XS.gguf", Method: "rtn"},
		{Type: "IQ1_S", File: "IQ1_S.gguf", Method: "gptq"},
		{Type: "TQ2_0", File: "TQ2_0.gguf", Method: "rtn"},
		{Type: "Q6_K", File: "Q6_K.gguf", Method: "gptq"},
	}
	got := keptLevels(dir, levels)
	var names []string
	for _, l := range got {
		names = append(names, l.Type)
	}
	if len(names) != 2 || names[0] != "Q4_K" || names[1] != "IQ1_S" {
		t.Errorf("kept %v, want [Q4_K IQ1_S]", names)
	}
}
