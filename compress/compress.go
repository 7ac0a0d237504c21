package compress

import (
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/terse-llm/terse/progress"
	"github.com/terse-llm/terse/quant"
	"github.com/terse-llm/terse/tensor"
)

// QuantizeOptions configure Quantize.
type QuantizeOptions struct {
	// Plan is the target type of every tensor to compress, by name.
	Plan Plan
	// Method compresses the planned tensors whose target is not a float
	// type (nil: RTN).
	Method Method
	// MethodFor, when set, chooses the method of one tensor (a nil answer
	// falls back to Method).
	MethodFor func(name string) Method
	// Stats returns the calibration statistics of a tensor (importance
	// and, for methods that need them, the Hessian), or nil.
	Stats func(name string) *quant.Stats
	// Progress, when set, gets a progress bar.
	Progress io.Writer

	// done holds the tensors Run already compressed layer by layer during
	// calibration; they pass through with their reports.
	done map[string]quantized
	// factors, when set, lets GPTQ share a factor between tensors whose
	// statistics hold the same Hessian slice (one stage's SharedStats).
	factors factorCache
}

// quantized is one tensor compressed ahead of Quantize.
type quantized struct {
	t *tensor.Tensor
	r TensorReport
}

// TensorReport is what happened to one tensor.
type TensorReport struct {
	Name  string `json:"name"`
	From  string `json:"from"` // stored type before
	Type  string `json:"type"` // stored type after ("CODEBOOK" for coded matrices)
	Shape []int  `json:"shape"`
	// Bytes is the stored size after (for coded matrices, codes,
	// codebooks and scales).
	Bytes         int64   `json:"bytes"`
	BitsPerWeight float64 `json:"bits_per_weight"`
	// Method is what was done: a method's name, "copy" (already the
	// target type) or "convert" (to a float type).
	Method     string  `json:"method"`
	Importance bool    `json:"importance"` // importance or Hessian used
	Hessian    bool    `json:"hessian"`    // a Hessian was available
	Seconds    float64 `json:"seconds"`
}

// Quantize converts every tensor of ts that the plan names to its planned
// type and returns the list with those replaced (others, such as norms,
// pass through), with a report on each planned tensor. It stops between
// tensors once ctx is done.
func Quantize(ctx context.Context, ts []*tensor.Tensor, opt QuantizeOptions) ([]*tensor.Tensor, []TensorReport, error) {
	var total int64
	for _, t := range ts {
		if _, ok := opt.Plan[t.Name]; ok && opt.done[t.Name].t == nil {
			total += int64(t.NumElements())
		}
	}
	w := opt.Progress
	if total == 0 {
		w = nil // nothing left to compress: no empty bar
	}
	bar := progress.New(w, total, "compress", "w")
	defer bar.Finish()
	out := make([]*tensor.Tensor, 0, len(ts))
	var reports []TensorReport
	for _, t := range ts {
		dt, ok := opt.Plan[t.Name]
		if !ok {
			out = append(out, t)
			continue
		}
		if q, ok := opt.done[t.Name]; ok {
			out = append(out, q.t)
			reports = append(reports, q.r)
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, nil, fmt.Errorf("compress: stopped before tensor %q: %w", t.Name, err)
		}
		nt, r, err := quantizeTensor(t, dt, opt)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, nt)
		reports = append(reports, r)
		bar.Add(int64(t.NumElements()))
	}
	return out, reports, nil
}

// quantizeTensor converts t to its planned type dt with the method and
// statistics opt gives it.
func quantizeTensor(t *tensor.Tensor, dt tensor.DType, opt QuantizeOptions) (*tensor.Tensor, TensorReport, error) {
	start := time.Now()
	m := opt.Method
	if opt.MethodFor != nil {
		if mm := opt.MethodFor(t.Name); mm != nil {
			m = mm
		}
	}
	if m == nil {
		m = RTN{}
	}
	var stats *quant.Stats
	if opt.Stats != nil && !dt.Float() {
		stats = opt.Stats(t.Name)
	}
	if err := stats.Check(t.Cols()); err != nil {
		return nil, TensorReport{}, fmt.Errorf("compress: tensor %q: %w", t.Name, err)
	}
	nt, how, err := quantizeOne(t, dt, m, stats, opt.factors)
	if err != nil {
		return nil, TensorReport{}, fmt.Errorf("compress: tensor %q to %s with %s: %w", t.Name, dt, m.Name(), err)
	}
	return nt, report(t, nt, how, stats, time.Since(start)), nil
}

func quantizeOne(t *tensor.Tensor, dt tensor.DType, m Method, stats *quant.Stats, factors factorCache) (*tensor.Tensor, string, error) {
	switch {
	case dt == t.DType && t.Decoder == nil:
		return t, "copy", nil
	case dt.Float():
		nt, err := ggmlQuantize(t, dt, nil)
		return nt, "convert", err
	}
	var c *Compressed
	var err error
	switch g := m.(type) {
	case GPTQ:
		c, err = g.compress(t, dt, stats, factors)
	case *GPTQ:
		c, err = g.compress(t, dt, stats, factors)
	default:
		c, err = m.Compress(t, dt, stats)
	}
	if err != nil {
		return nil, "", err
	}
	if c.Tensor == nil || c.Tensor.Name != t.Name || !slices.Equal(c.Tensor.Shape, t.Shape) {
		return nil, "", fmt.Errorf("method %s returned a tensor that does not replace it", m.Name())
	}
	return c.Tensor, c.How, nil
}

func report(t, nt *tensor.Tensor, how string, stats *quant.Stats, d time.Duration) TensorReport {
	n := float64(t.NumElements())
	r := TensorReport{Name: t.Name, From: t.DType.String(), Type: nt.DType.String(),
		Shape: append([]int(nil), t.Shape...), Method: how,
		Importance: stats != nil && (stats.Importance != nil || stats.Hessian != nil),
		Hessian:    stats != nil && stats.Hessian != nil, Seconds: d.Seconds()}
	if nt.Decoder != nil {
		r.BitsPerWeight = nt.Decoder.Bits()
		r.Bytes = int64(math.Ceil(r.BitsPerWeight * n / 8))
	} else {
		r.Bytes = int64(len(nt.Data))
		r.BitsPerWeight = float64(r.Bytes) * 8 / n
	}
	return r
}
