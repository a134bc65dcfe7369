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
	model, tokenizer, kvType string
	threads                  int
	resident, quiet          bool
}

func addModelFlags(fs *flag.FlagSet) *modelFlags {
	f := &modelFlags{}
	fs.StringVar(&f.model, "model", "", "checkpoint `DIR`, GGUF file or Hugging Face id")
	fs.StringVar(&f.model, "m", "", "shorthand for --model")
	fs.StringVar(&f.tokenizer, "tokenizer", "", "tokenizer.json `FILE` (default: the checkpoint's)")
	fs.IntVar(&f.threads, "threads", 0, "threads (default: all)")
	fs.BoolVar(&f.resident, "resident", false, "read the weights into memory instead of mapping them")
	fs.BoolVar(&f.quiet, "quiet", false, "nothing on stderr but errors")
	fs.StringVar(&f.kvType, "kv-type", "f32", "how the KV cache stores keys and values: f32, f16 or q8_0")
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
	if _, err := model.ParseKVType(f.kvType); err != nil {
		return usagef("--kv-type: %v", err)
	}
	return nil
}

// load loads the model (the text model suffices: no vision tower is
// looked for).
func (f *modelFlags) load(ctx context.Context, stderr io.Writer) (*medgemma.Model, error) {
	kvType, _ := model.ParseKVType(f.kvType) // checked
	o := medgemma.LoadOptions{Tokenizer: f.tokenizer, Resident: f.resident, Threads: f.threads, KVType: kvType}
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
