package eval

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// Base-logits file layout (all integers little-endian; version 1):
//
//	header:
//	  magic     [8]byte  "TERSELGT"
//	  version   uint32   1
//	  vocab     uint32   vocabulary size
//	  ctx       uint32   window length
//	  protocol  uint32   1 = all, 2 = llamacpp
//	  bos       int32    id put first in each llamacpp window, −1 for none
//	  windows   uint32   number of windows
//	  topK      uint32   most entries per position (≤ vocab, ≤ 65536)
//	  samples   uint32   tail samples per position (≤ 65536)
//	  ntok      uint64   windows·ctx
//	  tokens    ntok × uint32, the stream the windows were cut from
//	  crc       uint32   CRC-32C of every header byte before it
//	then per window, one record per scored position (ctx−1−first of them):
//	  n         uvarint  entries stored, 1 … topK
//	  top1      uvarint  argmax id of the base row
//	  lpTarget  float32  base log-prob of the actual next token
//	  lpTail    float32  log of the base mass outside the stored ids (−Inf: none)
//	  lpMax     float32  largest stored log-prob
//	  step      float32  quantization step, ≥ 0
//	  n × { gap uvarint, u uint16 }  ids ascending (first gap is the id,
//	            then id − previous id − 1); log-prob = lpMax − u·step
//	  m         uvarint  tail samples, 0 … samples (0 when the tail is empty)
//	  m × { delta uvarint, u uint16 }  ids drawn from the base's tail
//	            distribution by systematic sampling, non-decreasing (first
//	            delta is the id, then id − previous id); log-prob as above
//	and after each window's records:
//	  crc       uint32   CRC-32C of the window's record bytes
//
// The file ends after the last window; trailing bytes are an error.

const (
	logitsMagic   = "TERSELGT"
	logitsVersion = 1
	maxTopK       = 1 << 16
	maxSamples    = 1 << 16
	maxFileVocab  = 1 << 24
	maxFileCtx    = 1 << 20
	maxFileTokens = 1 << 31
	tokenChunk    = 1 << 16
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// LogitsHeader describes a base-logits file: the run that wrote it and the
// tokens it was computed on.
type LogitsHeader struct {
	Vocab    int
	Ctx      int
	Protocol Protocol
	BOS      int
	Windows  int
	TopK     int
	Samples  int   // tail samples per position
	Tokens   []int // Windows·Ctx tokens, the start of the evaluated stream
}

func (h *LogitsHeader) first() int {
	if h.Protocol == ProtocolLlamaCpp {
		return h.Ctx / 2
	}
	return 0
}

// logitsWriter writes a base-logits file one row at a time.
type logitsWriter struct {
	bw    *bufio.Writer
	hdr   LogitsHeader
	crc   uint32
	heap  []int32 // indices of the best logits so far; root is the worst
	stamp []uint32
	gen   uint32
	buf   []byte
	samp  []int32
	nrow  uint64 // rows written, seeds the tail sampling
}

func newLogitsWriter(w io.Writer, h LogitsHeader) (*logitsWriter, error) {
	lw := &logitsWriter{
		bw:    bufio.NewWriterSize(w, 1<<16),
		hdr:   h,
		heap:  make([]int32, 0, h.TopK),
		stamp: make([]uint32, h.Vocab),
	}
	b := make([]byte, 0, 48)
	b = append(b, logitsMagic...)
	b = binary.LittleEndian.AppendUint32(b, logitsVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Vocab))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Ctx))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Protocol))
	b = binary.LittleEndian.AppendUint32(b, uint32(int32(h.BOS)))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Windows))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.TopK))
	b = binary.LittleEndian.AppendUint32(b, uint32(h.Samples))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(h.Tokens)))
	if err := lw.put(b); err != nil {
		return nil, err
	}
	for i := 0; i < len(h.Tokens); i += tokenChunk {
		b = b[:0]
		for _, t := range h.Tokens[i:min(i+tokenChunk, len(h.Tokens))] {
			b = binary.LittleEndian.AppendUint32(b, uint32(t))
		}
		if err := lw.put(b); err != nil {
			return nil, err
		}
	}
	return lw, lw.endSection()
}

// put writes b and adds it to the running checksum.
func (lw *logitsWriter) put(b []byte) error {
	lw.crc = crc32.Update(lw.crc, castagnoli, b)
	_, err := lw.bw.Write(b)
	return err
}

// endSection writes the running checksum and starts a new one.
func (lw *logitsWriter) endSection() error {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], lw.crc)
	lw.crc = 0
	_, err := lw.bw.Write(b[:])
	return err
}

func (lw *logitsWriter) endWindow() error { return lw.endSection() }

func (lw *logitsWriter) close() error { return lw.bw.Flush() }

// worse reports whether index a holds a worse entry than b (smaller logit,
// or equal logit and larger id).
func worse(row []float32, a, b int32) bool {
	return row[a] < row[b] || (row[a] == row[b] && a > b)
}

func (lw *logitsWriter) siftDown(row []float32, i int) {
	h := lw.heap
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && worse(row, h[c+1], h[c]) {
			c++
		}
		if !worse(row, h[c], h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

func (lw *logitsWriter) siftUp(row []float32, i int) {
	h := lw.heap
	for i > 0 {
		p := (i - 1) / 2
		if !worse(row, h[i], h[p]) {
			return
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

// writeRow stores one base row: row are its logits, exps[i] = exp(row[i]−mx),
// sum = Σ exps, lse its log-sum-exp, am its argmax and target the next token.
func (lw *logitsWriter) writeRow(row []float32, exps []float64, mx float32, sum, lse float64, am, target int) error {
	k := lw.hdr.TopK
	h := lw.heap[:0]
	for i := range row {
		switch {
		case len(h) < k:
			h = append(h, int32(i))
			lw.heap = h
			lw.siftUp(row, len(h)-1)
		case row[i] > row[h[0]]:
			h[0] = int32(i)
			lw.siftDown(row, 0)
		}
	}
	lw.heap = h
	ids := h // reorder in place: ascending ids
	slices.Sort(ids)

	lw.gen++
	if lw.gen == 0 {
		clear(lw.stamp)
		lw.gen = 1
	}
	lpMin := math.Inf(1)
	for _, id := range ids {
		lw.stamp[id] = lw.gen
		lpMin = min(lpMin, float64(row[id])-lse)
	}
	var tail float64
	for i, e := range exps[:len(row)] {
		if lw.stamp[i] != lw.gen {
			tail += e
		}
	}
	lpTail := math.Inf(-1)
	if tail > 0 {
		lpTail = math.Log(tail / sum)
	}
	// Systematic sample of the tail: the s-th draw is the id where the
	// running tail mass passes (s+U)/S of the total, U uniform per row.
	samp := lw.samp[:0]
	if S := lw.hdr.Samples; tail > 0 && S > 0 {
		lw.nrow++
		u := float64(splitmix(lw.nrow)>>11) / (1 << 53)
		stepMass := tail / float64(S)
		next := u * stepMass
		var acc float64
		last := int32(-1)
		for i, e := range exps[:len(row)] {
			if lw.stamp[i] == lw.gen {
				continue
			}
			last = int32(i)
			acc += e
			for len(samp) < S && acc > next {
				samp = append(samp, int32(i))
				next = (float64(len(samp)) + u) * stepMass
			}
		}
		for len(samp) < S { // rounding left the last draws short
			samp = append(samp, last)
		}
		for _, id := range samp {
			lpMin = min(lpMin, float64(row[id])-lse)
		}
	}
	lw.samp = samp
	lpMax := float32(float64(mx) - lse)
	step := float32(max(0, (float64(lpMax)-lpMin)/65535))

	b := lw.buf[:0]
	b = binary.AppendUvarint(b, uint64(len(ids)))
	b = binary.AppendUvarint(b, uint64(am))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(float64(row[target])-lse)))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(lpTail)))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(lpMax))
	b = binary.LittleEndian.AppendUint32(b, math.Float32bits(step))
	quant := func(id int32) uint16 {
		if step == 0 {
			return 0
		}
		q := math.Round((float64(lpMax) - (float64(row[id]) - lse)) / float64(step))
		return uint16(min(max(q, 0), 65535))
	}
	prev := int32(-1)
	for _, id := range ids {
		b = binary.AppendUvarint(b, uint64(id-prev-1))
		b = binary.LittleEndian.AppendUint16(b, quant(id))
		prev = id
	}
	b = binary.AppendUvarint(b, uint64(len(samp)))
	prev = 0
	for _, id := range samp {
		b = binary.AppendUvarint(b, uint64(id-prev))
		b = binary.LittleEndian.AppendUint16(b, quant(id))
		prev = id
	}
	lw.buf = b
	return lw.put(b)
}

// baseRow is one position's base distribution as read from a file, with
// log-probs renormalised over the stored ids and the tail.
type baseRow struct {
	ids      []int
	lp       []float64
	sids     []int     // tail samples
	slp      []float64 // their log-probs
	lpTail   float64
	lpTarget float64
	top1     int
}

// LogitsReader reads a base-logits file: NewLogitsReader reads and checks the
// header; Evaluate then streams the rows window by window.
type LogitsReader struct {
	name    string
	br      *bufio.Reader
	hdr     LogitsHeader
	rowBuf  []byte // bytes of the current row, for the checksum
	crc     uint32
	rows    int // rows read in the current window
	windows int // windows fully read
}

// NewLogitsReader reads and validates the header of a base-logits file from
// r; name (a file name) prefixes its errors. Allocation is bounded by the
// bytes actually present, whatever the header claims.
func NewLogitsReader(r io.Reader, name string) (*LogitsReader, error) {
	if name == "" {
		name = "base logits"
	}
	lr := &LogitsReader{name: name, br: bufio.NewReaderSize(r, 1<<16)}
	if err := lr.readHeader(); err != nil {
		return nil, err
	}
	return lr, nil
}

// Header returns the file's header.
func (lr *LogitsReader) Header() LogitsHeader { return lr.hdr }

func (lr *LogitsReader) errorf(format string, a ...any) error {
	return fmt.Errorf("%s: "+format, append([]any{lr.name}, a...)...)
}

// full reads len(b) bytes into b and the checksum.
func (lr *LogitsReader) full(b []byte, what string) error {
	if _, err := io.ReadFull(lr.br, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return lr.errorf("truncated in %s", what)
		}
		return lr.errorf("reading %s: %w", what, err)
	}
	lr.crc = crc32.Update(lr.crc, castagnoli, b)
	return nil
}

func (lr *LogitsReader) readHeader() error {
	var b [48]byte
	if err := lr.full(b[:8], "header"); err != nil {
		return err
	}
	if string(b[:8]) != logitsMagic {
		return lr.errorf("not a terse base-logits file (bad magic %q)", b[:8])
	}
	if err := lr.full(b[8:48], "header"); err != nil {
		return err
	}
	le := binary.LittleEndian
	if v := le.Uint32(b[8:]); v != logitsVersion {
		return lr.errorf("unsupported version %d (want %d)", v, logitsVersion)
	}
	h := &lr.hdr
	vocab, ctx, proto := le.Uint32(b[12:]), le.Uint32(b[16:]), le.Uint32(b[20:])
	bos, windows, topK, samples := int32(le.Uint32(b[24:])), le.Uint32(b[28:]), le.Uint32(b[32:]), le.Uint32(b[36:])
	ntok := le.Uint64(b[40:])
	switch {
	case vocab == 0 || vocab > maxFileVocab:
		return lr.errorf("vocabulary size %d out of range", vocab)
	case ctx < 2 || ctx > maxFileCtx:
		return lr.errorf("context %d out of range", ctx)
	case proto != uint32(ProtocolAll) && proto != uint32(ProtocolLlamaCpp):
		return lr.errorf("unknown protocol %d", proto)
	case bos < -1 || int64(bos) >= int64(vocab):
		return lr.errorf("BOS id %d out of range", bos)
	case windows == 0 || uint64(windows)*uint64(ctx) > maxFileTokens:
		return lr.errorf("window count %d out of range", windows)
	case topK == 0 || topK > vocab || topK > maxTopK:
		return lr.errorf("top-K %d out of range", topK)
	case samples > maxSamples:
		return lr.errorf("tail sample count %d out of range", samples)
	case ntok != uint64(windows)*uint64(ctx):
		return lr.errorf("token count %d is not %d windows × %d", ntok, windows, ctx)
	}
	h.Vocab, h.Ctx, h.Protocol, h.BOS = int(vocab), int(ctx), Protocol(proto), int(bos)
	h.Windows, h.TopK, h.Samples = int(windows), int(topK), int(samples)
	if h.Protocol == ProtocolLlamaCpp && ctx < 3 {
		return lr.errorf("context %d too short for the llama.cpp protocol", ctx)
	}
	// Read the tokens in chunks so a lying header cannot make us allocate
	// more than the file holds.
	buf := make([]byte, 4*min(int(ntok), tokenChunk))
	h.Tokens = make([]int, 0, min(int(ntok), tokenChunk))
	for left := int(ntok); left > 0; {
		n := min(left, tokenChunk)
		if err := lr.full(buf[:4*n], "tokens"); err != nil {
			return err
		}
		for i := 0; i < n; i++ {
			t := le.Uint32(buf[4*i:])
			if t >= vocab {
				return lr.errorf("token %d at position %d outside the vocabulary of %d", t, len(h.Tokens), vocab)
			}
			h.Tokens = append(h.Tokens, int(t))
		}
		left -= n
	}
	return lr.checkSection("header")
}

// checkSection reads a stored checksum and compares it with the running one.
func (lr *LogitsReader) checkSection(what string) error {
	want := lr.crc
	var b [4]byte
	if err := lr.full(b[:], what+" checksum"); err != nil {
		return err
	}
	lr.crc = 0
	if got := binary.LittleEndian.Uint32(b[:]); got != want {
		return lr.errorf("%s checksum mismatch (stored %08x, computed %08x): file is corrupt", what, got, want)
	}
	return nil
}

// readByte implements io.ByteReader for binary.ReadUvarint, collecting the
// bytes of the current row for its checksum.
type rowByteReader struct{ lr *LogitsReader }

func (r rowByteReader) ReadByte() (byte, error) {
	c, err := r.lr.br.ReadByte()
	if err == nil {
		r.lr.rowBuf = append(r.lr.rowBuf, c)
	}
	return c, err
}

func (lr *LogitsReader) rowBytes(n int) ([]byte, error) {
	start := len(lr.rowBuf)
	lr.rowBuf = slices.Grow(lr.rowBuf, n)[:start+n]
	_, err := io.ReadFull(lr.br, lr.rowBuf[start:])
	return lr.rowBuf[start:], err
}

// next reads the next row of the current window into b.
func (lr *LogitsReader) next(b *baseRow) error {
	per := lr.hdr.Ctx - 1 - lr.hdr.first()
	if lr.rows >= per {
		return lr.errorf("internal error: more than %d rows requested in window %d", per, lr.windows)
	}
	if err := lr.readRow(b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return lr.errorf("truncated in window %d, row %d", lr.windows, lr.rows)
		}
		return lr.errorf("window %d, row %d: %w", lr.windows, lr.rows, err)
	}
	lr.crc = crc32.Update(lr.crc, castagnoli, lr.rowBuf)
	lr.rows++
	return nil
}

func (lr *LogitsReader) readRow(b *baseRow) error {
	lr.rowBuf = lr.rowBuf[:0]
	h := &lr.hdr
	bytesR := rowByteReader{lr}
	n, err := binary.ReadUvarint(bytesR)
	if err != nil {
		return err
	}
	if n == 0 || n > uint64(h.TopK) {
		return fmt.Errorf("entry count %d out of range 1..%d", n, h.TopK)
	}
	top1, err := binary.ReadUvarint(bytesR)
	if err != nil {
		return err
	}
	if top1 >= uint64(h.Vocab) {
		return fmt.Errorf("top-1 id %d outside the vocabulary", top1)
	}
	fb, err := lr.rowBytes(16)
	if err != nil {
		return err
	}
	le := binary.LittleEndian
	lpTarget := float64(math.Float32frombits(le.Uint32(fb)))
	lpTail := float64(math.Float32frombits(le.Uint32(fb[4:])))
	lpMax := float64(math.Float32frombits(le.Uint32(fb[8:])))
	step := float64(math.Float32frombits(le.Uint32(fb[12:])))
	const slack = 1e-3 // log-probs are ≤ 0 up to rounding
	switch {
	case math.IsNaN(lpTarget) || math.IsInf(lpTarget, 0) || lpTarget > slack:
		return fmt.Errorf("bad target log-prob %g", lpTarget)
	case math.IsNaN(lpTail) || lpTail > slack:
		return fmt.Errorf("bad tail log-prob %g", lpTail)
	case math.IsNaN(lpMax) || math.IsInf(lpMax, 0) || lpMax > slack:
		return fmt.Errorf("bad maximum log-prob %g", lpMax)
	case math.IsNaN(step) || math.IsInf(step, 0) || step < 0:
		return fmt.Errorf("bad quantization step %g", step)
	}
	b.ids, b.lp = b.ids[:0], b.lp[:0]
	id := int64(-1)
	found := false
	for range n {
		gap, err := binary.ReadUvarint(bytesR)
		if err != nil {
			return err
		}
		if gap >= uint64(h.Vocab) || id+1+int64(gap) >= int64(h.Vocab) {
			return fmt.Errorf("id outside the vocabulary of %d", h.Vocab)
		}
		id += 1 + int64(gap)
		ub, err := lr.rowBytes(2)
		if err != nil {
			return err
		}
		b.ids = append(b.ids, int(id))
		b.lp = append(b.lp, lpMax-float64(le.Uint16(ub))*step)
		found = found || uint64(id) == top1
	}
	if !found {
		return fmt.Errorf("top-1 id %d is not among the stored ids", top1)
	}
	ns, err := binary.ReadUvarint(bytesR)
	if err != nil {
		return err
	}
	if ns > uint64(h.Samples) || (ns > 0 && math.IsInf(lpTail, -1)) {
		return fmt.Errorf("tail sample count %d out of range", ns)
	}
	b.sids, b.slp = b.sids[:0], b.slp[:0]
	id = 0
	for range ns {
		d, err := binary.ReadUvarint(bytesR)
		if err != nil {
			return err
		}
		if d >= uint64(h.Vocab) || id+int64(d) >= int64(h.Vocab) {
			return fmt.Errorf("tail sample id outside the vocabulary of %d", h.Vocab)
		}
		id += int64(d)
		ub, err := lr.rowBytes(2)
		if err != nil {
			return err
		}
		b.sids = append(b.sids, int(id))
		b.slp = append(b.slp, lpMax-float64(le.Uint16(ub))*step)
	}
	// Renormalise over the stored ids and the tail bin.
	m := lpMax
	if lpTail > m {
		m = lpTail
	}
	var z float64
	for _, v := range b.lp {
		z += math.Exp(v - m)
	}
	z += math.Exp(lpTail - m)
	logZ := m + math.Log(z)
	if math.IsNaN(logZ) || math.IsInf(logZ, 0) {
		return errors.New("stored distribution does not normalise")
	}
	for i := range b.lp {
		b.lp[i] -= logZ
	}
	for i := range b.slp {
		b.slp[i] -= logZ
	}
	b.lpTail = lpTail - logZ
	b.lpTarget = lpTarget
	b.top1 = int(top1)
	return nil
}

// endWindow checks the checksum that ends a window.
func (lr *LogitsReader) endWindow() error {
	if err := lr.checkSection(fmt.Sprintf("window %d", lr.windows)); err != nil {
		return err
	}
	lr.windows++
	lr.rows = 0
	return nil
}

// expectEOF reports an error unless the file ends here.
func (lr *LogitsReader) expectEOF() error {
	if _, err := lr.br.ReadByte(); err != io.EOF {
		if err != nil {
			return lr.errorf("reading past the last window: %w", err)
		}
		return lr.errorf("trailing data after %d windows", lr.hdr.Windows)
	}
	return nil
}

// planFor checks that the file fits a model of vocab ids and the options,
// and returns the stream and plan to evaluate.
func (lr *LogitsReader) planFor(stream []int, vocab int, opt Options) ([]int, plan, error) {
	h := &lr.hdr
	switch {
	case h.Vocab != vocab:
		return nil, plan{}, lr.errorf("computed for a vocabulary of %d, the model has %d", h.Vocab, vocab)
	case opt.Protocol != ProtocolDefault && opt.Protocol != h.Protocol:
		return nil, plan{}, lr.errorf("computed with protocol %v, %v requested", h.Protocol, opt.Protocol)
	case opt.Ctx != 0 && opt.Ctx != h.Ctx:
		return nil, plan{}, lr.errorf("computed with context %d, %d requested", h.Ctx, opt.Ctx)
	case opt.Windows > h.Windows:
		return nil, plan{}, lr.errorf("holds %d windows, %d requested", h.Windows, opt.Windows)
	}
	windows := opt.Windows
	if windows <= 0 {
		windows = h.Windows
	}
	n := windows * h.Ctx
	if stream == nil {
		stream = h.Tokens
	} else {
		if len(stream) < n {
			return nil, plan{}, lr.errorf("computed on %d tokens, the text gives only %d: not the same text", n, len(stream))
		}
		if i := firstDiff(stream[:n], h.Tokens[:n]); i >= 0 {
			return nil, plan{}, lr.errorf("computed on different tokens: position %d is %d in the file and %d in the text (another text or tokenizer?)", i, h.Tokens[i], stream[i])
		}
	}
	p, err := makePlan(h.Protocol, h.Ctx, windows, h.BOS, len(stream), opt.DataName)
	return stream, p, err
}

func firstDiff(a, b []int) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// readAll reads every row of the file, checking all of it; used by tests and
// the fuzz target.
func (lr *LogitsReader) readAll() error {
	var b baseRow
	per := lr.hdr.Ctx - 1 - lr.hdr.first()
	for w := 0; w < lr.hdr.Windows; w++ {
		for r := 0; r < per; r++ {
			if err := lr.next(&b); err != nil {
				return err
			}
		}
		if err := lr.endWindow(); err != nil {
			return err
		}
	}
	return lr.expectEOF()
}

// splitmix is splitmix64's output function, a seeded hash for sampling.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
