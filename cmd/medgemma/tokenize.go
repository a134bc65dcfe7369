package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/tokenizer"
)

const tokenizeUsage = `Usage:
  medgemma tokenize [--model DIR | --tokenizer FILE] [--special] TEXT
  medgemma tokenize ... --input FILE.jsonl
  medgemma tokenize ... --decode [--skip-special] IDS
  medgemma tokenize ... --chat MESSAGES.json [--image-tokens N] [--crops N,...]

Encodes TEXT and prints the token ids as a JSON array. TEXT "-" reads standard
input. --input reads JSON lines with a "text" field and prints one
{"ids": [...]} per line (with --decode: lines with "ids", printing {"text": ...}).
--decode takes ids (a JSON array, or numbers separated by spaces or commas) and
prints their text. --chat renders a conversation (a JSON array of messages,
content a string or a list of text and image parts) with the generation prompt,
expands each image into its soft tokens, and prints the model's input ids.

Flags:
`

type tokenizeFlags struct {
	model, tokenizerFile  string
	special, decode, skip bool
	input, chatFile       string
	imageTokens           int
	crops                 string
}

func runTokenize(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var f tokenizeFlags
	fs := newFlagSet("tokenize", tokenizeUsage, stderr)
	fs.StringVar(&f.model, "model", "", "checkpoint `DIR` holding tokenizer.json (and config.json)")
	fs.StringVar(&f.model, "m", "", "shorthand for --model")
	fs.StringVar(&f.tokenizerFile, "tokenizer", "", "tokenizer.json `FILE` (default: the one in --model)")
	fs.BoolVar(&f.special, "special", false, "add the special tokens (<bos>) when encoding")
	fs.BoolVar(&f.decode, "decode", false, "decode ids to text")
	fs.BoolVar(&f.skip, "skip-special", false, "with --decode, leave out special tokens")
	fs.StringVar(&f.input, "input", "", "read JSON lines from `FILE` (- for standard input)")
	fs.StringVar(&f.chatFile, "chat", "", "render the conversation in `MESSAGES.json` (- for standard input)")
	fs.IntVar(&f.imageTokens, "image-tokens", 0, "soft tokens per image with --chat (default: the model's, else 256)")
	fs.StringVar(&f.crops, "crops", "", "pan-and-scan crop count of each image with --chat, e.g. 3,0")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	modes := 0
	for _, on := range []bool{f.input != "", f.chatFile != "", len(pos) > 0} {
		if on {
			modes++
		}
	}
	switch {
	case modes == 0:
		fs.Usage()
		return usagef("nothing to tokenize: give TEXT, --input or --chat")
	case modes > 1 || len(pos) > 1:
		return usagef("give exactly one of TEXT (quoted, one argument), --input or --chat")
	case f.model == "" && f.tokenizerFile == "":
		return usagef("--model DIR or --tokenizer FILE is required")
	case f.chatFile != "" && (f.decode || f.special):
		return usagef("--chat cannot be combined with --decode or --special (the chat template writes <bos> itself)")
	case f.chatFile == "" && (f.imageTokens != 0 || f.crops != ""):
		return usagef("--image-tokens and --crops apply to --chat")
	case f.imageTokens < 0 || f.imageTokens > chat.MaxImageTokens:
		return usagef("--image-tokens must be in 1..%d", chat.MaxImageTokens)
	}
	crops, err := parseInts(f.crops)
	if err != nil {
		return usagef("--crops: %v", err)
	}
	for _, c := range crops {
		if c > chat.MaxCrops {
			return usagef("--crops: %d crops; at most %d per image", c, chat.MaxCrops)
		}
	}

	path := f.tokenizerFile
	if path == "" {
		path = filepath.Join(f.model, "tokenizer.json")
	}
	tok, err := tokenizer.Load(path)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(stdout)
	defer out.Flush()

	switch {
	case f.chatFile != "":
		data, err := readFileOrStdin(f.chatFile, stdin)
		if err != nil {
			return err
		}
		msgs, err := chat.ParseMessages(data)
		if err != nil {
			return fmt.Errorf("%s: %w", f.chatFile, err)
		}
		n := f.imageTokens
		if n == 0 && f.model != "" {
			if n, err = imageTokensOf(f.model); err != nil {
				return err
			}
		}
		p, err := chat.Encode(tok, msgs, chat.Options{AddGenerationPrompt: true, ImageTokens: n, Crops: crops})
		if err != nil {
			return fmt.Errorf("%s: %w", f.chatFile, err)
		}
		return writeJSONLine(out, nonNil(p.IDs))
	case f.input != "":
		return tokenizeLines(tok, f, stdin, out)
	}
	text := pos[0]
	if text == "-" {
		data, err := io.ReadAll(stdin)
		if err != nil {
			return err
		}
		text = string(data)
	}
	if f.decode {
		ids, err := parseIDs(tok, text)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(out, tok.Decode(ids, f.skip))
		return err
	}
	return writeJSONLine(out, nonNil(tok.Encode(text, f.special)))
}

// nonNil makes an empty encoding print as [] rather than null.
func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}

// tokenizeLines handles --input: one JSON object per line.
func tokenizeLines(tok *tokenizer.Tokenizer, f tokenizeFlags, stdin io.Reader, out *bufio.Writer) error {
	var r io.Reader = stdin
	if f.input != "-" {
		file, err := os.Open(f.input)
		if err != nil {
			return err
		}
		defer file.Close()
		r = file
	}
	return scanJSONLines(r, f.input, func(line int, text []byte) error {
		var row struct {
			Text *string `json:"text"`
			IDs  []int32 `json:"ids"`
		}
		if err := json.Unmarshal(text, &row); err != nil {
			return fmt.Errorf("%s:%d: %w", f.input, line, err)
		}
		if f.decode {
			if row.IDs == nil {
				return fmt.Errorf(`%s:%d: no "ids" field`, f.input, line)
			}
			if err := checkIDs(tok, row.IDs); err != nil {
				return fmt.Errorf("%s:%d: %w", f.input, line, err)
			}
			return writeJSONLine(out, map[string]string{"text": tok.Decode(row.IDs, f.skip)})
		}
		if row.Text == nil {
			return fmt.Errorf(`%s:%d: no "text" field`, f.input, line)
		}
		return writeJSONLine(out, map[string][]int32{"ids": nonNil(tok.Encode(*row.Text, f.special))})
	})
}

// scanJSONLines calls fn with each non-blank line of r (a byte order mark
// before the first taken away), numbered from 1, up to 64 MB a line;
// name is r's, for errors.
func scanJSONLines(r io.Reader, name string, fn func(line int, text []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		text := sc.Bytes()
		if line == 1 {
			text = bytes.TrimPrefix(text, []byte("\xef\xbb\xbf")) // a byte order mark
		}
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if err := fn(line, text); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

func writeJSONLine(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

func readFileOrStdin(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// parseIDs reads ids written as a JSON array or as numbers separated by
// spaces or commas.
func parseIDs(tok *tokenizer.Tokenizer, s string) ([]int32, error) {
	s = strings.TrimSpace(s)
	var ids []int32
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &ids); err != nil {
			return nil, usagef("ids: %v", err)
		}
	} else {
		v, err := parseInts(s)
		if err != nil {
			return nil, usagef("ids: %v", err)
		}
		for _, x := range v {
			ids = append(ids, int32(x))
		}
	}
	return ids, checkIDs(tok, ids)
}

func checkIDs(tok *tokenizer.Tokenizer, ids []int32) error {
	for i, id := range ids {
		if !tok.Valid(id) {
			return fmt.Errorf("id %d (position %d) is not a token: ids go from 0 to %d", id, i, tok.Len()-1)
		}
	}
	return nil
}

// parseInts reads non-negative integers separated by commas or spaces.
func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.FieldsFuncSeq(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		v, err := strconv.ParseInt(f, 10, 32)
		if err != nil || v < 0 {
			return nil, fmt.Errorf("%q is not a non-negative integer", f)
		}
		out = append(out, int(v))
	}
	return out, nil
}

// imageTokensOf is the number of soft tokens per image of a checkpoint
// (mm_tokens_per_image, through the model's config reader), or the default
// for a text-only one.
func imageTokensOf(dir string) (int, error) {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return 0, err
	}
	if cfg.MMTokensPerImage > 0 {
		return cfg.MMTokensPerImage, nil
	}
	return chat.DefaultImageTokens, nil
}
