package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/medgemma/medgemma"
	"github.com/medgemma/medgemma/generate"
)

const scoreUsage = `Usage:
  medgemma score -m MODEL --input FILE.jsonl [--top-logprobs K] [--json]

Scores texts: for each input line, {"text": ...} (tokenized with <bos>
first) or {"ids": [...]} (taken as given: no <bos> added), the
log-probability of every token given the tokens before it, and the K most
likely tokens at each position. With --json, one line per input line:

  {"ids": [...], "logprobs": [null, x1, ...],
   "top_logprobs": [null, [{"token": id, "text": ..., "logprob": x}, ...], ...]}

where entry i is about token i given the tokens before it (the first has
nothing before it: null), the alternatives best first. Without --json, a
table per input line and its total log-probability and perplexity. This is
the computation /v1/completions does with echo and logprobs.

Flags:
`

// scoreJSON is one output line.
type scoreJSON struct {
	IDs         []int32      `json:"ids"`
	Logprobs    []*float32   `json:"logprobs"`
	TopLogprobs [][]scoreAlt `json:"top_logprobs"`
}

type scoreAlt struct {
	Token   int32   `json:"token"`
	Text    string  `json:"text"`
	Logprob float32 `json:"logprob"`
}

func runScore(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("score", scoreUsage, stderr)
	mf := addModelFlags(fs)
	input := fs.String("input", "", "JSON lines `FILE` (- for standard input)")
	top := fs.Int("top-logprobs", 0, fmt.Sprintf("the `K` most likely tokens at each position (0..%d)", generate.MaxTopLogprobs))
	asJSON := fs.Bool("json", false, "print one JSON line per input line")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case *input == "":
		return usagef("--input FILE.jsonl is required")
	case *top < 0 || *top > generate.MaxTopLogprobs:
		return usagef("--top-logprobs %d: want 0..%d", *top, generate.MaxTopLogprobs)
	}
	if err := mf.check(); err != nil {
		return err
	}
	var r io.Reader = stdin
	if *input != "-" {
		f, err := os.Open(*input)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	ctx, stop := interruptible(context.Background(), stderr)
	defer stop()
	m, err := mf.load(ctx, stderr)
	if err != nil {
		return interruptedErr(ctx, err)
	}
	defer m.Close()
	out := bufio.NewWriter(stdout)
	defer out.Flush()
	return scanJSONLines(r, *input, func(line int, text []byte) error {
		var row struct {
			Text *string `json:"text"`
			IDs  []int32 `json:"ids"`
		}
		if err := json.Unmarshal(text, &row); err != nil {
			return fmt.Errorf("%s:%d: %w", *input, line, err)
		}
		var ids []int32
		switch {
		case row.Text != nil && row.IDs != nil:
			return fmt.Errorf(`%s:%d: give "text" or "ids", not both`, *input, line)
		case row.Text != nil:
			ids = m.Tokenizer().Encode(*row.Text, true)
		case row.IDs != nil:
			ids = row.IDs
		default:
			return fmt.Errorf(`%s:%d: no "text" or "ids" field`, *input, line)
		}
		if len(ids) == 0 {
			return fmt.Errorf("%s:%d: no tokens to score", *input, line)
		}
		o := m.Defaults()
		o.MaxNewTokens, o.Logprobs, o.TopLogprobs = 0, true, *top
		res, err := m.Complete(ctx, ids, medgemma.CompleteOptions{Generate: o, Echo: true})
		if err != nil {
			return fmt.Errorf("%s:%d: %w", *input, line, interruptedErr(ctx, err))
		}
		if res.FinishReason == generate.FinishCancelled {
			return errInterrupted
		}
		j := scoreJSON{IDs: ids, Logprobs: []*float32{nil}, TopLogprobs: [][]scoreAlt{nil}}
		for _, st := range res.PromptLogprobs {
			lp := st.Logprob
			j.Logprobs = append(j.Logprobs, &lp)
			alts := []scoreAlt{}
			for _, a := range st.Top {
				alts = append(alts, scoreAlt{a.Token, a.Text, a.Logprob})
			}
			j.TopLogprobs = append(j.TopLogprobs, alts)
		}
		if *asJSON {
			return writeJSONLine(out, j)
		}
		return writeScoreTable(out, line, j, m)
	})
}

// writeScoreTable prints one input line's scores for a reader: each token
// with its log-probability and the alternatives, then the totals.
func writeScoreTable(w io.Writer, line int, j scoreJSON, m *medgemma.Model) error {
	fmt.Fprintf(w, "line %d: %d tokens\n", line, len(j.IDs))
	var sum float64
	for i, id := range j.IDs {
		lp := "       -"
		if j.Logprobs[i] != nil {
			lp = fmt.Sprintf("%8.4f", *j.Logprobs[i])
			sum += float64(*j.Logprobs[i])
		}
		fmt.Fprintf(w, "  %5d %7d %-20s %s", i, id, strconv.Quote(m.Tokenizer().Decode([]int32{id}, false)), lp)
		for _, a := range j.TopLogprobs[i] {
			fmt.Fprintf(w, "  %s %.4f", strconv.Quote(a.Text), a.Logprob)
		}
		fmt.Fprintln(w)
	}
	scored := len(j.IDs) - 1
	ppl := math.NaN()
	if scored > 0 {
		ppl = math.Exp(-sum / float64(scored))
	}
	_, err := fmt.Fprintf(w, "  total log-probability %.4f over %d tokens, perplexity %.4f\n", sum, scored, ppl)
	return err
}
