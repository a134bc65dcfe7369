package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

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
