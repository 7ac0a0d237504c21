package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"text/tabwriter"

	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/search"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

func runCompress(args []string, stdout, stderr io.Writer) error {
	args, prof, err := profileFlags(args)
	if err != nil {
		return err
	}
	stop, err := prof.start()
	if err != nil {
		return err
	}
	defer stop()
	fs := newFlags("compress", stderr)
	mf := addModelFlags(fs)
	out := fs.String("out", "", "output file (required): GGUF for rtn and gptq, a native .terse file for the codebook methods")
	typ := fs.String("type", "Q4_K_M", "llama.cpp preset: "+compress.PresetNames())
	method := fs.String("method", compress.MethodRTN, "rtn: llama.cpp's importance-weighted block quantizer; gptq: GPTQ onto the same block grids (needs --calib); "+
		"kmeans, vq, rvq, pq: learned codebooks, written as a native .terse file")
	bits := fs.Int("bits", 4, "kmeans: code bits per weight (1 to 8); vq/rvq/pq: code bits per sub-vector and stage (1 to 16)")
	group := fs.Int("group", 256, "kmeans: columns sharing a codebook (0: the whole row)")
	vqDim := fs.Int("vq-dim", 2, "vq/rvq/pq: sub-vector length (1 to 8)")
	segments := fs.Int("segments", 2, "pq: codebooks per row (column segments, at least 2)")
	refine := fs.Int("refine", 0, "vq/rvq/pq: rounds of Hessian-aware codebook and code refinement (needs --calib)")
	kmeansGPTQ := fs.Bool("kmeans-gptq", false, "kmeans: GPTQ error feedback over the learned grid (needs --calib)")
	imatrix := fs.String("imatrix", "", "llama.cpp imatrix.dat to weight the quantization error; with --calib as well, the imatrix's importance wins for "+
		"every tensor it has (a warning says so) and --calib supplies the Hessians and the rest")
	calibFile := fs.String("calib", "", "calibration text: computes the importance matrix (and, for gptq, the Hessians)")
	calibCtx := fs.Int("calib-ctx", compress.DefaultCalibCtx, "calibration chunk length in tokens, at most the model's trained context; a model trained on fewer tokens uses its own context")
	calibChunks := fs.Int("calib-chunks", 0, "use at most this many calibration chunks (0: all)")
	calibCache := fs.String("calib-cache", "", "folder of calibration caches: the statistics --calib measures (importance, and for gptq the Hessians; they depend only on the model, "+
		"the tokens of the text as cut to --calib-chunks, and --calib-ctx) are stored there by the first run and read by every later one, so several compressions of one model "+
		"share one calibration pass (one file per block; a 1B model's Hessians take about 5 GB). With a budget the default is inside the level database, and 'none' "+
		"calibrates every level on its own. Not with --sequential, whose statistics depend on the compressed blocks")
	saveImatrix := fs.String("save-imatrix", "", "write the importance matrix computed from --calib as llama.cpp's imatrix.dat")
	var overrides multiFlag
	fs.Var(&overrides, "override", "PATTERN=TYPE: force the type of tensors whose name matches the regular expression (repeatable)")
	damp := fs.Float64("damp", 0.1, "GPTQ: Hessian damping as a fraction of its mean diagonal, 0 ≤ damp < 1 (0.1 measured best at Q2_K and equal at Q3_K_M/Q4_K_M on pdtext)")
	sequential := fs.Bool("sequential", false, "gptq, kmeans --kmeans-gptq, vq --refine: each block's Hessians from the inputs the blocks before it give once "+
		"compressed (GPTQ's reference recipe; one more pass per block) instead of the original model's. Either way the statistics are collected and "+
		"the matrices compressed one block at a time, so only one block's Hessians are held. Off by default: on pdtext-llama-28m (64 chunks) it raised the KLD at Q4_K_M (0.00481 vs 0.00457) and Q2_K (0.0629 vs 0.0612) for a third more CPU time")
	allowRequant := fs.Bool("allow-requantize", false, "compress a model that is already quantized (errors compound; llama-quantize asks the same)")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	sf := addSearchFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if *out == "" {
		return usagef("--out is required")
	}
	if _, ok := compress.Presets[strings.ToUpper(*typ)]; !ok {
		return usagef("unknown --type %q (presets: %s)", *typ, compress.PresetNames())
	}
	switch {
	case *threads < 0:
		return usagef("--threads %d: want 0 (all cores) or more", *threads)
	case *calibCtx < 1:
		return usagef("--calib-ctx %d: want at least 1 token", *calibCtx)
	case *calibChunks < 0:
		return usagef("--calib-chunks %d: want 0 (all) or more", *calibChunks)
	case !(*damp >= 0 && *damp < 1):
		return usagef("--damp %g: want 0 ≤ damp < 1", *damp)
	case *saveImatrix != "" && *calibFile == "":
		return usagef("--save-imatrix needs --calib text to measure the importance")
	case *calibCache != "" && *calibFile == "":
		return usagef("--calib-cache keeps what --calib text measures; give --calib")
	case *calibCache != "" && *sequential:
		return usagef("--calib-cache does not go with --sequential: each block's statistics depend on how the blocks before it were compressed, so they cannot be reused")
	}
	m, err := methodOf(*method, *bits, *group, *vqDim, *segments, *refine, *kmeansGPTQ, *damp)
	if err != nil {
		return err
	}
	if m.NeedsHessian() && *calibFile == "" {
		return usagef("--method %s with these settings needs --calib text to measure the layers' inputs", *method)
	}
	if *sequential && !m.NeedsHessian() {
		return usagef("--sequential feeds compressed blocks' outputs to the next block's Hessians; --method %s with these settings uses none", *method)
	}
	if m.Output() != compress.GGUF && set["type"] {
		fmt.Fprintf(stderr, "terse compress: warning: --type %s is a GGUF preset; --method %s ignores it\n", *typ, *method)
	}
	var ovs []compress.Override
	for _, s := range overrides {
		o, err := compress.ParseOverride(s)
		if err != nil {
			return usagef("--override: %v", err)
		}
		ovs = append(ovs, o)
	}
	modelPath, _, err := mf.resolve()
	if err != nil {
		return err
	}
	if err := compress.CheckOutput(*out, modelPath); err != nil {
		return trimPrefix(err)
	}
	if sf.active() {
		return sf.run(mf, *out, *calibFile, *calibCache, *calibCtx, *calibChunks, *threads, set, *quiet, *jsonOut, stdout, stderr)
	}
	kernel.SetThreads(*threads)
	// Compression holds a few large pointer-free buffers at a time (a
	// block's Hessians and factors, hundreds of MiB at a 1B model's
	// widths), which the collector scans in no time; collecting at 25%
	// growth instead of 100% keeps the garbage of one matrix from adding
	// its size again to the peak memory.
	defer debug.SetGCPercent(debug.SetGCPercent(25))

	if *calibCache == search.NoCalibCache {
		*calibCache = ""
	}
	opt := compress.Options{Out: *out, Method: m, Preset: *typ, Overrides: ovs, IMatrixFile: *imatrix,
		CalibFile: *calibFile, CalibChunks: *calibChunks, CalibCache: *calibCache, SaveIMatrix: *saveImatrix, Sequential: *sequential, AllowRequantize: *allowRequant,
		Progress: stderr, Warn: func(msg string) { fmt.Fprintf(stderr, "terse compress: warning: %s\n", msg) }}
	if set["calib-ctx"] {
		opt.CalibCtx = *calibCtx
	}
	if *quiet {
		opt.Progress = nil
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	// Ctrl-C and SIGTERM are main's (atomicfile.HandleSignals): they remove
	// the output's temporary and exit, so no partial file is left.
	res, err := compress.Run(context.Background(), ck, opt)
	if err != nil {
		return trimPrefix(err)
	}
	if *jsonOut {
		return writeJSON(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tfrom\tto\tbits/w\tmethod\timportance\tseconds\t")
	for _, r := range res.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.3f\t%s\t%v\t%.2f\t\n", r.Name, r.From, r.Type, r.BitsPerWeight, r.Method, r.Importance, r.Seconds)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	what := res.Method
	if res.Preset != "" {
		what = res.Preset + ", " + what
	}
	fmt.Fprintf(stdout, "\nwrote %s (%s, %s): %d bytes, %.3f bits/weight (file), %.3f over the compressed matrices, %.1f s\n",
		res.Out, res.Format, what, res.FileBytes, res.BitsPerWeight, res.CompressedBitsPerWeight, res.Seconds)
	return nil
}

// methodOf builds the --method with its flags, as a usage error when they
// do not make sense.
func methodOf(name string, bits, group, dim, segments, refine int, kmeansGPTQ bool, damp float64) (compress.Method, error) {
	switch name {
	case compress.MethodRTN:
		return compress.RTN{}, nil
	case compress.MethodGPTQ:
		g, err := compress.NewGPTQ(damp)
		if err != nil {
			return nil, usagef("--damp: %v", err)
		}
		return g, nil
	case "kmeans":
		if group < 0 {
			return nil, usagef("--group %d: want 0 (the whole row) or more", group)
		}
		m, err := compress.NewKMeans(kmeans.Config{Bits: bits, GroupSize: group, GPTQ: kmeansGPTQ})
		if err != nil {
			return nil, usagef("--bits %d, --group %d: %v", bits, group, err)
		}
		return m, nil
	case "vq", "rvq", "pq":
		if refine < 0 {
			return nil, usagef("--refine %d: want 0 or more", refine)
		}
		c := vq.Config{Dim: dim, CodeBits: bits, Refine: refine}
		switch name {
		case "rvq":
			c.Stages = 2
		case "pq":
			if segments < 2 {
				return nil, usagef("--segments %d: pq needs at least 2", segments)
			}
			c.Segments = segments
		}
		m, err := compress.NewVQ(name, c)
		if err != nil {
			return nil, usagef("--vq-dim %d, --bits %d: %v", dim, bits, err)
		}
		return m, nil
	}
	return nil, usagef("unknown --method %q (rtn, gptq, kmeans, vq, rvq or pq)", name)
}

// prefixless is an error whose message drops the "compress: " prefix the
// command's own prefix already says.
type prefixless struct{ err error }

func (e prefixless) Error() string { return strings.TrimPrefix(e.err.Error(), "compress: ") }
func (e prefixless) Unwrap() error { return e.err }

func trimPrefix(err error) error { return prefixless{err} }

// profiling holds the hidden --cpuprofile and --memprofile flags of
// compress and bench, for measuring them; they are not in -h.
type profiling struct{ cpu, mem string }

// profileFlags takes --cpuprofile FILE and --memprofile FILE (one or two
// dashes, "=" or a separate value) out of args.
func profileFlags(args []string) ([]string, profiling, error) {
	var p profiling
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if len(name) == len(a) || len(a)-len(name) > 2 {
			rest = append(rest, a)
			continue
		}
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		var dst *string
		switch name {
		case "cpuprofile":
			dst = &p.cpu
		case "memprofile":
			dst = &p.mem
		default:
			rest = append(rest, a)
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, p, usagef("flag needs an argument: -%s", name)
			}
			i++
			val = args[i]
		}
		if val == "" {
			return nil, p, usagef("-%s: empty file name", name)
		}
		*dst = val
	}
	return rest, p, nil
}

// start starts the CPU profile; the function it returns stops it and
// writes the heap profile.
func (p profiling) start() (func(), error) {
	var cpu *os.File
	if p.cpu != "" {
		f, err := os.Create(p.cpu)
		if err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		cpu = f
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if p.mem != "" {
			f, err := os.Create(p.mem)
			if err != nil {
				fmt.Fprintf(os.Stderr, "terse: memory profile: %v\n", err)
				return
			}
			runtime.GC()
			if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
				fmt.Fprintf(os.Stderr, "terse: memory profile: %v\n", err)
			}
			f.Close()
		}
	}, nil
}
