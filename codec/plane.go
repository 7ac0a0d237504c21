package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"slices"
)

// A plane is n tokens × width channels of keys (or of values) of one
// layer: one KV head's, or the whole layer's. It is coded on its own, so
// attention can decode one head of one layer without the rest.

// Symbols: a quantized difference q is zigzag-mapped to z (0, −1, 1, −2,
// … → 0, 1, 2, 3, …). z < directSyms is its own symbol; above, the symbol
// is the bit length of z and the bit below its top, and the remaining
// bits go raw to the plane's bit stream (as JPEG codes magnitude classes).
const (
	directSyms = 16
	maxQ       = 1 << 24 // |q| bound: float32(q) is exact below it
	maxSym     = directSyms + 2*(26-5) + 1
)

// Scale exponents: a channel's scale is (1 + (e&7)/8) · 2^(e>>3 − 16),
// e = 0…255, exact in float32.
func scaleOf(e byte) float32 {
	return float32(math.Ldexp(1+float64(e&7)/8, int(e>>3)-16))
}

// scaleCode is the exponent whose scale is nearest to s (in ratio).
func scaleCode(s float64) byte {
	if !(s > 0) {
		return 0
	}
	best, bestErr := byte(0), math.Inf(1)
	fe := math.Floor(math.Log2(s))
	for _, c := range []float64{fe - 1, fe, fe + 1} {
		for m := 0; m < 8; m++ {
			e := (int(c)+16)<<3 | m
			if e < 0 || e > 255 {
				continue
			}
			d := math.Abs(math.Log(float64(scaleOf(byte(e))) / s))
			if d < bestErr {
				best, bestErr = byte(e), d
			}
		}
	}
	if bestErr == math.Inf(1) { // beyond the range
		if s > 1 {
			return 255
		}
		return 0
	}
	return best
}

func zigzag(q int64) uint64 { return uint64(q<<1) ^ uint64(q>>63) }

func unzigzag(z uint64) int64 { return int64(z>>1) ^ -int64(z&1) }

// symbolOf splits z into its symbol and raw extra bits.
func symbolOf(z uint64) (sym int, extra uint64, nextra uint) {
	if z < directSyms {
		return int(z), 0, 0
	}
	n := uint(bits.Len64(z)) // ≥ 5
	return directSyms + 2*int(n-5) + int(z>>(n-2)&1), z & (1<<(n-2) - 1), n - 2
}

// planeCoder holds the working buffers of coding planes.
type planeCoder struct {
	q      []int64 // quantized differences, token-major
	counts [2][maxSym]uint64
	enc    Encoder
	bw     bitWriter
}

// appendPlane quantizes and codes the plane x[t*stride+c], t < n, c <
// width, with bins mult × each channel's scale, and appends it to dst.
// With group > 0 the first token of every group is an anchor; with group
// 0 every token is predicted from its channel's mean, rounded to the bin
// grid and stored after the scales.
func (pc *planeCoder) appendPlane(dst []byte, x []float32, n, width, stride int, mult float32, group int) ([]byte, error) {
	if group == 0 {
		return pc.appendMeanPlane(dst, x, n, width, stride, mult)
	}
	// Per-channel scales: the standard deviation over the plane's tokens,
	// floored at 2^-10 of the channel's largest magnitude.
	scales := make([]float32, width)
	means := make([]float64, width)
	for c := 0; c < width; c++ {
		var sum, sq, amax float64
		for t := 0; t < n; t++ {
			v := float64(x[t*stride+c])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("token %d channel %d: %v is not finite", t, c, v)
			}
			sum += v
			amax = max(amax, math.Abs(v))
		}
		mean := sum / float64(max(n, 1))
		means[c] = mean
		for t := 0; t < n; t++ {
			d := float64(x[t*stride+c]) - mean
			sq += d * d
		}
		s := max(math.Sqrt(sq/float64(n)), amax/1024)
		e := scaleCode(s)
		dst = append(dst, e)
		scales[c] = scaleOf(e)
	}
	// Closed-loop prediction: each anchor from the previous anchor as
	// decoded, the other tokens of a group from their anchor as decoded.
	pc.q = pc.q[:0]
	pc.counts = [2][maxSym]uint64{}
	anchor := make([]float32, width) // decoded anchor, 0 before the first
	if group == 0 {
		for c, m := range means {
			step := mult * scales[c]
			qf := math.Round(m / float64(step))
			if !(math.Abs(qf) < maxQ) {
				return nil, fmt.Errorf("channel %d: mean %g is %g bins of %g, beyond %d", c, m, qf, step, maxQ)
			}
			dst = binary.AppendUvarint(dst, zigzag(int64(qf)))
			anchor[c] = reconstruct(0, int64(qf), step)
		}
	}
	for t := 0; t < n; t++ {
		kind := 1
		if group > 0 && t%group == 0 {
			kind = 0
		}
		for c := 0; c < width; c++ {
			step := mult * scales[c]
			d := float64(x[t*stride+c]) - float64(anchor[c])
			qf := math.Round(d / float64(step))
			if !(math.Abs(qf) < maxQ) {
				return nil, fmt.Errorf("token %d channel %d: %v is %g bins of %g from its prediction, beyond %d", t, c, x[t*stride+c], qf, step, maxQ)
			}
			q := int64(qf)
			if kind == 0 {
				anchor[c] = reconstruct(anchor[c], q, step)
			}
			pc.q = append(pc.q, q)
			s, _, _ := symbolOf(zigzag(q))
			pc.counts[kind][s]++
		}
	}
	var tabs [2]*Table
	for kind := range tabs {
		t, err := NewTable(pc.counts[kind][:])
		if err != nil {
			return nil, err
		}
		tabs[kind] = t
		dst = AppendTable(dst, t)
	}
	pc.enc.Reset()
	pc.bw = bitWriter{buf: pc.bw.buf[:0]}
	for i, q := range pc.q {
		kind := 1
		if group > 0 && i/width%group == 0 {
			kind = 0
		}
		s, extra, ne := symbolOf(zigzag(q))
		if err := pc.enc.Put(tabs[kind], s); err != nil {
			return nil, err
		}
		pc.bw.put(extra, ne)
	}
	stream := pc.enc.Append(nil)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	return append(dst, pc.bw.bytes()...), nil
}

// reconstruct is the decoded value pred + q·step, rounded to float32 at
// each step (no fused multiply-add) so that every machine decodes the
// same bits.
func reconstruct(pred float32, q int64, step float32) float32 {
	return pred + float32(float32(q)*step)
}

// decodePlane decodes a plane written by appendPlane into
// dst[t*stride+c].
func decodePlane(src []byte, n, width int, mult float32, group int, dst []float32, stride int) error {
	if group == 0 {
		return decodeMeanPlane(src, n, width, mult, dst, stride)
	}
	if len(src) < width {
		return fmt.Errorf("plane: %d bytes, %d channel scales: %w", len(src), width, ErrCorrupt)
	}
	scales := make([]float32, width)
	for c := range scales {
		scales[c] = scaleOf(src[c])
	}
	r := bytes.NewReader(src[width:])
	anchor := make([]float32, width)
	if group == 0 {
		for c := range anchor {
			z, err := binary.ReadUvarint(r)
			if err != nil {
				return fmt.Errorf("plane: channel %d mean: %w", c, eofCorrupt(err))
			}
			q := unzigzag(z)
			if q >= maxQ || q <= -maxQ {
				return fmt.Errorf("plane: channel %d: mean of %d bins: %w", c, q, ErrCorrupt)
			}
			anchor[c] = reconstruct(0, q, mult*scales[c])
		}
	}
	var tabs [2]*Table
	for kind := range tabs {
		t, err := ReadTable(r)
		if err != nil {
			return fmt.Errorf("plane: table %d: %w", kind, err)
		}
		if t.Len() > maxSym {
			return fmt.Errorf("plane: table %d of %d symbols, at most %d: %w", kind, t.Len(), maxSym, ErrCorrupt)
		}
		tabs[kind] = t
	}
	sl, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("plane: stream length: %w", eofCorrupt(err))
	}
	if sl > uint64(r.Len()) {
		return fmt.Errorf("plane: stream of %d bytes, %d left: %w", sl, r.Len(), ErrCorrupt)
	}
	rest := src[len(src)-r.Len():]
	sr := bytes.NewReader(rest[:sl])
	br := bitReader{buf: rest[sl:]}
	dec, err := NewDecoder(sr)
	if err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	for t := 0; t < n; t++ {
		kind := 1
		if group > 0 && t%group == 0 {
			kind = 0
		}
		row := dst[t*stride : t*stride+width]
		for c := range row {
			s, err := dec.Get(tabs[kind])
			if err != nil {
				return fmt.Errorf("plane: token %d channel %d: %w", t, c, err)
			}
			z := uint64(s)
			if s >= directSyms {
				k := s - directSyms
				nb := uint(k/2 + 5)
				extra, err := br.get(nb - 2)
				if err != nil {
					return fmt.Errorf("plane: token %d channel %d: %w", t, c, err)
				}
				z = (2|uint64(k&1))<<(nb-2) | extra
			}
			q := unzigzag(z)
			if q >= maxQ || q <= -maxQ {
				return fmt.Errorf("plane: token %d channel %d: difference of %d bins: %w", t, c, q, ErrCorrupt)
			}
			v := reconstruct(anchor[c], q, mult*scales[c])
			if kind == 0 {
				anchor[c] = v
			}
			row[c] = v
		}
	}
	if err := dec.Close(); err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	if sr.Len() != 0 {
		return fmt.Errorf("plane: %d stream bytes unread: %w", sr.Len(), ErrCorrupt)
	}
	if err := br.done(); err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	return nil
}

// meanSteps is the resolution of a mean plane's channel means: eighths
// of a bin, so that a channel narrower than a bin is not pushed off its
// centre (which would cost it a bit per element).
const meanSteps = 8

// appendMeanPlane codes a plane predicted from channel means (group 0):
// one bin for the whole plane, mult × the plane's scale (the root mean
// square of every channel's deviation from its mean, floored so the
// plane's largest magnitude is within 2^22 bins), so that bits go where
// the variance is; per channel its mean in eighths of a bin and a model
// code; one rANS stream under each channel's model.
func (pc *planeCoder) appendMeanPlane(dst []byte, x []float32, n, width, stride int, mult float32) ([]byte, error) {
	means, vars := make([]float64, width), make([]float64, width)
	var amax float64
	for c := 0; c < width; c++ {
		var sum, ss float64
		for t := 0; t < n; t++ {
			v := float64(x[t*stride+c])
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, fmt.Errorf("token %d channel %d: %v is not finite", t, c, v)
			}
			sum += v
			amax = max(amax, math.Abs(v))
		}
		means[c] = sum / float64(max(n, 1))
		for t := 0; t < n; t++ {
			d := float64(x[t*stride+c]) - means[c]
			ss += d * d
		}
		vars[c] = ss / float64(max(n, 1))
	}
	e := scaleCode(max(planeScale(vars), amax/(float64(mult)*(1<<22))))
	dst = append(dst, e)
	return pc.appendMeansModels(dst, x, n, width, stride, mult*scaleOf(e), means)
}

// appendMeansModels codes the plane x with one bin, step: per channel its
// mean (means[c], the mean of its n tokens) in eighths of a bin, then
// its model code, then the rANS stream and the raw bits.
func (pc *planeCoder) appendMeansModels(dst []byte, x []float32, n, width, stride int, step float32, means []float64) ([]byte, error) {
	fine := step / meanSteps
	if cap(pc.q) < n*width {
		pc.q = make([]int64, n*width)
	}
	q := pc.q[:n*width] // channel-major here
	syms := make([]uint8, n)
	codes := make([]byte, width)
	for c := 0; c < width; c++ {
		qf := math.Round(means[c] / float64(fine))
		if !(math.Abs(qf) < meanSteps*maxQ) {
			return nil, fmt.Errorf("channel %d: mean %g is %g bins of %g, beyond %d", c, means[c], qf, fine, meanSteps*maxQ)
		}
		dst = binary.AppendUvarint(dst, zigzag(int64(qf)))
		mu := reconstruct(0, int64(qf), fine)
		var sa, s2 float64
		for t := 0; t < n; t++ {
			d := float64(x[t*stride+c]) - float64(mu)
			qt := math.Round(d / float64(step))
			if !(math.Abs(qt) < maxQ) {
				return nil, fmt.Errorf("token %d channel %d: %v is %g bins of %g from its prediction, beyond %d", t, c, x[t*stride+c], qt, step, maxQ)
			}
			q[c*n+t] = int64(qt)
			s, _, _ := symbolOf(zigzag(int64(qt)))
			syms[t] = uint8(s)
			sa += math.Abs(qt)
			s2 += qt * qt
		}
		codes[c] = chooseModel(syms, sa/float64(max(n, 1)), math.Sqrt(s2/float64(max(n, 1))))
	}
	dst = append(dst, codes...)
	return pc.appendModelled(dst, q, n, width, codes)
}

// appendModelled appends the rANS stream of the quantized differences q
// (channel-major, n per channel), token-major, each under its channel's
// model code, after its length, and then the raw bits of large symbols.
func (pc *planeCoder) appendModelled(dst []byte, q []int64, n, width int, codes []byte) ([]byte, error) {
	pc.enc.Reset()
	pc.bw = bitWriter{buf: pc.bw.buf[:0]}
	for t := 0; t < n; t++ {
		for c := 0; c < width; c++ {
			s, extra, ne := symbolOf(zigzag(q[c*n+t]))
			if err := pc.enc.Put(modelTable(codes[c]), s); err != nil {
				return nil, err
			}
			pc.bw.put(extra, ne)
		}
	}
	stream := pc.enc.Append(nil)
	dst = binary.AppendUvarint(dst, uint64(len(stream)))
	dst = append(dst, stream...)
	return append(dst, pc.bw.bytes()...), nil
}

// planeScale is the root mean square of the channels' deviations, each
// channel's variance clipped at 16 times the median channel's, so that a
// channel with a spike does not coarsen the bins of every other.
func planeScale(vars []float64) float64 {
	if len(vars) == 0 {
		return 0
	}
	s := slices.Clone(vars)
	slices.Sort(s)
	med, sum := s[len(s)/2], 0.0
	for _, v := range s {
		sum += min(v, 16*med)
	}
	return math.Sqrt(sum / float64(len(s)))
}

// decodeMeanPlane decodes a plane written by appendMeanPlane into
// dst[t*stride+c].
func decodeMeanPlane(src []byte, n, width int, mult float32, dst []float32, stride int) error {
	if len(src) < 1 {
		return fmt.Errorf("plane: no scale: %w", ErrCorrupt)
	}
	return decodeMeansModels(src[1:], n, width, mult*scaleOf(src[0]), dst, stride)
}

// decodeMeansModels decodes what appendMeansModels wrote with bin step
// into dst[t*stride+c].
func decodeMeansModels(src []byte, n, width int, step float32, dst []float32, stride int) error {
	fine := step / meanSteps
	r := bytes.NewReader(src)
	means := make([]float32, width)
	for c := range means {
		z, err := binary.ReadUvarint(r)
		if err != nil {
			return fmt.Errorf("plane: channel %d mean: %w", c, eofCorrupt(err))
		}
		q := unzigzag(z)
		if q >= meanSteps*maxQ || q <= -meanSteps*maxQ {
			return fmt.Errorf("plane: channel %d: mean of %d eighths of a bin: %w", c, q, ErrCorrupt)
		}
		means[c] = reconstruct(0, q, fine)
	}
	tabs := make([]*Table, width)
	for c := range tabs {
		m, err := r.ReadByte()
		if err != nil {
			return fmt.Errorf("plane: channel %d model: %w", c, eofCorrupt(err))
		}
		tabs[c] = modelTable(m)
	}
	return decodeModelled(src[len(src)-r.Len():], n, width, tabs, means, step, dst, stride)
}

// decodeModelled decodes what appendModelled wrote (from its stream
// length on) into dst[t*stride+c] = means[c] + q·step.
func decodeModelled(src []byte, n, width int, tabs []*Table, means []float32, step float32, dst []float32, stride int) error {
	r := bytes.NewReader(src)
	sl, err := binary.ReadUvarint(r)
	if err != nil {
		return fmt.Errorf("plane: stream length: %w", eofCorrupt(err))
	}
	if sl > uint64(r.Len()) {
		return fmt.Errorf("plane: stream of %d bytes, %d left: %w", sl, r.Len(), ErrCorrupt)
	}
	rest := src[len(src)-r.Len():]
	sr := bytes.NewReader(rest[:sl])
	br := bitReader{buf: rest[sl:]}
	dec, err := NewDecoder(sr)
	if err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	for t := 0; t < n; t++ {
		row := dst[t*stride : t*stride+width]
		for c := range row {
			s, err := dec.Get(tabs[c])
			if err != nil {
				return fmt.Errorf("plane: token %d channel %d: %w", t, c, err)
			}
			z := uint64(s)
			if s >= directSyms {
				k := s - directSyms
				nb := uint(k/2 + 5)
				extra, err := br.get(nb - 2)
				if err != nil {
					return fmt.Errorf("plane: token %d channel %d: %w", t, c, err)
				}
				z = (2|uint64(k&1))<<(nb-2) | extra
			}
			q := unzigzag(z)
			if q >= maxQ || q <= -maxQ {
				return fmt.Errorf("plane: token %d channel %d: difference of %d bins: %w", t, c, q, ErrCorrupt)
			}
			row[c] = reconstruct(means[c], q, step)
		}
	}
	if err := dec.Close(); err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	if sr.Len() != 0 {
		return fmt.Errorf("plane: %d stream bytes unread: %w", sr.Len(), ErrCorrupt)
	}
	if err := br.done(); err != nil {
		return fmt.Errorf("plane: %w", err)
	}
	return nil
}
