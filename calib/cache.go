package calib

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math"
	"os"
	"path/filepath"

	"github.com/terse-llm/terse/internal/atomicfile"
)

// A Cache keeps the statistics of one layer-by-layer calibration on disk,
// one file per stage (block 0 … NLayers−1, then the head), so that later
// compressions of the same model on the same calibration tokens read them
// instead of running the model again (RunLayerwise with
// LayerwiseOptions.Cache).
//
// A stage file holds each distinct input's Σx², row count and the upper
// triangle of its XᵀX in float64, exactly as the Collector summed them, and
// which tensors share which input; it ends with the SHA-256 of everything
// before it. Files are written to a temporary name and renamed (package
// atomicfile), and the collection counts as cached only once a manifest
// naming every stage file and its size is written after the last one, so an
// interrupted run never leaves something a later run reads: it just runs
// again. A stage file that fails its checksum or does not parse is an
// error naming the file (never a silent recomputation: the statistics of
// the earlier stages may already be in use); delete the cache's folder to
// recompute.
//
// The statistics are those of the key's inputs (see NewCacheKey): the
// model's weights and configuration, the calibration tokens and the chunk
// length. The key does not cover terse's own code: a terse whose forward
// pass rounds differently would compute statistics that differ in the last
// bits from a cache made by another build. CacheVersion changes whenever
// the statistics or the file layout do.
type Cache struct {
	dir    string // the key's folder
	key    [32]byte
	stages int
}

// CacheVersion is the stage files' and manifest's format version.
const CacheVersion = 1

// cacheMagic opens every stage file.
const cacheMagic = "TERSECAL"

// manifestFile marks a complete cache.
const manifestFile = "manifest.json"

// CacheKey hashes the inputs a non-sequential calibration's statistics
// depend on. Feed it with its Write method (and the helpers) in a fixed
// order; Sum gives the key.
type CacheKey struct{ h hash.Hash }

// NewCacheKey starts a key.
func NewCacheKey() *CacheKey {
	k := &CacheKey{h: sha256.New()}
	k.String(fmt.Sprintf("terse calibration cache %d", CacheVersion))
	return k
}

// Write adds raw bytes to the key.
func (k *CacheKey) Write(p []byte) (int, error) { return k.h.Write(p) }

// String adds a length-prefixed string.
func (k *CacheKey) String(s string) {
	k.Int(int64(len(s)))
	io.WriteString(k.h, s)
}

// Int adds an integer.
func (k *CacheKey) Int(v int64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	k.h.Write(b[:])
}

// Bytes adds a length-prefixed byte slice.
func (k *CacheKey) Bytes(p []byte) {
	k.Int(int64(len(p)))
	k.h.Write(p)
}

// Tokens adds a token sequence.
func (k *CacheKey) Tokens(tokens []int) {
	k.Int(int64(len(tokens)))
	buf := make([]byte, 0, 4096)
	for _, t := range tokens {
		buf = binary.LittleEndian.AppendUint32(buf, uint32(t))
		if len(buf) == cap(buf) {
			k.h.Write(buf)
			buf = buf[:0]
		}
	}
	k.h.Write(buf)
}

// Sum is the key.
func (k *CacheKey) Sum() [32]byte {
	var s [32]byte
	copy(s[:], k.h.Sum(nil))
	return s
}

// OpenCache opens (creating its folder) the cache of key under dir, for a
// model of layers blocks. Each key has its own subfolder, named by the
// key's first 16 bytes in hex, so one dir holds the caches of several
// models or texts.
func OpenCache(dir string, key [32]byte, layers int) (*Cache, error) {
	if dir == "" {
		return nil, errors.New("calib: no cache folder named")
	}
	if layers < 0 {
		return nil, fmt.Errorf("calib: cache for %d layers", layers)
	}
	c := &Cache{dir: filepath.Join(dir, hex.EncodeToString(key[:16])), key: key, stages: layers + 1}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, fmt.Errorf("calib: cache: %w", err)
	}
	return c, nil
}

// Dir is the folder that holds this key's files.
func (c *Cache) Dir() string { return c.dir }

// stagePath names a stage's file.
func (c *Cache) stagePath(stage int) string {
	return filepath.Join(c.dir, fmt.Sprintf("stage-%03d.bin", stage))
}

type manifest struct {
	Version int     `json:"format_version"`
	Key     string  `json:"key"`
	Stages  int     `json:"stages"`
	Bytes   []int64 `json:"stage_bytes"`
}

// Complete reports whether every stage is in the cache: the manifest is
// there, is this key's, and every stage file has the size it records. A
// damaged manifest counts as absent (the stages are computed and written
// again).
func (c *Cache) Complete() bool {
	b, err := os.ReadFile(filepath.Join(c.dir, manifestFile))
	if err != nil {
		return false
	}
	var m manifest
	if json.Unmarshal(b, &m) != nil || m.Version != CacheVersion || m.Key != hex.EncodeToString(c.key[:]) ||
		m.Stages != c.stages || len(m.Bytes) != c.stages {
		return false
	}
	for s, n := range m.Bytes {
		st, err := os.Stat(c.stagePath(s))
		if err != nil || st.Size() != n {
			return false
		}
	}
	return true
}

// finish writes the manifest once every stage file is in.
func (c *Cache) finish() error {
	m := manifest{Version: CacheVersion, Key: hex.EncodeToString(c.key[:]), Stages: c.stages}
	for s := 0; s < c.stages; s++ {
		st, err := os.Stat(c.stagePath(s))
		if err != nil {
			return fmt.Errorf("calib: cache: %w", err)
		}
		m.Bytes = append(m.Bytes, st.Size())
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(c.dir, manifestFile)
	if err := atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	}); err != nil {
		return fmt.Errorf("calib: cache: %w", err)
	}
	return nil
}

// store writes one stage's collection.
func (c *Cache) store(stage int, col *Collector) error {
	path := c.stagePath(stage)
	if err := atomicfile.WriteFile(path, func(f *atomicfile.File) error {
		return writeStage(f, c.key, stage, col)
	}); err != nil {
		return fmt.Errorf("calib: cache: %w", err)
	}
	return nil
}

// load reads one stage's collection (without its Hessians when skipHess).
func (c *Cache) load(stage int, skipHess bool) (*Collector, error) {
	path := c.stagePath(stage)
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("calib: cache: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("calib: cache: %w", err)
	}
	col, err := readStage(f, st.Size(), c.key, stage, skipHess)
	if err != nil {
		return nil, fmt.Errorf("calib: cache file %s: %w (delete %s to compute the statistics again)", path, err, c.dir)
	}
	return col, nil
}

// writeStage writes col in the stage file layout (all little-endian):
//
//	"TERSECAL" u32 version, [32]key, u32 stage, u32 minRows, u32 groups
//	per group: str leader, u32 cols, i64 rows, i64 calls, u8 hasHessian,
//	           cols × f64 Σx², then, with a Hessian, its upper triangle
//	           row by row (cols·(cols+1)/2 × f64)
//	u32 members; per member (in first-seen order): str name, u32 group,
//	           i64 calls, i64 rows
//	[32] SHA-256 of everything before it
//
// where str is a u32 length and the bytes.
func writeStage(w io.Writer, key [32]byte, stage int, col *Collector) error {
	col.mu.Lock()
	defer col.mu.Unlock()
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	var b [8]byte
	u32 := func(v uint32) {
		binary.LittleEndian.PutUint32(b[:4], v)
		bw.Write(b[:4])
	}
	i64 := func(v int64) {
		binary.LittleEndian.PutUint64(b[:], uint64(v))
		bw.Write(b[:])
	}
	str := func(s string) {
		u32(uint32(len(s)))
		bw.WriteString(s)
	}
	f64s := func(v []float64) {
		for _, x := range v {
			binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
			bw.Write(b[:])
		}
	}
	// Groups in the order their leaders were first seen.
	var groups []*group
	index := map[*group]uint32{}
	for _, name := range col.order {
		g := col.members[name].g
		if _, ok := index[g]; !ok {
			index[g] = uint32(len(groups))
			groups = append(groups, g)
		}
	}
	bw.WriteString(cacheMagic)
	u32(CacheVersion)
	bw.Write(key[:])
	u32(uint32(stage))
	u32(uint32(col.MinRows))
	u32(uint32(len(groups)))
	for _, g := range groups {
		str(g.leader)
		u32(uint32(g.cols))
		i64(g.rows)
		i64(g.calls)
		if g.hess == nil {
			bw.WriteByte(0)
			f64s(g.sumSq)
			continue
		}
		bw.WriteByte(1)
		f64s(g.sumSq)
		for i := 0; i < g.cols; i++ {
			f64s(g.hess[i*g.cols+i : (i+1)*g.cols])
		}
	}
	u32(uint32(len(col.order)))
	for _, name := range col.order {
		m := col.members[name]
		str(name)
		u32(index[m.g])
		i64(m.calls)
		i64(m.rows)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(h.Sum(nil))
	return err
}

// stageReader parses a stage file of known size, refusing any count that
// the bytes left cannot hold before allocating for it.
type stageReader struct {
	r    *bufio.Reader
	h    hash.Hash
	left int64 // bytes before the checksum not yet read
	err  error
	buf  [8]byte
}

func (r *stageReader) fail(format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf(format, a...)
	}
}

func (r *stageReader) read(p []byte, what string) bool {
	if r.err != nil {
		return false
	}
	if int64(len(p)) > r.left {
		r.fail("truncated: %s needs %d bytes, %d left", what, len(p), r.left)
		return false
	}
	if _, err := io.ReadFull(r.r, p); err != nil {
		r.fail("truncated in %s: %v", what, err)
		return false
	}
	r.h.Write(p)
	r.left -= int64(len(p))
	return true
}

func (r *stageReader) u32(what string) uint32 {
	if !r.read(r.buf[:4], what) {
		return 0
	}
	return binary.LittleEndian.Uint32(r.buf[:4])
}

func (r *stageReader) i64(what string) int64 {
	if !r.read(r.buf[:], what) {
		return 0
	}
	v := int64(binary.LittleEndian.Uint64(r.buf[:]))
	if v < 0 {
		r.fail("%s is negative (%d)", what, v)
	}
	return v
}

func (r *stageReader) str(what string) string {
	n := r.u32(what)
	if r.err != nil {
		return ""
	}
	if int64(n) > r.left || n > 1<<16 {
		r.fail("%s: %d bytes of name, %d left", what, n, r.left)
		return ""
	}
	p := make([]byte, n)
	r.read(p, what)
	return string(p)
}

// f64s reads n float64s into dst (len ≥ n), having checked they fit.
func (r *stageReader) f64s(dst []float64, what string) {
	var chunk [8 * 1024]byte
	for len(dst) > 0 && r.err == nil {
		k := min(len(dst), len(chunk)/8)
		p := chunk[:8*k]
		if !r.read(p, what) {
			return
		}
		for i := range k {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(p[8*i:]))
		}
		dst = dst[k:]
	}
}

// fits reports whether n values of 8 bytes fit in what is left.
func (r *stageReader) fits(n int64, what string) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || n > r.left/8 {
		r.fail("truncated: %s needs %d values, %d bytes left", what, n, r.left)
		return false
	}
	return true
}

// readStage parses a stage file of size bytes: it checks the magic,
// version, key, stage and checksum, and every count against the bytes
// that remain, and returns the collection as a Collector (Release-able,
// not to be observed into). With skipHess the Hessians are read (and
// checked) but not kept.
func readStage(rd io.Reader, size int64, key [32]byte, stage int, skipHess bool) (*Collector, error) {
	if size < int64(len(cacheMagic))+32 {
		return nil, fmt.Errorf("truncated: %d bytes", size)
	}
	r := &stageReader{r: bufio.NewReaderSize(rd, 1<<16), h: sha256.New(), left: size - 32}
	magic := make([]byte, len(cacheMagic))
	r.read(magic, "magic")
	if r.err == nil && string(magic) != cacheMagic {
		return nil, errors.New("not a terse calibration cache file")
	}
	if v := r.u32("version"); r.err == nil && v != CacheVersion {
		return nil, fmt.Errorf("format version %d; this terse reads %d", v, CacheVersion)
	}
	var k [32]byte
	r.read(k[:], "key")
	if r.err == nil && k != key {
		return nil, errors.New("written for other inputs (its key differs)")
	}
	if s := r.u32("stage"); r.err == nil && int(s) != stage {
		return nil, fmt.Errorf("holds stage %d, not %d", s, stage)
	}
	col := &Collector{MinRows: int(r.u32("min rows"))}
	ng := r.u32("group count")
	if r.err == nil && int64(ng) > r.left/29 { // a group takes at least 29 bytes
		r.fail("%d groups cannot fit in %d bytes", ng, r.left)
	}
	var groups []*group
	for i := 0; i < int(ng) && r.err == nil; i++ {
		g := &group{leader: r.str("group leader")}
		cols := int64(r.u32("columns"))
		g.rows, g.calls = r.i64("rows"), r.i64("calls")
		var flag [1]byte
		r.read(flag[:], "Hessian flag")
		if r.err == nil && flag[0] > 1 {
			r.fail("group %s: Hessian flag %d", g.leader, flag[0])
		}
		if cols == 0 && r.err == nil {
			r.fail("group %s has no columns", g.leader)
		}
		if !r.fits(cols, "Σx² of "+g.leader) {
			break
		}
		g.cols = int(cols)
		g.sumSq = make([]float64, cols)
		r.f64s(g.sumSq, "Σx² of "+g.leader)
		if flag[0] == 1 {
			if !r.fits(cols*(cols+1)/2, "Hessian of "+g.leader) {
				break
			}
			if skipHess {
				row := make([]float64, min(cols, 1<<12))
				for n := cols * (cols + 1) / 2; n > 0 && r.err == nil; n -= int64(len(row)) {
					r.f64s(row[:min(int64(len(row)), n)], "Hessian of "+g.leader)
				}
			} else {
				g.hess = make([]float64, cols*cols)
				for j := int64(0); j < cols && r.err == nil; j++ {
					r.f64s(g.hess[j*cols+j:(j+1)*cols], "Hessian of "+g.leader)
				}
			}
		}
		groups = append(groups, g)
	}
	nm := r.u32("member count")
	if r.err == nil && int64(nm) > r.left/24 { // a member takes at least 24 bytes
		r.fail("%d members cannot fit in %d bytes", nm, r.left)
	}
	col.members = map[string]*member{}
	for i := 0; i < int(nm) && r.err == nil; i++ {
		name := r.str("member name")
		gi := r.u32("member group")
		calls, rows := r.i64("member calls"), r.i64("member rows")
		switch {
		case r.err != nil:
		case int(gi) >= len(groups):
			r.fail("member %s: group %d of %d", name, gi, len(groups))
		case col.members[name] != nil:
			r.fail("member %s listed twice", name)
		default:
			col.members[name] = &member{g: groups[gi], calls: calls, rows: rows}
			col.order = append(col.order, name)
		}
	}
	if r.err == nil && r.left != 0 {
		r.fail("%d bytes after the members", r.left)
	}
	if r.err != nil {
		return nil, r.err
	}
	var sum [32]byte
	if _, err := io.ReadFull(r.r, sum[:]); err != nil {
		return nil, fmt.Errorf("truncated checksum: %v", err)
	}
	if string(sum[:]) != string(r.h.Sum(nil)) {
		return nil, errors.New("checksum mismatch: the file is damaged")
	}
	for _, g := range groups {
		if col.members[g.leader] == nil || col.members[g.leader].g != g {
			return nil, fmt.Errorf("group %s is not its leader's", g.leader)
		}
	}
	return col, nil
}

// Importance reads the Σx² of every stage of a complete cache into one
// Collector without Hessians: what Run collects with a zero Collector (the
// layer-by-layer statistics equal Run's bit for bit), for methods that
// only weigh columns by importance. It reads one stage at a time and keeps
// none of the Hessians.
func (c *Cache) Importance() (*Collector, error) {
	if !c.Complete() {
		return nil, fmt.Errorf("calib: cache %s is not complete", c.dir)
	}
	all := &Collector{members: map[string]*member{}}
	for s := 0; s < c.stages; s++ {
		col, err := c.load(s, true)
		if err != nil {
			return nil, err
		}
		if col.MinRows != 0 {
			return nil, fmt.Errorf("calib: cache %s was collected skipping products under %d rows", c.dir, col.MinRows)
		}
		for _, name := range col.order {
			if all.members[name] != nil {
				return nil, fmt.Errorf("calib: cache file %s: %s was already in an earlier stage", c.stagePath(s), name)
			}
			all.members[name] = col.members[name]
			all.order = append(all.order, name)
		}
	}
	return all, nil
}

// keepHessians drops the Hessians of the inputs that no tensor sel
// accepts shares, so that a collection made with every Hessian (as a
// cache stores it) is the one a collector asking for sel's would have
// made.
func (c *Collector) keepHessians(sel func(string) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[*group]bool{}
	for name, m := range c.members {
		if sel != nil && sel(name) {
			want[m.g] = true
		}
	}
	for _, m := range c.members {
		if !want[m.g] {
			m.g.hess = nil
		}
	}
}
