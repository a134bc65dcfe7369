package medgemma

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
)

// schedCase is one request of an exactness test and what it gets alone.
type schedCase struct {
	msgs   []chat.Message
	o      generate.Options
	want   *Result
	cancel int // cancel after this many tokens (0: never)
}

// schedCases are varied requests on a tiny checkpoint: prompt lengths from
// a few tokens to many blocks and past the sliding window, images (for the
// multimodal one), stop strings; their answers alone (Model.Chat, nothing
// cached).
func schedCases(t *testing.T, m *Model, images bool, rng *rand.Rand) []*schedCase {
	t.Helper()
	words := strings.Fields("the chest film shows clear lungs a normal heart no effusion and sharp costophrenic angles with a small nodule in the right upper lobe")
	var cases []*schedCase
	for i := range 12 {
		n := 1 + rng.IntN(60)
		if i%4 == 0 {
			n += 100 // past the window, several blocks
		}
		var b strings.Builder
		for range n {
			b.WriteString(words[rng.IntN(len(words))] + " ")
		}
		parts := []chat.Part{chat.Text(b.String())}
		if images && i%3 != 2 {
			parts = append(parts, chat.Image(tinyPNG(t, 20+i, 30+2*i, i%2 == 0)))
			if i%5 == 0 {
				parts = append(parts, chat.Text("and"), chat.Image(tinyPNG(t, 40, 20)))
			}
		}
		msgs := []chat.Message{{Role: "user", Content: parts}}
		if i%3 == 1 {
			msgs = append([]chat.Message{{Role: "system", Content: []chat.Part{chat.Text("You are an expert radiologist.")}}}, msgs...)
		}
		o := m.Defaults()
		o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 4+rng.IntN(20), true, 2
		cases = append(cases, &schedCase{msgs: msgs, o: o})
	}
	for i, c := range cases {
		m.forget()
		want, err := m.Chat(context.Background(), c.msgs, ChatOptions{Generate: c.o})
		if err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 && len(want.Text) > 6 { // a stop string from its own answer
			c.o.StopStrings = []string{want.Text[3:6]}
			m.forget()
			if want, err = m.Chat(context.Background(), c.msgs, ChatOptions{Generate: c.o}); err != nil {
				t.Fatal(err)
			}
		}
		c.want = want
	}
	m.forget()
	return cases
}

// TestSchedulerExactness: every request batched with the others gets what
// it gets alone (greedy ids identical, logprobs within 1e-4), for random
// arrival orders and schedules: one or many sequences at a time, steps of a
// few tokens or many, a pool so small that sequences are preempted and
// recomputed, and cancellations mid-answer.
func TestSchedulerExactness(t *testing.T) {
	for _, name := range []string{"tiny-medgemma-text", "tiny-medgemma"} {
		m, _, _ := loadTiny(t, name)
		rng := rand.New(rand.NewPCG(41, uint64(len(name))))
		cases := schedCases(t, m, name == "tiny-medgemma", rng)
		for _, o := range []SchedulerOptions{
			{Parallel: 1, BatchTokens: 512},
			{Parallel: 8, BatchTokens: 512},
			{Parallel: 5, BatchTokens: 40},
			{Parallel: 8, BatchTokens: 24, BlockSize: 8},
			{Parallel: 6, BatchTokens: 64, KVMemory: -1}, // a small pool: preemptions
		} {
			o.Context, o.MaxQueue = 1024, 64
			if o.KVMemory == -1 {
				// The smallest pool the scheduler takes: the sliding part,
				// and a quarter of a context in the full part.
				for o.KVMemory = 1 << 16; ; o.KVMemory += o.KVMemory / 16 {
					s, err := NewScheduler(m, o)
					if err == nil {
						s.Close()
						break
					}
				}
			}
			runSchedule(t, m, name, o, cases, rng)
		}
	}
}

func runSchedule(t *testing.T, m *Model, name string, o SchedulerOptions, cases []*schedCase, rng *rand.Rand) {
	t.Helper()
	s, err := NewScheduler(m, o)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		s.Close()
		s.Wait(context.Background())
	}()
	for _, c := range cases {
		c.cancel = 0
		if rng.IntN(5) == 0 {
			c.cancel = 1 + rng.IntN(3)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(cases))
	for _, i := range rng.Perm(len(cases)) {
		c := cases[i]
		delay := time.Duration(rng.IntN(3)) * time.Millisecond
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(delay)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tokens := 0
			res, err := s.Chat(ctx, c.msgs, ChatOptions{Generate: c.o, OnToken: func(generate.StepLogprobs) error {
				if tokens++; tokens == c.cancel {
					cancel()
				}
				return nil
			}})
			if c.cancel > 0 && tokens >= c.cancel {
				if err != nil && !errors.Is(err, context.Canceled) {
					errs <- fmt.Errorf("cancelled request: %v", err)
				} else if err == nil && (res.FinishReason != generate.FinishCancelled && !slices.Equal(res.Tokens, c.want.Tokens) ||
					!slices.Equal(res.Tokens, c.want.Tokens[:len(res.Tokens)])) {
					errs <- fmt.Errorf("cancelled request: %v (%s), alone %v", res.Tokens, res.FinishReason, c.want.Tokens)
				}
				return
			}
			if err != nil {
				errs <- err
				return
			}
			if !slices.Equal(res.Tokens, c.want.Tokens) || res.Text != c.want.Text || res.FinishReason != c.want.FinishReason {
				errs <- fmt.Errorf("batched %v %q (%s), alone %v %q (%s)", res.Tokens, res.Text, res.FinishReason, c.want.Tokens, c.want.Text, c.want.FinishReason)
				return
			}
			for k, lp := range res.Logprobs {
				if d := math.Abs(float64(lp.Logprob - c.want.Logprobs[k].Logprob)); d > 1e-4 {
					errs <- fmt.Errorf("step %d: logprob %v batched, %v alone", k, lp.Logprob, c.want.Logprobs[k].Logprob)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%s %+v: %v", name, o, err)
	}
	st := s.Stats()
	t.Logf("%s parallel %d, batch %d, kv %d: %d steps, %d preemptions, %d prefix-hit tokens", name, o.Parallel, o.BatchTokens, o.KVMemory, st.Steps, st.Preemptions, st.PrefixHitTokens)
}

// TestSchedulerPreemption: four long conversations at once in a pool that
// holds about one and a half of them: sequences are preempted, recomputed
// from the blocks still cached, and every answer is still what it is alone.
func TestSchedulerPreemption(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma-text")
	var cases []*schedCase
	for i := range 4 {
		text := strings.Repeat(fmt.Sprintf("the film %d shows a nodule ", i), 22)
		o := m.Defaults()
		o.Temperature, o.MaxNewTokens, o.Logprobs = 0, 40, true
		c := &schedCase{msgs: []chat.Message{{Role: "user", Content: []chat.Part{chat.Text(text)}}}, o: o}
		m.forget()
		var err error
		if c.want, err = m.Chat(context.Background(), c.msgs, ChatOptions{Generate: o}); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, c)
	}
	m.forget()
	o := SchedulerOptions{Parallel: 4, BatchTokens: 64, Context: 1024}
	for o.KVMemory = 1 << 16; ; o.KVMemory += o.KVMemory / 16 {
		if s, err := NewScheduler(m, o); err == nil {
			s.Close()
			break
		}
	}
	s, err := NewScheduler(m, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Chat(context.Background(), c.msgs, ChatOptions{Generate: c.o})
			if err != nil || !slices.Equal(res.Tokens, c.want.Tokens) {
				t.Errorf("%v: %v, alone %v", err, res, c.want.Tokens)
				return
			}
			for k, lp := range res.Logprobs {
				if d := math.Abs(float64(lp.Logprob - c.want.Logprobs[k].Logprob)); d > 1e-4 {
					t.Errorf("step %d: logprob %v batched, %v alone", k, lp.Logprob, c.want.Logprobs[k].Logprob)
				}
			}
		}()
	}
	wg.Wait()
	st := s.Stats()
	t.Logf("%d steps, %d preemptions, %d prefix-hit tokens; pool %+v", st.Steps, st.Preemptions, st.PrefixHitTokens, st.Pool)
	if st.Preemptions == 0 {
		t.Error("nothing was preempted")
	}
}

// TestSchedulerQueue: over the queue's bound requests are refused; after
// Close too, while the queued ones finish; a request cancelled while it
// waits leaves at once.
func TestSchedulerQueue(t *testing.T) {
	m, msgs, _ := loadTiny(t, "tiny-medgemma-text")
	s, err := NewScheduler(m, SchedulerOptions{Parallel: 1, MaxQueue: 1, Context: 1024})
	if err != nil {
		t.Fatal(err)
	}
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens = 0, 30
	hold := make(chan struct{})
	started := make(chan struct{}, 1)
	first := make(chan error, 1)
	go func() {
		_, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: o, OnToken: func(generate.StepLogprobs) error {
			select {
			case started <- struct{}{}:
				<-hold
			default:
			}
			return nil
		}})
		first <- err
	}()
	<-started // running (its callback holds its own goroutine, not the loop)
	waiting, cancel := context.WithCancel(context.Background())
	second := make(chan error, 1)
	go func() { _, err := s.Chat(waiting, msgs, ChatOptions{Generate: o}); second <- err }()
	waitFor(t, func() bool { return s.Queued() == 1 || s.Running() == 2 })
	if _, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: o}); !errors.Is(err, ErrQueueFull) && s.Queued() == 1 {
		t.Errorf("over the queue: %v", err)
	}
	cancel()
	if err := <-second; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled while waiting: %v", err)
	}
	s.Close()
	if _, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: o}); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	close(hold)
	if err := <-first; err != nil {
		t.Errorf("the running request: %v", err)
	}
	if err := s.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSchedulerChoices: n choices share the prompt's blocks; greedy choices
// are all the single answer; seeded ones follow their seeds.
func TestSchedulerChoices(t *testing.T) {
	m, msgs, _ := loadTiny(t, "tiny-medgemma-text")
	s, err := NewScheduler(m, SchedulerOptions{Context: 1024})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens = 0, 6
	one, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	streamed, each := collectChoices()
	res, err := s.ChatN(context.Background(), msgs, ChatOptions{Generate: o}, 3, each)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Text != one.Text || streamed[i] != one.Text {
			t.Errorf("greedy choice %d: %q (streamed %q), single %q", i, r.Text, streamed[i], one.Text)
		}
	}
	o.Temperature, o.Seed, o.HasSeed, o.MaxNewTokens = 1, 5, true, 12
	res, err = s.ChatN(context.Background(), msgs, ChatOptions{Generate: o}, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		oi := o
		oi.Seed += uint64(i)
		alone, err := s.Chat(context.Background(), msgs, ChatOptions{Generate: oi})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Tokens, alone.Tokens) {
			t.Errorf("seeded choice %d: %v, alone with seed %d: %v", i, r.Tokens, oi.Seed, alone.Tokens)
		}
	}
	if res[0].Text == res[1].Text && res[1].Text == res[2].Text {
		t.Error("three seeded choices are the same")
	}
}

// TestSchedulerComplete: raw prompts through the scheduler, scored (echo)
// and generated, equal Model.Complete's.
func TestSchedulerComplete(t *testing.T) {
	m, _, g := loadTiny(t, "tiny-medgemma-text")
	s, err := NewScheduler(m, SchedulerOptions{Context: 1024, BatchTokens: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 3, true, 2
	for _, echo := range []bool{false, true} {
		m.forget()
		want, err := m.Complete(context.Background(), g.InputIDs, CompleteOptions{Generate: o, Echo: echo})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Complete(context.Background(), g.InputIDs, CompleteOptions{Generate: o, Echo: echo})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got.Tokens, want.Tokens) || len(got.PromptLogprobs) != len(want.PromptLogprobs) {
			t.Fatalf("echo %v: %v with %d scores, alone %v with %d", echo, got.Tokens, len(got.PromptLogprobs), want.Tokens, len(want.PromptLogprobs))
		}
		for i, sc := range got.PromptLogprobs {
			if sc.Token != want.PromptLogprobs[i].Token || math.Abs(float64(sc.Logprob-want.PromptLogprobs[i].Logprob)) > 1e-4 {
				t.Errorf("echo score %d: %+v, alone %+v", i, sc, want.PromptLogprobs[i])
			}
		}
	}
	o.MaxNewTokens = 0
	got, err := s.Complete(context.Background(), g.InputIDs, CompleteOptions{Generate: o, Echo: true})
	if err != nil || len(got.Tokens) != 0 || len(got.PromptLogprobs) != len(g.InputIDs)-1 {
		t.Errorf("scoring only: %v, %+v", err, got)
	}
}

// TestSchedulerCompleteN: several prompts with several choices each, in
// one request, give what each prompt and seed gives alone, in OpenAI's
// order (prompt by prompt), streamed and whole.
func TestSchedulerCompleteN(t *testing.T) {
	m, _, g := loadTiny(t, "tiny-medgemma-text")
	s, err := NewScheduler(m, SchedulerOptions{Context: 1024, BatchTokens: 48})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prompts := [][]int32{g.InputIDs[:9], g.InputIDs, g.InputIDs[:30]}
	o := m.Defaults()
	o.Temperature, o.Seed, o.HasSeed, o.MaxNewTokens, o.Logprobs = 1, 11, true, 7, true
	const n = 2
	streamed, each := collectChoices()
	res, err := s.CompleteN(context.Background(), prompts, CompleteOptions{Generate: o}, n, each)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(prompts)*n {
		t.Fatalf("%d results for %d prompts x %d", len(res), len(prompts), n)
	}
	for i, r := range res {
		p, j := i/n, i%n
		oj := o
		oj.Seed += uint64(j)
		alone, err := s.Complete(context.Background(), prompts[p], CompleteOptions{Generate: oj})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Tokens, alone.Tokens) || r.Text != alone.Text || streamed[i] != r.Text || len(r.PromptIDs) != len(prompts[p]) {
			t.Errorf("prompt %d choice %d: %v %q (streamed %q), alone %v %q", p, j, r.Tokens, r.Text, streamed[i], alone.Tokens, alone.Text)
		}
		for k, lp := range r.Logprobs {
			if d := math.Abs(float64(lp.Logprob - alone.Logprobs[k].Logprob)); d > 1e-4 {
				t.Errorf("prompt %d choice %d token %d: logprob off by %g", p, j, k, d)
			}
		}
	}
	// Scoring only: one pass per prompt, its scores in each of its n results.
	o.MaxNewTokens = 0
	res, err = s.CompleteN(context.Background(), prompts, CompleteOptions{Generate: o, Echo: true}, n, nil)
	if err != nil || len(res) != len(prompts)*n {
		t.Fatalf("scoring %d prompts x %d: %v, %d results", len(prompts), n, err, len(res))
	}
	for i, r := range res {
		if len(r.Tokens) != 0 || len(r.PromptLogprobs) != len(prompts[i/n])-1 {
			t.Errorf("score %d: %d tokens, %d scores for a prompt of %d", i, len(r.Tokens), len(r.PromptLogprobs), len(prompts[i/n]))
		}
	}
	// A bad prompt among several is named.
	_, err = s.CompleteN(context.Background(), [][]int32{g.InputIDs, {-1}}, CompleteOptions{Generate: o, Echo: true}, 1, nil)
	if !errors.Is(err, ErrInvalidConversation) || !strings.Contains(err.Error(), "prompt 1") {
		t.Errorf("a bad second prompt: %v", err)
	}
}

// collectChoices gathers the text each choice streams.
func collectChoices() (map[int]string, *ChoiceCallbacks) {
	streamed := map[int]string{}
	return streamed, &ChoiceCallbacks{Text: func(i int, text string) error {
		streamed[i] += text // callbacks run on the caller's goroutine, one at a time
		return nil
	}}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
	}
}
