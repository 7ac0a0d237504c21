package kv

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/terse-llm/terse/codec"
	"github.com/terse-llm/terse/kernel"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// CacheGen defaults: the codec's quality, chunks of 64 tokens.
const (
	DefaultCacheGenBits  = codec.DefaultBits
	DefaultCacheGenChunk = 64
)

// CodedSizer is implemented by a cache whose memory depends on what it
// holds, as a cache of entropy-coded bitstreams: CodedSize reports the
// bytes it coded and the key and value elements they hold, summed over
// its life (positions truncated away and coded again count again), and
// OpenBytes the bytes it holds whatever it has coded (cachegen's open
// chunk). eval reports a cache's size from them where a cache has them:
// the coded rate plus the open bytes spread over a full window.
type CodedSizer interface {
	CodedSize() (bytes, elements int64)
	OpenBytes() int64
}

// SharedSizer is implemented by a cache that holds constants of its
// model and spec once and shares them between sequences (cachegen's
// fitted transform): SharedBytes is their size, outside Bytes. eval
// reports it apart (kv_shared_bytes).
type SharedSizer interface {
	SharedBytes() int64
}

// cachegenCache holds each layer's completed chunks of Chunk positions as
// CacheGen bitstreams (package codec): per chunk, one plane per KV head
// of keys and one of values, each decodable alone. The open chunk stays
// in binary16 until it is full, then it is coded and its buffer reused. Keys are coded before RoPE (rotated back through each
// position's angle, and forward again when decoded) where the config has
// RoPE. Scores and WeightedSum decode a chunk's plane of the asked head
// into the scratch they are handed and run the float32 kernels on it;
// nothing decoded is kept. With Spec.Decoded, each chunk is decoded once,
// as soon as it is coded, and kept in float32 beside its bitstream (and
// counted in Bytes): attention sees the same values, decoded once instead
// of on every call, for measuring the codec at the speed of the float32
// cache. With Spec t (a basis, in Spec.pca), each head's rows are coded
// as their coordinates along the basis's directions (codec step planes,
// one bin per head, layer and keys or values) and rebuilt from them.
type cachegenCache struct {
	sp           Spec
	cap, hd, C   int
	opt          codec.Options
	kvDim, lens  []int
	mk, mv       []float32   // per layer: bin multipliers
	coded        [][]cgChunk // per layer: the coded chunks, in order
	openK, openV [][]uint16  // per layer: C × KV width, binary16
	pc           codec.PlaneCoder
	cfg          *model.Config
	rot, vals    []float32 // keys of the chunk being coded (before RoPE), values
	rt           ropeTable
	bytes, elems int64           // coded so far, over the cache's life
	shared       int64           // bytes of the transforms (SharedBytes)
	held         int64           // bytes of the chunks held now
	tf           [][]cgTransform // per layer, KV head: the transform (Spec t), or nil
	z            []float32       // coordinates of the plane being coded
}

// cgTransform is one KV head's transform (Spec t, a PCABasis): keys (0)
// and values (1) are coded as their coordinates z = fwd·(x − mean), each
// plane in one bin, step, and rebuilt as x = mean + backᵀ·z.
type cgTransform struct {
	mean, fwd, back [2][]float32 // fwd, back: hd×hd, row i direction i
	step            [2]float32
	codes           [2][]byte // with Spec.Static: each coordinate's model code
}

// cgChunk is one coded chunk of one layer: per KV head, its key plane
// and its value plane.
type cgChunk struct {
	k, v   [][]byte
	dk, dv []float32 // with Spec.Decoded: the chunk decoded, C × KV width
}

func newCacheGenCache(cfg *model.Config, positions int, sp *Spec) (*cachegenCache, error) {
	L := cfg.NLayers
	c := &cachegenCache{sp: *sp, cap: positions, hd: cfg.HeadDim, C: sp.Chunk, cfg: cfg, rt: ropeTable{cfg: cfg, hd: cfg.HeadDim},
		opt: codec.Options{Bits: sp.Bits, EarlyBits: sp.EarlyBits, KeyBits: sp.KeyBits, ValueBits: sp.ValueBits,
			Group: sp.Group, PlaneWidth: cfg.HeadDim},
		kvDim: make([]int, L), lens: make([]int, L), mk: make([]float32, L), mv: make([]float32, L),
		coded: make([][]cgChunk, L), openK: make([][]uint16, L), openV: make([][]uint16, L)}
	if sp.Group > 0 {
		c.opt.Predict = codec.PredictAnchor
	}
	for l := range L {
		c.kvDim[l] = cfg.KVDim(l)
		if c.hd < 1 || c.kvDim[l]%c.hd != 0 {
			return nil, fmt.Errorf("kv %s: layer %d: KV width %d is not a whole number of heads of %d", sp, l, c.kvDim[l], c.hd)
		}
		var err error
		if c.mk[l], c.mv[l], err = c.opt.Bins(l, L); err != nil {
			return nil, fmt.Errorf("kv %s: %w", sp, err)
		}
		n := min(c.C, positions) * c.kvDim[l]
		c.openK[l], c.openV[l] = make([]uint16, n), make([]uint16, n)
	}
	if sp.pca != nil {
		if err := c.sharedTransform(sp); err != nil {
			return nil, fmt.Errorf("kv %s: %s: %w", sp, sp.PCAFile, err)
		}
	}
	return c, nil
}

// cgShared holds the transforms a cachegen spec's caches share: built
// once per model config from the spec's basis, read-only after.
type cgShared struct {
	mu    sync.Mutex
	cfg   *model.Config
	tf    [][]cgTransform
	bytes int64
}

// sharedTransform gives c the transforms of sp's basis, built on the
// first cache of a config and shared by every later one of it (each
// sequence's cache holds only its coded chunks and open chunk).
func (c *cachegenCache) sharedTransform(sp *Spec) error {
	sh := sp.cgShared
	if sh == nil { // a Spec made without Parse
		return c.setTransform(sp.pca)
	}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.tf != nil && sh.cfg == c.cfg {
		c.tf, c.shared = sh.tf, sh.bytes
		return nil
	}
	if err := c.setTransform(sp.pca); err != nil {
		return err
	}
	sh.cfg, sh.tf, sh.bytes = c.cfg, c.tf, c.shared
	return nil
}

// SharedBytes implements SharedSizer: what the cache's transforms hold (float32 means,
// forward and back directions, model codes): a constant of the model
// and the spec, held once and shared by every cache of it, as the
// weights are, so neither Bytes nor CodedSize counts it. 0 without a
// transform.
func (c *cachegenCache) SharedBytes() int64 { return c.shared }

// setTransform takes each head's transform from b: its directions, and
// a bin of the layer's multiplier (codec.Options.Bins) times the root
// mean square of the head's spread along them, √(mean Var). Along a
// weighted basis's directions an error of each coordinate costs the same
// downstream, so one bin for all of a head's coordinates is reverse
// water-filling: a coordinate of spread well under the bin codes to zeros.
func (c *cachegenCache) setTransform(b *PCABasis) error {
	if err := b.fits(c.cfg); err != nil {
		return err
	}
	hd := c.hd
	c.tf = make([][]cgTransform, len(c.kvDim))
	for l := range c.tf {
		c.tf[l] = make([]cgTransform, len(b.Layers[l]))
		for h := range c.tf[l] {
			t := &c.tf[l][h]
			for kv, pc := range [2]*PCAComponents{&b.Layers[l][h].K, &b.Layers[l][h].V} {
				t.mean[kv] = append([]float32(nil), pc.Mean...)
				t.fwd[kv], t.back[kv] = make([]float32, hd*hd), make([]float32, hd*hd)
				var sum float64
				for i := 0; i < hd; i++ {
					copy(t.fwd[kv][i*hd:], pc.Dirs[i])
					if pc.Back != nil {
						copy(t.back[kv][i*hd:], pc.Back[i])
					} else {
						copy(t.back[kv][i*hd:], pc.Dirs[i])
					}
					sum += pc.Var[i]
				}
				m := c.mk[l]
				if kv == 1 {
					m = c.mv[l]
				}
				t.step[kv] = m * float32(math.Sqrt(sum/float64(hd)))
				if !(t.step[kv] >= 0x1p-40 && t.step[kv] <= 0x1p40) {
					return fmt.Errorf("layer %d head %d %s: bin %g (variance %g) out of range", l, h, cgName[kv], t.step[kv], sum)
				}
				if c.sp.Static {
					t.codes[kv] = make([]byte, hd)
					for i, v := range pc.Var {
						t.codes[kv][i] = staticCode(v, t.step[kv])
					}
				}
				c.shared += 4*int64(len(t.mean[kv])+len(t.fwd[kv])+len(t.back[kv])+1) + int64(len(t.codes[kv]))
			}
		}
	}
	return nil
}

var cgName = [2]string{"keys", "values"}

// staticCode is the model code (codec.ModelCode) of a coordinate of
// fitted variance v coded with bin step: a discretized Gaussian of its
// standard deviation in bins. (On pdtext-llama-28m at q4, c16, the
// Gaussian costs 2.23 bits an element where a Laplace distribution of the
// same variance costs 2.28; the values coded are the same.)
func staticCode(v float64, step float32) byte {
	return codec.ModelCode(math.Sqrt(v)/float64(step), true)
}

// appendPlane codes C rows of head h of layer's keys (kv 0, before RoPE)
// or values (kv 1) at x[t*d+h*hd:], d the layer's KV width.
func (c *cachegenCache) appendPlane(layer, h, kv int, x []float32) ([]byte, error) {
	d := c.kvDim[layer]
	if c.tf == nil {
		m := c.mk[layer]
		if kv == 1 {
			m = c.mv[layer]
		}
		return c.pc.AppendPlane(nil, x[h*c.hd:], c.C, c.hd, d, m, c.opt.Group)
	}
	t, hd := &c.tf[layer][h], c.hd
	mean, fwd := t.mean[kv], t.fwd[kv]
	if len(c.z) < c.C*hd {
		c.z = make([]float32, c.C*hd)
	}
	dev := make([]float32, hd)
	for r := 0; r < c.C; r++ {
		row := x[r*d+h*hd : r*d+(h+1)*hd]
		for j, v := range row {
			dev[j] = v - mean[j]
		}
		z := c.z[r*hd : (r+1)*hd]
		for i := range z {
			z[i] = kernel.Dot(fwd[i*hd:(i+1)*hd], dev)
		}
	}
	if c.sp.Static {
		return c.pc.AppendStaticPlane(nil, c.z, c.C, hd, hd, t.step[kv], t.codes[kv])
	}
	return c.pc.AppendStepPlane(nil, c.z, c.C, hd, hd, t.step[kv])
}

// decodePlane decodes a plane appendPlane wrote into out[t*stride+c]
// (keys before RoPE); z is scratch of C × head_dim floats (transform only).
func (c *cachegenCache) decodePlane(src []byte, layer, h, kv int, out []float32, stride int, z []float32) error {
	if c.tf == nil {
		m := c.mk[layer]
		if kv == 1 {
			m = c.mv[layer]
		}
		return codec.DecodePlane(src, c.C, c.hd, m, c.opt.Group, out, stride)
	}
	t, hd := &c.tf[layer][h], c.hd
	var err error
	if c.sp.Static {
		err = codec.DecodeStaticPlane(src, c.C, hd, t.step[kv], t.codes[kv], z, hd)
	} else {
		err = codec.DecodeStepPlane(src, c.C, hd, t.step[kv], z, hd)
	}
	if err != nil {
		return err
	}
	mean, back := t.mean[kv], t.back[kv]
	for r := 0; r < c.C; r++ {
		o := out[r*stride : r*stride+hd]
		copy(o, mean)
		for i, zi := range z[r*hd : (r+1)*hd] {
			if zi == 0 {
				continue
			}
			b := back[i*hd : (i+1)*hd]
			for j := range o {
				o[j] += zi * b[j]
			}
		}
	}
	return nil
}

// planeBuf is the scratch decode needs: a plane, and with a transform its
// coordinates.
func (c *cachegenCache) planeBuf() int {
	if c.tf != nil {
		return 2 * c.C * c.hd
	}
	return c.C * c.hd
}

// Append implements model.KVCache; a chunk that fills is coded.
func (c *cachegenCache) Append(layer int, k, v []float32) error {
	if layer < 0 || layer >= len(c.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", &c.sp, layer, len(c.kvDim))
	}
	d, pos := c.kvDim[layer], c.lens[layer]
	if len(k) != d || len(v) != d {
		return fmt.Errorf("kv %s: layer %d: key and value of %d and %d floats, want %d", &c.sp, layer, len(k), len(v), d)
	}
	if pos >= c.cap {
		return fmt.Errorf("kv %s: layer %d: position %d outside capacity %d", &c.sp, layer, pos, c.cap)
	}
	o := pos - len(c.coded[layer])*c.C
	narrow(c.openK[layer][o*d:(o+1)*d], k)
	narrow(c.openV[layer][o*d:(o+1)*d], v)
	c.lens[layer]++
	if o+1 == c.C {
		if err := c.codeChunk(layer); err != nil {
			c.lens[layer]--
			return fmt.Errorf("kv %s: layer %d: position %d: %w", &c.sp, layer, pos, err)
		}
	}
	return nil
}

// codeChunk codes layer's full open chunk, head by head.
func (c *cachegenCache) codeChunk(layer int) error {
	d, heads := c.kvDim[layer], c.kvDim[layer]/c.hd
	ch := cgChunk{k: make([][]byte, heads), v: make([][]byte, heads)}
	var n int64
	// Keys are coded before RoPE (each rotated back through its
	// position's angle): a channel's mean then predicts it, where after
	// RoPE it turns with the position. Decoding rotates them again.
	c.rot, c.vals = widen(c.rot[:0], c.openK[layer]), widen(c.vals[:0], c.openV[layer])
	c.rope(c.rot, d, len(c.coded[layer])*c.C, c.C, true)
	for h := 0; h < heads; h++ {
		var err error
		if ch.k[h], err = c.appendPlane(layer, h, 0, c.rot); err != nil {
			return fmt.Errorf("keys of head %d: %w", h, err)
		}
		if ch.v[h], err = c.appendPlane(layer, h, 1, c.vals); err != nil {
			return fmt.Errorf("values of head %d: %w", h, err)
		}
		n += int64(len(ch.k[h]) + len(ch.v[h]))
	}
	if c.sp.Decoded {
		ch.dk, ch.dv = make([]float32, c.C*d), make([]float32, c.C*d)
		z := make([]float32, c.C*c.hd)
		for h := 0; h < heads; h++ {
			if err := c.decodePlane(ch.k[h], layer, h, 0, ch.dk[h*c.hd:], d, z); err != nil {
				return fmt.Errorf("keys of head %d: %w", h, err)
			}
			if err := c.decodePlane(ch.v[h], layer, h, 1, ch.dv[h*c.hd:], d, z); err != nil {
				return fmt.Errorf("values of head %d: %w", h, err)
			}
		}
		c.rope(ch.dk, d, len(c.coded[layer])*c.C, c.C, false)
		c.held += 4 * int64(len(ch.dk)+len(ch.dv))
	}
	c.coded[layer] = append(c.coded[layer], ch)
	c.bytes += n
	c.held += n
	c.elems += 2 * int64(c.C*d)
	return nil
}

func (c *cachegenCache) check(layer, head, n int) error {
	return checkAccess(&c.sp, c.kvDim, c.lens, c.hd, layer, head, n)
}

// decode decodes head's key (kv 0) or value (kv 1) plane of layer's
// chunk j into buf (C × head_dim; planeBuf floats, the rest scratch).
func (c *cachegenCache) decode(layer, head, j, kv int, buf []float32) error {
	if ch := &c.coded[layer][j]; ch.dk != nil {
		x, d := ch.dk, c.kvDim[layer]
		if kv == 1 {
			x = ch.dv
		}
		for t := 0; t < c.C; t++ {
			copy(buf[t*c.hd:(t+1)*c.hd], x[t*d+head*c.hd:])
		}
		return nil
	}
	src := c.coded[layer][j].k[head]
	if kv == 1 {
		src = c.coded[layer][j].v[head]
	}
	if err := c.decodePlane(src, layer, head, kv, buf, c.hd, buf[c.C*c.hd:]); err != nil {
		return fmt.Errorf("kv %s: layer %d: chunk %d head %d: %w", &c.sp, layer, j, head, err)
	}
	if kv == 0 {
		c.rope(buf, c.hd, j*c.C, c.C, false)
	}
	return nil
}

// rope rotates n rows of width d (whole heads), the first at position
// pos, back to position 0 (undo) or from position 0 to their own.
func (c *cachegenCache) rope(x []float32, d, pos, n int, undo bool) {
	c.rt.rope(x, d, pos, n, undo)
}

// ropeTable turns keys through RoPE with the engine's angles, computed
// once per position and kept (not safe for concurrent use while it
// grows: a position's angles are computed the first time it is asked).
type ropeTable struct {
	cfg *model.Config
	hd  int
	cs  []float32 // per position: RoPE's cosines, then sines
}

// rope rotates n rows of width d (whole heads), the first at position
// pos, back to position 0 (undo) or from position 0 to their own.
func (c *ropeTable) rope(x []float32, d, pos, n int, undo bool) {
	if !(c.cfg.RopeTheta > 0) { // no RoPE to undo
		return
	}
	half := c.hd / 2
	for t := 0; t < n; t++ {
		cs := c.angles(pos + t)
		cos, sin := cs[:half], cs[half:]
		for h := 0; h+c.hd <= d; h += c.hd {
			v := x[t*d+h : t*d+h+c.hd]
			for i := range half {
				a, b := 2*i, 2*i+1
				if c.cfg.RopeStyle == model.RopeHalf {
					a, b = i, i+half
				}
				x0, x1 := v[a], v[b]
				if undo {
					v[a] = x0*cos[i] + x1*sin[i]
					v[b] = x1*cos[i] - x0*sin[i]
				} else {
					v[a] = x0*cos[i] - x1*sin[i]
					v[b] = x0*sin[i] + x1*cos[i]
				}
			}
		}
	}
}

// angles returns position p's RoPE cosines and sines (head_dim/2 each),
// the engine's own: read off model.ShiftKeys turning unit pairs from
// position 0 to p, once per position, then kept.
func (c *ropeTable) angles(p int) []float32 {
	half := c.hd / 2
	for len(c.cs) <= p*c.hd {
		q := len(c.cs) / c.hd
		probe := make([]float32, c.hd)
		for i := range half {
			if c.cfg.RopeStyle == model.RopeHalf {
				probe[i] = 1
			} else {
				probe[2*i] = 1
			}
		}
		model.ShiftKeys(c.cfg, &model.KVBlock{Len: 1, KVDim: []int{c.hd}, K: [][]float32{probe}, V: [][]float32{nil}}, q)
		cs := make([]float32, c.hd)
		for i := range half {
			a, b := 2*i, 2*i+1
			if c.cfg.RopeStyle == model.RopeHalf {
				a, b = i, i+half
			}
			cs[i], cs[half+i] = probe[a], probe[b]
		}
		c.cs = append(c.cs, cs...)
	}
	return c.cs[p*c.hd : (p+1)*c.hd]
}

// narrow stores x in binary16 in dst.
func narrow(dst []uint16, x []float32) {
	for i, v := range x {
		dst[i] = tensor.F32ToF16(v)
	}
}

// widen appends the binary16 values h to dst as float32.
func widen(dst []float32, h []uint16) []float32 {
	for _, x := range h {
		dst = append(dst, tensor.F16ToF32(x))
	}
	return dst
}

// openHead widens head's rows of the first n positions of an open chunk
// (keys or values of layer) into buf, head_dim floats a row.
func (c *cachegenCache) openHead(open []uint16, layer, head, n int, buf []float32) {
	d := c.kvDim[layer]
	for t := 0; t < n; t++ {
		row := open[t*d+head*c.hd : t*d+(head+1)*c.hd]
		for i, x := range row {
			buf[t*c.hd+i] = tensor.F16ToF32(x)
		}
	}
}

// Scores implements model.KVCache: each coded chunk's key plane of the
// head is decoded into scratch and scored in float32; the open chunk is
// scored where it lies.
func (c *cachegenCache) Scores(layer, head int, q []float32, qs, nq, n int, scale float32, dst []float32, ds int, scratch []float32) error {
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if nq > 0 && (len(q) < (nq-1)*qs+c.hd || len(dst) < (nq-1)*ds+n) {
		return fmt.Errorf("kv %s: layer %d: %d queries: buffers too small", &c.sp, layer, nq)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &c.sp, len(scratch), c.ScratchSize())
	}
	if nq <= 0 || n == 0 {
		return nil
	}
	buf := scratch[:c.planeBuf()]
	done := len(c.coded[layer]) * c.C
	for j := 0; j*c.C < min(n, done); j++ {
		p0 := j * c.C
		if ch := &c.coded[layer][j]; ch.dk != nil {
			kernel.Scores(dst[p0:], ds, q, qs, nq, ch.dk[head*c.hd:], c.kvDim[layer], min(c.C, n-p0), c.hd, scale)
			continue
		}
		if err := c.decode(layer, head, j, 0, buf); err != nil {
			return err
		}
		kernel.Scores(dst[p0:], ds, q, qs, nq, buf, c.hd, min(c.C, n-p0), c.hd, scale)
	}
	if n > done {
		c.openHead(c.openK[layer], layer, head, n-done, buf)
		kernel.Scores(dst[done:], ds, q, qs, nq, buf, c.hd, n-done, c.hd, scale)
	}
	return nil
}

// WeightedSum implements model.KVCache, chunk by chunk as Scores.
func (c *cachegenCache) WeightedSum(layer, head int, w, dst []float32, scratch []float32) error {
	n := len(w)
	if err := c.check(layer, head, n); err != nil {
		return err
	}
	if len(dst) != c.hd {
		return fmt.Errorf("kv %s: layer %d: output of %d floats for head_dim %d", &c.sp, layer, len(dst), c.hd)
	}
	if len(scratch) < c.ScratchSize() {
		return fmt.Errorf("kv %s: scratch of %d floats, want %d", &c.sp, len(scratch), c.ScratchSize())
	}
	pb := c.planeBuf()
	buf, part := scratch[:pb], scratch[pb:pb+c.hd]
	clear(dst)
	done := len(c.coded[layer]) * c.C
	for j := 0; j*c.C < min(n, done); j++ {
		p0 := j * c.C
		if ch := &c.coded[layer][j]; ch.dv != nil {
			kernel.WeightedSum(part, w[p0:min(n, p0+c.C)], ch.dv[head*c.hd:], c.kvDim[layer])
		} else {
			if err := c.decode(layer, head, j, 1, buf); err != nil {
				return err
			}
			kernel.WeightedSum(part, w[p0:min(n, p0+c.C)], buf, c.hd)
		}
		for i, x := range part {
			dst[i] += x
		}
	}
	if n > done {
		c.openHead(c.openV[layer], layer, head, n-done, buf)
		kernel.WeightedSum(part, w[done:], buf, c.hd)
		for i, x := range part {
			dst[i] += x
		}
	}
	return nil
}

// Truncate implements model.KVCache. A coded chunk that the cut falls
// inside is decoded back into the open chunk.
func (c *cachegenCache) Truncate(n int) error {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("kv %s: truncate to %d of %d positions", &c.sp, n, c.Len())
	}
	for l, old := range c.lens {
		if n >= old {
			continue
		}
		keep, d := n/c.C, c.kvDim[l]
		if keep < len(c.coded[l]) {
			if n > keep*c.C {
				buf := make([]float32, c.planeBuf())
				for h := 0; h < d/c.hd; h++ {
					for kv, open := range [2][]uint16{c.openK[l], c.openV[l]} {
						if err := c.decode(l, h, keep, kv, buf); err != nil {
							return err
						}
						for t := 0; t < c.C; t++ {
							narrow(open[t*d+h*c.hd:t*d+(h+1)*c.hd], buf[t*c.hd:(t+1)*c.hd])
						}
					}
				}
			}
			for _, ch := range c.coded[l][keep:] {
				for h := range ch.k {
					c.held -= int64(len(ch.k[h]) + len(ch.v[h]))
				}
				c.held -= 4 * int64(len(ch.dk)+len(ch.dv))
			}
			c.coded[l] = c.coded[l][:keep]
		}
		c.lens[l] = n
	}
	return nil
}

// ReadKV implements model.KVReader: the keys and values as attention sees
// them (decoded chunks, the open chunk as it is).
func (c *cachegenCache) ReadKV(layer, from, to int, k, v []float32) error {
	if layer < 0 || layer >= len(c.kvDim) {
		return fmt.Errorf("kv %s: layer %d of %d", &c.sp, layer, len(c.kvDim))
	}
	d := c.kvDim[layer]
	if from < 0 || to < from || to > c.lens[layer] {
		return fmt.Errorf("kv %s: layer %d: positions [%d, %d) of %d held", &c.sp, layer, from, to, c.lens[layer])
	}
	if len(k) != (to-from)*d || len(v) != (to-from)*d {
		return fmt.Errorf("kv %s: layer %d: buffers of %d and %d floats for %d positions of width %d", &c.sp, layer, len(k), len(v), to-from, d)
	}
	buf := make([]float32, c.planeBuf())
	done := len(c.coded[layer]) * c.C
	for p := from; p < to; {
		j := p / c.C
		end := min(to, (j+1)*c.C)
		for kv, out := range [2][]float32{k, v} {
			if p >= done {
				open := c.openK[layer]
				if kv == 1 {
					open = c.openV[layer]
				}
				for i, x := range open[(p-done)*d : (end-done)*d] {
					out[(p-from)*d+i] = tensor.F16ToF32(x)
				}
				continue
			}
			for h := 0; h < d/c.hd; h++ {
				if err := c.decode(layer, h, j, kv, buf); err != nil {
					return err
				}
				for t := p; t < end; t++ {
					copy(out[(t-from)*d+h*c.hd:(t-from)*d+(h+1)*c.hd], buf[(t-j*c.C)*c.hd:(t-j*c.C+1)*c.hd])
				}
			}
		}
		p = end
	}
	return nil
}

// Len implements model.KVCache.
func (c *cachegenCache) Len() int { return minLen(c.lens) }

// Cap implements model.KVCache.
func (c *cachegenCache) Cap() int { return c.cap }

// ScratchSize implements model.KVCache: one decoded plane and a partial
// sum.
func (c *cachegenCache) ScratchSize() int { return c.planeBuf() + c.hd }

// Bytes implements model.KVCache: the coded chunks held plus the binary16
// open chunk of every layer.
func (c *cachegenCache) Bytes() int64 {
	n := c.held
	return n + c.OpenBytes()
}

// OpenBytes implements CodedSizer: the binary16 open chunk of every
// layer.
func (c *cachegenCache) OpenBytes() int64 {
	var n int64
	for l := range c.openK {
		n += 2 * int64(len(c.openK[l])+len(c.openV[l]))
	}
	return n
}

// CodedSize implements CodedSizer.
func (c *cachegenCache) CodedSize() (bytes, elements int64) { return c.bytes, c.elems }

// parseCacheGen reads CacheGen's colon-separated fields, each at most
// once: qB (codec quality bits, 1…12, may be fractional), cC
// (positions per coded chunk), kX and vX (bits added to keys' and to
// values' quality), eX (the extra bits of the early layers,
// codec.Options.EarlyBits; e0 for none), gG (CacheGen's anchor groups of G
// tokens instead of channel means), d (keep chunks decoded too) and,
// last, tFILE (transform coding in the basis FILE, a PCABasis fitted by
// CacheGenFit; FILE is the rest of the spec and may hold colons).
func parseCacheGen(s, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindCacheGen, Bits: DefaultCacheGenBits, Chunk: DefaultCacheGenChunk}
	seen := map[byte]bool{}
	if rest == "" {
		return sp, nil
	}
	fields := strings.Split(rest, ":")
	for i, f := range fields {
		if f != "" && f[0] == 't' {
			sp.PCAFile = strings.Join(fields[i:], ":")[1:]
			if sp.PCAFile == "" {
				return nil, fmt.Errorf("kv spec %q: field t: no basis file", s)
			}
			fields = fields[:i]
			break
		}
	}
	for _, f := range fields {
		if f == "" {
			return nil, fmt.Errorf("kv spec %q: empty field", s)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
		}
		seen[f[0]] = true
		var err error
		switch f[0] {
		case 'q':
			sp.Bits, err = strconv.ParseFloat(f[1:], 64)
			if err == nil && !(sp.Bits >= 1 && sp.Bits <= 12) {
				err = fmt.Errorf("%g bits: want 1…12", sp.Bits)
			}
		case 'c':
			sp.Chunk, err = parseInt(f[1:], 1, 1<<16)
		case 'g':
			sp.Group, err = parseInt(f[1:], 1, 1<<16)
		case 'k', 'v', 'e':
			var x float64
			if x, err = strconv.ParseFloat(f[1:], 64); err == nil && !(math.Abs(x) <= 8) {
				err = fmt.Errorf("%g: want −8…8", x)
			}
			switch f[0] {
			case 'k':
				sp.KeyBits = x
			case 'v':
				sp.ValueBits = x
			default:
				if x <= 0 {
					x = -1 // none (0 would mean the default)
				}
				sp.EarlyBits = x
			}
		case 'd':
			if f != "d" {
				err = fmt.Errorf("d takes no value")
			}
			sp.Decoded = true
		case 's':
			if f != "s" {
				err = fmt.Errorf("s takes no value")
			}
			sp.Static = true
		default:
			err = fmt.Errorf("unknown field (want qB, cC, kX, vX, eX, gG, d or tFILE)")
		}
		if err != nil {
			return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
		}
	}
	if _, _, err := (codec.Options{Bits: sp.Bits, EarlyBits: sp.EarlyBits, KeyBits: sp.KeyBits, ValueBits: sp.ValueBits}).Bins(0, 1); err != nil {
		return nil, fmt.Errorf("kv spec %q: %w", s, err)
	}
	if sp.Static && sp.PCAFile == "" {
		return nil, fmt.Errorf("kv spec %q: static models (s) need a transform (tFILE): they come from its fitted spreads", s)
	}
	if sp.PCAFile != "" {
		if sp.Group > 0 {
			return nil, fmt.Errorf("kv spec %q: a transform (t) codes channel means, not anchor groups (g)", s)
		}
		b, err := ReadPCABasis(sp.PCAFile)
		if err != nil {
			return nil, fmt.Errorf("kv spec %q: %w", s, err)
		}
		sp.pca, sp.cgShared = b, &cgShared{}
	}
	return sp, nil
}

// cacheGenString is a CacheGen spec in full.
func cacheGenString(sp *Spec) string {
	s := fmt.Sprintf("cachegen:q%s:c%d", specNum(sp.Bits), sp.Chunk)
	if sp.KeyBits != 0 {
		s += ":k" + specNum(sp.KeyBits)
	}
	if sp.ValueBits != 0 {
		s += ":v" + specNum(sp.ValueBits)
	}
	if sp.EarlyBits != 0 {
		s += ":e" + specNum(max(sp.EarlyBits, 0))
	}
	if sp.Group > 0 {
		s += fmt.Sprintf(":g%d", sp.Group)
	}
	if sp.Decoded {
		s += ":d"
	}
	if sp.Static {
		s += ":s"
	}
	if sp.PCAFile != "" {
		s += ":t" + sp.PCAFile
	}
	return s
}
