package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"

	"github.com/terse-llm/terse/model"
)

// Format constants.
const (
	// Magic opens every stream.
	Magic = "TKVC"
	// Version is the format version this package writes and reads.
	Version = 2
)

// Defaults of Options.
const (
	// DefaultBits is the quality a zero Options.Bits means: on
	// pdtext-llama-28m (llama.cpp protocol, 20 windows of 512) a cache
	// of it diverges a little less than a q8_0 cache (KLD 0.0000520
	// against 0.0000549) in 0.83× its bytes (7.09 bits per element).
	DefaultBits = 7.5
	// DefaultEarlyBits is the extra precision a zero Options.EarlyBits
	// means: layer l's values get 2^−l of it, its keys a quarter of that.
	DefaultEarlyBits = 1.5
	// DefaultGroup is the anchor group a zero Options.Group means with
	// PredictAnchor.
	DefaultGroup = 16
)

// Predict is how a token's keys and values are predicted before the
// difference is quantized.
type Predict int

const (
	// PredictMean predicts every token from its channel's mean over the
	// block (rounded to the bin grid, stored per channel).
	PredictMean Predict = iota
	// PredictAnchor is CacheGen's token-wise delta: the first token of a
	// group of Group tokens (the anchor) is predicted from the previous
	// anchor, the others from their group's anchor.
	PredictAnchor
)

// Limits a stream must keep within.
const (
	maxLayers = 1 << 12
	maxWidth  = 1 << 20
	maxLen    = 1 << 24
	// maxPerByte bounds the elements a stream decodes to per byte of
	// stream, so that a forged header cannot ask for unbounded memory.
	maxPerByte = 1 << 12
)

// Options are the encoder's choices; the zero value is the default.
type Options struct {
	// Bits is the quality: a bin is 2^(3−Bits) of the plane's scale (with
	// PredictMean; of each channel's with PredictAnchor), so that ±4
	// deviations span 2^Bits bins. It may be fractional; 1 ≤ Bits ≤ 12.
	// 0 means DefaultBits.
	Bits float64
	// EarlyBits is added to Bits of layer l's values times 2^−l, and a
	// quarter of that to its keys: earlier layers get finer bins, as in
	// CacheGen, most of all the first layers' values, whose errors cost
	// the most divergence (on pdtext-llama-28m, at equal relative bins,
	// layer 0's values 10×, layer 1's 3.5× a later layer's). Negative
	// means none; 0 means DefaultEarlyBits.
	EarlyBits float64
	// KeyBits and ValueBits are added to the bits of keys and of values
	// (within ±8; with EarlyBits the sum must stay in 1…16, where every
	// value is within 2^24 bins of its prediction).
	KeyBits, ValueBits float64
	// Predict chooses the predictor (default PredictMean).
	Predict Predict
	// Group is the number of tokens per anchor group with PredictAnchor
	// (0: DefaultGroup); PredictMean ignores it.
	Group int
	// PlaneWidth is the number of channels coded together, with their own
	// probability tables: a KV head's width, so attention can decode one
	// head alone. It must divide every layer's KV width; 0 means the
	// whole layer.
	PlaneWidth int
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Bits == 0 {
		o.Bits = DefaultBits
	}
	if o.EarlyBits == 0 {
		o.EarlyBits = DefaultEarlyBits
	}
	o.EarlyBits = max(o.EarlyBits, 0)
	switch o.Predict {
	case PredictMean:
		o.Group = 0
	case PredictAnchor:
		if o.Group == 0 {
			o.Group = DefaultGroup
		}
	default:
		return o, fmt.Errorf("codec: predictor %d", o.Predict)
	}
	if !(o.Bits >= 1 && o.Bits <= 12) || o.EarlyBits > 8 || !(math.Abs(o.KeyBits) <= 8) || !(math.Abs(o.ValueBits) <= 8) ||
		o.Bits+min(o.KeyBits, o.ValueBits) < 1 || o.Bits+o.EarlyBits+max(o.KeyBits, o.ValueBits) > 16 {
		return o, fmt.Errorf("codec: %g bits, %g early bits, keys %+g, values %+g: want 1 ≤ bits ≤ 12, early bits ≤ 8, offsets within ±8, and 1…16 bits in all", o.Bits, o.EarlyBits, o.KeyBits, o.ValueBits)
	}
	if o.Group < 0 || o.Group > maxLen || o.PlaneWidth < 0 || o.PlaneWidth > maxWidth {
		return o, fmt.Errorf("codec: group %d, plane width %d", o.Group, o.PlaneWidth)
	}
	return o, nil
}

// Bins returns the bin multipliers (bin = multiplier × channel scale) of
// the keys and values of layer of layers under o, with o's defaults.
func (o Options) Bins(layer, layers int) (k, v float32, err error) {
	if o, err = o.withDefaults(); err != nil {
		return 0, 0, err
	}
	e := o.EarlyBits * math.Exp2(-float64(layer))
	return float32(math.Exp2(3 - o.Bits - e/4 - o.KeyBits)), float32(math.Exp2(3 - o.Bits - e - o.ValueBits)), nil
}

// PlaneCoder codes planes: n tokens × width channels of one layer's keys
// or values, the unit a stream's sections are made of. A KV cache that
// keeps its blocks coded uses it directly. Its buffers are reused from
// call to call; it is not safe for concurrent use.
type PlaneCoder struct{ pc planeCoder }

// AppendPlane codes x[t*stride+c] for t < n, c < width with bins of
// mult × each channel's scale, and appends the plane to dst. Group > 0
// predicts with anchors every group tokens (PredictAnchor); group 0 from
// channel means (PredictMean). Every decoded value is within half a bin of x (up to
// float32 rounding). It fails on a value that is not finite.
func (p *PlaneCoder) AppendPlane(dst []byte, x []float32, n, width, stride int, mult float32, group int) ([]byte, error) {
	if n < 0 || width < 1 || stride < width || group < 0 || len(x) < max(0, (n-1)*stride+width) || !(mult > 0) {
		return nil, fmt.Errorf("codec: plane of %d×%d (stride %d, group %d, bin %g) over %d floats", n, width, stride, group, mult, len(x))
	}
	out, err := p.pc.appendPlane(dst, x, n, width, stride, mult, group)
	if err != nil {
		return nil, fmt.Errorf("codec: %w", err)
	}
	return out, nil
}

// DecodePlane decodes a plane that AppendPlane wrote with the same n,
// width, mult and group into dst[t*stride+c]. A malformed plane is an
// error wrapping ErrCorrupt.
func DecodePlane(src []byte, n, width int, mult float32, group int, dst []float32, stride int) error {
	if n < 0 || width < 1 || stride < width || group < 0 || len(dst) < max(0, (n-1)*stride+width) || !(mult > 0) {
		return fmt.Errorf("codec: plane of %d×%d (stride %d, group %d, bin %g) into %d floats", n, width, stride, group, mult, len(dst))
	}
	return decodePlane(src, n, width, mult, group, dst, stride)
}

// Encode codes a KV block as a stream (see the package doc for the
// format).
func Encode(b *model.KVBlock, o Options) ([]byte, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	L := len(b.KVDim)
	if L < 1 || L > maxLayers || len(b.K) != L || len(b.V) != L || b.Start < 0 || b.Len < 0 || b.Len > maxLen {
		return nil, fmt.Errorf("codec: block of %d layers (%d, %d key and value arrays), start %d, length %d", L, len(b.K), len(b.V), b.Start, b.Len)
	}
	dst := append([]byte(Magic), Version)
	dst = binary.AppendUvarint(dst, uint64(L))
	dst = binary.AppendUvarint(dst, uint64(b.Start))
	dst = binary.AppendUvarint(dst, uint64(b.Len))
	dst = binary.AppendUvarint(dst, uint64(o.Group))
	widths := make([]int, L)
	mk, mv := make([]float32, L), make([]float32, L)
	for l, d := range b.KVDim {
		w := o.PlaneWidth
		if w == 0 {
			w = d
		}
		if d < 1 || d > maxWidth || d%w != 0 {
			return nil, fmt.Errorf("codec: layer %d: KV width %d, plane width %d", l, d, w)
		}
		if len(b.K[l]) != b.Len*d || len(b.V[l]) != b.Len*d {
			return nil, fmt.Errorf("codec: layer %d: %d and %d floats for %d positions of width %d", l, len(b.K[l]), len(b.V[l]), b.Len, d)
		}
		widths[l] = w
		if mk[l], mv[l], err = o.Bins(l, L); err != nil {
			return nil, err
		}
		dst = binary.AppendUvarint(dst, uint64(d))
		dst = binary.AppendUvarint(dst, uint64(w))
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(mk[l]))
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(mv[l]))
	}
	var pc PlaneCoder
	var plane []byte
	for l, d := range b.KVDim {
		w := widths[l]
		for kv, x := range [2][]float32{b.K[l], b.V[l]} {
			m := mk[l]
			if kv == 1 {
				m = mv[l]
			}
			for h := 0; h < d/w; h++ {
				var off int
				if b.Len > 0 {
					off = h * w
				}
				plane, err = pc.AppendPlane(plane[:0], x[off:], b.Len, w, d, m, o.Group)
				if err != nil {
					return nil, fmt.Errorf("codec: layer %d %s head %d: %w", l, kvName[kv], h, err)
				}
				dst = binary.AppendUvarint(dst, uint64(len(plane)))
				dst = append(dst, plane...)
			}
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst, castagnoli)), nil
}

var (
	kvName     = [2]string{"keys", "values"}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
)

// Decode decodes a stream that Encode wrote. A stream of another format
// version, a truncated or a corrupted one is an error (wrapping
// ErrCorrupt where the bytes are malformed), never a panic.
func Decode(data []byte) (*model.KVBlock, error) {
	if len(data) < len(Magic)+1+4 || string(data[:len(Magic)]) != Magic {
		return nil, fmt.Errorf("codec: not a KV stream (no %q magic): %w", Magic, ErrCorrupt)
	}
	if v := data[len(Magic)]; v != Version {
		return nil, fmt.Errorf("codec: stream format version %d, this build reads version %d", v, Version)
	}
	body := data[:len(data)-4]
	if got, want := crc32.Checksum(body, castagnoli), binary.LittleEndian.Uint32(data[len(body):]); got != want {
		return nil, fmt.Errorf("codec: checksum %08x, stream says %08x: %w", got, want, ErrCorrupt)
	}
	r := bytes.NewReader(body[len(Magic)+1:])
	uv := func(what string, limit uint64) (int, error) {
		v, err := binary.ReadUvarint(r)
		if err != nil {
			return 0, fmt.Errorf("codec: %s: %w", what, eofCorrupt(err))
		}
		if v > limit {
			return 0, fmt.Errorf("codec: %s %d, at most %d: %w", what, v, limit, ErrCorrupt)
		}
		return int(v), nil
	}
	L, err := uv("layers", maxLayers)
	if err != nil {
		return nil, err
	}
	if L < 1 {
		return nil, fmt.Errorf("codec: no layers: %w", ErrCorrupt)
	}
	b := &model.KVBlock{KVDim: make([]int, L), K: make([][]float32, L), V: make([][]float32, L)}
	if b.Start, err = uv("start", math.MaxInt32); err != nil {
		return nil, err
	}
	if b.Len, err = uv("length", maxLen); err != nil {
		return nil, err
	}
	group, err := uv("group", maxLen)
	if err != nil {
		return nil, err
	}
	widths := make([]int, L)
	mult := make([][2]float32, L)
	var elems int64
	for l := range L {
		if b.KVDim[l], err = uv(fmt.Sprintf("layer %d KV width", l), maxWidth); err != nil {
			return nil, err
		}
		if widths[l], err = uv(fmt.Sprintf("layer %d plane width", l), maxWidth); err != nil {
			return nil, err
		}
		if widths[l] < 1 || b.KVDim[l]%widths[l] != 0 {
			return nil, fmt.Errorf("codec: layer %d: KV width %d, plane width %d: %w", l, b.KVDim[l], widths[l], ErrCorrupt)
		}
		for kv := range 2 {
			var u [4]byte
			if _, err := io.ReadFull(r, u[:]); err != nil {
				return nil, fmt.Errorf("codec: layer %d bins: %w", l, eofCorrupt(err))
			}
			m := math.Float32frombits(binary.LittleEndian.Uint32(u[:]))
			if !(m >= 0x1p-20 && m <= 0x1p20) {
				return nil, fmt.Errorf("codec: layer %d %s: bin multiplier %g: %w", l, kvName[kv], m, ErrCorrupt)
			}
			mult[l][kv] = m
		}
		elems += 2 * int64(b.KVDim[l]) * int64(b.Len)
	}
	if elems > maxPerByte*int64(len(data)) {
		return nil, fmt.Errorf("codec: %d elements in a stream of %d bytes: %w", elems, len(data), ErrCorrupt)
	}
	for l, d := range b.KVDim {
		b.K[l], b.V[l] = make([]float32, b.Len*d), make([]float32, b.Len*d)
		w := widths[l]
		for kv, x := range [2][]float32{b.K[l], b.V[l]} {
			for h := 0; h < d/w; h++ {
				n, err := uv(fmt.Sprintf("layer %d %s head %d length", l, kvName[kv], h), uint64(len(body)))
				if err != nil {
					return nil, err
				}
				if n > r.Len() {
					return nil, fmt.Errorf("codec: layer %d %s head %d: plane of %d bytes, %d left: %w", l, kvName[kv], h, n, r.Len(), ErrCorrupt)
				}
				rest := body[len(body)-r.Len():]
				plane := rest[:n:n]
				_, _ = r.Seek(int64(n), io.SeekCurrent)
				var off int
				if b.Len > 0 {
					off = h * w
				}
				if err := decodePlane(plane, b.Len, w, mult[l][kv], group, x[off:], d); err != nil {
					return nil, fmt.Errorf("codec: layer %d %s head %d: %w", l, kvName[kv], h, err)
				}
			}
		}
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("codec: %d bytes after the last layer: %w", r.Len(), ErrCorrupt)
	}
	return b, nil
}

// IsCorrupt reports whether err says a stream is malformed.
func IsCorrupt(err error) bool { return errors.Is(err, ErrCorrupt) }
