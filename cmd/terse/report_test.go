package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReportCommand renders eval and search results into a page, and
// refuses results it cannot use.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("eval-a.json", `{"model": "a.gguf", "model_bytes": 14354272, "kld_mean": 0.0102, "kld_p99": 0.05, "top1": 92.1, "ppl": 43.9}`)
	write("eval-b.json", `{"model": "b.gguf", "model_bytes": 11466080, "kld_mean": 0.0383, "kld_p99": 0.18, "top1": 85.7, "ppl": 44.7}`)
	search := write("search.json", `{"out": "a.gguf", "bits_per_weight": 4.05, "tensors": {"blk.0.attn_q.weight": "Q3_K", "blk.0.ffn_down.weight": "Q4_K", "output.weight": "Q5_K"}}`)
	out := filepath.Join(dir, "r.html")
	stdout, stderr, code := runCmd(t, "report", "--out", out, "--in", filepath.Join(dir, "eval-*.json"), "--in", search)
	if code != 0 {
		t.Fatalf("report: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "2 files on the rate–distortion curve, 1 allocations") {
		t.Fatalf("report printed %q", stdout)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(page), `<circle class="pt"`); n != 2 {
		t.Fatalf("%d points on the page, want 2", n)
	}
	if n := strings.Count(string(page), `<rect class="cell"`); n != 3 {
		t.Fatalf("%d allocation cells, want 3", n)
	}
	bad := write("bad.json", `{"model": "c.gguf", "ppl": 40}`)
	for _, args := range [][]string{
		{"report", "--in", search},                   // no --out
		{"report", "--out", out},                     // nothing to show
		{"report", "--out", out, "--in", bad},        // neither kind of result
		{"report", "--out", out, "--in", dir + "/x"}, // missing file
	} {
		if _, _, code := runCmd(t, args...); code == 0 {
			t.Errorf("%v succeeded", args)
		}
	}
}
