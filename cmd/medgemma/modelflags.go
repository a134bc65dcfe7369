package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/model"
)

// modelFlags are the flags of commands that load a model to evaluate it
// (perplexity, score): no sampling, no images.
type modelFlags struct {
	model, tokenizer string
	threads          int
	resident, quiet  bool
}

func addModelFlags(fs *flag.FlagSet) *modelFlags {
	f := &modelFlags{}
	fs.StringVar(&f.model, "model", "", "checkpoint `DIR`, GGUF file or Hugging Face id")
	fs.StringVar(&f.model, "m", "", "shorthand for --model")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer.json `FILE` (default: the checkpoint's)")
	fs.IntVar(&f.threads, "threads", 0, "threads (default: all)")
	fs.BoolVar(&f.resident, "resident", false, "read the weights into memory instead of mapping them")
	fs.BoolVar(&f.quiet, "quiet", false, "nothing on stderr but errors")
	return f
}

// check reports a usage error in the flags.
func (f *modelFlags) check() error {
	switch {
	case f.model == "":
		return usagef("-m MODEL is required")
	case f.threads < 0:
		return usagef("--threads must be 0 (all) or more, got %d", f.threads)
	}
	return nil
}

// load loads the model (the text model suffices: no vision tower is
// looked for).
func (f *modelFlags) load(ctx context.Context, stderr io.Writer) (*medgemma.Model, error) {
	o := medgemma.LoadOptions{Tokenizer: f.tokenizer, Resident: f.resident, Threads: f.threads}
	if !f.quiet {
		o.Progress = progressBar(stderr)
	}
	m, err := medgemma.Load(ctx, f.model, o)
	if err != nil {
		return nil, err
	}
	if !f.quiet && model.IsGGUF(m.Weights()) {
		fmt.Fprintf(stderr, "medgemma: tokenizer from %s\n", m.TokenizerSource())
	}
	return m, nil
}
