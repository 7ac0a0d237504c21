package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/terse-llm/terse/format/gguf"
	"github.com/terse-llm/terse/internal/atomicfile"
	"github.com/terse-llm/terse/report"
	"github.com/terse-llm/terse/tensor"
)

// runReport renders report.Page from JSON results: `terse eval --json`
// outputs (points of the rate–distortion curve) and `terse compress
// --json` outputs (allocations: a searched one's chosen types, or a
// preset's per-tensor types).
func runReport(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report", stderr)
	out := fs.String("out", "", "the HTML file to write (required)")
	title := fs.String("title", "", "the page's title (default: terse report)")
	jsonOut := fs.Bool("json", false, "print what the page shows as one JSON object")
	var ins multiFlag
	fs.Var(&ins, "in", "a JSON result to show, or a glob of them (repeatable): `terse eval --base … --json` outputs (points of the curve) and `terse compress --json` outputs (allocations)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out is required")
	}
	var paths []string
	for _, in := range ins {
		m, err := filepath.Glob(in)
		if err != nil {
			return usagef("--in %q: %v", in, err)
		}
		if len(m) == 0 {
			m = []string{in} // a plain name: the read below says what is wrong
		}
		paths = append(paths, m...)
	}
	if len(paths) == 0 {
		return usagef("name the JSON results to show with --in: `terse eval --json` and `terse compress --json` outputs")
	}
	page := report.Page{Title: *title}
	for _, path := range paths {
		if err := addResult(&page, path); err != nil {
			return err
		}
	}
	err := atomicfile.WriteFile(*out, func(f *atomicfile.File) error { return report.Write(f, page) })
	if err != nil {
		return err
	}
	if *jsonOut {
		return writeJSON(stdout, struct {
			Out         string              `json:"out"`
			Points      []report.Point      `json:"points"`
			Allocations []report.Allocation `json:"allocations"`
		}{*out, page.Points, page.Allocations})
	}
	_, err = fmt.Fprintf(stdout, "wrote %s: %d files on the rate–distortion curve, %d allocations\n", *out, len(page.Points), len(page.Allocations))
	return err
}

// resultJSON holds the fields of either kind of result that a report uses.
type resultJSON struct {
	// terse eval --json
	Model      *string  `json:"model"`
	ModelBytes int64    `json:"model_bytes"`
	KLD        *float64 `json:"kld_mean"`
	KLDP99     float64  `json:"kld_p99"`
	Top1       float64  `json:"top1"`
	PPL        float64  `json:"ppl"`
	// terse compress --json (a preset: a list; a search: a map)
	Out       string          `json:"out"`
	FileBytes int64           `json:"file_bytes"`
	BPW       float64         `json:"bits_per_weight"`
	Params    int64           `json:"params"`
	Tensors   json.RawMessage `json:"tensors"`
}

func addResult(page *report.Page, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var r resultJSON
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("report: %s: not a terse JSON result: %w", path, err)
	}
	switch {
	case r.KLD != nil:
		if r.Model == nil || *r.Model == "" {
			return fmt.Errorf("report: %s: an eval result without the model's name", path)
		}
		if *r.KLD == 0 && r.KLDP99 == 0 && r.Top1 == 0 {
			return fmt.Errorf("report: %s: an eval result without a base (run terse eval with --base to measure the KLD)", path)
		}
		p := report.Point{Label: filepath.Base(*r.Model), Bytes: r.ModelBytes, KLD: *r.KLD, KLDP99: r.KLDP99, Top1: r.Top1, PPL: r.PPL}
		if p.Bytes == 0 {
			st, err := os.Stat(*r.Model)
			if err != nil {
				return fmt.Errorf("report: %s: size of %s: %w", path, *r.Model, err)
			}
			p.Bytes = st.Size()
		}
		p.Group = producer(*r.Model)
		if n := paramsOf(*r.Model); n > 0 {
			p.BPW = float64(p.Bytes) * 8 / float64(n)
		}
		page.Points = append(page.Points, p)
	case len(r.Tensors) > 0:
		a := report.Allocation{Label: fmt.Sprintf("%s (%.3f bits/weight)", filepath.Base(r.Out), r.BPW), Tensors: map[string]string{}, BPW: map[string]float64{}}
		var m map[string]string
		var list []struct {
			Name string  `json:"name"`
			Type string  `json:"type"`
			BPW  float64 `json:"bits_per_weight"`
		}
		if err := json.Unmarshal(r.Tensors, &m); err == nil {
			a.Tensors = m
		} else if err := json.Unmarshal(r.Tensors, &list); err == nil {
			for _, t := range list {
				a.Tensors[t.Name] = t.Type
				a.BPW[t.Type] = t.BPW
			}
		} else {
			return fmt.Errorf("report: %s: tensors are neither a name→type map nor a list of tensor reports", path)
		}
		for _, t := range a.Tensors {
			if _, ok := a.BPW[t]; !ok {
				a.BPW[t] = typeBPW(t)
			}
		}
		page.Allocations = append(page.Allocations, a)
	default:
		return fmt.Errorf("report: %s: neither an eval result (kld_mean) nor a compress result (tensors)", path)
	}
	return nil
}

// typeBPW is a ggml type's bits per weight (0 when unknown).
func typeBPW(name string) float64 {
	dt, err := tensor.ParseDType(name)
	if err != nil {
		return 0
	}
	n, err := dt.RowBytes(256)
	if err != nil {
		return 0
	}
	return float64(n) * 8 / 256
}

// producer tells who wrote a GGUF file: llama.cpp's converter and
// quantizer leave general.size_label / general.basename / quantize.* keys
// that terse does not write.
func producer(path string) string {
	if !strings.EqualFold(filepath.Ext(path), ".gguf") {
		return "terse"
	}
	f, err := gguf.Open(path)
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	for _, kv := range f.KVs() {
		if kv.Key == "general.size_label" || kv.Key == "general.basename" || strings.HasPrefix(kv.Key, "quantize.") {
			return "llama.cpp"
		}
	}
	return "terse"
}

// paramsOf counts a GGUF file's weights (0 for other files).
func paramsOf(path string) int64 {
	f, err := gguf.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var n int64
	for i := 0; ; i++ {
		t, err := f.TensorAt(i)
		if err != nil {
			break
		}
		n += int64(t.NumElements())
	}
	return n
}
