package compress

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/progress"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/tensor"
)

// Methods a tensor can be quantized with.
const (
	// MethodRTN is llama.cpp's quantizer: per block, a search over scales
	// that minimises the importance-weighted squared error of rounding.
	MethodRTN = "rtn"
	// MethodGPTQ quantizes column by column onto the same block grids,
	// spreading each column's error over the columns not yet quantized
	// through the inverse Hessian of the layer's inputs.
	MethodGPTQ = "gptq"
)

// GPTQFunc quantizes one matrix (rows×cols float32, row-major) to type dt
// with GPTQ given its statistics, returning the ggml bytes.
type GPTQFunc func(dt tensor.DType, w []float32, rows, cols int, stats *quant.Stats) ([]byte, error)

// Options configure Quantize.
type Options struct {
	Plan   Plan
	Method string
	// Stats returns the calibration statistics of a tensor (importance
	// and, for GPTQ, the Hessian), or nil.
	Stats func(name string) *quant.Stats
	// GPTQ runs GPTQ for MethodGPTQ.
	GPTQ GPTQFunc
	// Progress, when set, gets a progress bar.
	Progress io.Writer
}

// TensorReport is what happened to one tensor.
type TensorReport struct {
	Name       string  `json:"name"`
	From       string  `json:"from"`
	Type       string  `json:"type"`
	Shape      []int   `json:"shape"`
	Bytes      int     `json:"bytes"`
	BPW        float64 `json:"bits_per_weight"`
	Method     string  `json:"method"`
	Importance bool    `json:"importance"`
	Seconds    float64 `json:"seconds"`
}

// Quantize converts every tensor the plan names to its planned type and
// returns the list with those replaced (others, such as norms, pass
// through), with a report on each planned tensor.
func Quantize(ts []*tensor.Tensor, opt Options) ([]*tensor.Tensor, []TensorReport, error) {
	var total int64
	for _, t := range ts {
		if _, ok := opt.Plan[t.Name]; ok {
			total += int64(t.NumElements())
		}
	}
	bar := progress.New(opt.Progress, total, "compress", "w")
	defer bar.Finish()
	out := make([]*tensor.Tensor, 0, len(ts))
	var reports []TensorReport
	for _, t := range ts {
		dt, ok := opt.Plan[t.Name]
		if !ok {
			out = append(out, t)
			continue
		}
		start := time.Now()
		var stats *quant.Stats
		if opt.Stats != nil && dt.Quantized() {
			stats = opt.Stats(t.Name)
		}
		nt, method, err := quantizeOne(t, dt, opt, stats)
		if err != nil {
			return nil, nil, fmt.Errorf("compress: tensor %q to %s: %w", t.Name, dt, err)
		}
		out = append(out, nt)
		reports = append(reports, TensorReport{Name: t.Name, From: t.DType.String(), Type: dt.String(),
			Shape: t.Shape, Bytes: len(nt.Data), BPW: float64(len(nt.Data)) * 8 / float64(t.NumElements()),
			Method: method, Importance: stats != nil && (stats.Importance != nil || stats.Hessian != nil),
			Seconds: time.Since(start).Seconds()})
		bar.Add(int64(t.NumElements()))
	}
	return out, reports, nil
}

func quantizeOne(t *tensor.Tensor, dt tensor.DType, opt Options, stats *quant.Stats) (*tensor.Tensor, string, error) {
	if dt == t.DType {
		return t, "copy", nil
	}
	rows, cols := t.Rows(), t.Cols()
	src, err := ggml.DequantizeTensor(t)
	if err != nil {
		return nil, "", err
	}
	rb, err := dt.RowBytes(cols)
	if err != nil {
		return nil, "", err
	}
	nt := &tensor.Tensor{Name: t.Name, DType: dt, Shape: append([]int(nil), t.Shape...)}
	if opt.Method == MethodGPTQ && dt.Quantized() && stats != nil && stats.Hessian != nil && opt.GPTQ != nil {
		if nt.Data, err = opt.GPTQ(dt, src, rows, cols, stats); err != nil {
			return nil, "", err
		}
		return nt, MethodGPTQ, nil
	}
	var imp []float32
	if stats != nil {
		imp = stats.Importance
	}
	nt.Data = make([]byte, rows*rb)
	var mu sync.Mutex
	var firstErr error
	kernel.Parallel(rows, func(lo, hi int) {
		if err := ggml.Quantize(dt, src[lo*cols:hi*cols], nt.Data[lo*rb:hi*rb], imp); err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = err
			}
			mu.Unlock()
		}
	})
	if firstErr != nil {
		return nil, "", firstErr
	}
	if !dt.Quantized() {
		return nt, "convert", nil
	}
	return nt, MethodRTN, nil
}
