package medgemma

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/model"
)

// Errors of the scheduler, for errors.Is.
var (
	// ErrQueueFull: as many requests are waiting as the queue holds (a
	// server answers 429 with Retry-After).
	ErrQueueFull = errors.New("too many requests are waiting")
	// ErrClosed: the scheduler takes no new requests (a server is
	// draining: 503).
	ErrClosed = errors.New("not taking new requests (shutting down)")
)

// Defaults of SchedulerOptions.
const (
	DefaultMaxQueue    = 64
	DefaultParallel    = 4
	DefaultBatchTokens = 512
	DefaultContext     = 8192
	// MaxChoices bounds n in ChatN and CompleteN.
	MaxChoices = 16
)

// SchedulerOptions size a Scheduler.
type SchedulerOptions struct {
	// MaxQueue is how many requests may wait (0: DefaultMaxQueue).
	MaxQueue int
	// Parallel is how many sequences run at once (0: DefaultParallel).
	Parallel int
	// BatchTokens is the most tokens of one step: the next token of every
	// running sequence, then chunks of prompts (0: DefaultBatchTokens).
	BatchTokens int
	// Context is the most tokens of one sequence, prompt and answer (0:
	// DefaultContext, within the model's limit).
	Context int
	// KVMemory is the bytes of the KV pool (0: what Context x Parallel
	// needs). Less memory still works: sequences wait or are preempted.
	KVMemory int64
	// BlockSize is the positions per KV block (0: model.DefaultBlockSize).
	BlockSize int
}

// Scheduler runs many conversations on one model at once (continuous
// batching): each step is one forward pass over the next token of every
// running sequence plus chunks of waiting prompts, within a token budget,
// so every weight is read once for all of them and a long prompt or an
// image delays the running streams by one step at most. The KV cache is a
// pool of blocks shared by all sequences (model.KVPool): a new sequence
// starts from the longest prefix cached (a system prompt, an image, earlier
// turns), and when the pool runs out the newest running sequence is
// preempted, its blocks freed, and recomputed later. Requests wait in a
// bounded queue, first come first served. It is the one place that decides
// what runs. Safe for concurrent use.
type Scheduler struct {
	m    *Model
	o    SchedulerOptions
	pool *model.KVPool
	ws   *model.Workspace
	// maxPositions is what the pool's full-attention part holds (0: the
	// model has no such layers).
	maxPositions int

	mu       sync.Mutex
	cond     *sync.Cond
	waiting  []*sequence
	closed   bool
	finished chan struct{}
	avg      time.Duration // moving average of how long a request runs
	nRunning atomic.Int32
	stats    SchedulerStats // guarded by mu

	// The loop's own state.
	running []*sequence
	chunks  []model.Chunk
	owners  []*sequence // per chunk
	rows    []float32   // hidden states to take logits of
	logits  []float32
}

// SchedulerStats are counters of a scheduler's work.
type SchedulerStats struct {
	PrefixHitTokens int64 // prompt tokens found in the KV cache
	Preemptions     int64
	Steps           int64
	Pool            model.PoolStats
}

// sequence is one choice of one request in the scheduler.
type sequence struct {
	ctx       context.Context
	p         *model.Prompt // its IDs are the prompt, then the tokens fed back
	promptLen int
	kv        *model.SeqKV
	gen       *generate.Generation
	embeds    []float32
	score     bool // every prompt position's logits (echo): no prefix reuse
	topN      int
	scores    []generate.StepLogprobs
	forks     []*sequence // n > 1: the other choices, forked at the first sample
	reused    int
	admitted  bool
	submitted time.Time
	prefilled time.Time // when the prompt was done (the first sample)
	ended     time.Time
	stopping  atomic.Bool
	box       mailbox
}

// NewScheduler starts a scheduler over m. Close it to stop its loop.
func NewScheduler(m *Model, o SchedulerOptions) (*Scheduler, error) {
	cfg := m.model.Config.Text
	o.MaxQueue = cmpOr(o.MaxQueue, DefaultMaxQueue)
	o.Parallel = cmpOr(o.Parallel, DefaultParallel)
	o.BatchTokens = cmpOr(o.BatchTokens, DefaultBatchTokens)
	o.Context = min(cmpOr(o.Context, DefaultContext), cfg.MaxPositionEmbeddings)
	o.BlockSize = cmpOr(o.BlockSize, model.DefaultBlockSize)
	switch {
	case o.MaxQueue < 1 || o.Parallel < 1 || o.BatchTokens < 1 || o.Context < 2 || o.KVMemory < 0:
		return nil, fmt.Errorf("scheduler options out of range: %+v", o)
	case o.BatchTokens < o.Parallel:
		return nil, fmt.Errorf("a step of %d tokens cannot hold the next token of %d sequences", o.BatchTokens, o.Parallel)
	}
	pool, err := m.newPool(o)
	if err != nil {
		return nil, err
	}
	s := &Scheduler{m: m, o: o, pool: pool, finished: make(chan struct{}),
		ws: m.model.NewWorkspace(o.BatchTokens + max(m.model.Config.MMTokensPerImage, 0))}
	s.maxPositions = pool.Stats().Full.Max * o.BlockSize
	s.stats.Pool = pool.Stats()
	s.cond = sync.NewCond(&s.mu)
	go s.loop()
	return s, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// newPool sizes the KV pool: the sliding layers need the window and a step
// for each running sequence; the rest of the memory (by default what
// Context x Parallel needs) goes to the full-attention layers.
func (m *Model) newPool(o SchedulerOptions) (*model.KVPool, error) {
	t := m.model.Config.Text
	B := o.BlockSize
	full, sliding := 0, 0
	for i := range t.NumHiddenLayers {
		if t.Sliding(i) {
			sliding++
		} else {
			full++
		}
	}
	perPos := m.model.KVBytesPerPosition()
	slideBlocks := o.Parallel*((min(t.SlidingWindow, o.Context)+o.BatchTokens)/B+3) + MaxChoices
	fullBlocks := o.Parallel*(o.Context/B+2) + MaxChoices
	if o.KVMemory > 0 {
		rest := o.KVMemory - int64(slideBlocks)*int64(B)*perPos*int64(sliding)
		if full > 0 {
			fullBlocks = int(rest / (int64(B) * perPos * int64(full)))
		}
		if fullBlocks < o.Context/B/4+2 || rest <= 0 {
			return nil, fmt.Errorf("a KV memory of %d bytes is too little for %d sequences of up to %d tokens (%d bytes per token)",
				o.KVMemory, o.Parallel, o.Context, perPos*int64(t.NumHiddenLayers))
		}
	}
	return m.model.NewKVPool(model.PoolOptions{BlockSize: B, FullBlocks: max(fullBlocks, 2), SlidingBlocks: max(slideBlocks, 2)})
}

// BytesPerToken is the KV memory of one position.
func (s *Scheduler) BytesPerToken() int64 { return s.pool.BytesPerToken() }

// Options are the scheduler's settings, defaults filled in.
func (s *Scheduler) Options() SchedulerOptions { return s.o }

// Stats reports the scheduler's counters and its pool's blocks.
func (s *Scheduler) Stats() SchedulerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Queued is how many requests wait.
func (s *Scheduler) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queuedLocked()
}

func (s *Scheduler) queuedLocked() int {
	n := 0
	for _, q := range s.waiting {
		if !q.admitted {
			n++
		}
	}
	return n
}

// Running is how many sequences run now.
func (s *Scheduler) Running() int { return int(s.nRunning.Load()) }

// RetryAfter estimates when a request refused now could be taken.
func (s *Scheduler) RetryAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Duration(len(s.waiting)) * s.avg / time.Duration(s.o.Parallel)
	return min(max(d.Round(time.Second), time.Second), time.Minute)
}

// Close stops taking requests (they get ErrClosed); those already queued
// or running go on. Wait returns when they have finished.
func (s *Scheduler) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cond.Broadcast()
}

// Wait blocks until a closed scheduler has run everything it had, or ctx
// ends.
func (s *Scheduler) Wait(ctx context.Context) error {
	select {
	case <-s.finished:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Chat answers a conversation as Model.Chat does, batched with the others.
// Its callbacks run on the caller's goroutine.
func (s *Scheduler) Chat(ctx context.Context, msgs []chat.Message, opts ChatOptions) (*Result, error) {
	res, err := s.ChatN(ctx, msgs, opts, 1, nil)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// ChatN answers a conversation with n choices that share the prompt's
// blocks. opts' callbacks follow choice 0; each, when set, receives every
// choice's pieces with its index.
func (s *Scheduler) ChatN(ctx context.Context, msgs []chat.Message, opts ChatOptions, n int, each *ChoiceCallbacks) ([]*Result, error) {
	if n < 1 || n > MaxChoices {
		return nil, fmt.Errorf("%w: %d choices; want 1..%d", ErrInvalidOptions, n, MaxChoices)
	}
	if opts.Context == 0 {
		opts.Context = s.o.Context
	}
	opts.Context = min(opts.Context, s.o.Context)
	convs := make([]*conversation, n)
	for i := range n {
		o := opts
		if i > 0 {
			o.OnText, o.OnThinking, o.OnToken = nil, nil, nil
		}
		if each != nil {
			o.OnText, o.OnThinking, o.OnToken = each.text(i, o.OnText), each.thinking(i, o.OnThinking), each.token(i, o.OnToken)
		}
		if i > 0 && o.Generate.HasSeed {
			o.Generate.Seed += uint64(i) // distinct, reproducible choices
		}
		var err error
		if i == 0 {
			convs[0], err = s.m.prepareChat(ctx, msgs, o)
		} else {
			convs[i], err = convs[0].again(o)
		}
		if err != nil {
			return nil, err
		}
	}
	seqs, err := s.sequences(ctx, convs[0].p, len(convs[0].prompt.IDs), n, nil, func(i int) (generate.Options, []int32) {
		return convs[i].o, convs[i].prompt.IDs
	})
	if err != nil {
		return nil, err
	}
	if err := s.enqueue(seqs[:1]); err != nil {
		return nil, err
	}
	ls := make([]*listener, n)
	for i, q := range seqs {
		onToken := opts.OnToken
		if i > 0 {
			onToken = nil
		}
		if each != nil {
			onToken = each.token(i, onToken)
		}
		ls[i] = &listener{q: q, onText: convs[i].onText, onToken: onToken}
	}
	if err := s.consume(ctx, ls); err != nil {
		return nil, err
	}
	results := make([]*Result, n)
	for i, l := range ls {
		res := &Result{PromptIDs: convs[i].prompt.IDs, ReusedTokens: l.q.reused}
		convs[i].prefilled(res, l.q.prefilled.Sub(l.q.submitted))
		if err := convs[i].finish(res, l.res); err != nil {
			return nil, err
		}
		results[i] = res
	}
	return results, nil
}

// ChoiceCallbacks receive the pieces of every choice of ChatN, with its
// index; nil fields are not called.
type ChoiceCallbacks struct {
	Text     func(choice int, text string) error
	Thinking func(choice int, text string) error
	Token    func(choice int, st generate.StepLogprobs) error
}

func (c *ChoiceCallbacks) text(i int, also func(string) error) func(string) error {
	if c.Text == nil {
		return also
	}
	return func(t string) error { return c.Text(i, t) }
}

func (c *ChoiceCallbacks) thinking(i int, also func(string) error) func(string) error {
	if c.Thinking == nil {
		return also
	}
	return func(t string) error { return c.Thinking(i, t) }
}

func (c *ChoiceCallbacks) token(i int, also func(generate.StepLogprobs) error) func(generate.StepLogprobs) error {
	if c.Token == nil {
		return also
	}
	return func(st generate.StepLogprobs) error { return c.Token(i, st) }
}

// again is a conversation for another choice of the same prompt: the
// prompt and images shared, its own options and thinking filter.
func (c *conversation) again(opts ChatOptions) (*conversation, error) {
	o := opts.Generate
	if o.MaxNewTokens == 0 {
		o.MaxNewTokens = generate.MaxNewTokens
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	d := &conversation{o: o, prompt: c.prompt, p: c.p, images: c.images, capacity: c.capacity, onText: opts.OnText}
	if c.thought != nil {
		d.thought = &thoughtFilter{show: opts.ShowThinking, next: opts.OnText, thought: opts.OnThinking}
		d.onText = d.thought.write
		d.o.Thought = c.o.Thought
		if d.o.Grammar == nil {
			d.o.Thought = nil
		}
	}
	return d, nil
}

// Complete continues a raw prompt as Model.Complete does, batched with the
// others.
func (s *Scheduler) Complete(ctx context.Context, ids []int32, opts CompleteOptions) (*CompletionResult, error) {
	res, err := s.CompleteN(ctx, [][]int32{ids}, opts, 1, nil)
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// CompleteN continues raw prompts, n choices each, as one request: they
// are queued together and run batched, each prompt prefilled once for its
// choices. Result p*n+j is prompt p's choice j (OpenAI's order). opts'
// callbacks follow the first; each, when set, receives every choice's
// pieces with that index.
func (s *Scheduler) CompleteN(ctx context.Context, prompts [][]int32, opts CompleteOptions, n int, each *ChoiceCallbacks) ([]*CompletionResult, error) {
	if n < 1 || n > MaxChoices {
		return nil, fmt.Errorf("%w: %d choices; want 1..%d", ErrInvalidOptions, n, MaxChoices)
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("%w: no prompt", ErrInvalidConversation)
	}
	o := opts.Generate
	scoreOnly := o.MaxNewTokens == 0
	if scoreOnly {
		o.MaxNewTokens = 1
	}
	limit := min(cmpOr(opts.Context, s.o.Context), s.o.Context)
	var seqs, heads []*sequence
	var wake chan struct{}
	for pi, ids := range prompts {
		if err := s.m.checkRaw(ids, &opts); err != nil {
			return nil, promptError(err, pi, len(prompts))
		}
		if len(ids) >= limit {
			return nil, promptError(fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(ids), limit), pi, len(prompts))
		}
		qs, err := s.sequences(ctx, &model.Prompt{IDs: ids}, len(ids), n, wake, func(j int) (generate.Options, []int32) {
			oj := o
			if j > 0 && oj.HasSeed {
				oj.Seed += uint64(j) // distinct, reproducible choices
			}
			return oj, ids
		})
		if err != nil {
			return nil, promptError(err, pi, len(prompts))
		}
		wake = qs[0].box.wake
		qs[0].score, qs[0].topN = opts.Echo && o.Logprobs, o.TopLogprobs
		if scoreOnly {
			for _, q := range qs {
				q.gen = nil // nothing to generate: the prompt is scored, or only counted
			}
			qs = qs[:1] // n copies of the one score
		}
		seqs = append(seqs, qs...)
		heads = append(heads, qs[0])
	}
	if err := s.enqueue(heads); err != nil {
		return nil, err
	}
	ls := make([]*listener, len(seqs))
	for i, q := range seqs {
		onText, onToken := opts.OnText, opts.OnToken
		if i > 0 {
			onText, onToken = nil, nil
		}
		if each != nil {
			c := i // the choice's index, p*n+j
			if scoreOnly {
				c = i * n
			}
			onText, onToken = each.text(c, onText), each.token(c, onToken)
		}
		ls[i] = &listener{q: q, onText: onText, onToken: onToken}
	}
	if err := s.consume(ctx, ls); err != nil {
		return nil, err
	}
	results := make([]*CompletionResult, 0, len(prompts)*n)
	for _, l := range ls {
		head := heads[len(results)/n]
		ids := prompts[len(results)/n]
		g := l.res
		res := &CompletionResult{Result: Result{PromptIDs: ids, ReusedTokens: head.reused}, PromptLogprobs: head.scores}
		res.Text, res.Tokens, res.Logprobs, res.FinishReason = g.Text, g.Tokens, g.Logprobs, g.FinishReason
		res.Timings.PromptTokens = len(ids)
		res.Timings.Prefill = head.prefilled.Sub(head.submitted)
		res.Timings.Decode = g.DecodeTime
		res.Timings.DecodeTokensPerS = g.TokensPerSecond()
		results = append(results, res)
		if scoreOnly {
			for range n - 1 {
				results = append(results, res)
			}
		}
	}
	return results, nil
}

// promptError names the prompt an error is about, when there are several.
func promptError(err error, i, of int) error {
	if of == 1 {
		return err
	}
	return fmt.Errorf("prompt %d: %w", i, err)
}

// sequences makes n sequences of one prompt: the first carries the prompt
// through prefill, the others fork from it at its first sample.
// Their mailboxes share wake (nil: a new channel), which one consumer waits
// on.
func (s *Scheduler) sequences(ctx context.Context, p *model.Prompt, promptLen, n int, wake chan struct{}, opts func(i int) (generate.Options, []int32)) ([]*sequence, error) {
	if wake == nil {
		wake = make(chan struct{}, 1)
	}
	vocab := s.m.model.Config.Text.VocabSize
	if s.maxPositions > 0 && promptLen >= s.maxPositions {
		return nil, fmt.Errorf("%w: %d tokens; the KV cache holds %d", ErrPromptTooLong, promptLen, s.maxPositions)
	}
	seqs := make([]*sequence, n)
	for i := range n {
		o, prompt := opts(i)
		maxNew := min(o.MaxNewTokens, s.o.Context-promptLen)
		gen, err := generate.NewGeneration(o, s.m.tok, vocab, prompt, maxNew)
		if err != nil {
			return nil, err
		}
		q := &sequence{ctx: ctx, promptLen: promptLen, gen: gen, submitted: time.Now()}
		q.box.wake = wake
		if i == 0 {
			q.p = &model.Prompt{IDs: append([]int32(nil), p.IDs...), Image: p.Image, ImageKeys: p.ImageKeys}
			if p.TokenTypeIDs != nil {
				q.p.TokenTypeIDs = append([]int32(nil), p.TokenTypeIDs...)
			}
			q.kv = s.pool.NewSeq()
		} else {
			seqs[0].forks = append(seqs[0].forks, q)
		}
		seqs[i] = q
	}
	return seqs, nil
}

// enqueue puts a request's first sequences (one per prompt; the other
// choices fork from them) in the queue, all or none. A request is taken
// while fewer than MaxQueue sequences wait.
func (s *Scheduler) enqueue(heads []*sequence) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.queuedLocked() >= s.o.MaxQueue:
		return ErrQueueFull
	}
	s.waiting = append(s.waiting, heads...)
	s.cond.Signal()
	return nil
}

// mailbox carries a sequence's tokens and text from the scheduler's loop to
// its caller's goroutine, where the callbacks run: a slow client delays only
// itself.
type mailbox struct {
	mu     sync.Mutex
	events []event
	wake   chan struct{}
	done   bool
	err    error
}

type event struct {
	token    generate.StepLogprobs
	hasToken bool
	text     string
}

func (b *mailbox) post(e event) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *mailbox) close(err error) {
	b.mu.Lock()
	b.done, b.err = true, err
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// listener is the caller's side of one sequence: its callbacks and, once
// it has ended, its result.
type listener struct {
	q       *sequence
	onText  func(string) error
	onToken func(generate.StepLogprobs) error
	res     *generate.Result
}

// consume runs the callbacks of a request's sequences as their events come
// (the choices of one request interleaved, as they are generated), until
// all have ended. When ctx ends first they are stopped and the results so
// far are kept (finish reason cancelled). A callback's error or a
// sequence's stops them all.
func (s *Scheduler) consume(ctx context.Context, ls []*listener) error {
	wake := ls[0].q.box.wake // shared by a request's sequences
	stop := func() {
		for _, l := range ls {
			l.q.stopping.Store(true)
		}
		s.cond.Signal()
	}
	var batch []event
	for {
		select {
		case <-wake:
		case <-ctx.Done():
			stop()
			for !allDone(ls) { // the loop acknowledges within a step
				<-wake
			}
		}
		open := 0
		for _, l := range ls {
			if l.res != nil {
				continue
			}
			q := l.q
			q.box.mu.Lock()
			batch, q.box.events = q.box.events, batch[:0]
			done, err := q.box.done, q.box.err
			q.box.mu.Unlock()
			for _, e := range batch {
				if e.hasToken && l.onToken != nil {
					if err := l.onToken(e.token); err != nil {
						stop()
						return err
					}
				}
				if e.text != "" && l.onText != nil {
					if err := l.onText(e.text); err != nil {
						stop()
						return err
					}
				}
			}
			switch {
			case !done:
				open++
			case err != nil:
				stop()
				return err
			case ctx.Err() != nil && (q.gen == nil || q.gen.Tokens() == 0):
				stop()
				return ctx.Err() // stopped before its first token
			case q.gen == nil:
				l.res = &generate.Result{FinishReason: generate.FinishLength}
			default:
				l.res = q.gen.Result()
				if !q.prefilled.IsZero() {
					l.res.DecodeTime = q.ended.Sub(q.prefilled)
				}
			}
		}
		if open == 0 {
			return nil
		}
	}
}

func allDone(ls []*listener) bool {
	for _, l := range ls {
		if !l.q.boxDone() {
			return false
		}
	}
	return true
}

func (q *sequence) boxDone() bool {
	q.box.mu.Lock()
	defer q.box.mu.Unlock()
	return q.box.done
}

// loop runs steps while there is work, until closed and drained.
func (s *Scheduler) loop() {
	defer close(s.finished)
	for {
		s.mu.Lock()
		for len(s.running) == 0 && len(s.waiting) == 0 && !s.closed {
			s.cond.Wait()
		}
		if s.closed && len(s.running) == 0 && len(s.waiting) == 0 {
			s.mu.Unlock()
			return
		}
		s.dropStoppedLocked()
		s.admitLocked()
		s.mu.Unlock()
		s.step()
	}
}

// dropStoppedLocked ends the sequences whose callers stopped or left.
func (s *Scheduler) dropStoppedLocked() {
	stopped := func(q *sequence) bool { return q.stopping.Load() || q.ctx.Err() != nil }
	s.waiting = slices.DeleteFunc(s.waiting, func(q *sequence) bool {
		if stopped(q) {
			s.end(q, generate.FinishCancelled, nil)
			return true
		}
		return false
	})
	s.running = slices.DeleteFunc(s.running, func(q *sequence) bool {
		if stopped(q) {
			s.end(q, generate.FinishCancelled, nil)
			return true
		}
		return false
	})
}

// admitLocked moves waiting sequences to running, first come first served,
// while fewer than Parallel run: each starts from the longest prefix the
// pool has cached.
func (s *Scheduler) admitLocked() {
	// A sequence is admitted when the blocks its tokens need are free or
	// cached (and one more per running sequence, for their next tokens),
	// or when nothing runs: admitting what cannot fit only preempts.
	st := s.pool.Stats()
	avail := st.Full.Free + st.Full.Cached
	if st.Full.Max == 0 {
		avail = st.Sliding.Free + st.Sliding.Cached
	}
	for len(s.waiting) > 0 && len(s.running) < s.o.Parallel {
		q := s.waiting[0]
		need := len(q.p.IDs)/s.o.BlockSize + 1
		if len(s.running) > 0 && need+len(s.running) > avail {
			break // first come first served: the next one waits too
		}
		avail -= need
		s.waiting = slices.Delete(s.waiting, 0, 1)
		if q.kv.Len() == 0 && !q.score {
			hit := q.kv.Match(q.p, len(q.p.IDs)-1)
			if !q.admitted {
				q.reused = hit
			}
			s.stats.PrefixHitTokens += int64(hit)
		}
		q.admitted = true
		s.running = append(s.running, q)
	}
	s.nRunning.Store(int32(len(s.running)))
}

// end finishes a sequence (and the forks that were waiting on it).
func (s *Scheduler) end(q *sequence, reason string, err error) {
	if q.kv != nil {
		q.kv.Release()
	}
	if q.gen != nil {
		if text := q.gen.End(reason); text != "" {
			q.box.post(event{text: text})
		}
	}
	q.ended = time.Now()
	q.box.close(err)
	for _, f := range q.forks {
		s.end(f, reason, err)
	}
	q.forks = nil
	took := time.Since(q.submitted)
	if s.avg == 0 {
		s.avg = took
	} else {
		s.avg = (7*s.avg + took) / 8
	}
}

// remaining is how many of a sequence's tokens have no KV yet.
func (q *sequence) remaining() int { return len(q.p.IDs) - q.kv.Len() }

// step runs one pass: the next token of every decoding sequence, then
// prompt chunks within the budget; then samples where logits are due.
func (s *Scheduler) step() {
	s.chunks, s.owners = s.chunks[:0], s.owners[:0]
	budget := s.o.BatchTokens
	h := s.m.model.Config.Text.HiddenSize
	// Decodes first, oldest first: one token each.
	for i := 0; i < len(s.running); i++ {
		q := s.running[i]
		if q.remaining() != 1 || q.score || slices.Contains(s.owners, q) {
			continue
		}
		if !s.reserve(q, 1) {
			i-- // q, the newest, was preempted (or ended): nothing came after it
			continue
		}
		s.add(q, model.Input{IDs: q.p.IDs[q.kv.Len():]})
		budget--
	}
	// Then prompts (and recomputations), oldest first, within the budget;
	// at most one chunk with images per step.
	images := false
	for i := 0; i < len(s.running) && budget > 0; i++ {
		q := s.running[i]
		if slices.Contains(s.owners, q) || q.remaining() < 1 || (q.remaining() == 1 && !q.score) {
			continue
		}
		from := q.kv.Len()
		end := q.p.ChunkEnd(from, budget)
		if end-from > budget || (images && hasImage(q.p, from, end)) {
			if cut := imageStart(q.p, from, end); cut > from {
				end = cut // the text before the image now, the image in a later step
			} else if len(s.chunks) > 0 {
				continue
			}
		}
		in, err := q.p.Input(q.ctx, from, end, h, q.embeds)
		if err != nil {
			s.mu.Lock()
			s.running = slices.DeleteFunc(s.running, func(r *sequence) bool { return r == q })
			s.end(q, "", err)
			s.mu.Unlock()
			i--
			continue
		}
		if in.Embeds != nil {
			q.embeds = in.Embeds
			images = true
		}
		if !s.reserve(q, end-from) {
			i--
			continue
		}
		s.add(q, in)
		budget -= end - from
	}
	if len(s.chunks) == 0 {
		return
	}
	hidden, err := s.m.model.Forward(context.Background(), s.ws, s.chunks)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Steps++
	if err != nil {
		for _, q := range s.owners {
			s.running = slices.DeleteFunc(s.running, func(r *sequence) bool { return r == q })
			s.end(q, "", fmt.Errorf("forward pass: %w", err))
		}
		s.nRunning.Store(int32(len(s.running)))
		return
	}
	s.sample(hidden)
	s.stats.Pool = s.pool.Stats()
	s.nRunning.Store(int32(len(s.running)))
	// Let finished sequences go: nothing of this step is kept.
	clear(s.chunks)
	clear(s.owners)
}

// add puts a sequence's chunk in the step.
func (s *Scheduler) add(q *sequence, in model.Input) {
	s.chunks = append(s.chunks, model.Chunk{KV: q.kv, In: in})
	s.owners = append(s.owners, q)
}

// reserve takes the blocks a sequence's chunk needs, preempting the newest
// running sequences while the pool has none; false when q itself was
// preempted (or, alone, cannot fit: it then ends).
func (s *Scheduler) reserve(q *sequence, n int) bool {
	for {
		err := q.kv.Reserve(n)
		if err == nil {
			return true
		}
		victim := s.running[len(s.running)-1]
		if victim == q && len(s.running) == 1 {
			s.mu.Lock()
			s.running = s.running[:0]
			if q.gen != nil && q.gen.Tokens() > 0 {
				s.end(q, generate.FinishLength, nil) // the pool holds no more of it
			} else {
				s.end(q, "", fmt.Errorf("%w: the KV cache cannot hold this sequence", ErrPromptTooLong))
			}
			s.mu.Unlock()
			return false
		}
		s.preempt(victim)
		if victim == q {
			return false
		}
	}
}

// preempt frees a running sequence's blocks and puts it back at the head of
// the queue; it is recomputed (its prompt and the tokens so far) when it
// is admitted again, mostly from the blocks still cached.
func (s *Scheduler) preempt(q *sequence) {
	if i := slices.Index(s.owners, q); i >= 0 {
		s.chunks = slices.Delete(s.chunks, i, i+1)
		s.owners = slices.Delete(s.owners, i, i+1)
	}
	q.kv.Release()
	s.mu.Lock()
	s.running = slices.DeleteFunc(s.running, func(r *sequence) bool { return r == q })
	s.waiting = append([]*sequence{q}, s.waiting...)
	s.stats.Preemptions++
	s.mu.Unlock()
}

// sample takes the logits where they are due (a chunk that reaches its
// sequence's last token; every position of a scored prompt) and advances
// the generations. Called with s.mu held.
func (s *Scheduler) sample(hidden []float32) {
	t := &s.m.model.Config.Text
	h, vocab := t.HiddenSize, t.VocabSize
	var due []*sequence
	s.rows = s.rows[:0]
	pos := 0
	for ci, q := range s.owners {
		n := len(s.chunks[ci].In.IDs)
		if q.score && q.kv.Len()-n < q.promptLen-1 {
			s.scorePrompt(q, hidden[pos*h:(pos+n)*h], q.kv.Len()-n, n)
		}
		if q.remaining() == 0 && q.gen != nil {
			due = append(due, q)
			s.rows = append(s.rows, hidden[(pos+n-1)*h:(pos+n)*h]...)
		} else if q.remaining() == 0 {
			s.running = slices.DeleteFunc(s.running, func(r *sequence) bool { return r == q })
			s.end(q, generate.FinishLength, nil) // scored, nothing to generate
		}
		pos += n
	}
	if len(due) == 0 {
		return
	}
	if need := len(due) * vocab; cap(s.logits) < need {
		s.logits = make([]float32, need)
	}
	s.m.model.Logits(s.logits, s.rows, len(due))
	for i, q := range due {
		logits := s.logits[i*vocab : (i+1)*vocab]
		if q.prefilled.IsZero() {
			q.prefilled = time.Now()
		}
		if len(q.forks) > 0 {
			for _, f := range q.forks {
				f.p = &model.Prompt{IDs: append([]int32(nil), q.p.IDs...), Image: q.p.Image, ImageKeys: q.p.ImageKeys}
				if q.p.TokenTypeIDs != nil {
					f.p.TokenTypeIDs = append([]int32(nil), q.p.TokenTypeIDs...)
				}
				f.kv, f.reused, f.admitted, f.prefilled = q.kv.Fork(), q.reused, true, q.prefilled
				s.running = append(s.running, f)
				s.advance(f, logits)
			}
			q.forks = nil
		}
		s.advance(q, logits)
	}
}

// advance samples a sequence's next token from its logits.
func (s *Scheduler) advance(q *sequence, logits []float32) {
	id, st, text, done := q.gen.Step(logits)
	q.box.post(event{token: st, hasToken: id >= 0, text: text})
	if done {
		s.running = slices.DeleteFunc(s.running, func(r *sequence) bool { return r == q })
		s.end(q, "", q.gen.Err())
		return
	}
	q.p.IDs = append(q.p.IDs, id)
	if q.p.TokenTypeIDs != nil {
		q.p.TokenTypeIDs = append(q.p.TokenTypeIDs, 0)
	}
}

// scorePrompt records the logprob of each prompt token after the chunk's
// positions from..from+n (the next token of each).
func (s *Scheduler) scorePrompt(q *sequence, hidden []float32, from, n int) {
	t := &s.m.model.Config.Text
	h, vocab := t.HiddenSize, t.VocabSize
	const rows = 16
	if cap(s.logits) < rows*vocab {
		s.logits = make([]float32, rows*vocab)
	}
	var alts []generate.TokenLogprob
	var scratch []int32
	for r0 := 0; r0 < n && from+r0+1 < q.promptLen; r0 += rows {
		r1 := min(r0+rows, n)
		s.m.model.Logits(s.logits, hidden[r0*h:r1*h], r1-r0)
		for i := r0; i < r1 && from+i+1 < q.promptLen; i++ {
			next := q.p.IDs[from+i+1]
			var lp float32
			lp, alts, scratch = generate.Logprobs(s.logits[(i-r0)*vocab:(i-r0+1)*vocab], next, q.topN, alts, scratch)
			st := generate.StepLogprobs{Token: next, Text: s.m.tok.Decode([]int32{next}, false), Logprob: lp}
			for _, a := range alts {
				st.Top = append(st.Top, generate.AltLogprob{Token: a.Token, Text: s.m.tok.Decode([]int32{a.Token}, false), Logprob: a.Logprob})
			}
			q.scores = append(q.scores, st)
		}
	}
}

// hasImage reports whether positions from..to of p hold image tokens.
func hasImage(p *model.Prompt, from, to int) bool {
	return p.TokenTypeIDs != nil && slices.Contains(p.TokenTypeIDs[from:to], 1)
}

// imageStart is the first image position in from..to, or to.
func imageStart(p *model.Prompt, from, to int) int {
	if p.TokenTypeIDs == nil {
		return to
	}
	if i := slices.Index(p.TokenTypeIDs[from:to], 1); i >= 0 {
		return from + i
	}
	return to
}
