package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/terse-llm/terse/codec"
	"github.com/terse-llm/terse/kv"
	"github.com/terse-llm/terse/load"
	"github.com/terse-llm/terse/model"
	"github.com/terse-llm/terse/serve"
	"github.com/terse-llm/terse/serve/prefix"
	storepkg "github.com/terse-llm/terse/store"
)

// shutdownGrace is how long in-flight requests may run on after SIGINT or
// SIGTERM before they are cut short.
const shutdownGrace = 30 * time.Second

func runServe(args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveUntil(ctx, args, stderr, nil)
}

// serveUntil runs the server until ctx is done, then shuts it down
// gracefully. ready, when set, receives the address once it listens.
func serveUntil(ctx context.Context, args []string, stderr io.Writer, ready chan<- string) error {
	fs := newFlags("serve", stderr)
	mf := addModelFlags(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on (host:port; port 0 picks a free one)")
	kvFlag := fs.String("kv", "f32", "KV cache of each sequence: f32, f16, q8_0, q4_0, kivi[:kBvB][:gG][:rR], … (see package kv)")
	store := fs.String("store", "", "context store of KV blocks shared with other processes: file://ctx.db (bbolt), redis://host:port/db or s3://bucket/prefix")
	prefixMB := fs.Int("prefix-cache-mb", 256, "memory for the prefix cache's KV blocks, in MiB (0: no prefix cache)")
	storeCodec := fs.String("store-codec", "raw", "how blocks are written to --store: raw (float32, exact) or cachegen[:BITS] (the CacheGen bitstream, lossy, BITS 1–12, default 7.5)")
	prefixBlock := fs.Int("prefix-block", prefix.DefaultBlockTokens, "tokens per prefix-cache block (only whole blocks are reused)")
	maxSeqs := fs.Int("max-seqs", 16, "sequences decoded together in one batch")
	queue := fs.Int("queue", 0, "requests that may wait for a free sequence before new ones get 429 (0: 4 × --max-seqs)")
	chunk := fs.Int("prefill-chunk", 512, "most prompt tokens prefilled per step, so that long prompts do not stall decoding (512 prefills as generate does: greedy output stays identical)")
	ctxLen := fs.Int("ctx", 0, "most positions a request's prompt and completion take together (0: the model's trained context)")
	allowLong := fs.Bool("allow-long-ctx", false, "allow a --ctx beyond the model's trained context")
	threads := fs.Int("threads", 0, "worker threads (0: all cores)")
	name := fs.String("name", "", "model id clients ask for (default: the model file's name without its extension)")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *maxSeqs < 1:
		return usagef("--max-seqs %d: must be at least 1", *maxSeqs)
	case *queue < 0:
		return usagef("--queue %d: must be 0 (4 × --max-seqs) or a positive count", *queue)
	case *chunk < 1:
		return usagef("--prefill-chunk %d: must be at least 1", *chunk)
	case *ctxLen < 0:
		return usagef("--ctx %d: must be 0 (the model's) or a positive length", *ctxLen)
	case *prefixMB < 0:
		return usagef("--prefix-cache-mb %d: must be 0 (none) or a positive size", *prefixMB)
	case *prefixBlock < 1:
		return usagef("--prefix-block %d: must be at least 1", *prefixBlock)
	case *store != "" && *prefixMB == 0:
		return usagef("--store holds the prefix cache's blocks: it needs --prefix-cache-mb above 0")
	}
	if *store != "" {
		if err := checkStoreURL(*store); err != nil {
			return usageError{"--store: " + err.Error()}
		}
	}
	enc, dec, codecName, err := storeCodecOf(*storeCodec)
	if err != nil {
		return usageError{"--store-codec: " + err.Error()}
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usagef("--addr %q: %v", *addr, err)
	}
	if err := setThreads(*threads); err != nil {
		return err
	}
	kvSpec, err := kv.Parse(*kvFlag)
	if err != nil {
		return usageError{"--kv: " + err.Error()}
	}
	path, _, err := mf.resolve()
	if err != nil {
		return err
	}
	ck, err := mf.open()
	if err != nil {
		return err
	}
	defer ck.Close()
	if *ctxLen > 0 {
		if err := checkTrainedCtx(ck.Path, *ctxLen, ck.Model.Config.MaxSeqLen, *allowLong); err != nil {
			return err
		}
	}
	tmpl, err := serve.LoadChatTemplate(path)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(filepath.Clean(path)), filepath.Ext(path))
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	var pc serve.PrefixCache
	storeNote := "none"
	if *prefixMB > 0 {
		popt := prefix.Options{Namespace: modelIdentity(ck, kvSpec.String()) + "/" + codecName, BlockTokens: *prefixBlock,
			Encode: enc, Decode: dec,
			MemoryBytes: int64(*prefixMB) << 20,
			OnError:     func(err error) { logger.Warn("prefix cache", "err", err) }}
		if *store != "" {
			st, err := storepkg.Open(ctx, *store)
			if err != nil {
				return err
			}
			defer st.Close()
			popt.Store, storeNote = st, *store
		}
		c, err := prefix.New(&ck.Model.Config, popt)
		if err != nil {
			return err
		}
		pc = c
	}
	srv, err := serve.New(serve.Options{
		Model: ck.Model, Tokenizer: ck.Tokenizer, Name: *name, KV: kvSpec, Ctx: *ctxLen,
		MaxSeqs: *maxSeqs, QueueSize: *queue, PrefillChunk: *chunk, ChatTemplate: tmpl, Logger: logger,
		PrefixCache: pc,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stderr, "terse serve: %s on http://%s (context %d, %d sequences, kv %s, chat template %s, prefix cache %d MiB, store %s)\n",
		*name, ln.Addr(), srv.Ctx(), *maxSeqs, *kvFlag, srv.Template(), *prefixMB, storeNote)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	fmt.Fprintf(stderr, "terse serve: shutting down (in-flight requests get %v to finish)\n", shutdownGrace)
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	httpDone := make(chan error, 1)
	go func() { httpDone <- hs.Shutdown(sctx) }() // stops accepting, waits for handlers
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(stderr, "terse serve: cut short the requests still running after %v\n", shutdownGrace)
	}
	if err := <-httpDone; err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// checkStoreURL checks a --store URL's scheme and the parts it needs.
func checkStoreURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", s, err)
	}
	switch u.Scheme {
	case "file":
		if u.Opaque == "" && u.Path == "" && u.Host == "" {
			return fmt.Errorf("%q names no file (file://ctx.db or file:///abs/path/ctx.db)", s)
		}
	case "redis", "rediss":
		if u.Host == "" {
			return fmt.Errorf("%q names no host (redis://host:port/db)", s)
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("%q names no bucket (s3://bucket/prefix)", s)
		}
	default:
		return fmt.Errorf("%q: scheme %q is not one of file, redis, rediss, s3", s, u.Scheme)
	}
	return nil
}

// modelIdentity names what a KV block depends on besides its tokens, for
// the prefix cache's keys: the model's configuration, every weight's name,
// type and shape with the first and last bytes of its data, and the KV
// cache spec. Processes serving the same weights with the same cache share
// blocks through a store whatever the file is called; any other model or
// spec never matches.
func modelIdentity(ck *load.Checkpoint, kvSpec string) string {
	h := sha256.New()
	fmt.Fprintf(h, "terse prefix v1\nkv %s\nconfig %+v\n", kvSpec, ck.Model.Config)
	for _, t := range ck.Model.Weights.Matrices() {
		fmt.Fprintf(h, "%s %s %v %d\n", t.Name, t.DType, t.Shape, len(t.Data))
		d := t.Data
		h.Write(d[:min(len(d), 4096)])
		h.Write(d[max(0, len(d)-4096):])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// storeCodecOf parses --store-codec: nil functions for raw (the prefix
// cache's exact float32 format), CacheGen's coder otherwise. The name
// goes into the blocks' namespace: a lossy block never stands in for an
// exact one.
func storeCodecOf(s string) (enc func(*model.KVBlock) ([]byte, error), dec func([]byte) (*model.KVBlock, error), name string, err error) {
	if s == "raw" {
		return nil, nil, "raw", nil
	}
	rest, ok := strings.CutPrefix(s, "cachegen")
	if !ok || (rest != "" && rest[0] != ':') {
		return nil, nil, "", fmt.Errorf("%q: want raw or cachegen[:BITS]", s)
	}
	o := codec.Options{}
	if rest != "" {
		b, err := strconv.ParseFloat(rest[1:], 64)
		if err != nil || b < 1 || b > 12 {
			return nil, nil, "", fmt.Errorf("%q: bits %q: want a number from 1 to 12", s, rest[1:])
		}
		o.Bits = b
	}
	enc = func(b *model.KVBlock) ([]byte, error) { return codec.Encode(b, o) }
	return enc, codec.Decode, fmt.Sprintf("cachegen-v%d-%g", codec.Version, o.Bits), nil
}
