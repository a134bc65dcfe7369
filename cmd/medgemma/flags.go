package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/model"
)

// prefillProgressFrom is the prompt length above which prefill shows progress.
const prefillProgressFrom = 1024

// generationFlags are the flags run and chat share.
type generationFlags struct {
	model, tokenizer, mmproj         string
	temperature, topP, minP          float64
	repPenalty, freqPenalty, presPen float64
	topK, maxTokens, frame, threads  int
	context                          int
	seed                             uint64
	stops                            stringList
	window, kvType                   string
	panScan, pad, resident, quiet    bool
	thinking, showThinking           bool
	jsonSchema, format, grammarFile  string
}

func addGenerationFlags(fs *flag.FlagSet) *generationFlags {
	g := &generationFlags{}
	fs.StringVar(&g.model, "model", "", "checkpoint `DIR` or Hugging Face id (google/medgemma-4b-it[@rev])")
	fs.StringVar(&g.model, "m", "", "shorthand for --model")
	fs.StringVar(&g.tokenizer, "tokenizer", "", "tokenizer.json `FILE` (default: the checkpoint's)")
	fs.StringVar(&g.mmproj, "mmproj", "", "the vision tower of a GGUF model: an mmproj `FILE` (default: the one mmproj*.gguf beside the model)")
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
	fs.IntVar(&g.context, "ctx", 0, "context: the most tokens of prompt and answer (default: the prompt plus --max-tokens, within the model's limit)")
	fs.BoolVar(&g.resident, "resident", false, "read the weights into memory instead of mapping them")
	fs.StringVar(&g.kvType, "kv-type", "f32", "how the KV cache stores keys and values: f32, f16 (half the memory) or q8_0 (about a quarter)")
	fs.BoolVar(&g.quiet, "quiet", false, "nothing on stderr but errors")
	fs.BoolVar(&g.thinking, "think", false, "27B models: let the model think before answering")
	fs.BoolVar(&g.showThinking, "show-thinking", false, "with --think, print the thoughts too")
	fs.StringVar(&g.jsonSchema, "json-schema", "", "answer with JSON that the JSON Schema in `FILE` accepts")
	fs.StringVar(&g.format, "format", "", "answer format: json (any JSON object)")
	fs.StringVar(&g.grammarFile, "grammar", "", "answer in the language of the GBNF grammar (llama.cpp's) in `FILE`")
	return g
}

// settings are the checked flags: what loading and answering need.
type settings struct {
	chat medgemma.ChatOptions // all but Generate
	load medgemma.LoadOptions
	// apply sets the sampling flags that were given over a checkpoint's
	// defaults.
	apply func(generate.Options) generate.Options
}

// settings checks the flags before anything is loaded, so that a wrong one
// is a usage error at once.
func (g *generationFlags) settings(fs *flag.FlagSet, stderr io.Writer) (*settings, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	st := &settings{}
	switch {
	case g.maxTokens < 1 || g.maxTokens > generate.MaxNewTokens:
		return nil, usagef("--max-tokens must be in 1..%d", generate.MaxNewTokens)
	case g.threads < 0:
		return nil, usagef("--threads must be 0 (all) or more, got %d", g.threads)
	case g.frame < 0:
		return nil, usagef("--frame must be 0 or more, got %d", g.frame)
	case g.context < 0:
		return nil, usagef("--ctx must be 0 (automatic) or more, got %d", g.context)
	case set["repetition-penalty"] && !(g.repPenalty > 0):
		return nil, usagef("--repetition-penalty must be positive (1 is off), got %v", g.repPenalty)
	}
	// The flags on their own, then over the checkpoint's defaults.
	st.apply = func(o generate.Options) generate.Options {
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
	constraint, err := g.constraint()
	if err != nil {
		return nil, err
	}
	apply := st.apply
	st.apply = func(o generate.Options) generate.Options {
		o = apply(o)
		o.Grammar = constraint
		return o
	}
	if o := st.apply(generate.Options{}); o.Validate() != nil {
		return nil, usagef("%v", o.Validate())
	}
	opts := &st.chat
	opts.Image.Frame = g.frame
	if g.window != "" {
		w, err := parseWindowFlag(g.window)
		if err != nil {
			return nil, err
		}
		opts.Image.Window = w
	}
	opts.PanAndScan, opts.PadSquare, opts.Context = g.panScan, g.pad, g.context
	opts.ImageSources = medgemma.LocalImageSources() // the user's own files and URLs
	opts.Thinking, opts.ShowThinking = g.thinking, g.showThinking
	kvType, err := model.ParseKVType(g.kvType)
	if err != nil {
		return nil, usagef("--kv-type: %v", err)
	}
	st.load = medgemma.LoadOptions{Tokenizer: g.tokenizer, MMProj: g.mmproj, Resident: g.resident, Threads: g.threads, KVType: kvType}
	if !g.quiet {
		st.load.Progress = progressBar(stderr)
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
	return st, nil
}

// generation is the sampling of a loaded model with the flags over it.
func (st *settings) generation(m *medgemma.Model) (generate.Options, error) {
	o := st.apply(m.Defaults())
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("the checkpoint's generation_config.json with these flags: %w", err)
	}
	return o, nil
}

// load checks the flags, opens the model and builds the chat options.
func (g *generationFlags) load(ctx context.Context, fs *flag.FlagSet, stderr io.Writer) (*medgemma.Model, medgemma.ChatOptions, error) {
	st, err := g.settings(fs, stderr)
	if err != nil {
		return nil, medgemma.ChatOptions{}, err
	}
	m, err := medgemma.Load(ctx, g.model, st.load)
	if err != nil {
		return nil, st.chat, err
	}
	if !g.quiet && model.IsGGUF(m.Weights()) {
		fmt.Fprintf(stderr, "medgemma: tokenizer from %s\n", m.TokenizerSource())
	}
	if st.chat.Generate, err = st.generation(m); err != nil {
		m.Close()
		return nil, st.chat, err
	}
	return m, st.chat, nil
}

// constraint compiles the answer's grammar from --json-schema, --format or
// --grammar (at most one), or returns nil; what cannot be honoured is a
// usage error that names it.
func (g *generationFlags) constraint() (*grammar.Compiled, error) {
	n := 0
	for _, v := range []string{g.jsonSchema, g.format, g.grammarFile} {
		if v != "" {
			n++
		}
	}
	if n > 1 {
		return nil, usagef("--json-schema, --format and --grammar exclude each other")
	}
	read := func(flag, path string, limit int) ([]byte, error) {
		f, err := os.Open(path)
		if err != nil {
			return nil, usagef("--%s: %v", flag, err)
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
		if err != nil {
			return nil, usagef("--%s: %v", flag, err)
		}
		if len(data) > limit {
			return nil, usagef("--%s: %s is over %d bytes", flag, path, limit)
		}
		return data, nil
	}
	var gr *grammar.Grammar
	var err error
	flagName := ""
	switch {
	case g.jsonSchema != "":
		flagName = "json-schema"
		var data []byte
		if data, err = read(flagName, g.jsonSchema, grammar.MaxSchemaBytes); err != nil {
			return nil, err
		}
		gr, err = grammar.FromJSONSchema(data)
	case g.format != "":
		if g.format != "json" {
			return nil, usagef("--format %q: want json", g.format)
		}
		flagName, gr = "format", grammar.JSONObject()
	case g.grammarFile != "":
		flagName = "grammar"
		var data []byte
		if data, err = read(flagName, g.grammarFile, grammar.MaxGBNFBytes); err != nil {
			return nil, err
		}
		gr, err = grammar.ParseGBNF(string(data))
	default:
		return nil, nil
	}
	if err != nil {
		return nil, usagef("--%s: %v", flagName, err)
	}
	c, err := gr.Compile()
	if err != nil {
		return nil, usagef("--%s: %v", flagName, err)
	}
	return c, nil
}
