// Package report renders one self-contained HTML page about a model's
// compressions: the rate–distortion curve (file size against mean
// KL-divergence to the base, log scale) of every measured file, grouped by
// the tool that wrote it (terse, llama.cpp), a table of the points, and
// each searched allocation as a picture (a cell per block and tensor kind,
// coloured by the bits per weight spent). The page has no scripts and no
// external resources: it is HTML with inline SVG and CSS.
package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strings"
)

// Point is one measured file.
type Point struct {
	Label  string  // e.g. the file name
	Group  string  // the tool that wrote it ("terse", "llama.cpp")
	Bytes  int64   // file size
	BPW    float64 // file bits per weight (0: unknown)
	KLD    float64 // mean KLD to the base
	KLDP99 float64
	Top1   float64 // same top-1 token, percent
	PPL    float64
}

// Allocation is a searched per-tensor allocation.
type Allocation struct {
	Label string
	// Tensors maps a tensor's name ("blk.3.attn_q.weight") to its type.
	Tensors map[string]string
	// BPW gives a type's bits per weight (for colours).
	BPW map[string]float64
}

// Page is what Write renders.
type Page struct {
	Title       string
	Points      []Point
	Allocations []Allocation
}

// Write renders the page as HTML to w.
func Write(w io.Writer, p Page) error {
	if len(p.Points) == 0 && len(p.Allocations) == 0 {
		return fmt.Errorf("report: nothing to show: no measured files and no allocations")
	}
	for _, pt := range p.Points {
		if pt.Bytes <= 0 || !(pt.KLD >= 0) || math.IsInf(pt.KLD, 0) {
			return fmt.Errorf("report: point %q: size %d bytes, KLD %v: want a positive size and a finite KLD", pt.Label, pt.Bytes, pt.KLD)
		}
	}
	d := pageData{Title: p.Title, Points: sortedPoints(p.Points)}
	if d.Title == "" {
		d.Title = "terse report"
	}
	d.Plot = template.HTML(plot(d.Points))
	for _, a := range p.Allocations {
		d.Allocs = append(d.Allocs, template.HTML(allocation(a)))
	}
	return pageTmpl.Execute(w, d)
}

type pageData struct {
	Title  string
	Points []Point
	Plot   template.HTML
	Allocs []template.HTML
}

func sortedPoints(pts []Point) []Point {
	s := append([]Point(nil), pts...)
	sort.SliceStable(s, func(a, b int) bool {
		if s[a].Group != s[b].Group {
			return s[a].Group < s[b].Group
		}
		return s[a].Bytes < s[b].Bytes
	})
	return s
}

// palette holds a colour per group, in order of first appearance.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"}

// plot draws the rate–distortion chart as SVG: x = file size (MB,
// linear), y = mean KLD (log10).
func plot(pts []Point) string {
	const W, H, L, R, T, B = 760.0, 420.0, 70.0, 20.0, 20.0, 50.0
	if len(pts) == 0 {
		return ""
	}
	minX, maxX := math.Inf(1), math.Inf(-1)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, p := range pts {
		x := float64(p.Bytes) / 1e6
		y := math.Log10(max(p.KLD, 1e-7))
		minX, maxX = min(minX, x), max(maxX, x)
		minY, maxY = min(minY, y), max(maxY, y)
	}
	padX := max((maxX-minX)*0.05, 0.5)
	minX, maxX = minX-padX, maxX+padX
	minY, maxY = math.Floor(minY), math.Ceil(maxY)
	if maxY == minY {
		maxY++
	}
	sx := func(x float64) float64 { return L + (x-minX)/(maxX-minX)*(W-L-R) }
	sy := func(y float64) float64 { return T + (maxY-y)/(maxY-minY)*(H-T-B) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="rd" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-label="rate-distortion curve">`, W, H, W, H)
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#fff" stroke="#888"/>`, L, T, W-L-R, H-T-B)
	for y := minY; y <= maxY; y++ {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%g" y="%.1f" text-anchor="end" font-size="11">1e%d</text>`,
			L, W-R, sy(y), sy(y), L-6, sy(y)+4, int(y))
	}
	step := niceStep((maxX - minX) / 8)
	for x := math.Ceil(minX/step) * step; x <= maxX; x += step {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%g" y2="%g" stroke="#eee"/><text x="%.1f" y="%g" text-anchor="middle" font-size="11">%g</text>`,
			sx(x), sx(x), T, H-B, sx(x), H-B+16, x)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" font-size="12">file size (MB)</text>`, (L+W-R)/2, H-10)
	fmt.Fprintf(&b, `<text transform="translate(16 %g) rotate(-90)" text-anchor="middle" font-size="12">mean KLD to the base (log scale)</text>`, (T+H-B)/2)
	groups := map[string]int{}
	var order []string
	for _, p := range pts {
		if _, ok := groups[p.Group]; !ok {
			groups[p.Group] = len(order)
			order = append(order, p.Group)
		}
	}
	for gi, g := range order {
		col := palette[gi%len(palette)]
		var line []string
		for _, p := range pts {
			if p.Group == g {
				line = append(line, fmt.Sprintf("%.1f,%.1f", sx(float64(p.Bytes)/1e6), sy(math.Log10(max(p.KLD, 1e-7)))))
			}
		}
		fmt.Fprintf(&b, `<polyline class="curve" data-group="%s" points="%s" fill="none" stroke="%s" stroke-width="1.5"/>`, esc(g), strings.Join(line, " "), col)
		for _, p := range pts {
			if p.Group != g {
				continue
			}
			fmt.Fprintf(&b, `<circle class="pt" data-group="%s" cx="%.1f" cy="%.1f" r="4.5" fill="%s"><title>%s (%s): %d bytes, %.3f bpw, KLD %.5f</title></circle>`,
				esc(g), sx(float64(p.Bytes)/1e6), sy(math.Log10(max(p.KLD, 1e-7))), col, esc(p.Label), esc(g), p.Bytes, p.BPW, p.KLD)
		}
		fmt.Fprintf(&b, `<rect x="%g" y="%g" width="10" height="10" fill="%s"/><text x="%g" y="%g" font-size="12">%s</text>`,
			W-R-150, T+10+float64(gi)*16, col, W-R-134, T+19+float64(gi)*16, esc(g))
	}
	b.WriteString(`</svg>`)
	return b.String()
}

// niceStep rounds s up to 1, 2 or 5 times a power of ten.
func niceStep(s float64) float64 {
	if s <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(s)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= s {
			return m * p
		}
	}
	return 10 * p
}

// allocation draws a searched allocation: a row per block, a column per
// tensor kind, each cell coloured by the bits per weight of its type.
func allocation(a Allocation) string {
	blocks := map[string]bool{}
	kinds := map[string]bool{}
	cell := map[[2]string]string{}
	for name, typ := range a.Tensors {
		bl, k := splitName(name)
		blocks[bl], kinds[k] = true, true
		cell[[2]string{bl, k}] = typ
	}
	bl := sortedBlocks(blocks)
	ks := sortedKeys(kinds)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range cell {
		lo, hi = min(lo, a.BPW[t]), max(hi, a.BPW[t])
	}
	const cw, ch, left, top = 78.0, 20.0, 90.0, 60.0
	W, H := left+cw*float64(len(ks))+10, top+ch*float64(len(bl))+10
	var b strings.Builder
	fmt.Fprintf(&b, `<figure><figcaption>%s</figcaption><svg class="alloc" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" width="%g" height="%g">`, esc(a.Label), W, H, W, H)
	for j, k := range ks {
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" font-size="11" text-anchor="start" transform="rotate(-30 %.1f %g)">%s</text>`,
			left+cw*float64(j)+4, top-6, left+cw*float64(j)+4, top-6, esc(k))
	}
	for i, blk := range bl {
		y := top + ch*float64(i)
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" font-size="11" text-anchor="end">%s</text>`, left-6, y+14, esc(blk))
		for j, k := range ks {
			t, ok := cell[[2]string{blk, k}]
			if !ok {
				continue
			}
			f := 0.5
			if hi > lo {
				f = (a.BPW[t] - lo) / (hi - lo)
			}
			fmt.Fprintf(&b, `<rect class="cell" x="%.1f" y="%.1f" width="%g" height="%g" fill="%s" stroke="#fff"><title>%s.%s: %s (%.2f bpw)</title></rect><text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="%s">%s</text>`,
				left+cw*float64(j), y, cw, ch, heat(f), esc(blk), esc(k), esc(t), a.BPW[t], left+cw*float64(j)+cw/2, y+14, textOn(f), esc(t))
		}
	}
	b.WriteString(`</svg></figure>`)
	return b.String()
}

// heat maps 0…1 to a colour from pale yellow (few bits) to dark blue.
func heat(f float64) string {
	f = min(max(f, 0), 1)
	r := int(255 - f*(255-8))
	g := int(247 - f*(247-48))
	bl := int(188 - f*(188-107))
	return fmt.Sprintf("#%02x%02x%02x", r, g, bl)
}

func textOn(f float64) string {
	if f > 0.55 {
		return "#fff"
	}
	return "#000"
}

func splitName(name string) (block, kind string) {
	s := strings.TrimSuffix(name, ".weight")
	if rest, ok := strings.CutPrefix(s, "blk."); ok {
		if i := strings.IndexByte(rest, '.'); i > 0 {
			return "blk." + rest[:i], rest[i+1:]
		}
	}
	return s, s
}

// sortedBlocks orders blocks numerically, other names (embeddings,
// output) first.
func sortedBlocks(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	num := func(k string) int {
		var n int
		if _, err := fmt.Sscanf(k, "blk.%d", &n); err != nil {
			return -1
		}
		return n
	}
	sort.Slice(s, func(a, b int) bool {
		na, nb := num(s[a]), num(s[b])
		if na != nb {
			return na < nb
		}
		return s[a] < s[b]
	})
	return s
}

func sortedKeys(m map[string]bool) []string {
	var s []string
	for k := range m {
		s = append(s, k)
	}
	sort.Strings(s)
	return s
}

func esc(s string) string { return template.HTMLEscapeString(s) }

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin-top:1em}td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child,td:nth-child(2),th:nth-child(2){text-align:left}
figure{margin:1.5em 0}figcaption{font-weight:600;margin-bottom:.3em}
</style></head><body>
<h1>{{.Title}}</h1>
{{if .Points}}<h2>Rate–distortion</h2>
{{.Plot}}
<table id="points"><thead><tr><th>file</th><th>written by</th><th>bytes</th><th>bits/weight</th><th>mean KLD</th><th>KLD p99</th><th>same top-1 %</th><th>PPL</th></tr></thead><tbody>
{{range .Points}}<tr><td>{{.Label}}</td><td>{{.Group}}</td><td>{{.Bytes}}</td><td>{{printf "%.3f" .BPW}}</td><td>{{printf "%.5f" .KLD}}</td><td>{{printf "%.4f" .KLDP99}}</td><td>{{printf "%.2f" .Top1}}</td><td>{{printf "%.4f" .PPL}}</td></tr>
{{end}}</tbody></table>{{end}}
{{if .Allocs}}<h2>Searched allocations</h2>{{range .Allocs}}{{.}}{{end}}{{end}}
</body></html>
`))
