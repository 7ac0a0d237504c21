package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

func runTokenize(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("tokenize", stderr)
	mf := addModelFlags(fs)
	text := fs.String("text", "", "text to tokenize")
	file := fs.String("file", "", "file whose text to tokenize")
	special := fs.Bool("special", false, "add the special tokens the model's tokenizer adds (BOS for most models)")
	jsonOut := fs.Bool("json", false, "print {\"ids\": [...]}")
	if err := parse(fs, args); err != nil {
		return err
	}
	if (*text == "") == (*file == "") {
		return usagef("give exactly one of --text or --file")
	}
	s := *text
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		s = string(b)
	}
	ck, err := mf.openTokenizer()
	if err != nil {
		return err
	}
	defer ck.Close()
	ids := ck.Tokenizer.Encode(s, *special)
	if *jsonOut {
		return writeCompactJSON(stdout, struct {
			IDs []int `json:"ids"`
		}{ids})
	}
	fmt.Fprintf(stdout, "%d tokens\n", len(ids))
	fmt.Fprintf(stdout, "%8s  %s\n", "id", "piece")
	for _, id := range ids {
		fmt.Fprintf(stdout, "%8d  %s\n", id, strings.ReplaceAll(fmt.Sprintf("%q", ck.Tokenizer.Piece(id)), `\u2581`, "▁"))
	}
	return nil
}
