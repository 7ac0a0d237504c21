package compress

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/terse-llm/terse/tensor"
)

// A calibration cache changes nothing in what is written: GPTQ (and RTN
// weighted by importance) give the same bytes without a cache, when
// filling it, and when reading it; the settings the statistics depend on
// miss it; and the plan's choice of which tensors get Hessians does not
// matter (the cache holds them all).
func TestCalibCache(t *testing.T) {
	base, textPath := openStories(t)
	const ctxLen, chunks = 128, 3
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	gptq := GPTQ{Damp: 0.01}
	run := func(name string, opt Options) (*Result, []byte) {
		t.Helper()
		opt.Out = filepath.Join(dir, name)
		if opt.CalibFile == "" {
			opt.CalibFile = textPath
		}
		opt.CalibCtx = ctxLen
		if opt.CalibChunks == 0 {
			opt.CalibChunks = chunks
		}
		res, err := Run(context.Background(), base, opt)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(opt.Out)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	_, want := run("plain.gguf", Options{Method: gptq, Preset: "Q4_K_M", SaveIMatrix: filepath.Join(dir, "plain.imatrix")})
	fill, filled := run("fill.gguf", Options{Method: gptq, Preset: "Q4_K_M", CalibCache: cache})
	hit, read := run("hit.gguf", Options{Method: gptq, Preset: "Q4_K_M", CalibCache: cache, SaveIMatrix: filepath.Join(dir, "hit.imatrix")})
	im1, err1 := os.ReadFile(filepath.Join(dir, "plain.imatrix"))
	im2, err2 := os.ReadFile(filepath.Join(dir, "hit.imatrix"))
	if err1 != nil || err2 != nil || !bytes.Equal(im1, im2) {
		t.Errorf("the imatrix saved from the cache differs from the one measured (%v, %v)", err1, err2)
	}
	if fill.CalibCached || !hit.CalibCached {
		t.Errorf("cached: filling run %v, second run %v; want false, true", fill.CalibCached, hit.CalibCached)
	}
	if fill.CalibCache == "" || fill.CalibCache != hit.CalibCache {
		t.Errorf("cache folders %q and %q", fill.CalibCache, hit.CalibCache)
	}
	if !bytes.Equal(filled, want) || !bytes.Equal(read, want) {
		t.Errorf("files differ: filling the cache %v, reading it %v (want both equal to the run without a cache)",
			!bytes.Equal(filled, want), !bytes.Equal(read, want))
	}

	// Another plan: output.weight kept in F16 gets no Hessian; the cache
	// (made with every Hessian) gives what a fresh run gives.
	f16 := []Override{{Pattern: regexp.MustCompile(`^output\.weight$`), Type: tensor.F16}}
	_, want16 := run("plain16.gguf", Options{Method: gptq, Preset: "Q4_K_M", Overrides: f16})
	hit16, read16 := run("hit16.gguf", Options{Method: gptq, Preset: "Q4_K_M", Overrides: f16, CalibCache: cache})
	if !hit16.CalibCached || !bytes.Equal(read16, want16) {
		t.Errorf("F16 output: cached %v, same file %v", hit16.CalibCached, bytes.Equal(read16, want16))
	}

	// RTN weighted by importance reads the complete cache's Σx².
	_, wantRTN := run("rtn.gguf", Options{Preset: "Q4_K_M"})
	hitRTN, readRTN := run("rtn-hit.gguf", Options{Preset: "Q4_K_M", CalibCache: cache})
	if !hitRTN.CalibCached || !bytes.Equal(readRTN, wantRTN) {
		t.Errorf("RTN: cached %v, same file %v", hitRTN.CalibCached, bytes.Equal(readRTN, wantRTN))
	}

	// What the statistics depend on misses the cache.
	other := filepath.Join(dir, "other.txt")
	text, err := os.ReadFile(textPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other, append([]byte("Once upon a time. "), text...), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opt  Options
	}{
		{"other text", Options{CalibFile: other}},
		{"other chunk count", Options{CalibChunks: chunks - 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opt
			o.Method, o.Preset, o.CalibCache = gptq, "Q4_K_M", cache
			res, _ := run(strings.ReplaceAll(tc.name, " ", "-")+".gguf", o)
			if res.CalibCached || res.CalibCache == fill.CalibCache {
				t.Errorf("cached %v in %s, want a miss in a folder other than %s", res.CalibCached, res.CalibCache, fill.CalibCache)
			}
		})
	}
}

// A damaged or truncated stage file is an error naming it, never a panic
// nor a silent use; sequential calibration refuses a cache.
func TestCalibCacheDamage(t *testing.T) {
	base, textPath := openStories(t)
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	opt := Options{Method: GPTQ{Damp: 0.01}, Preset: "Q4_K_M", CalibFile: textPath, CalibCtx: 128, CalibChunks: 2, CalibCache: cache}
	opt.Out = filepath.Join(dir, "a.gguf")
	res, err := Run(context.Background(), base, opt)
	if err != nil {
		t.Fatal(err)
	}
	stage := filepath.Join(res.CalibCache, "stage-002.bin")
	orig, err := os.ReadFile(stage)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		want   string
	}{
		{"flipped byte", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)/2] ^= 0x40; return c }, "checksum mismatch"},
		// Same size (the manifest still matches), the end zeroed: the
		// member list no longer parses.
		{"zeroed tail", func(b []byte) []byte { c := bytes.Clone(b); clear(c[len(c)-100:]); return c }, "after the members"},
		{"wrong magic", func(b []byte) []byte { c := bytes.Clone(b); c[0] = 'X'; return c }, "not a terse calibration cache file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(stage, tc.damage(orig), 0o644); err != nil {
				t.Fatal(err)
			}
			opt.Out = filepath.Join(dir, "b.gguf")
			_, err := Run(context.Background(), base, opt)
			if err == nil || !strings.Contains(err.Error(), stage) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s and saying %q", err, stage, tc.want)
			}
		})
	}
	// A truncated file no longer matches the manifest: the cache is
	// incomplete and the statistics are computed (and stored) again.
	if err := os.WriteFile(stage, orig[:len(orig)/3], 0o644); err != nil {
		t.Fatal(err)
	}
	opt.Out = filepath.Join(dir, "c.gguf")
	res, err = Run(context.Background(), base, opt)
	if err != nil || res.CalibCached {
		t.Fatalf("truncated stage: %v, cached %v; want a fresh calibration", err, res != nil && res.CalibCached)
	}
	if b, err := os.ReadFile(stage); err != nil || !bytes.Equal(b, orig) {
		t.Errorf("the stage file was not written again (%v)", err)
	}

	seq := opt
	seq.Sequential, seq.Out = true, filepath.Join(dir, "s.gguf")
	if _, err := Run(context.Background(), base, seq); err == nil || !strings.Contains(err.Error(), "sequential") {
		t.Errorf("sequential with a cache: %v", err)
	}
}
