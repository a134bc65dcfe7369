package medgemma

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/internal/testenv"
)

type goldenFile struct {
	InputIDs            []int32        `json:"input_ids"`
	GreedyNewIDs        []int32        `json:"greedy_new_ids"`
	GreedyStepTop10     [][2][]float64 `json:"greedy_step_top10"`
	GreedyStepLogSumExp []float64      `json:"greedy_step_logsumexp"`
}

func loadTiny(t *testing.T, name string) (*Model, []chat.Message, *goldenFile) {
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
		res, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: o, OnText: func(s string) error {
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

func TestImageSources(t *testing.T) {
	png, err := os.ReadFile(filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/x.png":
			w.Write(png)
		case "/big.png":
			w.Write(make([]byte, 2<<10))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	abs, _ := filepath.Abs(filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png"))
	for _, src := range []string{
		filepath.Join("imageproc", "testdata", "images", "tiny_rgb_20x30.png"),
		"file://" + abs,
		"data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
		srv.URL + "/x.png",
	} {
		got, err := readImageSource(context.Background(), src)
		if err != nil || !slices.Equal(got, png) {
			t.Errorf("%.40s: %d bytes, %v", src, len(got), err)
		}
	}
	saved := MaxImageBytes
	MaxImageBytes = 1 << 10
	defer func() { MaxImageBytes = saved }()
	for src, want := range map[string]string{
		srv.URL + "/big.png":       "over the 1024-byte limit",
		srv.URL + "/missing.png":   "404",
		"data:image/png;base64,@@": "invalid base64",
		"":                         "has no image",
		"/nonexistent/x.png":       "no such file",
	} {
		if _, err := readImageSource(context.Background(), src); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

func TestChatErrors(t *testing.T) {
	m, _, _ := loadTiny(t, "tiny-medgemma-text")
	msgs := []chat.Message{{Role: "user", Content: []chat.Part{chat.Text("hi"), chat.Image("x.png")}}}
	if _, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: generate.Options{MaxNewTokens: 1}}); err == nil || !strings.Contains(err.Error(), "text only") {
		t.Errorf("image to a text model: %v", err)
	}
	long := []chat.Message{{Role: "user", Content: []chat.Part{chat.Text(strings.Repeat("word ", 300))}}}
	if _, err := m.Chat(context.Background(), long, ChatOptions{Generate: generate.Options{MaxNewTokens: 1}, Context: 100}); err == nil || !strings.Contains(err.Error(), "prompt is longer than the context") {
		t.Errorf("long prompt: %v", err)
	}
	if _, err := Load(context.Background(), "/nonexistent", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "not a checkpoint directory") {
		t.Errorf("missing model: %v", err)
	}
	t.Setenv("HF_HUB_OFFLINE", "1")
	t.Setenv("HF_HUB_CACHE", t.TempDir())
	if _, err := Load(context.Background(), "google/medgemma-4b-it", LoadOptions{}); err == nil || !strings.Contains(err.Error(), "HF_HUB_OFFLINE is set") {
		t.Errorf("offline, not cached: %v", err)
	}
}

// TestNextTurnReusesTheCache: the second turn of a conversation prefills
// only what is new (the image is not encoded again) and answers exactly as a
// fresh model given the whole conversation.
func TestNextTurnReusesTheCache(t *testing.T) {
	m, msgs, _ := loadTiny(t, "tiny-medgemma")
	o := m.Defaults()
	o.Temperature, o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, 6, true, 3
	first, err := m.Chat(context.Background(), msgs, ChatOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	turn2 := append(append([]chat.Message(nil), msgs...),
		chat.Message{Role: chat.RoleAssistant, Content: []chat.Part{chat.Text(first.Text)}},
		chat.Message{Role: chat.RoleUser, Content: []chat.Part{chat.Text("Is there an effusion?")}})
	reused, err := m.Chat(context.Background(), turn2, ChatOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	fresh, _, _ := loadTiny(t, "tiny-medgemma")
	want, err := fresh.Chat(context.Background(), turn2, ChatOptions{Generate: o})
	if err != nil {
		t.Fatal(err)
	}
	if reused.ReusedTokens < len(first.PromptIDs) || want.ReusedTokens != 0 {
		t.Errorf("reused %d tokens (first prompt %d), fresh reused %d", reused.ReusedTokens, len(first.PromptIDs), want.ReusedTokens)
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
