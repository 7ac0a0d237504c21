package kernel

// Activation quantization for the integer decode path (qmatmul.go).
//
// An activation row is quantized once per MatMul call into the format its
// weights' type dots against (ggml.ActFormat: Q8_0 or Q8_K, see quant/ggml's
// act.go, which holds the reference quantizers); quantQ8_0 and quantQ8_K
// add the SIMD quantizers where the level has them (qdot_amd64.s,
// qact_amd64.s), bit for bit the reference ones.

const (
	q8Block = 32
	qkBlock = 256
)
