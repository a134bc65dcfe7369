package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/medgemma/medgemma/hub"
)

const pullUsage = `Usage:
  medgemma pull [--quiet] REPO[@REVISION]

Downloads the files inference needs (configs, tokenizer, safetensors weights)
of a Hugging Face repository into the standard cache (HF_HOME, HF_HUB_CACHE),
resuming an interrupted download and checking sizes and sha256. Prints the
snapshot directory. HF_TOKEN authenticates (MedGemma is gated: accept its
terms on huggingface.co first); HF_ENDPOINT changes the server.

Flags:
`

func runPull(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("pull", pullUsage, stderr)
	quiet := fs.Bool("quiet", false, "no progress")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("give one REPO[@REVISION], e.g. google/medgemma-4b-it")
	}
	ref, err := hub.ParseRef(pos[0])
	if err != nil {
		return usagef("%v", err)
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	c := hub.NewClient()
	if !*quiet {
		c.Progress = progressBar(stderr)
	}
	dir, err := c.Pull(ctx, ref)
	if p, ok := stderr.(*os.File); ok && isTerminal(p) && !*quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return interruptedErr(ctx, err)
	}
	_, err = fmt.Fprintln(stdout, dir)
	return err
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar draws download progress on a terminal (nothing elsewhere),
// at most ten times a second.
func progressBar(w io.Writer) func(string, int64, int64) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		return nil
	}
	var last time.Time
	return func(name string, done, total int64) {
		if time.Since(last) < 100*time.Millisecond && done != total {
			return
		}
		last = time.Now()
		if total > 0 {
			const width = 30
			n := int(int64(width) * done / total)
			bar := make([]byte, width)
			for i := range bar {
				bar[i] = ' '
				if i < n {
					bar[i] = '='
				}
			}
			fmt.Fprintf(w, "\r%-28.28s [%s] %5.1f%% %7.1f MB", name, bar, 100*float64(done)/float64(total), float64(done)/1e6)
		} else {
			fmt.Fprintf(w, "\r%-28.28s %7.1f MB", name, float64(done)/1e6)
		}
	}
}
