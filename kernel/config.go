package kernel

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config holds the kernel's run-time settings: the worker count and the
// tuning knobs of the pool and of MatMul. A command sets it once at start
// with Configure (SetThreads changes the worker count alone); every call
// reads one snapshot of it, so a change never reaches a call half-way.
// DefaultConfig gives the defaults, which honour the environment variables
// TERSE_SPIN_US and TERSE_KERNEL.
type Config struct {
	// Threads is how many goroutines Parallel and MatMul use, the caller
	// among them (<= 0: GOMAXPROCS; at most 1024).
	Threads int
	// Spin is how long pool workers and callers spin before blocking.
	// Longer spins cover the gaps between a decode step's jobs, but on a
	// machine shared with other busy processes they cost more than they
	// save (measured on the 2-core development machine under load).
	// Default 5µs; TERSE_SPIN_US sets it in microseconds.
	Spin time.Duration
	// TileRows weight rows are widened together and reused across all the
	// activations of a panel on the batched (n > 1) path (a multiple of 4;
	// default 32).
	TileRows int
	// KBlock columns are handled per micro-kernel call on the batched path
	// (a multiple of 16). Smaller blocks keep the operands in L1 but pay
	// more horizontal sums; on the development machine (AVX-512, 2 MiB L2)
	// whole rows up to 2048, the default, measured best.
	KBlock int
	// SmallWork is the multiply-add count below which MatMul stays on the
	// calling goroutine (default 1<<15; the integer path uses 4×).
	SmallWork int
	// QMaxBatch is the largest activation count MatMul sends down the
	// integer path for quantized weights (qmatmul.go); larger batches use
	// the dequantize-tile + float micro-kernel path, which widens each
	// weight tile once for all tokens. On the development machine (one
	// thread, 2048×768) the integer path is ahead up to about 20 tokens for
	// Q4_0 and past 24 for Q6_K (BenchmarkQMatMulCrossover), because the
	// dequantizers are pure Go. Default 16.
	QMaxBatch int
	// QGemmMin is the smallest activation count, above QMaxBatch, that
	// MatMul sends down the integer prefill GEMM (qgemm.go, qgemm16.go)
	// for the weight types the level has sixteen-row kernels for
	// (gemm16For: AVX512_VNNI, or AVX2 for some); 0 keeps every batch
	// above QMaxBatch on the dequantize + float GEMM path. Default 1: measured in CPU time on the
	// development machine (2048- and 8192-column weights, 32 and 128
	// tokens) the GEMM ran at 1.9-3.3× the dequantize path.
	QGemmMin int
	// NoAMX keeps the prefill GEMM off the AMX tile kernels (Q8_0 and
	// Q4_0, qgemm16amx_amd64.s) on CPUs that have them: they give the same
	// results as the VNNI kernels, bit for bit. Default: TERSE_NOAMX=1.
	NoAMX bool
	// QTileMin is the smallest activation count, at most QMaxBatch, for
	// which the integer decode path dots the weights of exactRowType types
	// (Q8_0, Q4_0, Q4_K, Q6_K, IQ4_XS, Q2_K, Q3_K) through the sixteen-row
	// kernels (qgemm16.go, where the level
	// has them: AVX512_VNNI, and on AVX2 from four tokens)
	// instead of row by row: each 16-row weight tile
	// is repacked once and dotted with every token. Both routes give ggml's
	// dot bit for bit (the row kernels of these types do the reference's
	// float32 operations in its order; TestQDecodeRowsEqualTiles), so a
	// sequence decoded in a batch gets the logits it gets alone, which the
	// server's greedy equality relies on. That holds for QTileMin 1 to 4:
	// batches of four or more that stay off the tiles take the four-token
	// kernels (qdec4.go), which round differently. 0 keeps the row kernels
	// at every decode batch size. The other types with sixteen-row kernels
	// take them at every size once QTileMin > 0 (qTileRoute), since their
	// row kernels round differently. Default 2: one token takes the rows, which
	// read each weight row once without the per-call repacking. Measured on
	// the development machine (AMD EPYC Zen 4, shared with other jobs at
	// load 12-24 on 2 cores, so only ratios mean much): one thread,
	// 8192×2048 weights, BenchmarkQTileMin, the tiles ran at 1.2-1.4× the
	// row kernels for two and three tokens and 1.7-3.1× for eight (earlier
	// measurement), while for one token the rows ran at 1.1-3× the tiles;
	// a Llama-3.2-1B-shaped decode on two threads (terse bench -n 32) ran
	// 1.4-3× faster on the rows than on the tiles for Q4_K_M, Q8_0, Q4_0
	// and Q6_K.
	QTileMin int
	// QDisabled sends quantized weights down the dequantize path at every
	// batch size (benchmarks and tests compare the two).
	QDisabled bool
	// Level forces a kernel implementation: "generic", "avx2" or "avx512";
	// "" or "auto" is the best the CPU has, and a level the CPU lacks falls
	// back to the best one it has (Kernel reports the result). Default:
	// TERSE_KERNEL. Configure switches the level only when Level differs
	// from the current setting; change it only while no kernel runs.
	Level string
}

// Defaults of the tuning knobs.
const (
	defaultSpin      = 5 * time.Microsecond
	defaultTileRows  = 32
	defaultKBlock    = 2048
	defaultSmallWork = 1 << 15
	qMaxN            = 16 // the default QMaxBatch
	defaultQTileMin  = 2
	maxThreads       = 1024
)

// config is the settings in use: with the dispatch level, the package's
// only mutable state. Stores go through Configure (configMu orders them);
// the value pointed to is never changed after it is stored.
var (
	configMu sync.Mutex
	config   atomic.Pointer[Config]
)

func init() { config.Store(normalize(DefaultConfig())) }

// DefaultConfig returns the default settings, with TERSE_SPIN_US,
// TERSE_KERNEL, TERSE_NOAMX and TERSE_QTILEMIN (Config.QTileMin) applied.
func DefaultConfig() Config { return defaultConfig(os.Getenv) }

func defaultConfig(getenv func(string) string) Config {
	c := Config{Spin: defaultSpin, TileRows: defaultTileRows, KBlock: defaultKBlock,
		SmallWork: defaultSmallWork, QMaxBatch: qMaxN, QGemmMin: 1, QTileMin: defaultQTileMin, Level: getenv("TERSE_KERNEL"),
		NoAMX: getenv("TERSE_NOAMX") == "1"}
	if v, err := strconv.Atoi(getenv("TERSE_SPIN_US")); err == nil && v >= 0 {
		c.Spin = time.Duration(v) * time.Microsecond
	}
	if v, err := strconv.Atoi(getenv("TERSE_QTILEMIN")); err == nil && v >= 0 {
		c.QTileMin = v
	}
	return c
}

// CurrentConfig returns the settings in use, with Threads resolved.
func CurrentConfig() Config { return *config.Load() }

// Configure makes c the settings of every later call. It checks the knobs
// and returns an error naming the first bad one, leaving the settings
// unchanged.
func Configure(c Config) error {
	switch {
	case c.Spin < 0:
		return fmt.Errorf("kernel config: spin %v is negative", c.Spin)
	case c.TileRows < 4 || c.TileRows%4 != 0:
		return fmt.Errorf("kernel config: tile rows %d is not a positive multiple of 4", c.TileRows)
	case c.KBlock < 16 || c.KBlock%16 != 0:
		return fmt.Errorf("kernel config: k block %d is not a positive multiple of 16", c.KBlock)
	case c.SmallWork < 0:
		return fmt.Errorf("kernel config: small work %d is negative", c.SmallWork)
	case c.QMaxBatch < 0:
		return fmt.Errorf("kernel config: quantized-path max batch %d is negative", c.QMaxBatch)
	case c.QGemmMin < 0:
		return fmt.Errorf("kernel config: integer GEMM min batch %d is negative", c.QGemmMin)
	case c.QTileMin < 0:
		return fmt.Errorf("kernel config: decode tile min batch %d is negative", c.QTileMin)
	}
	if _, ok := parseLevel(c.Level); !ok {
		return fmt.Errorf("kernel config: unknown level %q (generic, avx2, avx512 or auto)", c.Level)
	}
	configMu.Lock()
	defer configMu.Unlock()
	n := normalize(c)
	// The level is switched only when Level changes, so that a Configure
	// of other knobs leaves a level chosen some other way (tests) alone.
	if n.Level != config.Load().Level {
		if lvl := chooseLevel(n.Level, supported); lvl != active {
			active = lvl
		}
	}
	config.Store(n)
	return nil
}

// normalize resolves Threads in a copy of c.
func normalize(c Config) *Config {
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	c.Threads = min(c.Threads, maxThreads)
	return &c
}

// SetThreads sets how many goroutines Parallel and MatMul use (n <= 0: as
// many as GOMAXPROCS), keeping the other settings.
func SetThreads(n int) {
	configMu.Lock()
	c := *config.Load()
	c.Threads = n
	config.Store(normalize(c))
	configMu.Unlock()
}

// Threads reports the worker count.
func Threads() int { return config.Load().Threads }
