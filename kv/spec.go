package kv

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/tensor"
)

// Kind is a family of caches.
type Kind int

const (
	// KindFloat is the uncompressed float32 cache (model.FloatCache).
	KindFloat Kind = iota
	// KindBlock stores keys and values in one ggml element type.
	KindBlock
	// KindKIVI is KIVI's per-channel-key, per-token-value quantization.
	KindKIVI
	// KindCacheGen holds chunks as CacheGen bitstreams (package codec).
	KindCacheGen
	// KindPCA keeps keys and values as coordinates along fitted principal
	// directions (pca:kF:vF:FILE).
	KindPCA
	// KindZip is ZipCache's salient-token mixed precision (zip:…).
	KindZip
	// KindStair is the staircase: older tokens in fewer bits (stair:…).
	KindStair
	// KindGEAR is GEAR: quantization, sparse outliers and a low-rank
	// residual (gear:…).
	KindGEAR
	// KindRQ is rotated rows with one scale and Lloyd–Max codes each
	// (rq:…).
	KindRQ
)

// KIVI defaults (the paper's): 2-bit keys and values, groups of 32, a
// residual window of 128 tokens.
const (
	DefaultKIVIBits     = 2
	DefaultKIVIGroup    = 32
	DefaultKIVIResidual = 128
)

// DefaultPCAFraction is the fraction of key and value channels a pca spec
// keeps when it names none (CSKV's and MatryoshkaKV's half).
const DefaultPCAFraction = 0.5

// Spec is a parsed cache spec: which cache and its parameters.
type Spec struct {
	Kind Kind
	// Type is the element type of a KindBlock cache.
	Type tensor.DType
	// KBits, VBits, Group and Residual are KIVI's parameters.
	KBits, VBits, Group, Residual int
	// Bits and Chunk are CacheGen's quality (codec.Options.Bits) and
	// positions per coded chunk; Decoded keeps coded chunks decoded too;
	// Static codes a transform's coordinates under fixed models from the
	// basis's fitted spreads (codec static planes). KeyBits, ValueBits and EarlyBits are the codec's offsets
	// (codec.Options; EarlyBits −1: none).
	Bits                          float64
	KeyBits, ValueBits, EarlyBits float64
	Chunk                         int
	Decoded, Static               bool
	// Evict, when set, evicts tokens in front of the cache the rest of
	// the spec describes (sink:…+INNER, h2o:…+INNER).
	Evict *Evict
	// PCAK and PCAV are the fractions of the key and value channels a
	// KindPCA cache keeps; PCAFile is its basis file (PCABasis), read by
	// Parse into pca.
	PCAK, PCAV float64
	// PCABits and PCAVBits, when positive, quantize the key and the value
	// coordinates: that many bits per channel on average, allocated
	// across the kept directions.
	PCABits, PCAVBits float64
	// PCASinks is how many leading positions a pca cache keeps whole, in
	// binary16 (the attention sinks; at most wsChunk).
	PCASinks int
	// PCALloyd codes quantized coordinates with the Lloyd–Max codebook of
	// a Gaussian of the fitted variance instead of a uniform quantizer.
	PCALloyd bool
	// PCALayerBits, when set, holds one offset per layer added to
	// PCABits and PCAVBits there (the bits of a layer's rows).
	PCALayerBits []float64
	PCAFile      string
	pca          *PCABasis
	cgShared     *cgShared // cachegen's transforms built from pca, shared by its caches
	// ZipHi and ZipLo are a zip cache's bits for salient and other
	// tokens, ZipFrac the fraction of tokens that are salient.
	ZipHi, ZipLo int
	ZipFrac      float64
	// StairBits are a stair cache's bits per band, newest first, and
	// StairWidths the positions of every band but the last.
	StairBits, StairWidths []int
	// TQSinks is how many leading positions a zip, stair or gear cache
	// keeps whole in binary16; Rotate rotates rows before they are
	// quantized (zip and stair; the spec's p field turns it off).
	TQSinks int
	Rotate  bool
	// GearOutlier is the percentage of each row a gear cache keeps as
	// sparse full-precision outliers, GearRank the rank of its low-rank
	// residual per chunk of Chunk positions.
	GearOutlier float64
	GearRank    int
	// RQKBits and RQVBits are an rq cache's key and value rates in bits
	// per element: one for every layer, or one per layer.
	RQKBits, RQVBits []float64
	// RQMean removes the running mean key (rq's m field).
	RQMean bool
}

// blockTypes are the element types a KindBlock cache accepts, by name:
// those llama.cpp accepts for its cache.
var blockTypes = map[string]tensor.DType{
	"f16": tensor.F16, "bf16": tensor.BF16, "q8_0": tensor.Q8_0, "q4_0": tensor.Q4_0,
	"q4_1": tensor.Q4_1, "q5_0": tensor.Q5_0, "q5_1": tensor.Q5_1, "iq4_nl": tensor.IQ4_NL,
}

// Parse reads a cache spec (see the package doc): "f32", "f16", "q8_0",
// "q4_0", "kivi", "kivi:k2v2", "kivi:k4v4:g32:r128", ….
func Parse(s string) (*Spec, error) {
	head, innerSpec, plus := strings.Cut(s, "+")
	name, rest, _ := strings.Cut(head, ":")
	if n := strings.ToLower(name); n == "sink" || n == "h2o" || n == "snapkv" || n == "ems" {
		e, err := parseEvict(s, n, rest)
		if err != nil {
			return nil, err
		}
		inner := &Spec{Kind: KindFloat, Type: tensor.F32}
		if plus {
			if inner, err = parseCache(innerSpec); err != nil {
				return nil, fmt.Errorf("kv spec %q: %w", s, err)
			}
		}
		inner.Evict = e
		return inner, nil
	}
	if plus {
		return nil, fmt.Errorf("kv spec %q: only sink, h2o, snapkv and ems take a +CACHE after them", s)
	}
	return parseCache(s)
}

// parseCache reads a spec without eviction.
func parseCache(s string) (*Spec, error) {
	name, rest, _ := strings.Cut(s, ":")
	name = strings.ToLower(name)
	switch {
	case name == "f32" || name == "":
		if rest != "" || name == "" {
			return nil, fmt.Errorf("kv spec %q: want f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], …", s)
		}
		return &Spec{Kind: KindFloat, Type: tensor.F32}, nil
	case name == "kivi":
		return parseKIVI(s, rest)
	case name == "cachegen":
		return parseCacheGen(s, rest)
	case name == "pca":
		return parsePCA(s, rest)
	case name == "zip" || name == "stair":
		return parseTQ(s, name, rest)
	case name == "gear":
		return parseGEAR(s, rest)
	case name == "rq":
		return parseRQ(s, rest)
	}
	dt, ok := blockTypes[name]
	if !ok {
		return nil, fmt.Errorf("kv spec %q: unknown cache %q (want f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, kivi, pca, cachegen, zip, stair, gear or rq)", s, name)
	}
	if rest != "" {
		return nil, fmt.Errorf("kv spec %q: %s takes no parameters", s, name)
	}
	return &Spec{Kind: KindBlock, Type: dt}, nil
}

// parseKIVI reads KIVI's colon-separated fields, each at most once.
func parseKIVI(s, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindKIVI, KBits: DefaultKIVIBits, VBits: DefaultKIVIBits, Group: DefaultKIVIGroup, Residual: DefaultKIVIResidual}
	seen := map[byte]bool{}
	if rest != "" {
		for _, f := range strings.Split(rest, ":") {
			if f == "" {
				return nil, fmt.Errorf("kv spec %q: empty field", s)
			}
			key := f[0]
			if key == 'v' {
				key = 'k' // kBvB is one field
			}
			if seen[key] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen[key] = true
			var err error
			switch f[0] {
			case 'k':
				kb, vb, ok := strings.Cut(f[1:], "v")
				if !ok {
					return nil, fmt.Errorf("kv spec %q: bits field %q: want kBvB, as k2v2", s, f)
				}
				if sp.KBits, err = parseBits(kb); err == nil {
					sp.VBits, err = parseBits(vb)
				}
			case 'g':
				sp.Group, err = parseInt(f[1:], 1, 1<<16)
			case 'r':
				sp.Residual, err = parseInt(f[1:], 0, 1<<20)
			default:
				err = fmt.Errorf("unknown field (want kBvB, gG or rR)")
			}
			if err != nil {
				return nil, fmt.Errorf("kv spec %q: field %q: %w", s, f, err)
			}
		}
	}
	if sp.Residual%sp.Group != 0 {
		return nil, fmt.Errorf("kv spec %q: residual %d is not a multiple of the group %d", s, sp.Residual, sp.Group)
	}
	return sp, nil
}

// parsePCA reads "[kF][:vF][:bB[/C]][:sS]:FILE" after "pca:": the fractions of key and
// value channels kept (default DefaultPCAFraction each), then the basis
// file, which it reads.
func parsePCA(s, rest string) (*Spec, error) {
	sp := &Spec{Kind: KindPCA, PCAK: DefaultPCAFraction, PCAV: DefaultPCAFraction}
	fields := strings.Split(rest, ":")
	seen := map[byte]bool{}
	i := 0
	for ; i < len(fields); i++ {
		f := fields[i]
		if f == "l" && i+1 < len(fields) {
			if seen['l'] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen['l'], sp.PCALloyd = true, true
			continue
		}
		if len(f) >= 2 && f[0] == 'a' {
			var offs []float64
			for _, x := range strings.Split(f[1:], "/") {
				y, err := strconv.ParseFloat(x, 64)
				if err != nil || math.IsNaN(y) || math.Abs(y) > 8 {
					offs = nil
					break
				}
				offs = append(offs, y)
			}
			if offs == nil {
				break // not offsets: the file name starts here
			}
			if seen['a'] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen['a'], sp.PCALayerBits = true, offs
			continue
		}
		if len(f) < 2 || (f[0] != 'k' && f[0] != 'v' && f[0] != 'b' && f[0] != 's') {
			break
		}
		if f[0] == 's' {
			n, err := strconv.Atoi(f[1:])
			if err != nil {
				break // not a count: the file name starts here
			}
			if seen['s'] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen['s'] = true
			if n < 0 || n > wsChunk {
				return nil, fmt.Errorf("kv spec %q: field %q: want 0 to %d sink positions", s, f, wsChunk)
			}
			sp.PCASinks = n
			continue
		}
		if f[0] == 'b' {
			kb, vb, two := strings.Cut(f[1:], "/")
			x, err := strconv.ParseFloat(kb, 64)
			y := x
			if err == nil && two {
				y, err = strconv.ParseFloat(vb, 64)
			}
			if err != nil {
				break // not bits: the file name starts here
			}
			if seen['b'] {
				return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
			}
			seen['b'] = true
			if !(x >= 1 && x <= 8 && y >= 1 && y <= 8) {
				return nil, fmt.Errorf("kv spec %q: field %q: want 1 to 8 bits per channel", s, f)
			}
			sp.PCABits, sp.PCAVBits = x, y
			continue
		}
		x, err := strconv.ParseFloat(f[1:], 64)
		if err != nil {
			break // not a fraction: the file name starts here
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("kv spec %q: field %q given twice", s, f)
		}
		seen[f[0]] = true
		if !(x > 0 && x <= 1) {
			return nil, fmt.Errorf("kv spec %q: field %q: want a fraction of the channels in (0, 1]", s, f)
		}
		if f[0] == 'k' {
			sp.PCAK = x
		} else {
			sp.PCAV = x
		}
	}
	sp.PCAFile = strings.Join(fields[i:], ":")
	if sp.PCALayerBits != nil && sp.PCABits == 0 {
		return nil, fmt.Errorf("kv spec %q: per-layer bit offsets (a…) need bB", s)
	}
	if sp.PCAFile == "" {
		return nil, fmt.Errorf("kv spec %q: want pca[:kF][:vF]:FILE, FILE a basis written by terse kvfit", s)
	}
	b, err := ReadPCABasis(sp.PCAFile)
	if err != nil {
		return nil, fmt.Errorf("kv spec %q: %w", s, err)
	}
	sp.pca = b
	return sp, nil
}

func parseBits(s string) (int, error) {
	b, err := parseInt(s, 1, 8)
	if err != nil {
		return 0, err
	}
	if b != 2 && b != 4 && b != 8 {
		return 0, fmt.Errorf("%d bits: want 2, 4 or 8", b)
	}
	return b, nil
}

func parseInt(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not an integer in %d…%d", s, lo, hi)
	}
	return n, nil
}

// String is the spec in full, as Parse reads it back.
func (sp *Spec) String() string {
	if sp.Evict != nil {
		c := *sp
		c.Evict = nil
		return sp.Evict.String() + "+" + c.String()
	}
	switch sp.Kind {
	case KindFloat:
		return "f32"
	case KindBlock:
		return strings.ToLower(sp.Type.String())
	case KindCacheGen:
		return cacheGenString(sp)
	case KindZip, KindStair:
		return tqString(sp)
	case KindGEAR:
		return gearString(sp)
	case KindRQ:
		return rqString(sp)
	case KindPCA:
		b := ""
		if sp.PCABits > 0 {
			b = ":b" + specNum(sp.PCABits)
			if sp.PCAVBits != sp.PCABits {
				b += "/" + specNum(sp.PCAVBits)
			}
		}
		if sp.PCASinks > 0 {
			b += fmt.Sprintf(":s%d", sp.PCASinks)
		}
		if sp.PCALayerBits != nil {
			b += ":a"
			for i, x := range sp.PCALayerBits {
				if i > 0 {
					b += "/"
				}
				b += specNum(x)
			}
		}
		if sp.PCALloyd {
			b += ":l"
		}
		return fmt.Sprintf("pca:k%s:v%s%s:%s", specNum(sp.PCAK), specNum(sp.PCAV), b, sp.PCAFile)
	}
	return fmt.Sprintf("kivi:k%dv%d:g%d:r%d", sp.KBits, sp.VBits, sp.Group, sp.Residual)
}

// New makes an empty cache of the spec for positions positions of every
// layer of cfg. It fails when the model's shape does not suit the cache
// (a head dimension that is not a whole number of blocks or groups).
func (sp *Spec) New(cfg *model.Config, positions int) (model.KVCache, error) {
	if positions < 1 {
		return nil, fmt.Errorf("kv %s: capacity of %d positions", sp, positions)
	}
	if sp.Evict != nil {
		c := *sp
		c.Evict = nil
		inner, err := c.New(cfg, positions)
		if err != nil {
			return nil, err
		}
		return newEvictCache(inner, cfg, *sp.Evict), nil
	}
	switch sp.Kind {
	case KindFloat:
		return model.NewFloatCache(cfg, positions), nil
	case KindBlock:
		return newBlockCache(cfg, positions, sp.Type)
	case KindKIVI:
		return newKIVICache(cfg, positions, sp)
	case KindCacheGen:
		return newCacheGenCache(cfg, positions, sp)
	case KindPCA:
		return newPCACache(cfg, positions, sp)
	case KindZip:
		return newZipCache(cfg, positions, sp)
	case KindStair:
		return newStairCache(cfg, positions, sp)
	case KindGEAR:
		return newGEARCache(cfg, positions, sp)
	case KindRQ:
		return newRQCache(cfg, positions, sp)
	}
	return nil, fmt.Errorf("kv %s: unknown kind %d", sp, sp.Kind)
}

// Elements is the number of key and value elements a cache of positions
// positions holds for cfg: positions · Σ_layers 2 · KV width.
func Elements(cfg *model.Config, positions int) int64 {
	var n int64
	for l := 0; l < cfg.NLayers; l++ {
		n += 2 * int64(cfg.KVDim(l))
	}
	return n * int64(positions)
}

// BitsPerElement is c's bytes in bits per key or value element of its
// capacity for cfg.
func BitsPerElement(c model.KVCache, cfg *model.Config) float64 {
	return float64(c.Bytes()) * 8 / float64(Elements(cfg, c.Cap()))
}

// Factory returns a function making empty caches of the spec for cfg, of a
// given capacity (model.Runner.NewCache, bench.Options.NewCache).
func (sp *Spec) Factory(cfg *model.Config) func(positions int) (model.KVCache, error) {
	return func(positions int) (model.KVCache, error) { return sp.New(cfg, positions) }
}

// Size is what a cache of the spec for positions positions of cfg holds:
// its bits per key or value element and its bytes per position, everything
// counted. It fails where New would.
func (sp *Spec) Size(cfg *model.Config, positions int) (bitsPerElement, bytesPerToken float64, err error) {
	c, err := sp.New(cfg, positions)
	if err != nil {
		return 0, 0, err
	}
	return BitsPerElement(c, cfg), float64(c.Bytes()) / float64(positions), nil
}

// specNum writes a number of a spec string in plain decimal. Spec strings
// never use exponents: the '+' of "1e+06" is the composition operator.
func specNum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
