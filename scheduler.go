package medgemma

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/medgemma/medgemma/chat"
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

// DefaultMaxQueue is the waiting requests a scheduler holds unless told
// otherwise.
const DefaultMaxQueue = 64

// Scheduler is the one place that decides what runs on a model when many
// callers share it (a server): requests wait in a bounded queue, first come
// first served, and run one at a time. A caller that gives up (its context
// is cancelled) leaves the queue at once, or stops its generation within a
// token if it was running. Safe for concurrent use.
type Scheduler struct {
	m        *Model
	maxQueue int

	mu       sync.Mutex
	cond     *sync.Cond
	waiting  []*job
	running  int
	closed   bool
	avg      time.Duration // moving average of how long a request runs
	finished chan struct{} // closed when the worker has stopped
}

type job struct {
	ctx  context.Context
	run  func(context.Context)
	done chan struct{}
}

// NewScheduler starts a scheduler over m with at most maxQueue requests
// waiting (0: DefaultMaxQueue). Close it to stop its worker.
func NewScheduler(m *Model, maxQueue int) *Scheduler {
	if maxQueue <= 0 {
		maxQueue = DefaultMaxQueue
	}
	s := &Scheduler{m: m, maxQueue: maxQueue, finished: make(chan struct{})}
	s.cond = sync.NewCond(&s.mu)
	go s.work()
	return s
}

// Chat runs Model.Chat when its turn comes.
func (s *Scheduler) Chat(ctx context.Context, msgs []chat.Message, opts ChatOptions) (*Result, error) {
	var res *Result
	var err error
	if qerr := s.submit(ctx, func(ctx context.Context) { res, err = s.m.Chat(ctx, msgs, opts) }); qerr != nil {
		return nil, qerr
	}
	return res, err
}

// Complete runs Model.Complete when its turn comes.
func (s *Scheduler) Complete(ctx context.Context, ids []int32, opts CompleteOptions) (*CompletionResult, error) {
	var res *CompletionResult
	var err error
	if qerr := s.submit(ctx, func(ctx context.Context) { res, err = s.m.Complete(ctx, ids, opts) }); qerr != nil {
		return nil, qerr
	}
	return res, err
}

// Queued is how many requests wait; Running how many run.
func (s *Scheduler) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting)
}

// Running is how many requests run now.
func (s *Scheduler) Running() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running
}

// RetryAfter estimates when a request refused now could be taken: the
// queue's length times how long requests have been running, at least a
// second.
func (s *Scheduler) RetryAfter() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := time.Duration(len(s.waiting)+s.running) * s.avg / time.Duration(max(s.maxQueue/8, 1))
	return min(max(d.Round(time.Second), time.Second), time.Minute)
}

// Close stops taking requests (they get ErrClosed); those already queued or
// running go on. Wait returns when they have finished.
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

// submit queues fn and returns when it has run, or when ctx ends while it
// still waits (fn then never runs). A running fn sees ctx and must return
// soon after it ends.
func (s *Scheduler) submit(ctx context.Context, fn func(context.Context)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j := &job{ctx: ctx, run: fn, done: make(chan struct{})}
	s.mu.Lock()
	switch {
	case s.closed:
		s.mu.Unlock()
		return ErrClosed
	case len(s.waiting) >= s.maxQueue:
		s.mu.Unlock()
		return ErrQueueFull
	}
	s.waiting = append(s.waiting, j)
	s.mu.Unlock()
	s.cond.Signal()
	select {
	case <-j.done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	if i := slices.Index(s.waiting, j); i >= 0 {
		s.waiting = slices.Delete(s.waiting, i, i+1)
		s.mu.Unlock()
		return ctx.Err()
	}
	s.mu.Unlock()
	<-j.done // running: it stops within a token
	return nil
}

// work runs the queue in order, one request at a time.
func (s *Scheduler) work() {
	defer close(s.finished)
	for {
		s.mu.Lock()
		for len(s.waiting) == 0 && !s.closed {
			s.cond.Wait()
		}
		if len(s.waiting) == 0 {
			s.mu.Unlock()
			return // closed and drained
		}
		j := s.waiting[0]
		s.waiting = slices.Delete(s.waiting, 0, 1)
		s.running++
		s.mu.Unlock()
		start := time.Now()
		j.run(j.ctx)
		took := time.Since(start)
		s.mu.Lock()
		s.running--
		if s.avg == 0 {
			s.avg = took
		} else {
			s.avg = (7*s.avg + took) / 8
		}
		s.mu.Unlock()
		close(j.done)
	}
}
