package prefix

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/terse-llm/terse/model"
)

// The raw block format, version 1, all integers little-endian:
//
//	magic    "TKVB"            4 bytes
//	version  uint16 = 1
//	reserved uint16 = 0
//	start    uint32            position of the first token
//	len      uint32            positions
//	layers   uint32
//	kvdim    layers × uint32   per layer, the width of a key (and a value)
//	payload  per layer: K then V, len × kvdim float32 each, position-major
//	crc      uint32            CRC-32C (Castagnoli) of everything before it
const (
	rawMagic   = "TKVB"
	rawVersion = 1
	rawHeader  = 4 + 2 + 2 + 4 + 4 + 4

	// Bounds a decoder accepts, so that a corrupt header cannot ask for
	// absurd allocations (the total size must also match the blob's).
	maxLayers = 1 << 12
	maxKVDim  = 1 << 16
	maxLen    = 1 << 24
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// EncodeRaw serializes a block in the raw float32 format (the default
// Options.Encode): exact, 4 bytes per float plus a small header.
func EncodeRaw(b *model.KVBlock) ([]byte, error) {
	if b.Start < 0 || b.Len < 0 || b.Start > math.MaxUint32 || b.Len > maxLen {
		return nil, fmt.Errorf("kv block raw: start %d, length %d", b.Start, b.Len)
	}
	if len(b.KVDim) != len(b.K) || len(b.KVDim) != len(b.V) || len(b.KVDim) > maxLayers {
		return nil, fmt.Errorf("kv block raw: %d widths for %d and %d layers", len(b.KVDim), len(b.K), len(b.V))
	}
	size := rawHeader + 4*len(b.KVDim) + 4
	for l, d := range b.KVDim {
		if d <= 0 || d > maxKVDim || len(b.K[l]) != b.Len*d || len(b.V[l]) != b.Len*d {
			return nil, fmt.Errorf("kv block raw: layer %d: width %d, %d and %d floats for %d positions", l, d, len(b.K[l]), len(b.V[l]), b.Len)
		}
		size += 8 * b.Len * d
	}
	out := make([]byte, 0, size)
	out = append(out, rawMagic...)
	out = binary.LittleEndian.AppendUint16(out, rawVersion)
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = binary.LittleEndian.AppendUint32(out, uint32(b.Start))
	out = binary.LittleEndian.AppendUint32(out, uint32(b.Len))
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b.KVDim)))
	for _, d := range b.KVDim {
		out = binary.LittleEndian.AppendUint32(out, uint32(d))
	}
	for l := range b.K {
		for _, f := range b.K[l] {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
		for _, f := range b.V[l] {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(f))
		}
	}
	return binary.LittleEndian.AppendUint32(out, crc32.Checksum(out, castagnoli)), nil
}

// errCorrupt is wrapped by every DecodeRaw error.
var errCorrupt = errors.New("corrupt kv block")

// DecodeRaw parses a block written by EncodeRaw (the default
// Options.Decode). A blob that is truncated, padded, of another version or
// whose checksum fails is an error, never a panic.
func DecodeRaw(data []byte) (*model.KVBlock, error) {
	fail := func(format string, a ...any) (*model.KVBlock, error) {
		return nil, fmt.Errorf("kv block raw: %w: "+format, append([]any{errCorrupt}, a...)...)
	}
	if len(data) < rawHeader+4 {
		return fail("%d bytes, shorter than the header", len(data))
	}
	if string(data[:4]) != rawMagic {
		return fail("magic %q, want %q", data[:4], rawMagic)
	}
	le := binary.LittleEndian
	if v := le.Uint16(data[4:]); v != rawVersion {
		return fail("version %d, this build reads %d", v, rawVersion)
	}
	start, n, layers := le.Uint32(data[8:]), le.Uint32(data[12:]), le.Uint32(data[16:])
	if n > maxLen || layers > maxLayers || start > math.MaxInt32 {
		return fail("start %d, %d positions, %d layers", start, n, layers)
	}
	if int64(len(data)) < rawHeader+4*int64(layers)+4 {
		return fail("%d bytes for the widths of %d layers", len(data), layers)
	}
	size := int64(rawHeader + 4*layers + 4)
	dims := make([]int, layers)
	for l := range dims {
		d := le.Uint32(data[rawHeader+4*l:])
		if d == 0 || d > maxKVDim {
			return fail("layer %d: width %d", l, d)
		}
		dims[l] = int(d)
		size += 8 * int64(n) * int64(d)
	}
	if size != int64(len(data)) {
		return fail("%d bytes, the header describes %d", len(data), size)
	}
	body := len(data) - 4
	if got, want := crc32.Checksum(data[:body], castagnoli), le.Uint32(data[body:]); got != want {
		return fail("checksum %08x, stored %08x", got, want)
	}
	b := &model.KVBlock{Start: int(start), Len: int(n), KVDim: dims,
		K: make([][]float32, layers), V: make([][]float32, layers)}
	off := rawHeader + 4*int(layers)
	read := func(m int) []float32 {
		f := make([]float32, m)
		for i := range f {
			f[i] = math.Float32frombits(le.Uint32(data[off+4*i:]))
		}
		off += 4 * m
		return f
	}
	for l, d := range dims {
		b.K[l] = read(int(n) * d)
		b.V[l] = read(int(n) * d)
	}
	return b, nil
}
