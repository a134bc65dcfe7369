package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/quantize"
)

const quantizeUsage = `Usage:
  medgemma quantize -m MODEL --type TYPE --out DIR [--tokenizer FILE] [--quiet]

Writes the text model of a Hugging Face checkpoint (a directory or a
repository id, as run takes) as a GGUF file laid out as llama.cpp's files
are, DIR/<name>-<TYPE>.gguf, and for a multimodal checkpoint its vision
tower as llama.cpp's mmproj file, DIR/mmproj-<name>-F16.gguf; prints their
paths. TYPE: f32, bf16, q8_0 (8 bits per weight and a scale per 32), q6_k
(6 bits, scales per 16 and 256), q5_k_m and q4_k_m (5 or 4 bits with
scales and minimums per 32; the embedding and some value and down
projections in q6_k), q4_0 (4 bits, a scale per 32; the embedding in
q6_k), as llama-quantize makes them and byte for byte the same. Tensors are converted one at a time.
Run, chat and serve take the directory or the file with -m; the file
carries the tokenizer's vocabulary and the checkpoint's chat template
(tokenizer.chat_template, which llama.cpp's chat tools read).

Flags:
`

func runQuantize(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("quantize", quantizeUsage, stderr)
	ref := fs.String("m", "", "checkpoint `MODEL`: a directory or a Hugging Face repository id")
	typ := fs.String("type", "", "`TYPE` of the weight matrices: f32, bf16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0")
	out := fs.String("out", "", "`DIR` to write the GGUF file into")
	tok := fs.String("tokenizer", "", "tokenizer.json `FILE` whose vocabulary the file carries (default: the checkpoint's)")
	quiet := fs.Bool("quiet", false, "no progress")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	var types []string
	for t := range quantize.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case *ref == "":
		return usagef("-m MODEL is required")
	case *out == "":
		return usagef("--out DIR is required")
	case *typ == "":
		return usagef("--type is required (%s)", strings.Join(types, ", "))
	}
	if _, ok := quantize.Types[strings.ToLower(*typ)]; !ok {
		return usagef("--type %q is not supported (%s)", *typ, strings.Join(types, ", "))
	}
	*typ = strings.ToLower(*typ)
	if model.IsGGUF(*ref) {
		return usagef("-m %s is already a GGUF file: quantize reads a Hugging Face checkpoint", *ref)
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	dir, err := medgemma.Resolve(ctx, *ref, nil)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	name := filepath.Base(filepath.Clean(dir))
	if strings.Contains(dir, "snapshots") { // the hub cache: name the repository
		name = strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Dir(dir))), "models--")
		name = name[strings.LastIndex(name, "--")+2:]
	}
	path := filepath.Join(*out, name+"-"+strings.ToUpper(*typ)+".gguf")
	opts := quantize.Options{Type: *typ, Tokenizer: *tok}
	if f, ok := stderr.(*os.File); ok && isTerminal(f) && !*quiet {
		opts.Progress = func(done, total int) {
			fmt.Fprintf(stderr, "\rquantize: %d/%d tensors", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	if err := quantize.Text(ctx, dir, path, opts); err != nil {
		return interruptedErr(ctx, err)
	}
	if _, err = fmt.Fprintln(stdout, path); err != nil {
		return err
	}
	if cfg, err := model.LoadConfig(dir); err == nil && cfg.Vision != nil {
		mmproj := filepath.Join(*out, "mmproj-"+name+"-F16.gguf")
		if err := quantize.MMProj(ctx, dir, mmproj, false, opts.Progress); err != nil {
			return interruptedErr(ctx, err)
		}
		_, err = fmt.Fprintln(stdout, mmproj)
		return err
	}
	return nil
}
