package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// ErrCorrupt is returned (wrapped, with the store and the key) by Get when
// the bytes a backend holds under a key are not one whole, intact frame: a
// torn or truncated write, a flipped bit, or a value some other program put
// there. The damaged bytes are never returned as data.
var ErrCorrupt = errors.New("store: corrupt blob")

// The frame every persistent backend (file, redis, s3) wraps a blob in:
//
//	offset  size  field
//	0       3     magic "tsb"
//	3       1     version (1)
//	4       8     payload length in bytes, little-endian uint64
//	12      4     CRC-32C (Castagnoli) of the payload, little-endian
//	16      n     payload
//
// A frame is valid only when it is exactly 16+length bytes long, so a
// truncated value and one with trailing bytes are both rejected.
const (
	frameMagic   = "tsb"
	frameVersion = 1
	frameHeader  = 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeFrame returns payload wrapped in a version-1 frame.
func encodeFrame(payload []byte) []byte {
	b := make([]byte, frameHeader+len(payload))
	copy(b, frameMagic)
	b[3] = frameVersion
	binary.LittleEndian.PutUint64(b[4:], uint64(len(payload)))
	binary.LittleEndian.PutUint32(b[12:], crc32.Checksum(payload, castagnoli))
	copy(b[frameHeader:], payload)
	return b
}

// decodeFrame checks a frame and returns its payload, a subslice of b. Every
// failure wraps ErrCorrupt.
func decodeFrame(b []byte) ([]byte, error) {
	if len(b) < frameHeader {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte frame header", ErrCorrupt, len(b), frameHeader)
	}
	if string(b[:3]) != frameMagic {
		return nil, fmt.Errorf("%w: bad frame magic %q (want %q)", ErrCorrupt, b[:3], frameMagic)
	}
	if b[3] != frameVersion {
		return nil, fmt.Errorf("%w: frame version %d (this build reads %d)", ErrCorrupt, b[3], frameVersion)
	}
	n := binary.LittleEndian.Uint64(b[4:])
	if have := uint64(len(b) - frameHeader); n != have {
		return nil, fmt.Errorf("%w: frame says %d payload bytes, holds %d", ErrCorrupt, n, have)
	}
	payload := b[frameHeader:]
	want := binary.LittleEndian.Uint32(b[12:])
	if got := crc32.Checksum(payload, castagnoli); got != want {
		return nil, fmt.Errorf("%w: payload CRC-32C %08x, frame says %08x", ErrCorrupt, got, want)
	}
	return payload, nil
}
