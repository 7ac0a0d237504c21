package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/terse-llm/terse/model"
)

// PrefixCache restores the longest cached prefix of tokens into an empty cache and saves new blocks after prefill.
type PrefixCache interface {
	Restore(ctx context.Context, c model.KVCache, tokens []int) (int, error) // positions restored (0: none)
	Save(ctx context.Context, c model.KVCache, tokens []int) error           // tokens: those the cache now holds
	Stats() (hits, lookups int64)
}

// errShutdown ends the requests still running when the server closes.
var errShutdown = errors.New("the server is shutting down")

// event is what the scheduler sends a request's handler: text that became
// final, and at the end the reason generation stopped (or an error).
type event struct {
	text   string
	token  int // the generated token (-1 on the final event)
	finish string
	err    error
	usage  usage
}

// job is one request's sequence, owned by the scheduler once queued.
type job struct {
	ctx       context.Context
	prompt    []int
	maxTokens int
	sampler   *model.Sampler
	ends      []int
	text      *textStream
	events    chan event // buffered for every event the job can send
	arrived   time.Time

	seq       *model.Seq
	fed       int // prompt positions in the cache
	generated int
	last      int // the token to feed next while decoding
	lastAt    time.Time
}

func (j *job) decoding() bool { return j.fed == len(j.prompt) }

// scheduler owns the Engine: one goroutine admits queued jobs, feeds
// prefill chunks and decode tokens of every active job in one Forward per
// step, samples and streams.
type scheduler struct {
	s       *Server
	eng     *model.Engine
	queue   chan *job
	quit    chan struct{} // closed: cancel everything and stop
	done    chan struct{} // closed when the loop has returned
	active  []*job
	nextID  int
	logits  []float32
	tokens  []int
	seqs    []int
	pos     []int
	want    []bool
	rows    []*job // the job of each logits row of a step
	prefill []*job // jobs whose prefill the step completes
}

func newScheduler(s *Server) *scheduler {
	o := &s.opt
	vocab := o.Model.Config.VocabSize
	return &scheduler{
		s:      s,
		eng:    o.Model.NewEngine(o.Ctx, max(o.PrefillChunk, o.MaxSeqs)),
		queue:  make(chan *job, o.QueueSize),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		logits: make([]float32, max(o.MaxSeqs, 1)*vocab),
	}
}

// submit queues j, or says the queue is full.
func (sc *scheduler) submit(j *job) bool {
	select {
	case sc.queue <- j:
		sc.s.met.observe(func(m *metrics) { m.queue = len(sc.queue) })
		return true
	default:
		return false
	}
}

// run is the scheduler's loop.
func (sc *scheduler) run() {
	defer close(sc.done)
	for {
		select {
		case <-sc.quit:
			sc.cancelAll()
			return
		default:
		}
		sc.dropCancelled()
		sc.gauges()
		if !sc.admit() {
			sc.cancelAll()
			return
		}
		sc.gauges()
		if len(sc.active) > 0 {
			sc.safeStep()
		}
	}
}

// safeStep runs step; a panic (a bug) ends the jobs of the step with an
// error instead of taking the server down.
func (sc *scheduler) safeStep() {
	defer func() {
		if v := recover(); v != nil {
			sc.s.opt.Logger.Error("scheduler step panicked", "panic", v)
			for _, j := range sc.active {
				if j.seq != nil {
					sc.finish(j, "", fmt.Errorf("internal error: %v", v))
				}
			}
			sc.active = sc.active[:0]
		}
	}()
	sc.step()
}

// gauges publishes the queue length and the active sequences.
func (sc *scheduler) gauges() {
	sc.s.met.observe(func(m *metrics) { m.queue, m.active = len(sc.queue), len(sc.active) })
}

// cancelAll ends every active and queued job with an error.
func (sc *scheduler) cancelAll() {
	err := errShutdown
	for _, j := range sc.active {
		sc.finish(j, "", err)
	}
	sc.active = nil
	for {
		select {
		case j := <-sc.queue:
			j.events <- event{token: -1, err: err}
		default:
			sc.s.met.observe(func(m *metrics) { m.queue, m.active = 0, 0 })
			return
		}
	}
}

// dropCancelled removes the jobs whose client went away, freeing their
// sequences and caches.
func (sc *scheduler) dropCancelled() {
	sc.active = slices.DeleteFunc(sc.active, func(j *job) bool {
		if j.ctx.Err() == nil {
			return false
		}
		sc.eng.RemoveSeq(j.seq.ID())
		j.seq = nil
		return true
	})
}

// admit moves queued jobs into free sequence slots, waiting for one when
// nothing is active. It returns false when the scheduler must stop.
func (sc *scheduler) admit() bool {
	o := &sc.s.opt
	for len(sc.active) < o.MaxSeqs {
		var j *job
		if len(sc.active) == 0 {
			select {
			case j = <-sc.queue:
			case <-sc.quit:
				return false
			}
		} else {
			select {
			case j = <-sc.queue:
			default:
				return true
			}
		}
		if j.ctx.Err() != nil {
			continue
		}
		if err := sc.safeStart(j); err != nil {
			j.events <- event{token: -1, err: err}
			continue
		}
		sc.active = append(sc.active, j)
	}
	return true
}

// safeStart is start with a panic (a bug, in a prefix cache say) turned
// into the job's error.
func (sc *scheduler) safeStart(j *job) (err error) {
	defer func() {
		if v := recover(); v != nil {
			sc.s.opt.Logger.Error("starting a sequence panicked", "panic", v)
			if j.seq != nil {
				sc.eng.RemoveSeq(j.seq.ID())
				j.seq = nil
			}
			err = fmt.Errorf("internal error: %v", v)
		}
	}()
	return sc.start(j)
}

// start gives j a cache and a sequence, restoring what the prefix cache
// holds of its prompt.
func (sc *scheduler) start(j *job) error {
	o := &sc.s.opt
	cache, err := o.KV.New(&o.Model.Config, min(len(j.prompt)+j.maxTokens, o.Ctx))
	if err != nil {
		return fmt.Errorf("kv cache: %w", err)
	}
	if pc := o.PrefixCache; pc != nil {
		n, err := pc.Restore(j.ctx, cache, j.prompt)
		switch {
		case err != nil:
			o.Logger.Warn("prefix cache restore failed; prefilling the whole prompt", "err", err)
			n = 0
		case n > len(j.prompt) || n != cache.Len():
			o.Logger.Warn("prefix cache restored a wrong length; prefilling the whole prompt", "restored", n, "cache", cache.Len(), "prompt", len(j.prompt))
			n = 0
		}
		// The last prompt token is always run: its logits give the first
		// generated token.
		n = min(n, len(j.prompt)-1)
		if err := cache.Truncate(n); err != nil {
			return fmt.Errorf("kv cache: %w", err)
		}
		j.fed = n
	}
	sc.nextID++
	seq, err := sc.eng.AddSeq(sc.nextID, cache)
	if err != nil {
		return err
	}
	j.seq = seq
	return nil
}

// step runs one scheduling step: one Forward with the next token of every
// decoding job (continuous batching: one pass over the weights advances
// them all), then the next prefill piece of each prefilling job, each in a
// Forward of its own, until PrefillChunk prompt tokens have been fed.
//
// Prefill pieces are not merged across jobs, nor with the decode tokens:
// the kernels pick their route by batch size (kernel.Config.QMaxBatch), so
// a row's rounding depends on how many rows share its pass. Kept apart,
// each job sees exactly the passes `terse generate` runs — its prompt in
// pieces of up to PrefillChunk (512, generate's piece, by default) and
// then one pass per token in a batch of at most MaxSeqs rows — and greedy
// output is the same, token for token, while MaxSeqs stays within the
// integer path's batch (16 by default).
func (sc *scheduler) step() {
	o := &sc.s.opt
	sc.reset()
	for _, j := range sc.active {
		if j.decoding() {
			sc.add(j, j.last, j.seq.Len(), true)
		}
	}
	if len(sc.tokens) > 0 && !sc.forward() {
		return
	}
	budget := o.PrefillChunk
	for _, j := range sc.active {
		if j.decoding() || budget == 0 || j.seq == nil {
			continue
		}
		sc.reset()
		n := min(budget, len(j.prompt)-j.fed)
		for i := 0; i < n; i++ {
			p := j.fed + i
			sc.add(j, j.prompt[p], p, p == len(j.prompt)-1)
		}
		budget -= n
		j.fed += n
		if j.decoding() {
			sc.prefill = append(sc.prefill, j)
		}
		if !sc.forward() {
			return
		}
	}
	sc.active = slices.DeleteFunc(sc.active, func(j *job) bool { return j.seq == nil })
}

// reset empties the batch being built.
func (sc *scheduler) reset() {
	sc.tokens, sc.seqs, sc.pos, sc.want = sc.tokens[:0], sc.seqs[:0], sc.pos[:0], sc.want[:0]
	sc.rows, sc.prefill = sc.rows[:0], sc.prefill[:0]
}

// add puts token tok of j at position pos into the batch.
func (sc *scheduler) add(j *job, tok, pos int, want bool) {
	sc.tokens = append(sc.tokens, tok)
	sc.seqs = append(sc.seqs, j.seq.ID())
	sc.pos = append(sc.pos, pos)
	sc.want = append(sc.want, want)
	if want {
		sc.rows = append(sc.rows, j)
	}
}

// forward runs the batch, saves the prompts whose prefill it completed to
// the prefix cache, and samples every job whose logits came back. When
// Forward fails every active job ends with the error and forward returns
// false.
func (sc *scheduler) forward() bool {
	o := &sc.s.opt
	vocab := o.Model.Config.VocabSize
	err := sc.eng.Forward(context.Background(), model.Batch{Tokens: sc.tokens, Seqs: sc.seqs, Pos: sc.pos, Logits: sc.want}, sc.logits)
	if err != nil {
		// The jobs' caches are in an unknown state: end them all.
		o.Logger.Error("forward failed", "err", err)
		for _, j := range sc.active {
			if j.seq != nil {
				sc.finish(j, "", fmt.Errorf("forward: %w", err))
			}
		}
		sc.active = sc.active[:0]
		return false
	}
	now := time.Now()
	for _, j := range sc.prefill {
		sc.s.met.observe(func(m *metrics) { m.promptTokens += uint64(len(j.prompt)) })
		if pc := o.PrefixCache; pc != nil {
			if err := pc.Save(j.ctx, j.seq.Cache(), j.prompt); err != nil {
				o.Logger.Warn("prefix cache save failed", "err", err)
			}
		}
	}
	sampled := 0
	for r, j := range sc.rows {
		tok := j.sampler.Sample(sc.logits[r*vocab : (r+1)*vocab])
		first := j.generated == 0
		sc.s.met.observe(func(m *metrics) {
			if first {
				m.ttft.observe(now.Sub(j.arrived).Seconds())
			} else {
				m.interToken.observe(now.Sub(j.lastAt).Seconds())
			}
		})
		j.lastAt = now
		if slices.Contains(j.ends, tok) {
			sc.finish(j, "stop", nil)
			continue
		}
		j.generated++
		sampled++
		text, stopped := j.text.add(tok)
		j.events <- event{text: text, token: tok}
		switch {
		case stopped:
			sc.finish(j, "stop", nil)
		case j.generated >= j.maxTokens || j.seq.Len() >= j.seq.Cache().Cap():
			sc.finish(j, "length", nil)
		default:
			j.last = tok
		}
	}
	if sampled > 0 {
		sc.s.met.generated(now, sampled)
	}
	return true
}

// finish sends j's final event and frees its sequence.
func (sc *scheduler) finish(j *job, reason string, err error) {
	ev := event{token: -1, finish: reason, err: err,
		usage: usage{PromptTokens: len(j.prompt), CompletionTokens: j.generated, TotalTokens: len(j.prompt) + j.generated}}
	if err == nil {
		ev.text = j.text.flush()
	}
	j.events <- ev
	if j.seq != nil {
		sc.eng.RemoveSeq(j.seq.ID())
		j.seq = nil
	}
}
