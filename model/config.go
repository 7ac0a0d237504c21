package model

import "fmt"

// RopeStyle says which pairs of a head's dimensions RoPE rotates together.
type RopeStyle int

const (
	// RopeInterleaved rotates (2i, 2i+1): llama2.c, and ggml's LLAMA mode
	// (llama.cpp's converter permutes Q and K rows so this matches HF).
	RopeInterleaved RopeStyle = iota
	// RopeHalf rotates (i, i+headDim/2): Hugging Face's rotate_half, ggml's NEOX mode.
	RopeHalf
)

func (s RopeStyle) String() string {
	if s == RopeHalf {
		return "half"
	}
	return "interleaved"
}

// RopeScaling describes a frequency-scaling rule applied to RoPE.
type RopeScaling struct {
	Type           string  // "llama3" or "linear"
	Factor         float64 // overall factor
	LowFreqFactor  float64 // llama3
	HighFreqFactor float64 // llama3
	OriginalMaxPos int     // llama3: original_max_position_embeddings
	// FreqFactors, when set, divide each inverse frequency (GGUF rope_freqs).
	FreqFactors []float64
}

// Config is everything the forward pass needs to know about a Llama-block
// model. Architectures (llama, mistral, qwen2, llama2.c) differ only in these
// fields and in their weight names.
type Config struct {
	Arch           string // "llama", "mistral", "qwen2", ...
	Dim            int    // hidden size
	NLayers        int
	NHeads         int
	NKVHeads       int
	HeadDim        int
	FFNDim         int // intermediate size
	VocabSize      int
	MaxSeqLen      int
	NormEps        float64
	RopeTheta      float64
	RopeStyle      RopeStyle
	RopeScaling    *RopeScaling // nil: none
	TiedEmbeddings bool         // output projection shares token_embd
	AttnBias       bool         // q, k and v projections have biases (Qwen2)
	SlidingWindow  int          // 0: none (informational; not applied)
	BOS, EOS       int          // -1 when absent
	// Layers, when set, overrides the shape of each block (one entry per
	// layer; zero fields keep NHeads, NKVHeads or FFNDim). Structured
	// pruning produces such models. Use Layer(i) for a block's shape.
	Layers []LayerShape
}

// LayerShape is the part of a block's shape that may differ from layer to
// layer; Dim and HeadDim are the same throughout.
type LayerShape struct {
	NHeads   int
	NKVHeads int
	FFNDim   int
}

// Layer returns the effective shape of block i.
func (c *Config) Layer(i int) LayerShape {
	s := LayerShape{c.NHeads, c.NKVHeads, c.FFNDim}
	if i < len(c.Layers) {
		o := c.Layers[i]
		if o.NHeads > 0 {
			s.NHeads = o.NHeads
		}
		if o.NKVHeads > 0 {
			s.NKVHeads = o.NKVHeads
		}
		if o.FFNDim > 0 {
			s.FFNDim = o.FFNDim
		}
	}
	return s
}

// QDim is the width of the block's queries (NHeads × HeadDim).
func (c *Config) QDim(i int) int { return c.Layer(i).NHeads * c.HeadDim }

// KVDim is the width of the block's keys and values (NKVHeads × HeadDim).
func (c *Config) KVDim(i int) int { return c.Layer(i).NKVHeads * c.HeadDim }

// MaxLayer is the largest of each per-layer width over all blocks, for
// sizing buffers.
func (c *Config) MaxLayer() LayerShape {
	var m LayerShape
	for i := 0; i < max(c.NLayers, 1); i++ {
		s := c.Layer(i)
		m.NHeads, m.NKVHeads, m.FFNDim = max(m.NHeads, s.NHeads), max(m.NKVHeads, s.NKVHeads), max(m.FFNDim, s.FFNDim)
	}
	return m
}

// Validate reports the first inconsistency in c.
func (c *Config) Validate() error {
	switch {
	case c.Dim <= 0 || c.NLayers <= 0 || c.NHeads <= 0 || c.VocabSize <= 0 || c.FFNDim <= 0:
		return fmt.Errorf("config: dim %d, layers %d, heads %d, vocab %d, ffn %d must all be positive",
			c.Dim, c.NLayers, c.NHeads, c.VocabSize, c.FFNDim)
	case c.NKVHeads <= 0 || c.NHeads%c.NKVHeads != 0:
		return fmt.Errorf("config: %d attention heads is not a multiple of %d KV heads", c.NHeads, c.NKVHeads)
	case c.HeadDim <= 0 || c.HeadDim%2 != 0:
		return fmt.Errorf("config: head_dim %d must be positive and even", c.HeadDim)
	case c.NormEps <= 0:
		return fmt.Errorf("config: rms_norm_eps %g must be positive", c.NormEps)
	case c.RopeTheta <= 0:
		return fmt.Errorf("config: rope_theta %g must be positive", c.RopeTheta)
	case len(c.Layers) != 0 && len(c.Layers) != c.NLayers:
		return fmt.Errorf("config: %d per-layer shapes for %d layers", len(c.Layers), c.NLayers)
	}
	for i, o := range c.Layers {
		if o.NHeads < 0 || o.NKVHeads < 0 || o.FFNDim < 0 {
			return fmt.Errorf("config: layer %d: negative shape %+v", i, o)
		}
		if s := c.Layer(i); s.NHeads%s.NKVHeads != 0 {
			return fmt.Errorf("config: layer %d: %d attention heads is not a multiple of %d KV heads", i, s.NHeads, s.NKVHeads)
		}
	}
	return nil
}
