package chat_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/internal/testtok"
)

var gemma3 = testtok.Gemma3

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

type templateCase struct {
	Name                string          `json:"name"`
	Messages            json.RawMessage `json:"messages"`
	AddGenerationPrompt bool            `json:"add_generation_prompt"`
	Text                string          `json:"text"`
	IDs                 []int32         `json:"ids"`
	Error               string          `json:"error"`
}

func templateCases(t *testing.T) map[string]templateCase {
	var cases []templateCase
	readJSON(t, "chat_template.json", &cases)
	if len(cases) != 8 {
		t.Fatalf("chat_template.json: %d cases, want 8", len(cases))
	}
	m := map[string]templateCase{}
	for _, c := range cases {
		m[c.Name] = c
	}
	return m
}

func messages(t *testing.T, c templateCase) []chat.Message {
	t.Helper()
	msgs, err := chat.ParseMessages(c.Messages)
	if err != nil {
		t.Fatalf("%s: %v", c.Name, err)
	}
	return msgs
}

// TestChatTemplateReference renders every conversation of the reference.
func TestChatTemplateReference(t *testing.T) {
	tk := gemma3(t)
	for name, c := range templateCases(t) {
		msgs := messages(t, c)
		text, err := chat.Render(msgs, c.AddGenerationPrompt)
		if c.Error != "" {
			if err == nil || !errors.Is(err, chat.ErrRolesAlternate) || !strings.HasSuffix(err.Error(), c.Error) {
				t.Errorf("%s: error %v, want %q", name, err, c.Error)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if text != c.Text {
			t.Errorf("%s: text\n got %q\nwant %q", name, text, c.Text)
		}
		if ids := tk.Encode(text, false); !slices.Equal(ids, c.IDs) {
			t.Errorf("%s: ids\n got %v\nwant %v", name, ids, c.IDs)
		}
		// Without images, Encode gives the same ids.
		if !strings.Contains(text, chat.StartOfImage) {
			p, err := chat.Encode(tk, msgs, chat.Options{AddGenerationPrompt: c.AddGenerationPrompt})
			if err != nil || !slices.Equal(p.IDs, c.IDs) || p.Images != 0 {
				t.Errorf("%s: Encode = %+v, %v", name, p, err)
			}
		}
	}
}

type expansionCase struct {
	Name         string  `json:"name"`
	Text         string  `json:"text"`
	InputIDs     []int32 `json:"input_ids"`
	TokenTypeIDs []int32 `json:"token_type_ids"`
	Decoded      string  `json:"decoded"`
}

// TestProcessorExpansionReference expands images into 256 soft tokens.
func TestProcessorExpansionReference(t *testing.T) {
	tk := gemma3(t)
	templates := templateCases(t)
	var cases []expansionCase
	readJSON(t, "processor_expansion.json", &cases)
	if len(cases) != 3 {
		t.Fatalf("processor_expansion.json: %d cases, want 3", len(cases))
	}
	for _, c := range cases {
		tc, ok := templates[c.Name]
		if !ok {
			t.Fatalf("%s: no conversation in chat_template.json", c.Name)
		}
		p, err := chat.Encode(tk, messages(t, tc), chat.Options{AddGenerationPrompt: true, ImageTokens: 256})
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		if !slices.Equal(p.IDs, c.InputIDs) {
			t.Errorf("%s: input ids\n got %v\nwant %v", c.Name, p.IDs, c.InputIDs)
		}
		if !slices.Equal(p.TokenTypeIDs, c.TokenTypeIDs) {
			t.Errorf("%s: token type ids differ", c.Name)
		}
		if p.Text != c.Decoded {
			t.Errorf("%s: expanded text\n got %q\nwant %q", c.Name, p.Text, c.Decoded)
		}
		if want := strings.Count(c.Text, chat.StartOfImage); p.Images != want {
			t.Errorf("%s: %d images, want %d", c.Name, p.Images, want)
		}
	}
}

// TestPanAndScanReference expands one image with 3 crops.
func TestPanAndScanReference(t *testing.T) {
	tk := gemma3(t)
	var c struct {
		Text             string  `json:"text"`
		InputIDs         []int32 `json:"input_ids"`
		Decoded          string  `json:"decoded"`
		PixelValuesShape []int   `json:"pixel_values_shape"`
	}
	readJSON(t, "pan_and_scan_expansion.json", &c)
	msgs := messages(t, templateCases(t)["system_parts_image"])
	text, err := chat.Render(msgs, true)
	if err != nil || text != c.Text {
		t.Fatalf("Render = %q, %v; want %q", text, err, c.Text)
	}
	p, err := chat.Encode(tk, msgs, chat.Options{AddGenerationPrompt: true, Crops: []int{3}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p.IDs, c.InputIDs) {
		t.Errorf("input ids\n got %v\nwant %v", p.IDs, c.InputIDs)
	}
	if p.Text != c.Decoded {
		t.Errorf("expanded text\n got %q\nwant %q", p.Text, c.Decoded)
	}
	if p.Images != c.PixelValuesShape[0] {
		t.Errorf("%d image blocks, want %d (pixel_values %v)", p.Images, c.PixelValuesShape[0], c.PixelValuesShape)
	}
	soft := 0
	for _, v := range p.TokenTypeIDs {
		soft += int(v)
	}
	if soft != 4*256 {
		t.Errorf("%d soft tokens, want %d", soft, 4*256)
	}
}

func TestRenderRules(t *testing.T) {
	user := func(parts ...chat.Part) chat.Message { return chat.Message{Role: chat.RoleUser, Content: parts} }
	for _, c := range []struct {
		name string
		msgs []chat.Message
		want string // rendered text, or the error text
		err  bool
	}{
		{"python whitespace trim", []chat.Message{user(chat.Text("\x1c\u3000 hi \u00a0\x1f\n"))},
			"<bos><start_of_turn>user\nhi<end_of_turn>\n", false},
		{"system kept untrimmed", []chat.Message{{Role: "system", Content: []chat.Part{chat.Text(" be brief ")}}, user(chat.Text("q"))},
			"<bos><start_of_turn>user\n be brief \n\nq<end_of_turn>\n", false},
		{"model role", []chat.Message{user(chat.Text("a")), {Role: "model", Content: []chat.Part{chat.Text("b")}}},
			"<bos><start_of_turn>user\na<end_of_turn>\n<start_of_turn>model\nb<end_of_turn>\n", false},
		{"image parts", []chat.Message{user(chat.Image("x.png"), chat.Text(" a "), chat.Image(""))},
			"<bos><start_of_turn>user\n<start_of_image>a<start_of_image><end_of_turn>\n", false},
		{"no messages", nil, "no messages", true},
		{"assistant first", []chat.Message{{Role: "assistant", Content: []chat.Part{chat.Text("a")}}}, "Conversation roles must alternate", true},
		{"system later", []chat.Message{user(chat.Text("a")), {Role: "system", Content: []chat.Part{chat.Text("s")}}}, "messages[1]: a system message must be the first", true},
		{"system alone", []chat.Message{{Role: "system", Content: []chat.Part{chat.Text("s")}}}, "needs a user message", true},
		{"system image", []chat.Message{{Role: "system", Content: []chat.Part{chat.Image("x")}}, user(chat.Text("q"))}, "exactly one text part", true},
		{"unknown role", []chat.Message{{Role: "tool", Content: []chat.Part{chat.Text("a")}}}, `unknown role "tool"`, true},
		{"reserved text", []chat.Message{user(chat.Text("see <image_soft_token>"))}, `messages[0] part 0: text contains "<image_soft_token>"`, true},
	} {
		got, err := chat.Render(c.msgs, false)
		switch {
		case c.err && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		case !c.err && (err != nil || got != c.want):
			t.Errorf("%s: got %q, %v; want %q", c.name, got, err, c.want)
		}
	}
}

func TestExpand(t *testing.T) {
	got, err := chat.Expand("a<start_of_image>b<start_of_image>", 2, []int{0, 1}, 0)
	want := "a\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\nb" +
		"Here is the original image \n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\n" +
		" and here are some crops to help you see better \n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\n"
	if err != nil || got != want {
		t.Errorf("Expand = %q, %v\nwant %q", got, err, want)
	}
	if n := chat.SoftTokens("a<start_of_image>b<start_of_image>", 2, []int{0, 1}); n != 6 {
		t.Errorf("SoftTokens = %d, want 6", n)
	}
	// Every refusal is a conversation error; sizes are checked before the
	// text is built (10^9 tokens per image, 10^8 crops or a million images
	// over the limit used to be built, or die trying).
	for _, c := range []struct {
		text   string
		tokens int
		crops  []int
		max    int
		want   string
	}{
		{"<start_of_image>", 2, []int{1, 1}, 0, "crop counts for 2 images, but the prompt has 1"},
		{"<start_of_image>", 0, nil, 0, "0 image tokens per image; want 1..65536"},
		{"<start_of_image>", 1_000_000_000, nil, 0, "1000000000 image tokens per image"},
		{"<start_of_image>", 1, []int{-1}, 0, "crop count -1 outside 0..64"},
		{"<start_of_image>", 1, []int{100_000_000}, 0, "crop count 100000000 outside 0..64"},
		{strings.Repeat("<start_of_image>", 1_000_000), 256, nil, 0, "expand to 256000000 image tokens, over the limit of 1048576"},
		{strings.Repeat("<start_of_image>", 3), 256, []int{4}, 2000, "expand to 1792 image tokens"},
	} {
		_, err := chat.Expand(c.text, c.tokens, c.crops, c.max)
		if c.max == 2000 {
			if err != nil {
				t.Errorf("1792 of 2000 tokens: %v", err)
			}
			_, err = chat.Expand(c.text, c.tokens, c.crops, 1791)
		}
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, chat.ErrInvalidConversation) {
			t.Errorf("%.40q x%d %v: %v, want %q", c.text, c.tokens, c.crops, err, c.want)
		}
	}
	_, err = chat.Expand(strings.Repeat("<start_of_image>", 10), 256, nil, 1000)
	if !errors.Is(err, chat.ErrTooManyTokens) {
		t.Errorf("over the limit: %v, want ErrTooManyTokens", err)
	}
}

// TestMessagesWithBOM: a file an editor saved with a UTF-8 byte order mark
// parses (it gave "invalid character 'ï'").
func TestMessagesWithBOM(t *testing.T) {
	msgs, err := chat.ParseMessages([]byte("\xef\xbb\xbf" + `[{"role": "user", "content": "hi"}]`))
	if err != nil || len(msgs) != 1 || msgs[0].Content[0].Text != "hi" {
		t.Errorf("%v %v", msgs, err)
	}
}

func TestMessageJSON(t *testing.T) {
	msgs, err := chat.ParseMessages([]byte(`[
	  {"role": "system", "content": "sys"},
	  {"role": "user", "content": [
	    {"type": "text", "text": "look"},
	    {"type": "image", "image": "a.png"},
	    {"type": "image", "url": "https://example.org/b.png"},
	    {"type": "image", "path": "/tmp/c.dcm"},
	    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
	    {"type": "image"}
	  ]}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []chat.Message{
		{Role: "system", Content: []chat.Part{chat.Text("sys")}},
		{Role: "user", Content: []chat.Part{chat.Text("look"), chat.Image("a.png"), chat.Image("https://example.org/b.png"),
			chat.Image("/tmp/c.dcm"), chat.Image("data:image/png;base64,AAAA"), chat.Image("")}},
	}
	if !slices.EqualFunc(msgs, want, func(a, b chat.Message) bool { return a.Role == b.Role && slices.Equal(a.Content, b.Content) }) {
		t.Errorf("parsed %+v\nwant %+v", msgs, want)
	}
	// Round trip through MarshalJSON.
	data, err := json.Marshal(msgs)
	if err != nil {
		t.Fatal(err)
	}
	again, err := chat.ParseMessages(data)
	if err != nil || len(again) != 2 || !slices.Equal(again[1].Content, want[1].Content) {
		t.Errorf("round trip: %s -> %+v, %v", data, again, err)
	}
	for _, c := range []struct{ in, want string }{
		{`{"role": "user"}`, "want a JSON array of messages"},
		{`[{"role": "user"}]`, `messages[0]: user message has no "content"`},
		{`[{"content": "x"}]`, `messages[0]: a message has no "role"`},
		{`[{"role": "user", "content": 3}]`, "must be a string or a list of parts"},
		{`[{"role": "user", "content": [{"type": "audio"}]}]`, `content part type "audio" is not supported`},
		{`[{"role": "user", "content": [{"type": "text"}]}]`, `has no "text"`},
		{`[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]`, "has no url"},
	} {
		_, err := chat.ParseMessages([]byte(c.in))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.in, err, c.want)
		}
	}
}
