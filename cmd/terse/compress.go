package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/terse-llm/terse/calib"
	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/convert"
	"github.com/terse-llm/terse/format/native/pack"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/progress"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/gptq"
	"github.com/terse-llm/terse/quant/gptqggml"
	"github.com/terse-llm/terse/quant/kmeans"
	"github.com/terse-llm/terse/quant/vq"
	"github.com/terse-llm/terse/tensor"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// compressResult is the summary of one compression.
type compressResult struct {
	Model     string                  `json:"model"`
	Out       string                  `json:"out"`
	Type      string                  `json:"type"`
	Method    string                  `json:"method"`
	Imatrix   string                  `json:"imatrix,omitempty"`
	Params    int64                   `json:"params"`
	FileBytes int64                   `json:"file_bytes"`
	BPW       float64                 `json:"bits_per_weight"` // file bytes × 8 / parameters
	Seconds   float64                 `json:"seconds"`
	Tensors   []compress.TensorReport `json:"tensors"`
}

func runCompress(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compress", stderr)
	mf := addModelFlags(fs)
	out := fs.String("out", "", "output GGUF file (required)")
	typ := fs.String("type", "Q4_K_M", "llama.cpp preset: "+compress.PresetNames())
	method := fs.String("method", compress.MethodRTN, "rtn: llama.cpp's importance-weighted block quantizer; gptq: GPTQ onto the same block grids (needs --calib); "+
		"kmeans, vq, rvq, pq: learned codebooks, written as a native .terse file")
	bits := fs.Int("bits", 4, "kmeans: code bits per weight; vq/rvq/pq: code bits per sub-vector and stage")
	group := fs.Int("group", 256, "kmeans: columns sharing a codebook (0: the whole row)")
	vqDim := fs.Int("vq-dim", 2, "vq/rvq/pq: sub-vector length")
	segments := fs.Int("segments", 2, "pq: codebooks per row (column segments)")
	refine := fs.Int("refine", 0, "vq/rvq/pq: rounds of Hessian-aware codebook and code refinement (needs --calib)")
	kmeansGPTQ := fs.Bool("kmeans-gptq", false, "kmeans: GPTQ error feedback over the learned grid (needs --calib)")
	imatrix := fs.String("imatrix", "", "llama.cpp imatrix.dat to weight the quantization error")
	calibFile := fs.String("calib", "", "calibration text: computes the importance matrix (and, for gptq, the Hessians)")
	calibCtx := fs.Int("calib-ctx", 512, "calibration chunk length in tokens")
	calibChunks := fs.Int("calib-chunks", 0, "use at most this many calibration chunks (0: all)")
	saveImatrix := fs.String("save-imatrix", "", "write the importance matrix computed from --calib as llama.cpp's imatrix.dat")
	var overrides multiFlag
	fs.Var(&overrides, "override", "PATTERN=TYPE: force the type of tensors whose name matches the regular expression (repeatable)")
	damp := fs.Float64("damp", 0.1, "GPTQ: Hessian damping as a fraction of its mean diagonal (0.1 measured best at Q2_K and equal at Q3_K_M/Q4_K_M on pdtext)")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	quiet := fs.Bool("quiet", false, "no progress bar")
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	preset, ok := compress.Presets[strings.ToUpper(*typ)]
	if !ok {
		return usagef("unknown --type %q (presets: %s)", *typ, compress.PresetNames())
	}
	codebook := false
	switch *method {
	case compress.MethodRTN, compress.MethodGPTQ:
	case "kmeans", "vq", "rvq", "pq":
		codebook = true
	default:
		return usagef("unknown --method %q (rtn, gptq, kmeans, vq, rvq or pq)", *method)
	}
	needH := *method == compress.MethodGPTQ || (*method == "kmeans" && *kmeansGPTQ) || (codebook && *method != "kmeans" && *refine > 0)
	if needH && *calibFile == "" {
		return usagef("--method %s with these settings needs --calib text to measure the layers' inputs", *method)
	}
	var ovs []compress.Override
	for _, s := range overrides {
		o, err := compress.ParseOverride(s)
		if err != nil {
			return usageError{err.Error()}
		}
		ovs = append(ovs, o)
	}
	kernel.SetThreads(*threads)
	progressW := stderr
	if *quiet {
		progressW = nil
	}
	start := time.Now()

	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	m := ck.Model

	// Statistics: an imatrix file, a calibration run, or both.
	var imat *calib.IMatrix
	if *imatrix != "" {
		if imat, err = calib.ReadIMatrixFile(*imatrix); err != nil {
			return err
		}
	}
	var col *calib.Collector
	if *calibFile != "" {
		text, err := os.ReadFile(*calibFile)
		if err != nil {
			return err
		}
		col = &calib.Collector{}
		if needH {
			col.Hessians = func(string) bool { return true }
		}
		tokens := ck.Tokenizer.Encode(string(text), true)
		if n := *calibChunks * *calibCtx; n > 0 && n < len(tokens) {
			tokens = tokens[:n]
		}
		total := int64(len(tokens) / *calibCtx)
		bar := progress.New(progressW, total, "calibrate", "chunks")
		err = calib.Run(m, tokens, *calibCtx, col, func(done, _ int) { bar.Add(1) })
		bar.Finish()
		if err == nil {
			err = col.Err()
		}
		if err != nil {
			return fmt.Errorf("calibration on %s: %w", *calibFile, err)
		}
		if *saveImatrix != "" {
			im, err := col.IMatrix(*calibCtx, *calibFile)
			if err != nil {
				return err
			}
			if err := im.WriteFile(*saveImatrix); err != nil {
				return err
			}
		}
	}
	var embImp []float32
	if *method == compress.MethodGPTQ && !m.Config.TiedEmbeddings {
		// terse's own recipe; --method rtn stays llama.cpp's exactly.
		embImp = compress.EmbeddingImportance(m.Weights)
	}
	stats := func(name string) *quant.Stats {
		if name == "token_embd.weight" && embImp != nil && (imat == nil || imat.Importance(name) == nil) {
			return &quant.Stats{Importance: embImp}
		}
		var s *quant.Stats
		if col != nil {
			s = col.Stats(name)
		}
		if imat != nil {
			if v := imat.Importance(name); v != nil {
				if s == nil {
					s = &quant.Stats{}
				}
				s.Importance = v
			}
		}
		return s
	}

	if codebook {
		opt := pack.Options{Method: *method, Stats: stats,
			KMeans: kmeans.Config{Bits: *bits, GroupSize: *group, GPTQ: *kmeansGPTQ},
			VQ:     vq.Config{Dim: *vqDim, CodeBits: *bits, Refine: *refine}}
		switch *method {
		case "rvq":
			opt.VQ.Stages = 2
		case "pq":
			opt.VQ.Segments = *segments
		}
		rep, err := pack.Compress(ck, *out, opt)
		if err != nil {
			return err
		}
		res := struct {
			Model   string  `json:"model"`
			Out     string  `json:"out"`
			Method  string  `json:"method"`
			Seconds float64 `json:"seconds"`
			*pack.Report
		}{ck.Path, *out, *method, time.Since(start).Seconds(), rep}
		if *jsonOut {
			return writeJSON(stdout, res)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "tensor\tmethod\tbits/w\tseconds\t")
		for _, r := range rep.Tensors {
			fmt.Fprintf(tw, "%s\t%s\t%.3f\t%.2f\t\n", r.Name, r.Method, r.BitsPerWeight, r.Seconds)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nwrote %s (%s): %d bytes, %.3f bits/weight over the compressed matrices, %.1f s\n",
			*out, *method, rep.FileBytes, rep.BitsPerWeight, res.Seconds)
		return nil
	}

	plan := compress.MakePlan(&m.Config, m.Weights, preset, imat != nil || col != nil, ovs)
	ts, err := convert.Tensors(ck, convert.Options{})
	if err != nil {
		return err
	}
	qts, reports, err := compress.Quantize(ts, compress.Options{Plan: plan, Method: *method, Stats: stats,
		GPTQ: gptqFunc(*damp), Progress: progressW})
	if err != nil {
		return err
	}
	ft := convert.FileType(preset.FileType)
	if err := convert.Write(*out, ck, qts, convert.Options{FileType: &ft}); err != nil {
		return err
	}
	st, err := os.Stat(*out)
	if err != nil {
		return err
	}
	res := compressResult{Model: ck.Path, Out: *out, Type: preset.Name, Method: *method, Imatrix: *imatrix,
		Params: m.NumParams(), FileBytes: st.Size(), Seconds: time.Since(start).Seconds(), Tensors: reports}
	res.BPW = float64(res.FileBytes) * 8 / float64(res.Params)
	if *jsonOut {
		return writeJSON(stdout, res)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\tfrom\tto\tbits/w\tmethod\timportance\t")
	for _, r := range reports {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.2f\t%s\t%v\t\n", r.Name, r.From, r.Type, r.BPW, r.Method, r.Importance)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s: %s (%s), %d bytes, %.3f bits/weight, %.1f s\n",
		res.Out, res.Type, res.Method, res.FileBytes, res.BPW, res.Seconds)
	return nil
}

// gptqFunc runs GPTQ onto a ggml block grid (the scales of each block are
// chosen by llama.cpp's own search on the error-compensated weights).
func gptqFunc(damp float64) compress.GPTQFunc {
	return func(dt tensor.DType, w []float32, rows, cols int, stats *quant.Stats) ([]byte, error) {
		return gptqggml.QuantizeMatrix(dt, w, rows, cols, stats, gptq.Config{Damp: damp})
	}
}
