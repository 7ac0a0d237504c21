package codec

import "fmt"

// bitWriter packs values LSB-first into bytes: the raw extra bits of
// large symbols.
type bitWriter struct {
	buf  []byte
	acc  uint64
	nacc uint
}

// put appends the low n (≤ 56) bits of v.
func (w *bitWriter) put(v uint64, n uint) {
	w.acc |= (v & (1<<n - 1)) << w.nacc
	w.nacc += n
	for w.nacc >= 8 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc >>= 8
		w.nacc -= 8
	}
}

// bytes flushes the last partial byte (zero-padded) and returns the bits.
func (w *bitWriter) bytes() []byte {
	if w.nacc > 0 {
		w.buf = append(w.buf, byte(w.acc))
		w.acc, w.nacc = 0, 0
	}
	return w.buf
}

// bitReader reads what a bitWriter wrote.
type bitReader struct {
	buf  []byte
	pos  int
	acc  uint64
	nacc uint
}

// get reads n (≤ 56) bits.
func (r *bitReader) get(n uint) (uint64, error) {
	for r.nacc < n {
		if r.pos >= len(r.buf) {
			return 0, fmt.Errorf("raw bits: truncated: %w", ErrCorrupt)
		}
		r.acc |= uint64(r.buf[r.pos]) << r.nacc
		r.pos++
		r.nacc += 8
	}
	v := r.acc & (1<<n - 1)
	r.acc >>= n
	r.nacc -= n
	return v, nil
}

// done checks that every byte was read and the padding is zero.
func (r *bitReader) done() error {
	if r.pos != len(r.buf) || r.nacc >= 8 || r.acc != 0 {
		return fmt.Errorf("raw bits: %d bytes unread or nonzero padding: %w", len(r.buf)-r.pos, ErrCorrupt)
	}
	return nil
}
