package eval

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/terse-llm/terse/progress"
)

// Model is what eval needs from a language model.
type Model interface {
	VocabSize() int
	// Logits runs tokens as one fresh sequence starting at position 0 and writes
	// len(tokens)*VocabSize() logits (row t = prediction after tokens[0..t]) to out.
	Logits(tokens []int, out []float32) error
}

// Protocol chooses which windows of a stream are run and which predictions
// in them are scored.
type Protocol int

const (
	// ProtocolDefault is the zero value: ProtocolAll, or the protocol recorded
	// in a base-logits file.
	ProtocolDefault Protocol = iota
	// ProtocolAll scores every prediction of non-overlapping Ctx-token windows
	// taken from the start of the stream: Ctx−1 per window.
	ProtocolAll
	// ProtocolLlamaCpp is llama.cpp's llama-perplexity: the same windows with
	// their first token replaced by BOS, scoring the predictions made at
	// positions Ctx/2 … Ctx−2 (Ctx−1−Ctx/2 per window).
	ProtocolLlamaCpp
	// ProtocolRepeat measures what a model still sees of its context: each
	// window is BOS, a passage of N = (Ctx−1)/2 tokens of the stream, and
	// the same passage again (2N+1 tokens), and only the predictions of the
	// second copy's tokens 2…N are scored (N−1 per window; its first token
	// cannot be known to repeat). A model that still attends to the first
	// copy predicts them almost perfectly; one whose cache evicted or
	// blurred it does not. Passages are consecutive, non-overlapping pieces
	// of the stream.
	ProtocolRepeat
)

// String returns the protocol's name as ParseProtocol accepts it.
func (p Protocol) String() string {
	switch p {
	case ProtocolDefault:
		return "default"
	case ProtocolAll:
		return "all"
	case ProtocolLlamaCpp:
		return "llamacpp"
	case ProtocolRepeat:
		return "repeat"
	}
	return fmt.Sprintf("Protocol(%d)", int(p))
}

// ParseProtocol parses "all" or "llamacpp" (also "llama.cpp", "llama-cpp").
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "", "default":
		return ProtocolDefault, nil
	case "all":
		return ProtocolAll, nil
	case "llamacpp", "llama.cpp", "llama-cpp":
		return ProtocolLlamaCpp, nil
	case "repeat":
		return ProtocolRepeat, nil
	}
	return 0, fmt.Errorf("eval: unknown protocol %q (want all, llamacpp or repeat)", s)
}

// DefaultCtx is the window length used when Options.Ctx is 0.
const DefaultCtx = 512

// DefaultTopK is the number of base log-probs a base-logits file keeps per
// position when Options.SaveTopK is 0.
const DefaultTopK = 64

// DefaultTailSamples is the number of ids a base-logits file samples from
// the base's tail distribution per position when Options.SaveTailSamples is 0.
const DefaultTailSamples = 32

// Options configures Evaluate. The zero value scores every full 512-token
// window with ProtocolAll, quietly.
type Options struct {
	// Protocol chooses windows and scored positions (zero: ProtocolAll, or
	// the base-logits file's).
	Protocol Protocol
	// Ctx is the window length in tokens (zero: DefaultCtx, or the file's).
	Ctx int
	// Windows limits the run to the first Windows windows (zero: all full
	// windows of the stream, or all windows in the base-logits file).
	Windows int
	// BOS is the id ProtocolLlamaCpp puts in place of each window's first
	// token; -1 leaves the tokens as they are (llama.cpp without add_bos).
	// Set it from tokenizer.Tokenizer.BOS(): the zero value is id 0.
	// ProtocolAll ignores it; with a base-logits file the file's value is used.
	BOS int
	// PerPosition keeps each scored position's NLL (and KLD with a base) in
	// the Result.
	PerPosition bool

	// Base, when set, is run on the same windows and the result compares the
	// model with it (KLD, top-1, Δp). BaseName labels it in the result.
	Base     Model
	BaseName string
	// BaseLogits, when set, is a base-logits file to compare with instead of
	// a live Base; BaseLogitsName names it in errors and in the result. The
	// stream passed to Evaluate may then be nil (the file's tokens are
	// used); if it is not, it must begin with the file's tokens.
	BaseLogits     io.Reader
	BaseLogitsName string

	// SaveLogits, when set, receives a base-logits file of the evaluated
	// model's distributions with SaveTopK entries per position (zero:
	// DefaultTopK). It is written as the run goes and is complete when
	// Evaluate returns nil; a bufio.Writer is used internally.
	SaveLogits io.Writer
	SaveTopK   int
	// SaveTailSamples is how many ids per position are sampled from the
	// mass outside the top-K to estimate the KLD hidden there (zero:
	// DefaultTailSamples; negative: none, giving the top-K lower bound).
	SaveTailSamples int

	// Progress, when set, receives a progress bar (tokens/s); usually
	// os.Stderr.
	Progress io.Writer

	// ModelName and DataName name the model and the text the stream came
	// from; they label the Result (JSON "model" and "data") and DataName
	// appears in errors about the stream.
	ModelName, DataName string
	// ModelBytes is the size of the model's files, reported as is.
	ModelBytes int64

	// KV, when set, describes the evaluated model's KV cache; it is copied
	// into the Result.
	KV *KVInfo
}

// plan is the resolved set of windows and scored rows of a run.
type plan struct {
	proto   Protocol
	ctx     int // tokens the model runs per window
	stride  int // stream tokens a window consumes (ctx, or the passage length)
	windows int
	first   int // first scored row in a window; rows first..ctx-2 are scored
	bos     int
}

func (p plan) scoredPerWindow() int { return p.ctx - 1 - p.first }

func makePlan(proto Protocol, ctx, windows, bos, streamLen int, data string) (plan, error) {
	if proto == ProtocolDefault {
		proto = ProtocolAll
	}
	if ctx == 0 {
		ctx = DefaultCtx
	}
	if data == "" {
		data = "the text"
	}
	if ctx < 2 {
		return plan{}, fmt.Errorf("eval: context %d is too short (need at least 2 tokens)", ctx)
	}
	p := plan{proto: proto, ctx: ctx, stride: ctx, bos: bos}
	switch proto {
	case ProtocolAll:
	case ProtocolLlamaCpp:
		p.first = ctx / 2
		if p.scoredPerWindow() < 1 {
			return plan{}, fmt.Errorf("eval: context %d is too short for the llama.cpp protocol", ctx)
		}
	case ProtocolRepeat:
		n := (ctx - 1) / 2
		if n < 2 {
			return plan{}, fmt.Errorf("eval: context %d is too short for the repeat protocol (need at least 5 tokens: BOS and two copies of 2)", ctx)
		}
		if bos < 0 {
			return plan{}, errors.New("eval: the repeat protocol puts BOS before each passage, and the vocabulary has none")
		}
		p.ctx, p.stride, p.first = 2*n+1, n, n+1
	default:
		return plan{}, fmt.Errorf("eval: unknown protocol %v", proto)
	}
	full := streamLen / p.stride
	if windows < 0 {
		return plan{}, fmt.Errorf("eval: negative window count %d", windows)
	}
	if windows == 0 {
		windows = full
	}
	if full < windows || windows == 0 {
		need := fmt.Sprintf("one window needs %d tokens", p.stride)
		if windows > 1 {
			need = fmt.Sprintf("%d windows need %d tokens", windows, windows*p.stride)
		}
		return plan{}, fmt.Errorf("eval: %s gives %d tokens, %d full windows of %d; %s (use a longer text, a shorter context or fewer windows)",
			data, streamLen, full, p.stride, need)
	}
	p.windows = windows
	return p, nil
}

// Evaluate runs m over stream as opt describes and returns its perplexity
// and, with opt.Base or opt.BaseLogits, its divergence from the base. It
// processes one window at a time: memory is Ctx×VocabSize float32 logits per
// model (two with a live base) plus a few vocabulary-sized buffers.
func Evaluate(m Model, stream []int, opt Options) (*Result, error) {
	if m == nil {
		return nil, errors.New("eval: nil model")
	}
	if opt.Base != nil && opt.BaseLogits != nil {
		return nil, errors.New("eval: both a base model and a base-logits file given")
	}
	vocab := m.VocabSize()
	if vocab <= 0 {
		return nil, fmt.Errorf("eval: model has vocabulary size %d", vocab)
	}

	var (
		lr  *LogitsReader
		p   plan
		err error
	)
	if opt.Protocol == ProtocolRepeat && (opt.BaseLogits != nil || opt.SaveLogits != nil) {
		return nil, errors.New("eval: the repeat protocol does not use base-logits files (compare with a live base model instead)")
	}
	if opt.BaseLogits != nil {
		lr, err = NewLogitsReader(opt.BaseLogits, opt.BaseLogitsName)
		if err != nil {
			return nil, err
		}
		if stream, p, err = lr.planFor(stream, vocab, opt); err != nil {
			return nil, err
		}
	} else {
		if p, err = makePlan(opt.Protocol, opt.Ctx, opt.Windows, opt.BOS, len(stream), opt.DataName); err != nil {
			return nil, err
		}
	}
	if opt.Base != nil && opt.Base.VocabSize() != vocab {
		return nil, fmt.Errorf("eval: base vocabulary %d differs from the model's %d", opt.Base.VocabSize(), vocab)
	}
	if (p.proto == ProtocolLlamaCpp || p.proto == ProtocolRepeat) && p.bos >= vocab {
		return nil, fmt.Errorf("eval: BOS id %d outside the vocabulary of %d", p.bos, vocab)
	}
	used := stream[:p.windows*p.stride]
	for i, t := range used {
		if t < 0 || t >= vocab {
			return nil, fmt.Errorf("eval: token %d at position %d outside the vocabulary of %d", t, i, vocab)
		}
	}

	var lw *logitsWriter
	if opt.SaveLogits != nil {
		k := opt.SaveTopK
		if k == 0 {
			k = DefaultTopK
		}
		if k < 1 || k > maxTopK {
			return nil, fmt.Errorf("eval: top-K %d out of range 1..%d", k, maxTopK)
		}
		samples := opt.SaveTailSamples
		switch {
		case samples == 0:
			samples = DefaultTailSamples
		case samples < 0:
			samples = 0
		case samples > maxSamples:
			return nil, fmt.Errorf("eval: tail samples %d out of range 0..%d", samples, maxSamples)
		}
		lw, err = newLogitsWriter(opt.SaveLogits, LogitsHeader{
			Vocab: vocab, Ctx: p.ctx, Protocol: p.proto, BOS: p.bos, Windows: p.windows,
			TopK: min(k, vocab), Samples: samples, Tokens: used,
		})
		if err != nil {
			return nil, err
		}
	}

	sc := newScorer(vocab, p, opt.Base != nil, lr != nil, opt.PerPosition)
	logits := make([]float32, p.ctx*vocab)
	var baseLogits []float32
	if opt.Base != nil {
		baseLogits = make([]float32, p.ctx*vocab)
	}
	input := make([]int, p.ctx)
	bar := progress.New(opt.Progress, int64(p.windows*p.ctx), "eval", "tok")
	t0 := time.Now()
	for w := 0; w < p.windows; w++ {
		start := w * p.stride
		switch p.proto {
		case ProtocolRepeat:
			input[0] = p.bos
			copy(input[1:], stream[start:start+p.stride])
			copy(input[1+p.stride:], stream[start:start+p.stride])
		default:
			copy(input, stream[start:start+p.ctx])
			if p.proto == ProtocolLlamaCpp && p.bos >= 0 {
				input[0] = p.bos
			}
		}
		if err := m.Logits(input, logits); err != nil {
			return nil, fmt.Errorf("eval: window %d: %w", w, err)
		}
		if opt.Base != nil {
			if err := opt.Base.Logits(input, baseLogits); err != nil {
				return nil, fmt.Errorf("eval: base, window %d: %w", w, err)
			}
		}
		for r := p.first; r < p.ctx-1; r++ {
			target := input[r+1]
			row := logits[r*vocab : (r+1)*vocab]
			var err error
			switch {
			case opt.Base != nil:
				err = sc.live(row, baseLogits[r*vocab:(r+1)*vocab], target, lw)
			case lr != nil:
				if err = lr.next(&sc.brow); err == nil {
					err = sc.file(row, target, lw)
				}
			default:
				err = sc.plain(row, target, lw)
			}
			if err != nil {
				return nil, fmt.Errorf("eval: window %d, position %d: %w", w, r, err)
			}
		}
		if lr != nil {
			if err := lr.endWindow(); err != nil {
				return nil, err
			}
		}
		if lw != nil {
			if err := lw.endWindow(); err != nil {
				return nil, err
			}
		}
		bar.Add(int64(p.ctx))
	}
	bar.Finish()
	if lw != nil {
		if err := lw.close(); err != nil {
			return nil, err
		}
	}
	if lr != nil && p.windows == lr.hdr.Windows {
		if err := lr.expectEOF(); err != nil {
			return nil, err
		}
	}
	res := sc.result()
	res.Model, res.Data, res.ModelBytes = opt.ModelName, opt.DataName, opt.ModelBytes
	res.KVInfo = opt.KV
	res.Seconds = time.Since(t0).Seconds()
	if res.Seconds > 0 {
		res.TokensPerSec = float64(p.windows*p.ctx) / res.Seconds
	}
	switch {
	case res.Comparison == nil:
	case opt.Base != nil:
		res.BaseSource = opt.BaseName
		if res.BaseSource == "" {
			res.BaseSource = "model"
		}
	default:
		res.BaseSource = lr.name
		res.BaseTopK = lr.hdr.TopK
		res.BaseTailSamples = lr.hdr.Samples
	}
	return res, nil
}

// meanSE returns the mean of n values given their sum and sum of squares,
// and the standard error of that mean as llama.cpp computes it.
func meanSE(sum, sum2 float64, n int) (mean, se float64) {
	if n < 1 {
		return 0, 0
	}
	mean = sum / float64(n)
	v := sum2/float64(n) - mean*mean
	if v > 0 && n > 1 {
		se = math.Sqrt(v / float64(n-1))
	}
	return mean, se
}
