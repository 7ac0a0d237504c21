package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// TestFrameLayout checks the frame's bytes against the documented layout and
// the CRC-32C check value every implementation of the Castagnoli CRC
// publishes: CRC-32C("123456789") = 0xE3069283.
func TestFrameLayout(t *testing.T) {
	f := encodeFrame([]byte("123456789"))
	want := []byte{'t', 's', 'b', 1, 9, 0, 0, 0, 0, 0, 0, 0, 0x83, 0x92, 0x06, 0xe3}
	want = append(want, "123456789"...)
	if !bytes.Equal(f, want) {
		t.Fatalf("frame\n got % x\nwant % x", f, want)
	}
	p, err := decodeFrame(f)
	if err != nil || string(p) != "123456789" {
		t.Fatalf("decode: %q, %v", p, err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 1 << 20} {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i*7 + n)
		}
		got, err := decodeFrame(encodeFrame(p))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: payload changed", n)
		}
	}
}

func TestFrameRejects(t *testing.T) {
	good := encodeFrame([]byte("a KV block"))
	mod := func(f func(b []byte) []byte) []byte {
		return f(append([]byte(nil), good...))
	}
	cases := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"header only part", good[:10]},
		{"truncated payload", good[:len(good)-1]},
		{"header without payload", good[:frameHeader]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"bad magic", mod(func(b []byte) []byte { b[0] = 'x'; return b })},
		{"future version", mod(func(b []byte) []byte { b[3] = 2; return b })},
		{"length too large", mod(func(b []byte) []byte { binary.LittleEndian.PutUint64(b[4:], 1<<63); return b })},
		{"payload bit flipped", mod(func(b []byte) []byte { b[frameHeader+3] ^= 0x10; return b })},
		{"crc bit flipped", mod(func(b []byte) []byte { b[12] ^= 1; return b })},
		{"not a frame", []byte("plain bytes someone else wrote here")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := decodeFrame(c.b)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %q, %v; want an error wrapping ErrCorrupt", p, err)
			}
			if p != nil {
				t.Fatalf("returned %d bytes of data with the error", len(p))
			}
		})
	}
}

// FuzzDecodeFrame: the parser never panics, and whatever it accepts is
// exactly the frame encodeFrame writes for the payload it returns.
func FuzzDecodeFrame(f *testing.F) {
	f.Add(encodeFrame(nil))
	f.Add(encodeFrame([]byte("123456789")))
	f.Add([]byte("tsb\x01"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeFrame(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(encodeFrame(p), b) {
			t.Fatalf("accepted % x, which is not the frame of its payload", b)
		}
	})
}
