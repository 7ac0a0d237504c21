//go:build !amd64 || purego

package kernel

func detect() level { return levelGeneric }

func dot(_ level, a, b []float32) float32            { return dotGeneric(a, b) }
func axpy(_ level, a float32, x, y []float32)        { axpyGeneric(a, x, y) }
func f16ToF32(_ level, dst []float32, src []byte)    { f16ToF32Generic(dst, src) }
func bf16ToF32(_ level, dst []float32, src []byte)   { bf16ToF32Generic(dst, src) }
func dotF16(_ level, w []byte, x []float32) float32  { return dotF16Generic(w, x) }
func dotBF16(_ level, w []byte, x []float32) float32 { return dotBF16Generic(w, x) }

// microNR is how many activation vectors one micro-kernel call covers.
func microNR(level) int { return 4 }

func micro(_ level, w, x *[4]*float32, k int, out *[16]float32) { gemm4x4Generic(w, x, k, out) }

func expSub(_ level, x []float32, m float32) float32 { return expSubGeneric(x, m) }
func siluMul(_ level, g, u []float32)                { siluMulGeneric(g, u) }
func wsum(l level, dst, p, v []float32, vs int)      { wsumGeneric(l, dst, p, v, vs) }
func maxf(_ level, x []float32) float32              { return maxGeneric(x) }

func spinPause() {}
