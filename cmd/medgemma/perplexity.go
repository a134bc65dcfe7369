package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/medgemma/medgemma"
)

const perplexityUsage = `Usage:
  medgemma perplexity -m MODEL -f TEXT [--ctx 512] [--chunks N] [--save-logits FILE]
  medgemma perplexity -m MODEL --kl-base FILE [--chunks N]

Measures the model's perplexity on a text as llama.cpp's llama-perplexity
does: the text (with <bos> first) is cut into chunks of --ctx tokens, each
evaluated from an empty cache with <bos> as its first token, and the second
half of each chunk is scored. Prints the running perplexity after each chunk
([1]5.1234,[2]...) and the final estimate with its standard error.

--save-logits writes every scored position's log-probabilities to FILE in
llama-perplexity's --kl-divergence-base format. --kl-base reads such a file
(from this command or from llama.cpp), evaluates its tokens, and compares
each position with it: KL divergence, how often the top token is the same,
and the change in the probability of the right token (Δp), printed as
llama-perplexity prints them. Use it to measure what a quantization costs:
save the logits of the bf16 model, then run a quantized file against them.

Flags:
`

func runPerplexity(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("perplexity", perplexityUsage, stderr)
	mf := addModelFlags(fs)
	textFile := fs.String("f", "", "the text `FILE` (- for standard input)")
	ctxLen := fs.Int("ctx", 0, "tokens per chunk (default 512; with --kl-base, the file's)")
	chunks := fs.Int("chunks", 0, "evaluate at most `N` chunks (default: all)")
	saveLogits := fs.String("save-logits", "", "write the log-probabilities to `FILE`")
	klBase := fs.String("kl-base", "", "compare with the log-probabilities in `FILE`")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case (*textFile == "") == (*klBase == ""):
		return usagef("give -f TEXT, or --kl-base FILE (whose tokens are evaluated)")
	case *ctxLen < 0 || *ctxLen == 1 || *ctxLen > 0 && *ctxLen < 4:
		return usagef("--ctx %d: want 4 or more", *ctxLen)
	case *chunks < 0:
		return usagef("--chunks %d: want 0 (all) or more", *chunks)
	case *saveLogits != "" && *klBase != "":
		return usagef("--save-logits and --kl-base do not go together")
	}
	if err := mf.check(); err != nil {
		return err
	}
	opts := medgemma.PerplexityOptions{Context: *ctxLen, Chunks: *chunks}
	var text []byte
	if *textFile != "" {
		if text, err = readFileOrStdin(*textFile, stdin); err != nil {
			return err
		}
	}
	if *klBase != "" {
		f, err := os.Open(*klBase)
		if err != nil {
			return err
		}
		defer f.Close()
		opts.KLBase = f
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	m, err := mf.load(ctx, stderr)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	defer m.Close()
	var save *os.File
	if *saveLogits != "" {
		if save, err = os.Create(*saveLogits); err != nil {
			return err
		}
		defer save.Close()
		opts.SaveLogits = save
	}
	if !*asJSON {
		opts.OnChunk = func(r *medgemma.PerplexityResult) {
			if r.KL == nil {
				fmt.Fprintf(stdout, "[%d]%.4f,", r.Chunks, r.PPL)
				if r.Chunks == r.OfChunks {
					fmt.Fprintln(stdout)
				}
				return
			}
			if r.Chunks == 1 {
				fmt.Fprintln(stdout, "chunk             PPL               ln(PPL(Q)/PPL(base))          KL Divergence              Δp RMS            Same top p")
			}
			k := r.KL
			fmt.Fprintf(stdout, "%4d    %9.4f ± %9.4f    %10.5f ± %10.5f    %10.5f ± %10.5f    %6.3f ± %6.3f %%    %6.3f ± %6.3f %%\n",
				r.Chunks, r.PPL, r.PPLErr, k.LogPPLRatio, k.LogPPLRatioErr, k.KLDMean, k.KLDErr,
				100*k.DeltaPRMS, 100*k.DeltaPRMSErr, 100*k.SameTop, 100*k.SameTopErr)
		}
	}
	var ids []int32
	if text != nil {
		ids = m.Tokenizer().Encode(string(text), true)
	}
	res, err := m.Perplexity(ctx, ids, opts)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	if save != nil {
		if err := save.Close(); err != nil {
			return err
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	if res.KL == nil {
		fmt.Fprintf(stdout, "Final estimate: PPL = %.4f +/- %.5f\n", res.PPL, res.PPLErr)
		return nil
	}
	k := res.KL
	fmt.Fprintf(stdout, "\n====== Perplexity statistics ======\n")
	fmt.Fprintf(stdout, "Mean PPL(Q)                   : %10.6f ± %10.6f\n", res.PPL, res.PPLErr)
	fmt.Fprintf(stdout, "Mean PPL(base)                : %10.6f ± %10.6f\n", k.BasePPL, k.BasePPLErr)
	fmt.Fprintf(stdout, "Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100*k.LogPPLCor)
	fmt.Fprintf(stdout, "Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", k.LogPPLRatio, k.LogPPLRatioErr)
	fmt.Fprintf(stdout, "Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", k.PPLRatio, k.PPLRatioErr)
	fmt.Fprintf(stdout, "Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n", k.PPLDiff, k.PPLDiffErr)
	fmt.Fprintf(stdout, "\n====== KL divergence statistics ======\n")
	fmt.Fprintf(stdout, "Mean    KLD: %10.6f ± %10.6f\n", k.KLDMean, k.KLDErr)
	for i, name := range medgemma.KLDPercentileNames {
		fmt.Fprintf(stdout, "%-7s KLD: %10.6f\n", name, k.KLDPercentiles[i])
	}
	fmt.Fprintf(stdout, "\n====== Token probability statistics ======\n")
	fmt.Fprintf(stdout, "Mean    Δp: %6.3f ± %5.3f %%\n", 100*k.DeltaPMean, 100*k.DeltaPErr)
	for i, name := range medgemma.DeltaPPercentileNames {
		fmt.Fprintf(stdout, "%-7s Δp: %6.3f%%\n", name, 100*k.DeltaPPercentiles[i])
	}
	fmt.Fprintf(stdout, "RMS Δp    : %6.3f ± %5.3f %%\n", 100*k.DeltaPRMS, 100*k.DeltaPRMSErr)
	fmt.Fprintf(stdout, "Same top p: %6.3f ± %5.3f %%\n", 100*k.SameTop, 100*k.SameTopErr)
	return nil
}
