package report

import (
	"bytes"
	"context"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testPage = Page{
	Title: "pdtext-llama-28m",
	Points: []Point{
		{Label: "q4km.gguf", Group: "llama.cpp", Bytes: 17516192, BPW: 4.95, KLD: 0.00779, KLDP99: 0.0447, Top1: 93.44, PPL: 44.27},
		{Label: "q3km.gguf", Group: "llama.cpp", Bytes: 14356128, BPW: 4.06, KLD: 0.02542, KLDP99: 0.14, Top1: 88.56, PPL: 44.70},
		{Label: "t-3.2.gguf", Group: "terse", Bytes: 14300000, BPW: 4.04, KLD: 0.011, KLDP99: 0.07, Top1: 91, PPL: 44.4},
		{Label: "<script>x</script>", Group: "terse", Bytes: 11468000, BPW: 3.24, KLD: 0.04, Top1: 85, PPL: 45},
	},
	Allocations: []Allocation{{Label: "t-3.2.gguf", Tensors: map[string]string{
		"blk.0.attn_q.weight": "Q4_K", "blk.0.ffn_down.weight": "Q6_K", "blk.10.attn_q.weight": "Q3_K",
		"blk.2.attn_q.weight": "Q2_K", "output.weight": "Q6_K"}, BPW: map[string]float64{"Q2_K": 2.625, "Q3_K": 3.4375, "Q4_K": 4.5, "Q6_K": 6.5625}}},
}

// TestWriteIsWellFormed checks the page's structure: every point drawn
// once, the labels escaped, the allocation's cells in block order.
func TestWriteIsWellFormed(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, testPage); err != nil {
		t.Fatal(err)
	}
	s := b.String()
	if n := strings.Count(s, `<circle class="pt"`); n != 4 {
		t.Fatalf("%d points drawn, want 4", n)
	}
	if n := strings.Count(s, `<polyline class="curve"`); n != 2 {
		t.Fatalf("%d curves drawn, want 2 (one per tool)", n)
	}
	if strings.Contains(s, "<script>") {
		t.Fatal("a label reached the page unescaped")
	}
	if n := strings.Count(s, `<rect class="cell"`); n != 5 {
		t.Fatalf("%d allocation cells, want 5", n)
	}
	if i, j := strings.Index(s, ">blk.2<"), strings.Index(s, ">blk.10<"); i < 0 || j < 0 || i > j {
		t.Fatal("blocks are not in numeric order")
	}
	// Each SVG is well-formed XML.
	for _, part := range strings.Split(s, "<svg")[1:] {
		svg := "<svg" + part[:strings.Index(part, "</svg>")] + "</svg>"
		d := xml.NewDecoder(strings.NewReader(svg))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() == "EOF" {
					break
				}
				t.Fatalf("SVG is not well-formed: %v", err)
			}
		}
	}
	for _, bad := range []Page{{}, {Points: []Point{{Label: "x", Bytes: 0, KLD: 1}}}} {
		if err := Write(&b, bad); err == nil {
			t.Fatalf("page %+v written", bad)
		}
	}
}

// chromium finds a headless browser, or skips.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("TERSE_REQUIRE_SHARED") == "1" {
		t.Fatal("no chromium on PATH (TERSE_REQUIRE_SHARED=1; .ci/run installs Debian's chromium)")
	}
	t.Skip("no chromium on PATH: install Debian's chromium to check the report in a real browser")
	return ""
}

// TestReportInChromium loads the page in a real headless browser and
// checks the DOM it builds (every point and cell parsed as SVG elements)
// and that it renders to a non-empty screenshot.
func TestReportInChromium(t *testing.T) {
	bin := chromium(t)
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	var b bytes.Buffer
	if err := Write(&b, testPage); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(page, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + filepath.Join(dir, "profile")}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dom, err := exec.CommandContext(ctx, bin, append(flags, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	// The DOM serializer writes the elements the HTML parser built: SVG
	// content parsed as SVG keeps its tags.
	d := string(dom)
	if n := strings.Count(d, "<circle "); n != 4 {
		t.Fatalf("the browser built %d circles, want 4:\n%.2000s", n, d)
	}
	if n := strings.Count(d, `class="cell"`); n != 5 {
		t.Fatalf("the browser built %d allocation cells, want 5", n)
	}
	if !strings.Contains(d, "&lt;script&gt;x&lt;/script&gt;") {
		t.Fatal("the escaped label is not in the browser's DOM as text")
	}
	shot := filepath.Join(dir, "shot.png")
	cmd := exec.CommandContext(ctx, bin, append(flags, "--screenshot="+shot, "--window-size=900,1200", "file://"+page)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	st, err := os.Stat(shot)
	if err != nil || st.Size() < 5000 {
		t.Fatalf("screenshot %v, %v: want a rendered page", st, err)
	}
}
