package load

import (
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

func dequant(t *tensor.Tensor, dst []float32) error {
	return ggml.Dequantize(t.DType, t.Data, dst)
}
