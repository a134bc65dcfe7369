package medgemma

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/imageproc"
)

// fuzzInput reads a conversation out of fuzz bytes.
type fuzzInput struct {
	data []byte
	imgs []string
}

func (f *fuzzInput) byte() byte {
	if len(f.data) == 0 {
		return 0
	}
	b := f.data[0]
	f.data = f.data[1:]
	return b
}

func (f *fuzzInput) text() string {
	n := int(f.byte() % 24)
	n = min(n, len(f.data))
	s := string(f.data[:n])
	f.data = f.data[n:]
	return s
}

// part is text, or an image: one of the prepared PNGs, raw bytes as a data:
// URI, a file path (refused: the policy is the zero one), or nothing.
func (f *fuzzInput) part() chat.Part {
	b := f.byte()
	if b%3 != 0 {
		return chat.Text(f.text())
	}
	switch (b / 3) % 6 {
	case 0, 1, 2:
		return chat.Image(f.imgs[int(f.byte())%len(f.imgs)])
	case 3:
		return chat.Image("data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte(f.text())))
	case 4:
		return chat.Image("/etc/passwd")
	}
	return chat.Image("")
}

// message is one message of the role with one to three parts.
func (f *fuzzInput) message(role string) chat.Message {
	m := chat.Message{Role: role}
	for range 1 + int(f.byte()%3) {
		m.Content = append(m.Content, f.part())
	}
	return m
}

// conversation is an optional system message, then one or three turns
// ending with the user's (now and then one out of turn).
func (f *fuzzInput) conversation() []chat.Message {
	var msgs []chat.Message
	if f.byte()%4 == 0 {
		msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: []chat.Part{chat.Text(f.text())}})
	}
	roles := []string{chat.RoleUser, chat.RoleAssistant}
	n := 1 + 2*int(f.byte()%2)
	for i := range n {
		role := roles[i%2]
		if f.byte()%16 == 0 {
			role = roles[(i+1)%2]
		}
		msgs = append(msgs, f.message(role))
	}
	return msgs
}

// chatFuzzEnv is what FuzzChat's executions share: the model under test, a
// model whose cache is cleared before each use, and the images.
type chatFuzzEnv struct {
	m, fresh *Model
	imgs     []string
}

func newChatFuzzEnv(t testing.TB) *chatFuzzEnv {
	m, _, _ := loadTiny(t, "tiny-medgemma")
	fresh, _, _ := loadTiny(t, "tiny-medgemma")
	return &chatFuzzEnv{m: m, fresh: fresh,
		imgs: []string{tinyPNG(t, 40, 30, true), tinyPNG(t, 30, 40, true), tinyPNG(t, 20, 20), tinyPNG(t, 600, 200), tinyPNG(t, 1, 300)}}
}

// FuzzChat drives Model.Chat end to end with random conversations (roles,
// text with any bytes, tiny images as data: URIs, corrupt images, refused
// sources, pan and scan, windows), a first turn and then a follow-up that
// may reuse its cache. Every error must be of a kind a server can map; a
// call must not allocate out of proportion; and an answer that reused the
// cache must equal a fresh model's.
func FuzzChat(f *testing.F) {
	env := newChatFuzzEnv(f)
	for _, seed := range []string{
		"\x01\x00\x01\x03\x00\x05hello\x00",
		"\x00\x03sys\x01\x02\x01\x05Hello\x00\x01\x01\x03\x01\x04More\x02",
		"\x01\x01\x02\x01\x08Describe\x00\x01\x03\x00\x00\x01\x02ok\x01\x04More\x01",
		"\x02\x02\x03\x00\x03\x03\x01\x05\x00\x01\x02\x01\x04why?\x06",
		"\x03\x01\x01\x09\x04\x89PNG\x05",
		"\x01\x00\x01\x0c\x00\x01\x03x<start_of_image>",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(env.run)
}

var chatErrorKinds = []error{ErrPromptTooLong, ErrInvalidConversation, ErrInvalidOptions, ErrTextOnly, ErrImageSource,
	ErrImageTooLarge, ErrUnsupportedImage, ErrCorruptImage, ErrImageOptions}

// run is one execution of FuzzChat.
func (env *chatFuzzEnv) run(t *testing.T, data []byte) {
	m, fresh, imgs := env.m, env.fresh, env.imgs
	ctx := context.Background()
	in := &fuzzInput{data: data, imgs: imgs}
	flags := in.byte()
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs = 0, 1+int(flags%3), true
	opts := ChatOptions{Generate: o, Context: 1024, PanAndScan: flags&8 != 0, PadSquare: flags&16 != 0,
		Image: imageproc.Options{MaxPixels: 1 << 16}}
	if flags&32 != 0 {
		opts.Image.Window = &imageproc.Window{Center: 128, Width: 64}
	}
	first := in.conversation()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res, err := m.Chat(ctx, first, opts)
	check := func(err error) bool {
		if err == nil {
			return true
		}
		if !slices.ContainsFunc(chatErrorKinds, func(k error) bool { return errors.Is(err, k) }) {
			t.Fatalf("an error of no kind: %v", err)
		}
		return false
	}
	if !check(err) {
		return
	}
	// The follow-up: the answer, then a new user turn.
	next := append(append([]chat.Message(nil), first...), chat.Message{Role: chat.RoleAssistant, Content: []chat.Part{chat.Text(res.Text)}})
	next = append(next, in.message(chat.RoleUser))
	if in.byte()%4 == 3 { // the same text with other images
		for i := range next {
			for j, p := range next[i].Content {
				if p.Type == chat.TypeImage && slices.Contains(imgs, p.Image) {
					next[i].Content[j].Image = imgs[(slices.Index(imgs, p.Image)+1)%len(imgs)]
				}
			}
		}
	}
	got, err := m.Chat(ctx, next, opts)
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 256<<20 {
		t.Fatalf("two turns allocated %d MB", alloc>>20)
	}
	if !check(err) || got.ReusedTokens == 0 {
		return
	}
	fresh.forget()
	want, err := fresh.Chat(ctx, next, opts)
	if err != nil {
		t.Fatalf("fresh model: %v (with the cache: ok)", err)
	}
	if !slices.Equal(got.Tokens, want.Tokens) {
		t.Fatalf("with %d reused tokens: %v, fresh %v", got.ReusedTokens, got.Tokens, want.Tokens)
	}
	for i := range want.Logprobs {
		if d := math.Abs(float64(got.Logprobs[i].Logprob - want.Logprobs[i].Logprob)); d > 1e-4 {
			t.Fatalf("step %d: logprob %v with the cache, %v fresh", i, got.Logprobs[i].Logprob, want.Logprobs[i].Logprob)
		}
	}
}
