// Command medgemma runs Google's MedGemma models: one static binary that reads
// the checkpoints as Hugging Face publishes them.
//
// Usage:
//
//	medgemma <command> [flags] [arguments]
//
// Commands:
//
//	run        answer a prompt (text and images) and stream the answer
//	chat       an interactive conversation, with images
//	serve      serve the model over OpenAI's HTTP API
//	pull       download a model from Hugging Face into the standard cache
//	quantize   write a checkpoint as a GGUF file (bf16, q8_0, q4_0...)
//	tokenize   text to token ids and back, and conversations to model input
//	preprocess an image (PNG, JPEG, DICOM, ...) as the model sees it
//	inspect    architecture, parameters, dtypes and memory of a checkpoint
//	bench      speed and memory on a checkpoint or random weights of a shape
//	loadgen    load an OpenAI-compatible server and measure it
//	version    print the version
//
// Exit codes: 0 success, 1 runtime error, 2 usage error, 130 interrupted
// (Ctrl-C or SIGTERM stops loading, image encoding, prefill or generation;
// a second one exits at once). Errors are printed on stderr as one line.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks errors in how the command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

type command struct {
	name    string
	summary string
	run     func(args []string, stdin io.Reader, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"run", "answer a prompt (text and images) and stream the answer", runRun},
		{"chat", "an interactive conversation, with images", runChat},
		{"serve", "serve the model over OpenAI's HTTP API", runServe},
		{"pull", "download a model from Hugging Face into the standard cache", runPull},
		{"quantize", "write a checkpoint as a GGUF file (bf16, q8_0, q4_0...)", runQuantize},
		{"tokenize", "text to token ids and back, and conversations to model input", runTokenize},
		{"preprocess", "an image (PNG, JPEG, DICOM, ...) as the model sees it", runPreprocess},
		{"inspect", "architecture, parameters, dtypes and memory of a checkpoint", runInspect},
		{"bench", "speed and memory on a checkpoint or random weights of a published shape", runBench},
		{"perplexity", "perplexity on a text, and KL divergence to a base model, as llama-perplexity measures them", runPerplexity},
		{"score", "the log-probability of every token of texts or token ids (JSON lines)", runScore},
		{"loadgen", "load an OpenAI-compatible server with concurrent streams and measure it", runLoadgen},
		{"version", "print the version", func(_ []string, _ io.Reader, stdout, _ io.Writer) error {
			_, err := fmt.Fprintln(stdout, "medgemma", version)
			return err
		}},
	}
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "medgemma runs Google's MedGemma models.\n\nUsage:\n  medgemma <command> [flags] [arguments]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'medgemma <command> -h' for a command's flags.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(args[1:], stdin, stdout, stderr)
		var ue usageError
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "medgemma %s: %v\n", c.name, err)
			return 2
		case errors.Is(err, errInterrupted):
			fmt.Fprintf(stderr, "medgemma %s: interrupted\n", c.name)
			return exitInterrupted
		default:
			fmt.Fprintf(stderr, "medgemma %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "medgemma: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// parseFlags parses flags that may come before, between or after the
// positional arguments, and returns the positional arguments.
// newFlagSet makes a subcommand's flag set: errors and usage (the text,
// then the flags) go to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
