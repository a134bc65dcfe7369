package medgemma

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/imageproc"
	"github.com/medgemma/medgemma/internal/testenv"
	"github.com/medgemma/medgemma/model"
)

type goldenFile struct {
	InputIDs            []int32        `json:"input_ids"`
	GreedyNewIDs        []int32        `json:"greedy_new_ids"`
	GreedyStepTop10     [][2][]float64 `json:"greedy_step_top10"`
	GreedyStepLogSumExp []float64      `json:"greedy_step_logsumexp"`
}

func loadTiny(t testing.TB, name string) (*Model, []chat.Message, *goldenFile) {
	t.Helper()
	dir := filepath.Join("testdata", "models", name)
	m, err := Load(context.Background(), dir, LoadOptions{Tokenizer: filepath.Join(testenv.TokenizerDir(t), "tokenizer.json")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var p struct {
		Messages json.RawMessage `json:"messages"`
		Image    string          `json:"image"`
	}
	data, _ := os.ReadFile(filepath.Join(dir, "prompt.json"))
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	msgs, err := chat.ParseMessages(p.Messages)
	if err != nil {
		t.Fatal(err)
	}
	for i := range msgs {
		for j := range msgs[i].Content {
			if msgs[i].Content[j].Type == chat.TypeImage {
				msgs[i].Content[j].Image = filepath.Join("imageproc", "testdata", "images", p.Image)
			}
		}
	}
	var g goldenFile
	data, _ = os.ReadFile(filepath.Join(dir, "golden.json"))
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	return m, msgs, &g
}

// TestChatReproducesTransformers runs each tiny checkpoint's reference
// conversation (the multimodal one with its X-ray) end to end: chat
// template, image preprocessing, vision, prefill, greedy decoding with
// logprobs, against transformers' input ids, greedy ids and step logprobs.
func TestChatReproducesTransformers(t *testing.T) {
	for _, name := range []string{"tiny-medgemma", "tiny-medgemma-text"} {
		m, msgs, g := loadTiny(t, name)
		o := m.Defaults()
		o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, len(g.GreedyNewIDs), true, 5
		var streamed strings.Builder
		res, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: o, ImageSources: LocalImageSources(), OnText: func(s string) error {
			streamed.WriteString(s)
			return nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.PromptIDs, g.InputIDs) {
			t.Fatalf("%s: prompt ids differ from transformers'", name)
		}
		if !slices.Equal(res.Tokens, g.GreedyNewIDs) {
			t.Fatalf("%s: greedy %v, want %v", name, res.Tokens, g.GreedyNewIDs)
		}
		worst := 0.0
		for i, lp := range res.Logprobs {
			want := g.GreedyStepTop10[i][1][0] - g.GreedyStepLogSumExp[i]
			worst = max(worst, math.Abs(float64(lp.Logprob)-want))
		}
		if worst > 1e-4 {
			t.Errorf("%s: logprobs off by %.3g", name, worst)
		}
		if streamed.String() != res.Text || res.FinishReason != generate.FinishLength || res.Timings.PromptTokens != len(g.InputIDs) {
			t.Errorf("%s: streamed %q, text %q, finish %s, timings %+v", name, streamed.String(), res.Text, res.FinishReason, res.Timings)
		}
		t.Logf("%s: %d prompt tokens, %d generated, worst logprob error %.2g; timings %+v", name, len(res.PromptIDs), len(res.Tokens), worst, res.Timings)
	}
}

// TestImageSources: the caller's policy decides where images come from
// (data: URIs only by default), and every source is read within its limits.
func TestImageSources(t *testing.T) {
	png, err := os.ReadFile(filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	if err != nil {
		t.Fatal(err)
	}
	stall := make(chan struct{})
	defer close(stall)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/x.png":
			w.Write(png)
		case "/big.png":
			w.Write(make([]byte, 2<<10))
		case "/lying.png": // declares less than it sends
			w.Header().Set("Content-Length", "100")
			w.Write(make([]byte, 100))
		case "/endless.png":
			for range 1 << 14 {
				if _, err := w.Write(make([]byte, 1<<10)); err != nil {
					return
				}
			}
		case "/stall.png":
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		case "/redirect.png":
			http.Redirect(w, r, "http://elsewhere.invalid/x.png", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	host, _, _ = strings.Cut(host, ":")
	abs, _ := filepath.Abs(filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	data := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	local := filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png")
	ctx := context.Background()
	for _, c := range []struct {
		policy ImageSources
		src    string
		want   string // "" for the PNG's bytes
		kind   error
	}{
		{ImageSources{}, data, "", nil},
		{ImageSources{}, local, "images from files are not allowed here", ErrImageSource},
		{ImageSources{}, "file://" + abs, "images from files are not allowed here", ErrImageSource},
		{ImageSources{}, srv.URL + "/x.png", "images from " + host + " are not allowed here", ErrImageSource},
		{ImageSources{Hosts: []string{"example.org"}}, srv.URL + "/x.png", "are not allowed here", ErrImageSource},
		{ImageSources{Hosts: []string{host}}, srv.URL + "/x.png", "", nil},
		{ImageSources{Files: true}, local, "", nil},
		{ImageSources{Files: true}, "file://" + abs, "", nil},
		{ImageSources{HTTP: true}, srv.URL + "/x.png", "", nil},
		{ImageSources{HTTP: true, MaxBytes: 1 << 10}, srv.URL + "/big.png", "over the 1024-byte limit", ErrImageTooLarge},
		{ImageSources{HTTP: true, MaxBytes: 1 << 10}, srv.URL + "/endless.png", "over the 1024-byte limit", ErrImageTooLarge},
		{ImageSources{HTTP: true, MaxBytes: 1 << 10}, srv.URL + "/lying.png", "", nil}, // 100 bytes: read as sent
		{ImageSources{HTTP: true, Timeout: 200 * time.Millisecond}, srv.URL + "/stall.png", "timeout", ErrImageSource},
		{ImageSources{Hosts: []string{host}}, srv.URL + "/redirect.png", "redirected to elsewhere.invalid, which is not allowed", ErrImageSource},
		{ImageSources{HTTP: true}, srv.URL + "/missing.png", "404", ErrImageSource},
		{ImageSources{Files: true, MaxBytes: 100}, local, "over the 100-byte limit", ErrImageTooLarge},
		{ImageSources{MaxBytes: 100}, data, "over the 100-byte limit", ErrImageTooLarge},
		{ImageSources{}, "data:image/png;base64,@@", "invalid base64", ErrImageSource},
		{ImageSources{}, "data:image/png", "without a comma", ErrImageSource},
		{ImageSources{}, "", "has no image", ErrImageSource},
		{ImageSources{Files: true}, "/nonexistent/x.png", "no such file", ErrImageSource},
	} {
		start := time.Now()
		got, err := c.policy.read(ctx, c.src)
		switch {
		case c.want == "" && c.src == srv.URL+"/lying.png":
			if err != nil || len(got) != 100 {
				t.Errorf("%.60s: %d bytes, %v", c.src, len(got), err)
			}
		case c.want == "":
			if err != nil || !slices.Equal(got, png) {
				t.Errorf("%+v %.60s: %d bytes, %v", c.policy, c.src, len(got), err)
			}
		case err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.kind):
			t.Errorf("%+v %.60s: %v, want %q (%v)", c.policy, c.src, err, c.want, c.kind)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%.60s took %v", c.src, d)
		}
	}
}

// TestChatErrors: every refusal is of a kind a server can map to a status.
func TestChatErrors(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma-text")
	mm, _, _ := loadTiny(t, "tiny-medgemma")
	ctx := context.Background()
	user := func(parts ...chat.Part) []chat.Message { return []chat.Message{{Role: "user", Content: parts}} }
	one := generate.Options{MaxNewTokens: 1}
	corrupt := "data:image/png;base64," + base64.StdEncoding.EncodeToString([]byte("\x89PNG\r\n\x1a\nnot really"))
	for _, c := range []struct {
		m    *Model
		msgs []chat.Message
		opts ChatOptions
		kind error
		want string
	}{
		{m, user(chat.Text("hi"), chat.Image("x.png")), ChatOptions{Generate: one}, ErrTextOnly, "messages[0] part 1: this checkpoint is text only"},
		{m, user(chat.Text(strings.Repeat("word ", 300))), ChatOptions{Generate: one, Context: 100}, ErrPromptTooLong, "prompt is longer than the context"},
		{m, []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("a")}}, {Role: "user", Content: []chat.Part{chat.Text("b")}}}, ChatOptions{Generate: one}, ErrInvalidConversation, "Conversation roles must alternate"},
		{m, user(chat.Text("a")), ChatOptions{Generate: generate.Options{MaxNewTokens: 1, Temperature: math.NaN()}}, ErrInvalidOptions, "temperature must be a finite number"},
		{mm, user(chat.Text("a"), chat.Image("x.png")), ChatOptions{Generate: one}, ErrImageSource, "images from files are not allowed here"},
		{mm, user(chat.Text("a"), chat.Image(corrupt)), ChatOptions{Generate: one}, ErrCorruptImage, "messages[0] part 1: image (data: URI"},
		{mm, user(chat.Text("a"), chat.Image("data:,hello")), ChatOptions{Generate: one}, ErrUnsupportedImage, "unknown image format"},
		{mm, user(chat.Text("a"), chat.Image(tinyPNG(t, 30, 20))), ChatOptions{Generate: one, Image: imageproc.Options{MaxPixels: 100}}, ErrImageTooLarge, "over the limit of 100"},
		{mm, user(chat.Text("a"), chat.Image(tinyPNG(t, 30, 20))), ChatOptions{Generate: one, Image: imageproc.Options{Window: &imageproc.Window{Center: 1, Width: 2}}}, ErrImageOptions, "a window applies to grayscale"},
	} {
		_, err := c.m.Chat(ctx, c.msgs, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.kind) {
			t.Errorf("%v: %v, want %q", c.kind, err, c.want)
		}
	}
	if _, err := Load(ctx, "/nonexistent", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not a checkpoint directory") {
		t.Errorf("missing model: %v", err)
	}
	if _, err := Load(ctx, filepath.Join("testdata", "models", "tiny-medgemma"), LoadOptions{Threads: -3}); err == nil || !strings.Contains(err.Error(), "threads must be 0") {
		t.Errorf("negative threads: %v", err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	if _, err := Load(ctx, "google/medgemma-4b-it", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE is set") {
		t.Errorf("offline, not cached: %v", err)
	}
}

// tinyPNG is a data: URI of a w x h PNG with a pattern, RGBA or gray.
func tinyPNG(t testing.TB, w, h int, gray ...bool) string {
	var img image.Image
	if len(gray) > 0 && gray[0] {
		g := image.NewGray(image.Rect(0, 0, w, h))
		for i := range g.Pix {
			g.Pix[i] = uint8(i*37 + w)
		}
		img = g
	} else {
		c := image.NewNRGBA(image.Rect(0, 0, w, h))
		for i := range c.Pix {
			c.Pix[i] = uint8(i*37 + w)
		}
		img = c
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(b.Bytes())
}

// TestPromptCountedBeforeImages: image parts that cannot fit the context
// are refused before any is read or decoded (8000 of them were all decoded,
// 1.5 GB, before the prompt was found too long): here they name files that
// do not exist, so reading any would fail differently.
func TestPromptCountedBeforeImages(t *testing.T) {
	mm, _, _ := loadTiny(t, "tiny-medgemma")
	parts := []chat.Part{chat.Text("Compare")}
	for i := range 8000 {
		parts = append(parts, chat.Image(fmt.Sprintf("/nonexistent/%d.png", i)))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := mm.Chat(context.Background(), []chat.Message{{Role: "user", Content: parts}},
		ChatOptions{Generate: generate.Options{MaxNewTokens: 1}, ImageSources: LocalImageSources(), Context: 4096})
	runtime.ReadMemStats(&after)
	if !errors.Is(err, ErrPromptTooLong) {
		t.Fatalf("8000 images in a 4096-token context: %v", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
		t.Errorf("refusing them allocated %d MB", alloc>>20)
	} else {
		t.Logf("8000 image parts refused with %.1f MB allocated: %v", float64(alloc)/(1<<20), err)
	}
	// With pan and scan the crops are counted image by image: a wide image
	// repeated stops as soon as its crops overflow the context.
	wide := tinyPNG(t, 1200, 300)
	parts = []chat.Part{chat.Text("Compare")}
	for range 100 {
		parts = append(parts, chat.Image(wide))
	}
	_, err = mm.Chat(context.Background(), []chat.Message{{Role: "user", Content: parts}},
		ChatOptions{Generate: generate.Options{MaxNewTokens: 1}, PanAndScan: true, Context: 3000})
	if !errors.Is(err, ErrPromptTooLong) || !strings.Contains(err.Error(), "pan-and-scan crops of") {
		t.Errorf("pan and scan over the context: %v", err)
	}
}

// TestNextTurnReusesTheCache: the second turn of a conversation prefills
// only what is new, apart from the previous prompt's last partial block
// (the cache is in blocks keyed by everything up to their end), the image
// is not encoded again, and the answer is exactly a fresh model's.
func TestNextTurnReusesTheCache(t *testing.T) {
	m, msgs, _ := loadTiny(t, "tiny-medgemma")
	// The golden question, then more text after the image.
	msgs[len(msgs)-1].Content = append(msgs[len(msgs)-1].Content, chat.Text("Compare the lower lobes, the heart border and the costophrenic angles on both sides."))
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 6, true, 3
	first, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: o, ImageSources: LocalImageSources()})
	if err != nil {
		t.Fatal(err)
	}
	turn2 := append(append([]chat.Message(nil), msgs...),
		chat.Message{Role: chat.RoleAssistant, Content: []chat.Part{chat.Text(first.Text)}},
		chat.Message{Role: chat.RoleUser, Content: []chat.Part{chat.Text("Is there an effusion?")}})
	reused, err := m.Chat(context.Background(), turn2, ChatOptions{Generate: o, ImageSources: LocalImageSources()})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := loadTiny(t, "tiny-medgemma")
	want, err := fresh.Chat(context.Background(), turn2, ChatOptions{Generate: o, ImageSources: LocalImageSources()})
	if err != nil {
		t.Fatal(err)
	}
	B := model.DefaultBlockSize
	if reused.ReusedTokens < len(first.PromptIDs)/B*B || reused.ReusedTokens%B != 0 || want.ReusedTokens != 0 || reused.ImagesEncoded != 0 {
		t.Errorf("reused %d tokens (first prompt %d), fresh reused %d; images encoded %d", reused.ReusedTokens, len(first.PromptIDs), want.ReusedTokens, reused.ImagesEncoded)
	}
	if !slices.Equal(reused.Tokens, want.Tokens) {
		t.Fatalf("turn 2 with the cache %v, fresh %v", reused.Tokens, want.Tokens)
	}
	for i := range reused.Logprobs {
		if d := reused.Logprobs[i].Logprob - want.Logprobs[i].Logprob; d > 1e-5 || d < -1e-5 {
			t.Errorf("step %d: logprob %v with the cache, %v fresh", i, reused.Logprobs[i].Logprob, want.Logprobs[i].Logprob)
		}
	}
	// A different conversation starts over.
	other, err := m.Chat(context.Background(), []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("Hi")}}}, ChatOptions{Generate: o})
	if err != nil || other.ReusedTokens != 0 {
		t.Errorf("unrelated conversation reused %d tokens (%v)", other.ReusedTokens, err)
	}
}

// TestCacheKeyedByImage: every image is the same soft-token ids, so a
// conversation whose text matches the cached one but whose image differs
// (in bytes, or in how it is prepared) must not continue from the cached
// KV (it did: "Describe" + image A, then "Describe" + image B / "ok" /
// "More" reused 30 tokens and answered with A's cache, first-step logprob
// -2.532 instead of -2.596).
func TestCacheKeyedByImage(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma")
	fresh, _, _ := loadTiny(t, "tiny-medgemma")
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs = 0, 4, true
	a, b := tinyPNG(t, 40, 30, true), tinyPNG(t, 30, 40, true)
	ctx := context.Background()
	first := func(img string) []chat.Message {
		return []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("Describe"), chat.Image(img),
			chat.Text("Look at the margins, the density and the texture, then say what it could be.")}}}
	}
	three := func(img string) []chat.Message {
		return append(first(img), chat.Message{Role: "assistant", Content: []chat.Part{chat.Text("ok")}},
			chat.Message{Role: "user", Content: []chat.Part{chat.Text("More")}})
	}
	window := imageproc.Window{Center: 100, Width: 50}
	for _, c := range []struct {
		name          string
		cached, asked ChatOptions
		img           string
		reuse         bool
	}{
		{"same image", ChatOptions{}, ChatOptions{}, a, true},
		{"another image", ChatOptions{}, ChatOptions{}, b, false},
		{"padded to a square", ChatOptions{}, ChatOptions{PadSquare: true}, a, false},
		{"pan and scan", ChatOptions{}, ChatOptions{PanAndScan: true}, a, false},
		{"a window", ChatOptions{}, ChatOptions{Image: imageproc.Options{Window: &window}}, a, false},
		{"another window", ChatOptions{Image: imageproc.Options{Window: &imageproc.Window{Center: 100, Width: 60}}}, ChatOptions{Image: imageproc.Options{Window: &window}}, a, false},
	} {
		c.cached.Generate, c.asked.Generate = o, o
		m.forget() // only this case's first turn is cached
		if _, err := m.Chat(ctx, first(a), c.cached); err != nil {
			t.Fatal(err)
		}
		got, err := m.Chat(ctx, three(c.img), c.asked)
		if err != nil {
			t.Fatal(err)
		}
		want, err := fresh.Chat(ctx, three(c.img), c.asked)
		if err != nil {
			t.Fatal(err)
		}
		fresh.forget()
		if (got.ReusedTokens > 0) != c.reuse {
			t.Errorf("%s: reused %d tokens, want reuse %v", c.name, got.ReusedTokens, c.reuse)
		}
		if !slices.Equal(got.Tokens, want.Tokens) {
			t.Errorf("%s: %v, fresh %v", c.name, got.Tokens, want.Tokens)
		}
		for i := range want.Logprobs {
			if d := got.Logprobs[i].Logprob - want.Logprobs[i].Logprob; d > 1e-5 || d < -1e-5 {
				t.Errorf("%s step %d: logprob %v, fresh %v", c.name, i, got.Logprobs[i].Logprob, want.Logprobs[i].Logprob)
			}
		}
	}
}

// TestImageFeatureCache: an image sent again (here in a new conversation,
// so the session is not reused) comes from the cache of encoded images and
// answers exactly as when it was encoded; without the cache it is encoded
// again.
func TestImageFeatureCache(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma")
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs = 0, 4, true
	img := tinyPNG(t, 50, 40)
	ask := func(m *Model, text string) *Result {
		t.Helper()
		res, err := m.Chat(context.Background(), []chat.Message{{Role: "user", Content: []chat.Part{chat.Text(text), chat.Image(img)}}}, ChatOptions{Generate: o})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	first := ask(m, "Describe")
	second := ask(m, "What is this?")
	again := ask(m, "Describe")
	if first.ImagesEncoded != 1 || second.ImagesEncoded != 0 || second.ImagesCached != 1 || again.ReusedTokens != 0 || again.ImagesCached != 1 {
		t.Errorf("encoded/cached: %d/%d, %d/%d, %d/%d (reused %d)", first.ImagesEncoded, first.ImagesCached, second.ImagesEncoded, second.ImagesCached,
			again.ImagesEncoded, again.ImagesCached, again.ReusedTokens)
	}
	if !slices.Equal(first.Tokens, again.Tokens) {
		t.Errorf("from the cache %v, encoded %v", again.Tokens, first.Tokens)
	}
	for i := range first.Logprobs {
		if first.Logprobs[i].Logprob != again.Logprobs[i].Logprob {
			t.Errorf("step %d: logprob %v from the cache, %v encoded", i, again.Logprobs[i].Logprob, first.Logprobs[i].Logprob)
		}
	}
	off, err := Load(context.Background(), filepath.Join("testdata", "models", "tiny-medgemma"),
		LoadOptions{Tokenizer: filepath.Join(testenv.TokenizerDir(t), "tokenizer.json"), ImageCacheBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer off.Close()
	ask(off, "Describe")
	if r := ask(off, "What is this?"); r.ImagesEncoded != 1 || r.ImagesCached != 0 {
		t.Errorf("without a cache: encoded %d, cached %d", r.ImagesEncoded, r.ImagesCached)
	}
}

func TestFeatureCacheEviction(t *testing.T) {
	c := newFeatureCache(3 * 4 * 10) // three blocks of 10 floats
	key := func(i byte) [32]byte { return [32]byte{i} }
	for i := range byte(4) {
		c.put(key(i), make([]float32, 10))
	}
	if _, ok := c.get(key(0)); ok {
		t.Error("the oldest block stayed")
	}
	c.get(key(1)) // 1 is now the most recent: 2 goes next
	c.put(key(4), make([]float32, 10))
	for i, want := range []bool{false, true, false, true, true} {
		if _, ok := c.get(key(byte(i))); ok != want {
			t.Errorf("block %d cached %v, want %v", i, ok, want)
		}
	}
	if c.bytes() != 120 {
		t.Errorf("%d bytes held", c.bytes())
	}
	c.put(key(9), make([]float32, 100)) // larger than the whole cache
	if _, ok := c.get(key(9)); ok || c.bytes() != 120 {
		t.Error("a block over the limit was kept")
	}
	var none *featureCache
	none.put(key(1), nil)
	if _, ok := none.get(key(1)); ok {
		t.Error("no cache returned a block")
	}
}

// TestComplete: a raw prompt scored with echo (what lm-evaluation-harness
// asks) gives every prompt token after the first its logprob, equal to what
// the generation of the same token reports; plain completion continues as
// Chat's generation does; bad prompts are refused by kind.
func TestComplete(t *testing.T) {
	m, _, g := loadTiny(t, "tiny-medgemma-text")
	ctx := context.Background()
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 3, true, 2
	gen, err := m.Complete(ctx, g.InputIDs, CompleteOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(gen.Tokens, g.GreedyNewIDs[:3]) || gen.PromptLogprobs != nil {
		t.Fatalf("greedy %v, want %v", gen.Tokens, g.GreedyNewIDs[:3])
	}
	// Score the prompt followed by the greedy tokens: their logprobs as
	// scores equal their logprobs as generated.
	full := slices.Concat(g.InputIDs, gen.Tokens)
	o.MaxNewTokens = 0
	sc, err := m.Complete(ctx, full, CompleteOptions{Generate: o, Echo: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.PromptLogprobs) != len(full)-1 || len(sc.Tokens) != 0 || sc.FinishReason != generate.FinishLength {
		t.Fatalf("%d scores for %d tokens, generated %v", len(sc.PromptLogprobs), len(full), sc.Tokens)
	}
	for i, lp := range gen.Logprobs {
		got := sc.PromptLogprobs[len(g.InputIDs)-1+i]
		if got.Token != lp.Token || math.Abs(float64(got.Logprob-lp.Logprob)) > 1e-4 || len(got.Top) != 2 || got.Top[0].Token != lp.Top[0].Token {
			t.Errorf("token %d: scored %+v, generated %+v", i, got, lp)
		}
	}
	o.MaxNewTokens = 1
	for _, c := range []struct {
		ids  []int32
		opts CompleteOptions
		kind error
		want string
	}{
		{nil, CompleteOptions{Generate: o}, ErrInvalidConversation, "an empty prompt"},
		{[]int32{2, 300000}, CompleteOptions{Generate: o}, ErrInvalidConversation, "token id 300000 at position 1 is outside the vocabulary"},
		{[]int32{2, -1}, CompleteOptions{Generate: o}, ErrInvalidConversation, "outside the vocabulary"},
		{make([]int32, 200), CompleteOptions{Generate: o, Context: 100}, ErrPromptTooLong, "200 tokens, context 100"},
		{[]int32{2, 3}, CompleteOptions{Generate: generate.Options{}}, ErrInvalidOptions, "max new tokens 0 generates nothing"},
	} {
		if _, err := m.Complete(ctx, c.ids, c.opts); err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, c.kind) {
			t.Errorf("%v: %v, want %q", c.kind, err, c.want)
		}
	}
	mm, _, _ := loadTiny(t, "tiny-medgemma")
	if _, err := mm.Complete(ctx, []int32{2, 262144}, CompleteOptions{Generate: o}); !errors.Is(err, ErrInvalidConversation) {
		t.Errorf("an image soft token in a raw prompt: %v", err)
	}
}

// TestGGUFDirectoryChoice: a directory of several GGUF models, or of one
// model and several mmproj files, is refused with the files named.
func TestGGUFDirectoryChoice(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.gguf", "b.gguf"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	if _, err := Load(context.Background(), dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "holds 2 GGUF models") {
		t.Errorf("two models: %v", err)
	}
	os.Remove(filepath.Join(dir, "b.gguf"))
	for _, name := range []string{"mmproj-a.gguf", "MMPROJ-b.gguf"} {
		os.WriteFile(filepath.Join(dir, name), nil, 0o644)
	}
	if _, err := Load(context.Background(), dir, LoadOptions{}); err == nil || !strings.Contains(err.Error(), "holds 2 mmproj files") {
		t.Errorf("two mmproj files: %v", err)
	}
}
