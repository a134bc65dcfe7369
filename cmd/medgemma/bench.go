package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"

	"github.com/medgemma/medgemma/bench"
	"github.com/medgemma/medgemma/model"
)

const benchUsage = `Usage:
  medgemma bench --shape NAME|DIR [--threads N] [--prefill N] [--decode N] [--image]
                 [--batch 1,4,8,16] [--quant TYPE] [--json]

Measures load time, image encoding, prefill and decode speed, peak memory and
this machine's memory bandwidth. As llama-bench does, a first (cold) prefill
reads the weights and is reported apart; prefill and decode are then
measured on warm weights (--rounds times, the median kept), decode from an
empty context (llama-bench's tg) and again after the prompt. --batch also
decodes that many sequences at once (one forward pass per step over a token
of each, as "medgemma serve" batches requests) and reports their total
tokens/s against one sequence's. NAME is a published shape (%s): random
bf16 weights of that shape are written to a temporary directory and removed
after. DIR is a checkpoint directory or GGUF file. --quant TYPE writes the
shape's text model as a GGUF file of that type instead (%s: the
llama-quantize file types with their per-tensor mixes, or q4_k and q5_k for
every matrix). A shape that does not fit in memory is refused up front with
the memory it needs.

Flags:
`

func runBench(args []string, _ io.Reader, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", fmt.Sprintf(benchUsage, strings.Join(model.ShapeNames(), ", "), strings.Join(bench.QuantTypes, ", ")), stderr)
	var o bench.Options
	fs.StringVar(&o.Shape, "shape", "", "published shape `NAME`, checkpoint `DIR` or GGUF file")
	fs.IntVar(&o.Threads, "threads", 0, "threads (default: all)")
	fs.IntVar(&o.Prefill, "prefill", 512, "prompt tokens to prefill")
	fs.IntVar(&o.Decode, "decode", 128, "tokens to decode")
	fs.BoolVar(&o.Image, "image", false, "also encode one image through the vision tower")
	fs.BoolVar(&o.Resident, "resident", false, "read the weights into memory instead of mapping them (faster where page faults are costly, e.g. some VMs)")
	kvType := fs.String("kv-type", "f32", "KV cache storage: f32, f16 or q8_0")
	batch := fs.String("batch", "", "also decode `SIZES` (comma-separated) sequences at once")
	fs.StringVar(&o.Quant, "quant", "", "random weights of the shape's text model as a GGUF file of `TYPE`: "+strings.Join(bench.QuantTypes, ", "))
	fs.IntVar(&o.BlockSize, "block-size", 0, "KV block size of the batched decode (default 16)")
	fs.IntVar(&o.Rounds, "rounds", 1, "measure prefill, decode and each batch size `N` times, interleaved, and keep the medians")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to `FILE`")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(pos) > 0:
		return usagef("unexpected argument %q", pos[0])
	case o.Shape == "":
		return usagef("--shape NAME|DIR is required (%s, or a checkpoint directory)", strings.Join(model.ShapeNames(), ", "))
	case o.Prefill < 0 || o.Decode < 0 || o.Threads < 0:
		return usagef("--prefill, --decode and --threads must not be negative")
	}
	if *batch != "" {
		for _, f := range strings.Split(*batch, ",") {
			b, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || b < 1 || b > bench.MaxBatch {
				return usagef("--batch %q: want sizes 1..%d separated by commas", *batch, bench.MaxBatch)
			}
			o.Batch = append(o.Batch, b)
		}
		if o.Decode < 1 {
			return usagef("--batch needs --decode of at least 1")
		}
	}
	if o.Quant != "" && !slices.Contains(bench.QuantTypes, strings.ToLower(o.Quant)) {
		return usagef("--quant %q: want one of %s", o.Quant, strings.Join(bench.QuantTypes, ", "))
	}
	if _, known := model.Shapes[o.Shape]; o.Quant != "" && !known {
		return usagef("--quant writes random weights of a published shape (%s)", strings.Join(model.ShapeNames(), ", "))
	}
	if o.KVType, err = model.ParseKVType(*kvType); err != nil {
		return usagef("--kv-type: %v", err)
	}
	if o.Rounds < 1 || o.Rounds > 100 {
		return usagef("--rounds %d: want 1..100", o.Rounds)
	}
	if o.BlockSize < 0 || o.BlockSize > 1024 {
		return usagef("--block-size %d: want 1..1024", o.BlockSize)
	}
	if _, known := model.Shapes[o.Shape]; !known {
		if st, err := os.Stat(o.Shape); err != nil || !st.IsDir() && !strings.HasSuffix(strings.ToLower(o.Shape), ".gguf") {
			return usagef("--shape %q is neither a known shape (%s) nor a checkpoint directory or GGUF file", o.Shape, strings.Join(model.ShapeNames(), ", "))
		}
	}
	if !*quiet {
		o.Log = func(format string, a ...any) { fmt.Fprintf(stderr, "bench: "+format+"\n", a...) }
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.Run(o)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	gb := func(b int64) string { return fmt.Sprintf("%.2f GB", float64(b)/1e9) }
	shape := r.Shape
	if r.Quant != "" {
		shape += " (text model, " + r.Quant + ")"
	}
	rows := [][2]string{
		{"shape", shape},
		{"cpu", fmt.Sprintf("%s, %d threads, AVX2+FMA %v, AVX-512 %v", r.CPU, r.Threads, r.AVX2, r.AVX512)},
		{"weights", fmt.Sprintf("%s, %s", gb(r.WeightBytes), map[bool]string{false: "memory-mapped", true: "read into memory"}[r.WeightsResident])},
		{"load", fmt.Sprintf("%.2f s", r.LoadSeconds)},
	}
	if r.ImageSeconds > 0 {
		rows = append(rows, [2]string{"image encode", fmt.Sprintf("%.2f s (%dx%d patches -> %d tokens)", r.ImageSeconds, r.VisionPatchesPerSide, r.VisionPatchesPerSide, r.ImageTokensPerImage)})
	}
	rows = append(rows,
		[2]string{"cold prefill", fmt.Sprintf("%.2f tokens/s (%d tokens, the first pass over the weights)", r.ColdPrefillTokensPerS, r.PrefillTokens)},
		[2]string{"prefill", fmt.Sprintf("%.2f tokens/s (%d tokens, warm)", r.PrefillTokensPerS, r.PrefillTokens)},
		[2]string{"decode", fmt.Sprintf("%.2f tokens/s (%d tokens from an empty context, as llama-bench's tg)", r.DecodeTokensPerS, r.DecodeTokens)},
		[2]string{"memory bandwidth", fmt.Sprintf("%.1f GB/s read (%d threads), %.1f GB/s copy", r.ReadBandwidthGBs, r.Threads, r.CopyBandwidthGBs)},
		[2]string{"decode floor", fmt.Sprintf("%.2f tokens/s (%s per token); decode at %.0f%% of it", r.DecodeFloorTokensPS, gb(r.DecodeBytesPerToken), 100*r.DecodeFractionFloor)},
		[2]string{"kv cache", gb(r.KVCacheBytes) + " (" + r.KVType + ")"},
		[2]string{"peak rss", gb(r.PeakRSSBytes)},
	)
	if r.DecodeAfterPromptTokensPerS > 0 { // measured only with a prompt
		rows = append(rows, [2]string{"decode after", fmt.Sprintf("%.2f tokens/s (%d tokens after the %d-token prompt)", r.DecodeAfterPromptTokensPerS, r.DecodeTokens, r.PrefillTokens)})
	}
	for _, b := range r.Batch {
		rows = append(rows, [2]string{fmt.Sprintf("batch decode %d", b.Sequences),
			fmt.Sprintf("%.2f tokens/s (%.0f ms a step, median of %d), %.2fx one sequence", b.TokensPerS, 1000*b.StepSeconds, b.Rounds, b.Speedup)})
	}
	for _, row := range rows {
		fmt.Fprintf(stdout, "%-17s %s\n", row[0], row[1])
	}
	return nil
}
