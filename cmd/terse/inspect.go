package main

import (
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/terse-llm/terse/format/native"
	"github.com/terse-llm/terse/load"
)

// inspectResult describes a checkpoint.
type inspectResult struct {
	Path          string        `json:"path"`
	Format        string        `json:"format"`
	Config        native.Config `json:"config"` // the snake_case schema of format/native
	Params        int64         `json:"params"`
	FileBytes     int64         `json:"file_bytes"`
	WeightBytes   int64         `json:"weight_bytes"`
	BitsPerWeight float64       `json:"bits_per_weight"`
	TypeCounts    []typeCount   `json:"type_counts"` // by type name
	Tensors       []tensorInfo  `json:"tensors"`
}

// typeCount is how many tensors are stored as one type.
type typeCount struct {
	Type    string `json:"type"`
	Tensors int    `json:"tensors"`
}

type tensorInfo struct {
	Name  string  `json:"name"`
	Type  string  `json:"type"`
	Shape []int   `json:"shape"`
	Bytes int     `json:"bytes"`
	BPW   float64 `json:"bits_per_weight"`
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", stderr)
	mf := addModelFlags(fs)
	jsonOut := fs.Bool("json", false, "print one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	r := inspect(ck)
	if *jsonOut {
		return writeJSON(stdout, r)
	}
	c := r.Config
	fmt.Fprintf(stdout, "model      %s (%s)\n", r.Path, r.Format)
	fmt.Fprintf(stdout, "arch       %s: dim %d, %d layers, %d heads (%d KV, head dim %d), FFN %d, vocab %d, context %d\n",
		c.Arch, c.Dim, c.NLayers, c.NHeads, c.NKVHeads, c.HeadDim, c.FFNDim, c.VocabSize, c.MaxSeqLen)
	fmt.Fprintf(stdout, "rope       theta %g, %s pairs", c.RopeTheta, c.RopeStyle)
	if c.RopeScaling != nil {
		fmt.Fprintf(stdout, ", %s scaling ×%g", c.RopeScaling.Type, c.RopeScaling.Factor)
	}
	fmt.Fprintf(stdout, "; norm eps %g; tied embeddings %v; qkv bias %v\n", c.NormEps, c.TiedEmbeddings, c.AttnBias)
	fmt.Fprintf(stdout, "parameters %d (%.2fM)\n", r.Params, float64(r.Params)/1e6)
	fmt.Fprintf(stdout, "size       %d bytes on disk, %d bytes of tensors, %.3f bits/weight (file)\n", r.FileBytes, r.WeightBytes, r.BitsPerWeight)
	fmt.Fprint(stdout, "types     ")
	for _, t := range r.TypeCounts {
		fmt.Fprintf(stdout, " %s×%d", t.Type, t.Tensors)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintln(stdout)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tensor\ttype\tshape\tbytes\tbits/w\t")
	for _, t := range r.Tensors {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%.2f\t\n", t.Name, t.Type, t.Shape, t.Bytes, t.BPW)
	}
	return tw.Flush()
}

func inspect(ck *load.Checkpoint) inspectResult {
	m := ck.Model
	r := inspectResult{Path: ck.Path, Format: string(ck.Format), Config: native.ConfigOf(m.Config), Params: m.NumParams(),
		FileBytes: ck.FileBytes}
	counts := map[string]int{}
	var elems int64
	for _, t := range ck.Tensors {
		r.WeightBytes += int64(len(t.Data))
		elems += int64(t.NumElements())
		counts[t.DType.String()]++
		bpw := 0.0
		if n := t.NumElements(); n > 0 {
			bpw = float64(len(t.Data)) * 8 / float64(n)
		}
		r.Tensors = append(r.Tensors, tensorInfo{t.Name, t.DType.String(), t.Shape, len(t.Data), bpw})
	}
	for t, n := range counts {
		r.TypeCounts = append(r.TypeCounts, typeCount{t, n})
	}
	sort.Slice(r.TypeCounts, func(i, j int) bool { return r.TypeCounts[i].Type < r.TypeCounts[j].Type })
	if elems > 0 {
		r.BitsPerWeight = float64(r.FileBytes) * 8 / float64(elems)
	}
	return r
}
