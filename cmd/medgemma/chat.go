package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
)

const chatUsage = `Usage:
  medgemma chat -m MODEL [--system TEXT] [sampling flags]

An interactive conversation. Type a message and press Enter. Commands:
  /image PATH   attach an image (file, URL or data: URI) to your next message
  /system TEXT  set the system prompt
  /reset        start a new conversation
  /exit         quit (also Ctrl-D)
Ctrl-C stops the answer being written, not the session; a second Ctrl-C
while it stops, or one during loading, exits (code 130).

Flags:
`

// maxChatLine is the longest line the chat reads; a longer one is skipped
// with a notice, and the session goes on.
const maxChatLine = 1 << 20

func runChat(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("chat", chatUsage, stderr)
	gf := addGenerationFlags(fs)
	system := fs.String("system", "", "system prompt")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if gf.model == "" {
		return usagef("-m MODEL is required")
	}
	if len(pos) > 0 {
		return usagef("unexpected argument %q (type messages once the chat has started)", pos[0])
	}

	// Ctrl-C while loading exits; during an answer it stops the answer (a
	// second one before it has stopped exits); between answers it only
	// reminds how to quit.
	var mu sync.Mutex
	loading, stopLoading := context.WithCancelCause(context.Background())
	loaded := false
	var cancelTurn context.CancelFunc
	stopSignals := interrupts(func(int) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !loaded && loading.Err() == nil:
			stopLoading(errInterrupted)
		case !loaded:
			fmt.Fprintln(stderr, "\nmedgemma: interrupted again, exiting")
			exit(exitInterrupted)
		case cancelTurn != nil:
			cancelTurn()
			cancelTurn = func() {
				fmt.Fprintln(stderr, "\nmedgemma: interrupted again, exiting")
				exit(exitInterrupted)
			}
		default:
			fmt.Fprintln(stderr, "\n(type /exit or press Ctrl-D to quit)")
		}
	})
	defer stopSignals()
	m, opts, err := gf.load(loading, fs, stderr)
	if err != nil {
		return interruptedErr(loading, err)
	}
	mu.Lock()
	loaded = true
	stopLoading(nil)
	mu.Unlock()
	defer m.Close()

	out := bufio.NewWriter(stdout)
	defer out.Flush()
	var history []chat.Message
	var images []string
	sys := *system
	in := bufio.NewReaderSize(stdin, 64<<10)
	prompt := func() {
		if isTerminalWriter(stdout) {
			fmt.Fprint(out, ">>> ")
		}
		out.Flush()
	}
	prompt()
	for {
		raw, tooLong, err := readLine(in, maxChatLine)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if tooLong {
			fmt.Fprintf(out, "(that line is over %d bytes; not sent)\n", maxChatLine)
			prompt()
			continue
		}
		line := strings.TrimSpace(raw)
		switch {
		case line == "":
			prompt()
			continue
		case line == "/exit" || line == "/quit" || line == "/bye":
			return nil
		case line == "/reset":
			history, images = nil, nil
			fmt.Fprintln(out, "(new conversation)")
			prompt()
			continue
		case strings.HasPrefix(line, "/system"):
			sys = strings.TrimSpace(strings.TrimPrefix(line, "/system"))
			history = nil
			fmt.Fprintln(out, "(system prompt set; new conversation)")
			prompt()
			continue
		case strings.HasPrefix(line, "/image"):
			p := strings.TrimSpace(strings.TrimPrefix(line, "/image"))
			if p == "" {
				fmt.Fprintln(out, "(usage: /image PATH)")
			} else {
				images = append(images, p)
				fmt.Fprintf(out, "(image %s attached to your next message)\n", describeImage(p))
			}
			prompt()
			continue
		case strings.HasPrefix(line, "/"):
			fmt.Fprintf(out, "(unknown command %s: /image, /system, /reset, /exit)\n", strings.Fields(line)[0])
			prompt()
			continue
		}
		user := chat.Message{Role: chat.RoleUser, Content: []chat.Part{chat.Text(line)}}
		for _, img := range images {
			user.Content = append(user.Content, chat.Image(img))
		}
		msgs := append([]chat.Message(nil), history...)
		if sys != "" {
			msgs = append([]chat.Message{{Role: chat.RoleSystem, Content: []chat.Part{chat.Text(sys)}}}, msgs...)
		}
		msgs = append(msgs, user)

		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		cancelTurn = cancel
		mu.Unlock()
		o := opts
		o.OnText = func(s string) error {
			out.WriteString(s)
			return out.Flush()
		}
		o.OnPrefill = withPrefillHook(ctx, o.OnPrefill)
		res, err := m.Chat(ctx, msgs, o)
		mu.Lock()
		cancelTurn = nil
		mu.Unlock()
		cancel()
		images = nil // sent with this message, or dropped with it
		switch {
		case errors.Is(err, context.Canceled):
			fmt.Fprintln(out, "(stopped)")
		case err != nil:
			fmt.Fprintf(out, "\n(error: %v)\n", err)
		case res.FinishReason == generate.FinishCancelled:
			fmt.Fprintln(out, " (stopped)")
			history = append(history, user, chat.Message{Role: chat.RoleAssistant, Content: []chat.Part{chat.Text(res.Text)}})
		default:
			fmt.Fprintln(out)
			history = append(history, user, chat.Message{Role: chat.RoleAssistant, Content: []chat.Part{chat.Text(res.Text)}})
		}
		prompt()
	}
}

// readLine reads one line (without its end) of at most limit bytes; a
// longer line is read to its end and discarded, reported by tooLong.
func readLine(r *bufio.Reader, limit int) (line string, tooLong bool, err error) {
	var b []byte
	for {
		chunk, isPrefix, err := r.ReadLine()
		if err != nil {
			if err == io.EOF && (len(b) > 0 || tooLong) {
				return string(b), tooLong, nil
			}
			return "", false, err
		}
		if !tooLong {
			if len(b)+len(chunk) > limit {
				tooLong, b = true, nil
			} else {
				b = append(b, chunk...)
			}
		}
		if !isPrefix {
			return string(b), tooLong, nil
		}
	}
}

// describeImage names an attached image without printing a data: URI.
func describeImage(src string) string {
	if strings.HasPrefix(src, "data:") {
		return fmt.Sprintf("(data: URI of %d bytes)", len(src))
	}
	return src
}

func isTerminalWriter(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && isTerminal(f)
}

// prefillProgressFrom is the prompt length above which prefill shows progress.
const prefillProgressFrom = 1024

// generationFlags are the flags run and chat share.
type generationFlags struct {
	model, tokenizer                 string
	temperature, topP, minP          float64
	repPenalty, freqPenalty, presPen float64
	topK, maxTokens, frame, threads  int
	seed                             uint64
	stops                            stringList
	window                           string
	panScan, pad, resident, quiet    bool
	thinking, showThinking           bool
}

func addGenerationFlags(fs *flag.FlagSet) *generationFlags {
	g := &generationFlags{}
	fs.StringVar(&g.model, "model", "", "checkpoint `DIR` or Hugging Face id (google/medgemma-4b-it[@rev])")
	fs.StringVar(&g.model, "m", "", "shorthand for --model")
	fs.StringVar(&g.tokenizer, "tokenizer", "", "tokenizer.json `FILE` (default: the checkpoint's)")
	fs.Float64Var(&g.temperature, "temperature", 0, "sampling temperature; 0 is greedy (default: the checkpoint's)")
	fs.IntVar(&g.topK, "top-k", 0, "top-k (default: the checkpoint's)")
	fs.Float64Var(&g.topP, "top-p", 0, "top-p (default: the checkpoint's)")
	fs.Float64Var(&g.minP, "min-p", 0, "min-p")
	fs.Float64Var(&g.repPenalty, "repetition-penalty", 0, "repetition penalty (transformers')")
	fs.Float64Var(&g.freqPenalty, "frequency-penalty", 0, "frequency penalty (OpenAI's)")
	fs.Float64Var(&g.presPen, "presence-penalty", 0, "presence penalty (OpenAI's)")
	fs.Uint64Var(&g.seed, "seed", 0, "seed for reproducible sampling")
	fs.IntVar(&g.maxTokens, "max-tokens", 1024, "most tokens to generate (at most 8192)")
	fs.Var(&g.stops, "stop", "stop `STRING` (repeatable; not printed)")
	fs.BoolVar(&g.panScan, "pan-and-scan", false, "add pan-and-scan crops of wide or tall images")
	fs.BoolVar(&g.pad, "pad-square", false, "pad images to a square before resizing")
	fs.StringVar(&g.window, "window", "", "grayscale window for DICOM / 16-bit images: preset or CENTER,WIDTH")
	fs.IntVar(&g.frame, "frame", 0, "DICOM frame")
	fs.IntVar(&g.threads, "threads", 0, "threads (default: all)")
	fs.BoolVar(&g.resident, "resident", false, "read the weights into memory instead of mapping them")
	fs.BoolVar(&g.quiet, "quiet", false, "nothing on stderr but errors")
	fs.BoolVar(&g.thinking, "think", false, "27B models: let the model think before answering")
	fs.BoolVar(&g.showThinking, "show-thinking", false, "with --think, print the thoughts too")
	return g
}

// load opens the model and builds the chat options from the flags that were
// set over the checkpoint's defaults. Flag values are checked before the
// model is loaded, so a wrong one is a usage error at once.
func (g *generationFlags) load(ctx context.Context, fs *flag.FlagSet, stderr io.Writer) (*medgemma.Model, medgemma.ChatOptions, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var opts medgemma.ChatOptions
	switch {
	case g.maxTokens < 1 || g.maxTokens > generate.MaxNewTokens:
		return nil, opts, usagef("--max-tokens must be in 1..%d", generate.MaxNewTokens)
	case g.threads < 0:
		return nil, opts, usagef("--threads must be 0 (all) or more, got %d", g.threads)
	case g.frame < 0:
		return nil, opts, usagef("--frame must be 0 or more, got %d", g.frame)
	case set["repetition-penalty"] && !(g.repPenalty > 0):
		return nil, opts, usagef("--repetition-penalty must be positive (1 is off), got %v", g.repPenalty)
	}
	// The flags on their own, then over the checkpoint's defaults.
	apply := func(o generate.Options) generate.Options {
		o.MaxNewTokens = g.maxTokens
		if set["temperature"] {
			o.Temperature = g.temperature
		}
		if set["top-k"] {
			o.TopK = g.topK
		}
		if set["top-p"] {
			o.TopP = g.topP
		}
		if set["min-p"] {
			o.MinP = g.minP
		}
		if set["repetition-penalty"] {
			o.RepetitionPenalty = g.repPenalty
		}
		o.FrequencyPenalty, o.PresencePenalty = g.freqPenalty, g.presPen
		o.Seed, o.HasSeed = g.seed, set["seed"]
		o.StopStrings = g.stops
		return o
	}
	if o := apply(generate.Options{}); o.Validate() != nil {
		return nil, opts, usagef("%v", o.Validate())
	}
	opts.Image.Frame = g.frame
	if g.window != "" {
		w, err := parseWindowFlag(g.window)
		if err != nil {
			return nil, opts, err
		}
		opts.Image.Window = w
	}
	opts.PanAndScan, opts.PadSquare = g.panScan, g.pad
	opts.ImageSources = medgemma.LocalImageSources() // the user's own files and URLs
	opts.Thinking, opts.ShowThinking = g.thinking, g.showThinking
	lo := medgemma.LoadOptions{Tokenizer: g.tokenizer, Resident: g.resident, Threads: g.threads}
	if !g.quiet {
		lo.Progress = progressBar(stderr)
		if f, ok := stderr.(*os.File); ok && isTerminal(f) {
			// Long prompts (several chunks) show their prefill.
			opts.OnPrefill = func(done, total int) {
				if total > prefillProgressFrom {
					fmt.Fprintf(stderr, "\rprefill %d/%d tokens", done, total)
					if done == total {
						fmt.Fprint(stderr, "\r\033[K")
					}
				}
			}
		}
	}
	m, err := medgemma.Load(ctx, g.model, lo)
	if err != nil {
		return nil, opts, err
	}
	o := apply(m.Defaults())
	if err := o.Validate(); err != nil {
		m.Close()
		return nil, opts, fmt.Errorf("the checkpoint's generation_config.json with these flags: %w", err)
	}
	opts.Generate = o
	return m, opts, nil
}
