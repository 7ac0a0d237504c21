package search

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/terse-llm/terse/compress"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/quant/ggml"
	"github.com/terse-llm/terse/quant/gptqggml"
	"github.com/terse-llm/terse/tensor"
)

// dbFile is the level database's index inside its folder.
const dbFile = "levels.json"

// dbVersion is the index's schema version.
const dbVersion = 1

// LevelInfo is one level of the database: every matrix of the model
// compressed to one type, kept as one GGUF file.
type LevelInfo struct {
	Type   string `json:"type"`
	File   string `json:"file"`   // relative to the database folder
	Method string `json:"method"` // gptq (a grid type) or rtn (importance-weighted)
	Bytes  int64  `json:"file_bytes"`

	seconds float64 // the build's time
	calib   string  // how its statistics came: computed, cached, or computed and cached
}

// dbIndex is the JSON form of levels.json.
type dbIndex struct {
	Version     int         `json:"format_version"`
	Model       string      `json:"model"`
	ModelBytes  int64       `json:"model_bytes"`
	Calib       string      `json:"calib"`
	CalibChunks int         `json:"calib_chunks"`
	CalibCtx    int         `json:"calib_ctx,omitempty"` // 0: compress's default
	Levels      []LevelInfo `json:"levels"`
}

// BuildOptions configure BuildLevels.
type BuildOptions struct {
	// Dir is the database folder (created if missing). Levels already in
	// it, built from the same model and calibration, are kept: an
	// interrupted build resumes where it stopped.
	Dir string
	// Types are the levels (each a ggml type every matrix can take).
	Types []tensor.DType
	// CalibFile and CalibChunks are the calibration for GPTQ (grid types)
	// and for the importance of the others.
	CalibFile   string
	CalibChunks int
	// CalibCtx is the calibration chunk length (compress.Options's; 0: its
	// default, 512 or the model's trained context if shorter).
	CalibCtx int
	// Damp is GPTQ's dampening (0: its default).
	Damp float64
	// CalibCache is the calibration cache folder (compress.Options's
	// CalibCache): the first level to calibrate stores the statistics
	// there and every later level, in this build or another, reads them.
	// Empty: DefaultCalibCache inside Dir; NoCalibCache: none (each level
	// calibrates on its own).
	CalibCache string
	// Progress gets the compressions' progress bars; Log a line per level.
	Progress io.Writer
	Log      func(msg string)
}

// DefaultCalibCache is the calibration cache's folder inside a level
// database when BuildOptions.CalibCache is empty.
const DefaultCalibCache = "calib-cache"

// NoCalibCache as BuildOptions.CalibCache builds every level with its own
// calibration pass.
const NoCalibCache = "none"

// BuildLevels compresses every matrix of the checkpoint once per level
// type and records the files in Dir. Types GPTQ can target (the k-quants,
// legacy types, IQ4, the ternary types and the lattice types IQ1_S …
// IQ3_S, the latter by block LDLQ; today every quantized type) are
// compressed with GPTQ, any other with llama.cpp's importance-weighted
// quantizer, both on the calibration text.
func BuildLevels(ctx context.Context, ck *load.Checkpoint, opt BuildOptions) (*LevelDB, error) {
	if opt.Dir == "" {
		return nil, errors.New("level database: no folder named")
	}
	if len(opt.Types) < 2 {
		return nil, fmt.Errorf("level database %s: %d levels; a search needs at least two", opt.Dir, len(opt.Types))
	}
	if opt.CalibFile == "" {
		return nil, fmt.Errorf("level database %s: the levels need calibration text", opt.Dir)
	}
	if err := os.MkdirAll(opt.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("level database: %w", err)
	}
	idx := dbIndex{Version: dbVersion, Model: ck.Path, ModelBytes: ck.FileBytes, Calib: opt.CalibFile, CalibChunks: opt.CalibChunks, CalibCtx: opt.CalibCtx}
	if old, err := readIndex(opt.Dir); err == nil {
		if old.Model != idx.Model || old.ModelBytes != idx.ModelBytes || old.Calib != idx.Calib || old.CalibChunks != idx.CalibChunks || old.CalibCtx != idx.CalibCtx {
			return nil, fmt.Errorf("level database %s was built from %s on %s (%d chunks of %s); name another folder for %s on %s (%d chunks of %s)",
				opt.Dir, old.Model, old.Calib, old.CalibChunks, ctxName(old.CalibCtx), ck.Path, opt.CalibFile, opt.CalibChunks, ctxName(opt.CalibCtx))
		}
		idx.Levels = old.Levels
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// A level is kept when its file is there and it was made by the
	// method this terse uses for its type (a lattice level quantized by
	// llama.cpp's quantizer before lattice GPTQ existed is made again).
	have := map[string]bool{}
	idx.Levels = keptLevels(opt.Dir, idx.Levels)
	for _, l := range idx.Levels {
		have[l.Type] = true
	}
	for _, dt := range opt.Types {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("level database %s: stopped before level %s: %w", opt.Dir, dt, err)
		}
		name := dt.String()
		if have[name] {
			continue
		}
		info, err := buildLevel(ctx, ck, dt, opt)
		if err != nil {
			return nil, err
		}
		if opt.Log != nil {
			opt.Log(fmt.Sprintf("level %s: %s, %d bytes, %.1f s (calibration %s)", name, info.Method, info.Bytes, info.seconds, info.calib))
		}
		idx.Levels = append(idx.Levels, info)
		have[name] = true
		if err := writeIndex(opt.Dir, idx); err != nil {
			return nil, err
		}
	}
	want := map[string]bool{}
	for _, dt := range opt.Types {
		want[dt.String()] = true
	}
	return openIndex(opt.Dir, idx, want)
}

func buildLevel(ctx context.Context, ck *load.Checkpoint, dt tensor.DType, opt BuildOptions) (LevelInfo, error) {
	info := LevelInfo{Type: dt.String(), File: dt.String() + ".gguf", Method: compress.MethodRTN}
	var m compress.Method = compress.RTN{}
	if levelMethod(dt) == compress.MethodGPTQ {
		g, err := compress.NewGPTQ(opt.Damp)
		if err != nil {
			return info, err
		}
		m, info.Method = g, compress.MethodGPTQ
	}
	out := filepath.Join(opt.Dir, info.File)
	// Every matrix whose rows the type can hold takes it; the others keep
	// the plan's fallback and stay out of the search.
	var fit []string
	for _, t := range ck.Model.Weights.Matrices() {
		if _, err := dt.RowBytes(t.Cols()); err == nil {
			fit = append(fit, regexp.QuoteMeta(t.Name))
		}
	}
	if len(fit) == 0 {
		return info, fmt.Errorf("level database %s: no matrix of %s can be stored as %s", opt.Dir, ck.Path, dt)
	}
	ov := []compress.Override{{Pattern: regexp.MustCompile("^(" + strings.Join(fit, "|") + ")$"), Type: dt}}
	if t, ok := ggml.Lookup(dt); ok && t.NeedsImportance && !ggml.GridSupported(dt) {
		// Calibration cannot weight the token embedding (it is looked up,
		// not multiplied), and these types refuse to go without
		// importance: the embedding takes Q2_K at this level, as
		// llama.cpp's low-bit presets give it.
		ov = append(ov, compress.Override{Pattern: regexp.MustCompile(`^token_embd\.weight$`), Type: tensor.Q2_K})
	}
	cache := opt.CalibCache
	switch cache {
	case "":
		cache = filepath.Join(opt.Dir, DefaultCalibCache)
	case NoCalibCache:
		cache = ""
	}
	res, err := compress.Run(ctx, ck, compress.Options{
		Out:         out,
		Method:      m,
		Preset:      "Q8_0",
		Overrides:   ov,
		CalibFile:   opt.CalibFile,
		CalibChunks: opt.CalibChunks,
		CalibCtx:    opt.CalibCtx,
		CalibCache:  cache,
		Progress:    opt.Progress,
	})
	if err != nil {
		return info, fmt.Errorf("level database %s: level %s: %w", opt.Dir, dt, err)
	}
	info.Bytes, info.seconds = res.FileBytes, res.Seconds
	switch {
	case res.CalibCached:
		info.calib = fmt.Sprintf("%.1f s, read from %s", res.CalibSeconds, res.CalibCache)
	case res.CalibCache != "":
		info.calib = fmt.Sprintf("%.1f s, stored in %s", res.CalibSeconds, res.CalibCache)
	default:
		info.calib = fmt.Sprintf("%.1f s", res.CalibSeconds)
	}
	return info, nil
}

// keptLevels returns the levels of the index that a build keeps: those
// whose file is in dir and that were made by the method levelMethod gives
// their type now.
func keptLevels(dir string, levels []LevelInfo) []LevelInfo {
	var kept []LevelInfo
	for _, l := range levels {
		_, err := os.Stat(filepath.Join(dir, l.File))
		dt, perr := tensor.ParseDType(l.Type)
		if err == nil && (perr != nil || l.Method == levelMethod(dt)) {
			kept = append(kept, l)
		}
	}
	return kept
}

// levelMethod is the method BuildLevels compresses a level of type dt
// with.
func levelMethod(dt tensor.DType) string {
	if gptqggml.Supported(dt) {
		return compress.MethodGPTQ
	}
	return compress.MethodRTN
}

func readIndex(dir string) (dbIndex, error) {
	var idx dbIndex
	b, err := os.ReadFile(filepath.Join(dir, dbFile))
	if err != nil {
		return idx, err
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return idx, fmt.Errorf("level database %s: %s: %w", dir, dbFile, err)
	}
	if idx.Version != dbVersion {
		return idx, fmt.Errorf("level database %s: %s has format_version %d; this terse reads %d", dir, dbFile, idx.Version, dbVersion)
	}
	return idx, nil
}

func writeIndex(dir string, idx dbIndex) error {
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, dbFile), func(f *atomicfile.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}

// Unit is one matrix the search assigns a level to.
type Unit struct {
	Name  string
	Elems int64
	Bytes []int64 // per level of the database, in its order
}

// LevelDB is an opened level database: every unit's tensor at every level,
// memory-mapped.
type LevelDB struct {
	Dir    string
	Levels []LevelInfo // by increasing file size
	Units  []Unit
	// Fixed is the bytes of a file of these levels that are not matrix
	// data of the units (header, metadata, norms, alignment), the most
	// over the levels.
	Fixed int64
	// Config is the models' configuration as the level files give it
	// (GGUF's, whose RoPE layout of q and k may differ from the
	// checkpoint's).
	Config model.Config

	cks     []*load.Checkpoint
	tensors []map[string]*tensor.Tensor
}

// OpenLevels opens an existing database.
func OpenLevels(dir string) (*LevelDB, error) {
	idx, err := readIndex(dir)
	if err != nil {
		return nil, err
	}
	return openIndex(dir, idx, nil)
}

// openIndex opens the levels of idx that want names (nil: all).
func openIndex(dir string, idx dbIndex, want map[string]bool) (*LevelDB, error) {
	db := &LevelDB{Dir: dir}
	for _, l := range idx.Levels {
		if want == nil || want[l.Type] {
			db.Levels = append(db.Levels, l)
		}
	}
	sort.Slice(db.Levels, func(a, b int) bool { return db.Levels[a].Bytes < db.Levels[b].Bytes })
	if len(db.Levels) < 2 {
		return nil, fmt.Errorf("level database %s: %d levels; a search needs at least two", dir, len(db.Levels))
	}
	for li, l := range db.Levels {
		path := filepath.Join(dir, l.File)
		ck, err := load.Open(path, load.Options{})
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("level database %s: %w", dir, err)
		}
		db.cks = append(db.cks, ck)
		if li == 0 {
			db.Config = ck.Model.Config
		}
		if _, err := tensor.ParseDType(l.Type); err != nil {
			db.Close()
			return nil, fmt.Errorf("level database %s: level %q: %w", dir, l.Type, err)
		}
		m := map[string]*tensor.Tensor{}
		for _, t := range ck.Tensors {
			m[t.Name] = t
		}
		db.tensors = append(db.tensors, m)
	}
	// The units are the matrices every level holds (mostly at the level's
	// type; a matrix whose shape or role the type cannot take keeps the
	// type the level's file gives it instead).
	for _, t := range db.cks[0].Tensors {
		if len(t.Shape) != 2 {
			continue
		}
		u := Unit{Name: t.Name, Elems: int64(t.NumElements())}
		for li := range db.Levels {
			lt := db.tensors[li][t.Name]
			if lt == nil {
				u.Bytes = nil
				break
			}
			u.Bytes = append(u.Bytes, int64(len(lt.Data)))
		}
		if u.Bytes != nil {
			db.Units = append(db.Units, u)
		}
	}
	for li, ck := range db.cks {
		data := int64(0)
		for _, u := range db.Units {
			data += padded(u.Bytes[li])
		}
		db.Fixed = max(db.Fixed, ck.FileBytes-data)
	}
	if len(db.Units) == 0 {
		db.Close()
		return nil, fmt.Errorf("level database %s: no matrices at level %s", dir, db.Levels[0].Type)
	}
	return db, nil
}

// padded is n rounded up to GGUF's default alignment of tensor data.
func padded(n int64) int64 { return (n + 31) &^ 31 }

// Close releases the level files.
func (db *LevelDB) Close() error {
	var errs []error
	for _, ck := range db.cks {
		errs = append(errs, ck.Close())
	}
	db.cks = nil
	return errors.Join(errs...)
}

// Tensor returns unit u's tensor at level l.
func (db *LevelDB) Tensor(u, l int) *tensor.Tensor { return db.tensors[l][db.Units[u].Name] }

// Other returns a non-unit tensor (norms, biases) by name, from the first
// level's file.
func (db *LevelDB) Other(name string) (*tensor.Tensor, bool) {
	t, ok := db.tensors[0][name]
	return t, ok
}

// Size is the predicted file size of an assignment (a level per unit).
func (db *LevelDB) Size(assign []int) int64 {
	n := db.Fixed
	for u, l := range assign {
		n += padded(db.Units[u].Bytes[l])
	}
	return n
}

// Elems is the number of weights of all units.
func (db *LevelDB) Elems() int64 {
	var n int64
	for _, u := range db.Units {
		n += u.Elems
	}
	return n
}

// LevelNames lists the levels' types.
func (db *LevelDB) LevelNames() string {
	var s []string
	for _, l := range db.Levels {
		s = append(s, l.Type)
	}
	return strings.Join(s, ",")
}

// levelKey names the levels with their methods and sizes, so that
// measurements kept in the database (the unit errors) are not reused for
// levels made again another way.
func (db *LevelDB) levelKey() string {
	var s []string
	for _, l := range db.Levels {
		s = append(s, fmt.Sprintf("%s:%s:%d", l.Type, l.Method, l.Bytes))
	}
	return strings.Join(s, ",")
}

// ctxName names a calibration chunk length for the level database's errors.
func ctxName(n int) string {
	if n == 0 {
		return "the default length"
	}
	return fmt.Sprintf("%d tokens", n)
}
