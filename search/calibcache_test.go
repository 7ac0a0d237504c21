package search

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terse-llm/terse/internal/testshared"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/tensor"
)

// A level database built with the calibration cache (the default: one
// calibration pass, stored by the first level and read by the others)
// holds byte for byte the level files of one built with a calibration
// pass per level.
func TestBuildLevelsCalibCache(t *testing.T) {
	ckPath := testshared.Path(t, "models/stories260K/stories260K.bin")
	text := testshared.Path(t, "data/tinystories-valid-sample.txt")
	ck, err := load.Open(ckPath, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	dir := t.TempDir()
	levels := []tensor.DType{tensor.Q4_0, tensor.Q5_0, tensor.Q8_0}
	var logs []string
	build := func(name, cache string) {
		t.Helper()
		db, err := BuildLevels(context.Background(), ck, BuildOptions{Dir: filepath.Join(dir, name), Types: levels, CalibFile: text,
			CalibChunks: 3, CalibCache: cache, Log: func(m string) { logs = append(logs, m) }})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	build("cached", "")
	build("plain", NoCalibCache)
	for _, l := range levels {
		a, err := os.ReadFile(filepath.Join(dir, "cached", l.String()+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(dir, "plain", l.String()+".gguf"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("level %s differs with the calibration cache", l)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "plain", DefaultCalibCache)); err == nil {
		t.Errorf("a build without the cache made %s", DefaultCalibCache)
	}
	// The first level stored the statistics, the other two read them.
	read := 0
	for _, m := range logs[:len(levels)] {
		if bytes.Contains([]byte(m), []byte(", read from")) {
			read++
		}
	}
	if read != len(levels)-1 {
		t.Errorf("%d of %d levels read the cache, want %d:\n%q", read, len(levels), len(levels)-1, logs)
	}
}

// BuildLevels calibrates the levels on chunks of BuildOptions.CalibCtx
// tokens, and a database built with one chunk length is not reused for
// another.
func TestBuildLevelsCalibCtx(t *testing.T) {
	ckPath := testshared.Path(t, "models/stories260K/stories260K.bin")
	text := testshared.Path(t, "data/tinystories-valid-sample.txt")
	ck, err := load.Open(ckPath, load.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	dir := t.TempDir()
	levels := []tensor.DType{tensor.Q4_0, tensor.Q8_0}
	build := func(name string, ctx int) error {
		db, err := BuildLevels(context.Background(), ck, BuildOptions{Dir: filepath.Join(dir, name), Types: levels, CalibFile: text,
			CalibChunks: 3, CalibCtx: ctx})
		if err == nil {
			db.Close()
		}
		return err
	}
	if err := build("default", 0); err != nil {
		t.Fatal(err)
	}
	if err := build("short", 64); err != nil {
		t.Fatal(err)
	}
	a, err := os.ReadFile(filepath.Join(dir, "default", "Q4_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "short", "Q4_0.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Error("the Q4_0 level calibrated on 64-token chunks equals the one on the default chunks: CalibCtx did not reach the build")
	}
	err = build("default", 64)
	if err == nil || !strings.Contains(err.Error(), "64 tokens") {
		t.Errorf("reusing a default-length database with 64-token chunks: got %v, want an error naming the lengths", err)
	}
}
