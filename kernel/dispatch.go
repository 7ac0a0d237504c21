package kernel

import (
	"os"
	"strings"
)

// level is a kernel implementation tier.
type level int

const (
	levelGeneric level = iota
	levelAVX2          // AVX2 + FMA + F16C
	levelAVX512        // AVX-512 F/BW/VL/DQ on top of levelAVX2
)

var levelNames = [...]string{"generic", "avx2", "avx512"}

func (l level) String() string { return levelNames[l] }

// supported is the best level this CPU and OS allow; active is the one in
// use. Both are set once at init (tests may switch active between runs).
var supported, active level

func init() {
	supported = detect()
	active = chooseLevel(os.Getenv("TERSE_KERNEL"), supported)
}

// chooseLevel maps a TERSE_KERNEL value to a level no higher than best;
// an unknown value means best.
func chooseLevel(env string, best level) level {
	want, ok := parseLevel(env)
	if !ok {
		want = best
	}
	return min(want, best)
}

// parseLevel maps a level name to a level ("", "auto": the highest), and
// reports whether the name is known.
func parseLevel(name string) (level, bool) {
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "", "auto", "best":
		return levelAVX512, true
	case "generic", "go", "purego":
		return levelGeneric, true
	case "avx2":
		return levelAVX2, true
	case "avx512", "avx-512":
		return levelAVX512, true
	}
	return levelAVX512, false
}

// Kernel names the implementation in use: "generic", "avx2" or "avx512".
func Kernel() string { return active.String() }

// Dot returns the float32 dot product of a and b (len(b) >= len(a)).
func Dot(a, b []float32) float32 {
	b = b[:len(a)]
	return dot(active, a, b)
}

// Axpy adds a·x to y element-wise (len(y) >= len(x)).
func Axpy(a float32, x, y []float32) {
	y = y[:len(x)]
	axpy(active, a, x, y)
}

// F16ToF32Row widens len(dst) little-endian IEEE binary16 values from src
// (which must hold at least 2·len(dst) bytes) into dst.
func F16ToF32Row(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	f16ToF32(active, dst, src)
}

// BF16ToF32Row widens len(dst) little-endian bfloat16 values from src
// (which must hold at least 2·len(dst) bytes) into dst.
func BF16ToF32Row(dst []float32, src []byte) {
	src = src[:2*len(dst)]
	bf16ToF32(active, dst, src)
}

// DotF16 returns the dot product of len(x) binary16 values stored
// little-endian in w (at least 2·len(x) bytes) with x, accumulated in
// float32, without materialising the widened row.
func DotF16(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	return dotF16(active, w, x)
}

// DotBF16 is DotF16 for bfloat16 weights.
func DotBF16(w []byte, x []float32) float32 {
	w = w[:2*len(x)]
	return dotBF16(active, w, x)
}
