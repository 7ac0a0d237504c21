package codec

import (
	"fmt"
	"math"
)

// StepVersion is the format version of a step plane, its first byte.
const StepVersion = 1

// Bounds of a step plane's bin.
const (
	minStep = 0x1p-40
	maxStep = 0x1p40
)

// AppendStepPlane codes x[t*stride+c] for t < n, c < width as a step
// plane and appends it to dst: every channel is predicted from its mean
// over the n tokens (stored in eighths of a bin) and quantized with the
// one bin step, the caller's (a transform coder sets it from its
// reverse water-filling: a channel whose spread is well under step codes
// to zeros at about 0.02 bits each). Each channel's differences are coded
// under the parametric model that costs them the fewest bits, as in a
// mean plane (see the package doc, "Step planes"). Every decoded value is
// within half a bin of x (up to float32 rounding). It fails on a value
// that is not finite, a step outside 2^−40…2^40, or a value more than
// 2^24 bins from its channel's mean.
func (p *PlaneCoder) AppendStepPlane(dst []byte, x []float32, n, width, stride int, step float32) ([]byte, error) {
	if n < 0 || width < 1 || stride < width || len(x) < max(0, (n-1)*stride+width) || !(step >= minStep && step <= maxStep) {
		return nil, fmt.Errorf("codec: step plane of %d×%d (stride %d, bin %g) over %d floats", n, width, stride, step, len(x))
	}
	means := make([]float64, width)
	for c := range means {
		var sum float64
		for t := 0; t < n; t++ {
			v := float64(x[t*stride+c])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("codec: step plane: token %d channel %d: %v is not finite", t, c, v)
			}
			sum += v
		}
		means[c] = sum / float64(max(n, 1))
	}
	out, err := p.pc.appendMeansModels(append(dst, StepVersion), x, n, width, stride, step, means)
	if err != nil {
		return nil, fmt.Errorf("codec: step plane: %w", err)
	}
	return out, nil
}

// DecodeStepPlane decodes a step plane that AppendStepPlane wrote with
// the same n, width and step into dst[t*stride+c]. A malformed plane is
// an error wrapping ErrCorrupt, a plane of another version an error.
func DecodeStepPlane(src []byte, n, width int, step float32, dst []float32, stride int) error {
	if n < 0 || width < 1 || stride < width || len(dst) < max(0, (n-1)*stride+width) || !(step >= minStep && step <= maxStep) {
		return fmt.Errorf("codec: step plane of %d×%d (stride %d, bin %g) into %d floats", n, width, stride, step, len(dst))
	}
	if len(src) < 1 {
		return fmt.Errorf("codec: step plane: empty: %w", ErrCorrupt)
	}
	if src[0] != StepVersion {
		return fmt.Errorf("codec: step plane format version %d, this build reads version %d", src[0], StepVersion)
	}
	if err := decodeMeansModels(src[1:], n, width, step, dst, stride); err != nil {
		return fmt.Errorf("codec: step %w", err)
	}
	return nil
}

// StaticVersion is the format version of a static plane, its first byte.
const StaticVersion = 1

// ModelCode is the code of the parametric model (see the package doc,
// "Static planes") nearest a spread of spread bins: a discretized
// Gaussian of that standard deviation with gaussian, else a discretized
// Laplace distribution of that mean absolute value. Spreads beyond the
// codes' range take the nearest end.
func ModelCode(spread float64, gaussian bool) byte {
	c := 0
	if spread > 0 {
		c = int(math.Round(8*math.Log2(spread))) + spreadBias
	}
	c = min(max(c, 0), 127)
	if gaussian {
		c |= 128
	}
	return byte(c)
}

// AppendStaticPlane codes x[t*stride+c] for t < n, c < width as a static
// plane and appends it to dst: every value is quantized with the one bin
// step around 0 and coded under its channel's model code codes[c]
// (ModelCode), both constants of the caller, so the plane holds no side
// information but its stream's length. A transform coder whose
// coordinates are centred and whose spreads were fitted on calibration
// text codes small planes (a few tokens) this way at almost no overhead.
// Every decoded value is within half a bin of x (up to float32
// rounding). It fails on a value that is not finite, a step outside
// 2^−40…2^40, or a value more than 2^24 bins from 0.
func (p *PlaneCoder) AppendStaticPlane(dst []byte, x []float32, n, width, stride int, step float32, codes []byte) ([]byte, error) {
	if n < 0 || width < 1 || stride < width || len(x) < max(0, (n-1)*stride+width) || !(step >= minStep && step <= maxStep) || len(codes) != width {
		return nil, fmt.Errorf("codec: static plane of %d×%d (stride %d, bin %g, %d model codes) over %d floats", n, width, stride, step, len(codes), len(x))
	}
	pc := &p.pc
	if cap(pc.q) < n*width {
		pc.q = make([]int64, n*width)
	}
	q := pc.q[:n*width] // channel-major
	for t := 0; t < n; t++ {
		for c := 0; c < width; c++ {
			v := float64(x[t*stride+c])
			qt := math.Round(v / float64(step))
			if !(math.Abs(qt) < maxQ) { // also NaN and ±Inf
				return nil, fmt.Errorf("codec: static plane: token %d channel %d: %v is not within %d bins of %g", t, c, v, maxQ, step)
			}
			q[c*n+t] = int64(qt)
		}
	}
	out, err := pc.appendModelled(append(dst, StaticVersion), q, n, width, codes)
	if err != nil {
		return nil, fmt.Errorf("codec: static plane: %w", err)
	}
	return out, nil
}

// DecodeStaticPlane decodes a static plane that AppendStaticPlane wrote
// with the same n, width, step and model codes into dst[t*stride+c]. A
// malformed plane is an error wrapping ErrCorrupt, a plane of another
// version an error.
func DecodeStaticPlane(src []byte, n, width int, step float32, codes []byte, dst []float32, stride int) error {
	if n < 0 || width < 1 || stride < width || len(dst) < max(0, (n-1)*stride+width) || !(step >= minStep && step <= maxStep) || len(codes) != width {
		return fmt.Errorf("codec: static plane of %d×%d (stride %d, bin %g, %d model codes) into %d floats", n, width, stride, step, len(codes), len(dst))
	}
	if len(src) < 1 {
		return fmt.Errorf("codec: static plane: empty: %w", ErrCorrupt)
	}
	if src[0] != StaticVersion {
		return fmt.Errorf("codec: static plane format version %d, this build reads version %d", src[0], StaticVersion)
	}
	tabs := make([]*Table, width)
	for c, m := range codes {
		tabs[c] = modelTable(m)
	}
	if err := decodeModelled(src[1:], n, width, tabs, make([]float32, width), step, dst, stride); err != nil {
		return fmt.Errorf("codec: static %w", err)
	}
	return nil
}
