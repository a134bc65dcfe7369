package medgemma

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
)

// TestSchedulerQueue: requests run one at a time in order; over the queue's
// bound they are refused; a request cancelled while it waits leaves the
// queue without running; after Close new ones are refused and the queued
// ones still run.
func TestSchedulerQueue(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma-text")
	s := NewScheduler(m, 2)
	gate := make(chan struct{})
	var mu sync.Mutex
	var order []int
	started := make(chan struct{}, 8)
	submit := func(ctx context.Context, i int) error {
		return s.submit(ctx, func(context.Context) {
			started <- struct{}{}
			<-gate
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	errs := make(chan error, 8)
	go func() { errs <- submit(context.Background(), 0) }()
	<-started // 0 runs, holding the worker
	go func() { errs <- submit(context.Background(), 1) }()
	cancelled, cancel := context.WithCancel(context.Background())
	go func() { errs <- submit(cancelled, 2) }()
	waitFor(t, func() bool { return s.Queued() == 2 && s.Running() == 1 })
	if err := submit(context.Background(), 3); !errors.Is(err, ErrQueueFull) {
		t.Errorf("a third waiting request: %v", err)
	}
	cancel()
	waitFor(t, func() bool { return s.Queued() == 1 })
	s.Close()
	if err := submit(context.Background(), 4); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	close(gate)
	got := map[string]int{}
	for range 3 {
		err := <-errs
		switch {
		case err == nil:
			got["ran"]++
		case errors.Is(err, context.Canceled):
			got["cancelled"]++
		default:
			t.Errorf("unexpected %v", err)
		}
	}
	if err := s.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got["ran"] != 2 || got["cancelled"] != 1 || len(order) != 2 || order[0] != 0 || order[1] != 1 {
		t.Errorf("results %v, order %v", got, order)
	}
	if d := s.RetryAfter(); d < time.Second || d > time.Minute {
		t.Errorf("retry after %v", d)
	}
}

// TestSchedulerChat: a chat through the scheduler answers as the model does,
// and a cancelled running one stops.
func TestSchedulerChat(t *testing.T) {
	m, msgs, _ := loadTiny(t, "tiny-medgemma-text")
	s := NewScheduler(m, 4)
	defer s.Close()
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens = 0, 5
	direct, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	via, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: o})
	if err != nil || via.Text != direct.Text {
		t.Errorf("through the scheduler %q (%v), direct %q", via.Text, err, direct.Text)
	}
	ctx, cancel := context.WithCancel(context.Background())
	o.MaxNewTokens = 200
	res, err := s.Chat(ctx, []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("go on")}}}, ChatOptions{Generate: o,
		OnToken: func(generate.StepLogprobs) error { cancel(); return nil }})
	if err != nil || res.FinishReason != generate.FinishCancelled || len(res.Tokens) > 2 {
		t.Errorf("cancelled: %v, %+v", err, res)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}
