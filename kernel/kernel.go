// Package kernel holds the hot loops of the engine: dot products, matrix
// products over weights in their stored type, and the worker pool that
// splits them across cores.
//
// Each kernel has a portable Go version (generic.go) and, on amd64, AVX2+FMA
// and AVX-512 versions in assembly (simd_amd64.s). The fastest path the CPU
// and OS support is chosen once at init; the environment variable
// TERSE_KERNEL=generic|avx2|avx512 forces a path (a path the CPU lacks falls
// back to the best one it has). Building with the purego tag drops the
// assembly. Kernel reports the path in use.
//
// Run-time settings (the worker count, the pool's spin time, MatMul's tile
// sizes and path choices) live in one Config value, set at start with
// Configure or SetThreads and read as one snapshot per call. Every
// parallel loop of the module runs on the package's one worker pool
// (Parallel, ParallelChunks, MatMul), so the worker count holds everywhere;
// a panic inside a job reaches the caller as a *JobPanic.
//
// Numerics: all accumulation is in float32, as in ggml. The SIMD paths use
// fused multiply-add and several partial sums, so their results differ from
// the generic loop by rounding (bounded by a few ulps of Σ|aᵢbᵢ|), and
// MatMul's batched path (n > 1) may differ from its single-token path the
// same way.
package kernel
