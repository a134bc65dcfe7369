package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/imageproc"
)

const runUsage = `Usage:
  medgemma run -m MODEL [--image FILE]... [--system TEXT] [sampling flags] PROMPT
  medgemma run -m MODEL --messages FILE.json [sampling flags]

Answers one prompt and streams the answer to stdout. The user turn holds the
text, then the images (PNG, JPEG, DICOM, ... by path, file:// or http(s) URL, or
data: URI). --messages takes a whole conversation (a JSON array of messages as
transformers and OpenAI clients write them). Sampling defaults come from the
checkpoint's generation_config.json; --temperature 0 is greedy. --json prints
one JSON object at the end instead of streaming.

Flags:
`

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

type runJSON struct {
	Text         string           `json:"text"`
	Thinking     string           `json:"thinking,omitempty"`
	Tokens       []int32          `json:"tokens"`
	FinishReason string           `json:"finish_reason"`
	Timings      medgemma.Timings `json:"timings"`
	Logprobs     []logprobJSON    `json:"logprobs,omitempty"`
	PromptTokens int              `json:"prompt_tokens"`
	Usage        map[string]int   `json:"usage"`
}

type logprobJSON struct {
	Token       int32     `json:"token"`
	Text        string    `json:"text"`
	Logprob     float32   `json:"logprob"`
	TopLogprobs []altJSON `json:"top_logprobs,omitempty"`
}

type altJSON struct {
	Token   int32   `json:"token"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
}

func runRun(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", runUsage, stderr)
	gf := addGenerationFlags(fs)
	var images stringList
	fs.Var(&images, "image", "image `FILE` or URL (repeatable)")
	system := fs.String("system", "", "system prompt")
	messagesFile := fs.String("messages", "", "conversation `FILE.json` (- for standard input)")
	asJSON := fs.Bool("json", false, "print one JSON object with text, tokens, finish_reason, timings (and logprobs)")
	topLogprobs := fs.Int("top-logprobs", 0, "with --json: logprob of each token and `N` alternatives (0..20)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case gf.model == "":
		return usagef("-m MODEL is required")
	case *messagesFile == "" && len(pos) != 1:
		return usagef("give the PROMPT as one argument (quote it), or --messages FILE.json")
	case *messagesFile != "" && (len(pos) > 0 || len(images) > 0 || *system != ""):
		return usagef("--messages holds the whole conversation: no PROMPT, --image or --system with it")
	case *topLogprobs < 0 || *topLogprobs > generate.MaxTopLogprobs:
		return usagef("--top-logprobs must be in 0..%d", generate.MaxTopLogprobs)
	}
	var msgs []chat.Message
	if *messagesFile != "" {
		data, err := readFileOrStdin(*messagesFile, stdin)
		if err != nil {
			return err
		}
		if msgs, err = chat.ParseMessages(data); err != nil {
			return fmt.Errorf("%s: %w", *messagesFile, err)
		}
	} else {
		if *system != "" {
			msgs = append(msgs, chat.Message{Role: chat.RoleSystem, Content: []chat.Part{chat.Text(*system)}})
		}
		user := chat.Message{Role: chat.RoleUser, Content: []chat.Part{chat.Text(pos[0])}}
		for _, img := range images {
			user.Content = append(user.Content, chat.Image(img))
		}
		msgs = append(msgs, user)
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	m, opts, err := gf.load(ctx, fs, stderr)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	defer m.Close()
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "top-logprobs" {
			opts.Generate.Logprobs, opts.Generate.TopLogprobs = true, *topLogprobs
		}
	})
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	if !*asJSON {
		opts.OnText = func(s string) error {
			if _, err := out.WriteString(s); err != nil {
				return err
			}
			return out.Flush()
		}
	}
	opts.OnPrefill = withPrefillHook(ctx, opts.OnPrefill)
	res, err := m.Chat(ctx, msgs, opts)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	// An interrupted answer is printed as far as it got, then exits 130.
	var ended error
	if res.FinishReason == generate.FinishCancelled {
		ended = errInterrupted
	}
	if !*asJSON {
		if _, err := out.WriteString("\n"); err != nil {
			return err
		}
		if !gf.quiet && isTerminal(os.Stderr) && ended == nil {
			fmt.Fprintf(stderr, "[%d prompt tokens, %d generated, %s; prefill %.1f tokens/s, decode %.1f tokens/s]\n",
				res.Timings.PromptTokens, len(res.Tokens), res.FinishReason, res.Timings.PrefillTokensPerS, res.Timings.DecodeTokensPerS)
		}
		return ended
	}
	j := runJSON{
		Text: res.Text, Thinking: res.Thinking, Tokens: res.Tokens, FinishReason: res.FinishReason, PromptTokens: res.Timings.PromptTokens,
		Timings: res.Timings,
		Usage:   map[string]int{"prompt_tokens": res.Timings.PromptTokens, "completion_tokens": len(res.Tokens)},
	}
	if j.Tokens == nil {
		j.Tokens = []int32{}
	}
	for _, lp := range res.Logprobs {
		e := logprobJSON{Token: lp.Token, Text: lp.Text, Logprob: lp.Logprob, TopLogprobs: []altJSON{}}
		for _, a := range lp.Top {
			e.TopLogprobs = append(e.TopLogprobs, altJSON{a.Token, a.Text, a.Logprob})
		}
		j.Logprobs = append(j.Logprobs, e)
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return err
	}
	return ended
}

// parseWindowFlag reads --window.
func parseWindowFlag(s string) (*imageproc.Window, error) {
	w, err := imageproc.ParseWindow(s)
	if err != nil {
		return nil, usagef("--window: %v", err)
	}
	return &w, nil
}
