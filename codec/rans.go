package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// The rANS coder (Duda 2013, "Asymmetric numeral systems: entropy coding
// combining speed of Huffman coding with compression rate of arithmetic
// coding"): a 32-bit state renormalized a byte at a time, static
// probabilities quantized to ProbBits bits.
const (
	// ProbBits is the precision of a Table's probabilities: the
	// frequencies of a table's symbols sum to 1<<ProbBits.
	ProbBits = 12
	// MaxSymbols is the largest alphabet a Table holds.
	MaxSymbols = 256

	probTotal = 1 << ProbBits
	ransLow   = 1 << 23 // the state lies in [ransLow, ransLow<<8)
)

// ErrCorrupt is wrapped by every error about a malformed rANS stream or
// table.
var ErrCorrupt = errors.New("corrupt stream")

// Table is a static probability model of an alphabet 0…Len()−1: each
// symbol's frequency out of 1<<ProbBits. A symbol of frequency 0 cannot be
// coded.
type Table struct {
	freq, cum []uint32
	slot      []uint8 // slot → symbol, for decoding
}

// NewTable quantizes symbol counts to a table: every symbol with a
// nonzero count gets a nonzero frequency, the frequencies sum to
// 1<<ProbBits. All counts 0 (or none) give an empty table, which codes
// nothing.
func NewTable(counts []uint64) (*Table, error) {
	if len(counts) > MaxSymbols {
		return nil, fmt.Errorf("rans table: %d symbols, at most %d", len(counts), MaxSymbols)
	}
	n := len(counts)
	for n > 0 && counts[n-1] == 0 {
		n--
	}
	var total uint64
	for _, c := range counts[:n] {
		total += c
	}
	t := &Table{freq: make([]uint32, n)}
	if total == 0 {
		return t, t.finish()
	}
	// Scale, give every used symbol at least 1, then move the rounding
	// difference onto the most frequent symbols.
	var sum int64
	big := 0
	for s, c := range counts[:n] {
		if c == 0 {
			continue
		}
		f := uint32(float64(c) * probTotal / float64(total))
		f = max(f, 1)
		t.freq[s] = f
		sum += int64(f)
		if c > counts[big] {
			big = s
		}
	}
	for sum != probTotal {
		if sum < probTotal {
			t.freq[big] += uint32(probTotal - sum)
			sum = probTotal
			break
		}
		// Too much: take from the largest frequencies above 1.
		s := 0
		for i, f := range t.freq {
			if f > t.freq[s] {
				s = i
			}
		}
		take := min(int64(t.freq[s]-1), sum-probTotal)
		t.freq[s] -= uint32(take)
		sum -= take
	}
	return t, t.finish()
}

// finish builds the cumulative frequencies and checks the total.
func (t *Table) finish() error {
	t.cum = make([]uint32, len(t.freq)+1)
	for s, f := range t.freq {
		t.cum[s+1] = t.cum[s] + f
	}
	if tot := t.cum[len(t.freq)]; tot != 0 && tot != probTotal {
		return fmt.Errorf("rans table: frequencies sum to %d, want %d: %w", tot, probTotal, ErrCorrupt)
	}
	t.slot = make([]uint8, probTotal)
	for s, f := range t.freq {
		for i := t.cum[s]; i < t.cum[s]+f; i++ {
			t.slot[i] = uint8(s)
		}
	}
	return nil
}

// Len is the size of the table's alphabet.
func (t *Table) Len() int { return len(t.freq) }

// Freq is symbol s's frequency out of 1<<ProbBits (0 outside the alphabet).
func (t *Table) Freq(s int) int {
	if s < 0 || s >= len(t.freq) {
		return 0
	}
	return int(t.freq[s])
}

// AppendTable appends t's serialized form to dst: the alphabet size as a
// uvarint, then each frequency as a uvarint.
func AppendTable(dst []byte, t *Table) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(t.freq)))
	for _, f := range t.freq {
		dst = binary.AppendUvarint(dst, uint64(f))
	}
	return dst
}

// ReadTable reads a table written by AppendTable.
func ReadTable(r io.ByteReader) (*Table, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("rans table: size: %w", eofCorrupt(err))
	}
	if n > MaxSymbols {
		return nil, fmt.Errorf("rans table: %d symbols, at most %d: %w", n, MaxSymbols, ErrCorrupt)
	}
	t := &Table{freq: make([]uint32, n)}
	var sum uint64
	for s := range t.freq {
		f, err := binary.ReadUvarint(r)
		if err != nil {
			return nil, fmt.Errorf("rans table: symbol %d: %w", s, eofCorrupt(err))
		}
		if sum += f; sum > probTotal {
			return nil, fmt.Errorf("rans table: frequencies exceed %d: %w", probTotal, ErrCorrupt)
		}
		t.freq[s] = uint32(f)
	}
	if n > 0 && sum != probTotal {
		return nil, fmt.Errorf("rans table: frequencies sum to %d, want %d: %w", sum, probTotal, ErrCorrupt)
	}
	return t, t.finish()
}

// eofCorrupt turns a premature end of input into ErrCorrupt.
func eofCorrupt(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("truncated: %w", ErrCorrupt)
	}
	return err
}

// Encoder collects symbols, each with the table it is coded under, and
// writes them as one rANS stream. rANS codes in reverse, so nothing is
// written before WriteTo.
type Encoder struct {
	syms []encSym
}

type encSym struct {
	t *Table
	s uint8
}

// Put adds symbol s under table t to the stream.
func (e *Encoder) Put(t *Table, s int) error {
	if t.Freq(s) == 0 {
		return fmt.Errorf("rans: symbol %d has no probability in a table of %d symbols", s, t.Len())
	}
	e.syms = append(e.syms, encSym{t, uint8(s)})
	return nil
}

// Len is the number of symbols put so far.
func (e *Encoder) Len() int { return len(e.syms) }

// Reset forgets every symbol put.
func (e *Encoder) Reset() { e.syms = e.syms[:0] }

// Append appends the stream of the symbols put so far to dst: 4 bytes of
// final state (big-endian) then the renormalization bytes, in the order
// the decoder reads them.
func (e *Encoder) Append(dst []byte) []byte {
	// Bytes come out last-first; build them reversed, then flip.
	start := len(dst)
	x := uint32(ransLow)
	for i := len(e.syms) - 1; i >= 0; i-- {
		es := e.syms[i]
		f, c := es.t.freq[es.s], es.t.cum[es.s]
		xmax := uint32((ransLow>>ProbBits)<<8) * f
		for x >= xmax {
			dst = append(dst, byte(x))
			x >>= 8
		}
		x = (x/f)<<ProbBits + x%f + c
	}
	dst = append(dst, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
	b := dst[start:]
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return dst
}

// WriteTo writes the stream of the symbols put so far to w.
func (e *Encoder) WriteTo(w io.Writer) (int64, error) {
	n, err := w.Write(e.Append(nil))
	return int64(n), err
}

// Decoder reads symbols from a rANS stream in the order they were put.
type Decoder struct {
	r io.ByteReader
	x uint32
}

// NewDecoder starts decoding the stream r holds.
func NewDecoder(r io.ByteReader) (*Decoder, error) {
	d := &Decoder{r: r}
	for i := 0; i < 4; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return nil, fmt.Errorf("rans: state: %w", eofCorrupt(err))
		}
		d.x = d.x<<8 | uint32(b)
	}
	if d.x < ransLow {
		return nil, fmt.Errorf("rans: initial state %#x below %#x: %w", d.x, ransLow, ErrCorrupt)
	}
	return d, nil
}

// Get decodes the next symbol, which was put under table t.
func (d *Decoder) Get(t *Table) (int, error) {
	if len(t.freq) == 0 {
		return 0, fmt.Errorf("rans: a symbol under an empty table: %w", ErrCorrupt)
	}
	m := d.x & (probTotal - 1)
	s := t.slot[m]
	d.x = t.freq[s]*(d.x>>ProbBits) + m - t.cum[s]
	for d.x < ransLow {
		b, err := d.r.ReadByte()
		if err != nil {
			return 0, fmt.Errorf("rans: %w", eofCorrupt(err))
		}
		d.x = d.x<<8 | uint32(b)
	}
	return int(s), nil
}

// Close checks that the stream ended where its encoder started: the state
// is back at its initial value. A stream decoded with other tables or
// another symbol count, or corrupted, fails here (most of the time; the
// container's checksum catches the rest).
func (d *Decoder) Close() error {
	if d.x != ransLow {
		return fmt.Errorf("rans: final state %#x, want %#x: %w", d.x, ransLow, ErrCorrupt)
	}
	return nil
}
