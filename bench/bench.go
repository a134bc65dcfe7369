// Package bench measures the engine on a checkpoint: a real one, or random
// bf16 weights of a published shape written to a temporary directory (the
// real weights cannot always be had, and speed does not depend on their
// values). It reports what a user feels: load time, image encoding, prefill
// and decode speed, peak memory, and decode against the memory-bandwidth
// floor of this machine.
package bench

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/quantize"
	"github.com/medgemma/medgemma/safetensors"
)

// QuantTypes are the names Options.Quant takes: llama-quantize's file
// types (the _m mixes and q4_0 with its per-tensor choices, as
// quantize.TensorType makes them) and every matrix in one type (q4_k,
// q5_k).
var QuantTypes = []string{"q8_0", "q6_k", "q5_k_m", "q4_k_m", "q4_0", "q5_k", "q4_k", "bf16"}

// quantTypeOf is the type of each matrix (by llama.cpp's name) of a random
// file of quant for a model of layers layers, or nil for an unknown name.
func quantTypeOf(quant string, layers int) func(name string) gguf.Type {
	quant = strings.ToLower(quant)
	if _, ok := quantize.Types[quant]; ok && quant != "f32" {
		return func(name string) gguf.Type { return quantize.TensorType(quant, name, layers) }
	}
	one := map[string]gguf.Type{"q4_k": gguf.Q4_K, "q5_k": gguf.Q5_K}[quant]
	if one == 0 {
		return nil
	}
	return func(string) gguf.Type { return one }
}

// Options say what to measure.
type Options struct {
	Shape   string // a name in model.Shapes, or a checkpoint directory
	Threads int    // 0: all
	Prefill int    // prompt tokens
	Decode  int    // generated tokens
	Image   bool   // encode one image
	// Batch lists batch sizes to decode at: that many sequences (forked
	// from the prefilled prompt, so they share its blocks) each decode
	// Decode tokens, one forward pass per step over all of them, as the
	// server's scheduler runs them.
	Batch []int
	// BlockSize is the KV block size of the batched decode (0: the default).
	BlockSize int
	// Rounds repeats the prefill and decode (and the batched decodes, the
	// sizes interleaved) and keeps each one's median (0: 1): these
	// machines drift.
	Rounds int
	// Quant writes the random weights of a shape as a GGUF text model of
	// this type (one of QuantTypes) instead of a bf16 checkpoint ("": the
	// checkpoint).
	Quant string
	// Resident reads the weights into memory instead of mapping them.
	Resident bool
	// KVType is the KV cache's storage (kernels.F32, F16, Q8_0).
	KVType  kernels.DType
	TempDir string // where random weights are written; "" for the system's
	// BandwidthBytes is the buffer the bandwidth test reads; 0 means 1 GiB.
	BandwidthBytes int
	Log            func(format string, args ...any)
}

// Result is what was measured. JSON keys say plainly what each is.
type Result struct {
	Shape              string  `json:"shape"`
	Quant              string  `json:"quant,omitempty"`
	WeightsResident    bool    `json:"weights_resident"`
	Threads            int     `json:"threads"`
	CPU                string  `json:"cpu"`
	WeightBytes        int64   `json:"weight_bytes"`
	WriteRandomSeconds float64 `json:"write_random_weights_s,omitempty"`
	LoadSeconds        float64 `json:"load_s"`
	ImageSeconds       float64 `json:"image_encode_s,omitempty"`
	PrefillTokens      int     `json:"prefill_tokens"`
	PrefillTokensPerS  float64 `json:"prefill_tokens_per_s"`
	// ColdPrefillTokensPerS is the first prefill, the weights read for the
	// first time (from disk, or the page cache); PrefillTokensPerS and
	// DecodeTokensPerS come after it, on warm weights (medians of Rounds).
	ColdPrefillTokensPerS float64 `json:"cold_prefill_tokens_per_s,omitempty"`
	DecodeTokens          int     `json:"decode_tokens"`
	// DecodeTokensPerS decodes from an empty context (llama-bench's tg);
	// DecodeAfterPromptTokensPerS after the prefilled prompt.
	DecodeTokensPerS            float64 `json:"decode_tokens_per_s"`
	DecodeAfterPromptTokensPerS float64 `json:"decode_after_prompt_tokens_per_s,omitempty"`
	DecodeBytesPerToken         int64   `json:"decode_weight_bytes_per_token"`
	ReadBandwidthGBs            float64 `json:"memory_read_bandwidth_gb_per_s"`
	CopyBandwidthGBs            float64 `json:"memory_copy_bandwidth_gb_per_s"`
	DecodeFloorTokensPS         float64 `json:"decode_bandwidth_floor_tokens_per_s"`
	DecodeFractionFloor         float64 `json:"decode_fraction_of_floor"`
	PeakRSSBytes                int64   `json:"peak_rss_bytes"`
	KVCacheBytes                int64   `json:"kv_cache_bytes"`
	KVType                      string  `json:"kv_type"`
	AVX2                        bool    `json:"avx2_fma"`
	AVX512                      bool    `json:"avx512"`
	GoMaxProcs                  int     `json:"gomaxprocs"`
	ContextTokens               int     `json:"context_tokens"`
	PrefillChunkTokens          int     `json:"prefill_chunk_tokens"`
	ImageTokensPerImage         int     `json:"image_tokens,omitempty"`
	VisionPatchesPerSide        int     `json:"vision_patches_per_side,omitempty"`
	Batch                       []Batch `json:"batch_decode,omitempty"`
}

// Batch is the decode of several sequences at once.
type Batch struct {
	Sequences int `json:"sequences"`
	// TokensPerS counts every sequence's tokens: the server's throughput.
	TokensPerS float64 `json:"tokens_per_s"`
	// StepSeconds is one step (a token of each sequence): what each
	// stream waits per token.
	StepSeconds float64 `json:"step_s"`
	// Speedup is TokensPerS over one sequence's (batch 1 of this run, or
	// else the single-sequence decode).
	Speedup   float64 `json:"speedup"`
	BlockSize int     `json:"kv_block_size"`
	// Rounds is how many times it was measured (StepSeconds the median).
	Rounds int `json:"rounds"`
}

// MaxBatch bounds a batch size.
const MaxBatch = 256

const prefillChunk = 512

// Run performs the measurements.
func Run(o Options) (*Result, error) {
	logf := o.Log
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if o.Threads < 0 {
		return nil, fmt.Errorf("threads must be 0 (all) or more, got %d", o.Threads)
	}
	r := &Result{Shape: o.Shape, WeightsResident: o.Resident, Threads: kernels.NewPool(o.Threads).Threads(), CPU: cpuName(), AVX2: kernels.HasAVX2(), AVX512: kernels.HasAVX512(), GoMaxProcs: runtime.GOMAXPROCS(0),
		PrefillTokens: o.Prefill, DecodeTokens: o.Decode, PrefillChunkTokens: prefillChunk}
	dir := o.Shape
	if cfgJSON, ok := model.Shapes[o.Shape]; ok {
		cfg, err := model.ParseConfig([]byte(cfgJSON))
		if err != nil {
			return nil, err
		}
		batched := 0 // the batched decode's tokens past the shared prompt
		for _, b := range o.Batch {
			batched = max(batched, b*(o.Decode+1))
		}
		var typeOf func(string) gguf.Type
		if o.Quant != "" {
			if typeOf = quantTypeOf(o.Quant, cfg.Text.NumHiddenLayers); typeOf == nil {
				return nil, fmt.Errorf("--quant %q is not one of %s", o.Quant, strings.Join(QuantTypes, ", "))
			}
		}
		if err := checkFits(cfg, o.Prefill+o.Decode+batched, o.TempDir, typeOf); err != nil {
			return nil, err
		}
		tmp, err := os.MkdirTemp(o.TempDir, "medgemma-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(tmp)
		start := time.Now()
		file := filepath.Join(tmp, "model.safetensors")
		if o.Quant != "" {
			file = filepath.Join(tmp, "model.gguf")
			r.Quant = strings.ToUpper(o.Quant)
			logf("writing random %s weights of %s's text model to %s", r.Quant, o.Shape, file)
			if err := model.WriteRandomGGUFTypes(file, []byte(cfgJSON), typeOf, 1); err != nil {
				return nil, err
			}
			dir = file
		} else {
			logf("writing random bf16 weights of %s to %s", o.Shape, tmp)
			if err := model.WriteRandom(tmp, []byte(cfgJSON), 1); err != nil {
				return nil, err
			}
			dir = tmp
		}
		// Measure weights as a checkpoint on disk is loaded, not as the
		// page cache holds a file just written (see safetensors.Evict).
		if err := safetensors.Evict(file); err != nil {
			return nil, err
		}
		r.WriteRandomSeconds = time.Since(start).Seconds()
	} else if o.Quant != "" {
		return nil, fmt.Errorf("--quant applies to a published shape's random weights, not to %s", o.Shape)
	}
	start := time.Now()
	m, err := model.LoadWith(dir, model.LoadOptions{Resident: o.Resident, Threads: o.Threads, KVType: o.KVType})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	r.LoadSeconds = time.Since(start).Seconds()
	cfg := m.Config
	p := cfg.Params()
	r.WeightBytes = 2 * (p["text"] + p["vision"] + p["projector"])
	// A decode step reads every decoder weight once; the embedding matrix is
	// read whole as the LM head (one row as the embedding).
	r.DecodeBytesPerToken = 2 * p["text"]
	if f := m.GGUF(); f != nil { // random or given: the file's types
		st, err := os.Stat(dir)
		if err != nil {
			return nil, err
		}
		r.WeightBytes, r.DecodeBytesPerToken = st.Size(), m.DecodeBytes()
	}
	r.ContextTokens = o.Prefill + o.Decode + 1
	logf("loaded in %.2f s; measuring memory bandwidth", r.LoadSeconds)
	r.ReadBandwidthGBs, r.CopyBandwidthGBs = bandwidth(r.Threads, cmp.Or(o.BandwidthBytes, 1<<30))

	if o.Image && m.HasVision() {
		v := cfg.Vision
		r.ImageTokensPerImage = cfg.MMTokensPerImage
		r.VisionPatchesPerSide = v.ImageSize / v.PatchSize
		pixels := make([]float32, 3*v.ImageSize*v.ImageSize)
		rng := rand.New(rand.NewPCG(1, 2))
		for i := range pixels {
			pixels[i] = rng.Float32()*2 - 1
		}
		logf("encoding one %dx%d image", v.ImageSize, v.ImageSize)
		start = time.Now()
		if _, err := m.EncodeImage(context.Background(), pixels, nil); err != nil {
			return nil, err
		}
		r.ImageSeconds = time.Since(start).Seconds()
	}

	s, err := m.NewSession(r.ContextTokens, prefillChunk)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(3, 4))
	ids := make([]int32, o.Prefill)
	for i := range ids {
		ids[i] = int32(3 + rng.IntN(200000))
	}
	logits := make([]float32, cfg.Text.VocabSize)
	h := cfg.Text.HiddenSize
	prefill := func() (float64, error) {
		s.Reset()
		start := time.Now()
		var last []float32
		for pos := 0; pos < len(ids); pos += prefillChunk {
			hidden, err := s.Forward(context.Background(), model.Input{IDs: ids[pos:min(pos+prefillChunk, len(ids))]})
			if err != nil {
				return 0, err
			}
			n := min(prefillChunk, len(ids)-pos)
			last = hidden[(n-1)*h : n*h]
		}
		s.Logits(logits, last)
		return time.Since(start).Seconds(), nil
	}
	decode := func(n int) (float64, error) {
		next := []int32{2}
		greedy := generate.NewSampler(generate.Options{}, cfg.Text.VocabSize, nil)
		start := time.Now()
		for range n {
			hidden, err := s.Forward(context.Background(), model.Input{IDs: next})
			if err != nil {
				return 0, err
			}
			s.Logits(logits, hidden)
			next[0] = greedy.Sample(logits)
		}
		return time.Since(start).Seconds(), nil
	}
	// The first pass reads the weights from disk (or the page cache) and
	// warms the caches: timed apart, as llama-bench's warm-up run is not
	// counted.
	if o.Prefill > 0 {
		logf("cold prefill of %d tokens (the first pass over the weights)", o.Prefill)
		took, err := prefill()
		if err != nil {
			return nil, err
		}
		r.ColdPrefillTokensPerS = float64(o.Prefill) / took
	} else if o.Decode > 0 {
		logf("warm-up: one token")
		if _, err := decode(1); err != nil {
			return nil, err
		}
	}
	// Decode as llama-bench's tg test: from an empty context; and again
	// after the prompt, where attention reads its keys and values too.
	var prefills, decodes, after []float64
	for round := range max(o.Rounds, 1) {
		if o.Decode > 0 {
			logf("decode of %d tokens from an empty context (round %d)", o.Decode, round+1)
			s.Reset()
			took, err := decode(o.Decode)
			if err != nil {
				return nil, err
			}
			decodes = append(decodes, took)
		}
		if o.Prefill > 0 {
			logf("prefill of %d tokens (round %d)", o.Prefill, round+1)
			took, err := prefill()
			if err != nil {
				return nil, err
			}
			prefills = append(prefills, took)
			if o.Decode > 0 {
				logf("decode of %d tokens after the prompt (round %d)", o.Decode, round+1)
				took, err := decode(o.Decode)
				if err != nil {
					return nil, err
				}
				after = append(after, took)
			}
		}
	}
	if o.Prefill > 0 {
		r.PrefillTokensPerS = float64(o.Prefill) / median(prefills)
	}
	if o.Decode > 0 {
		r.DecodeTokensPerS = float64(o.Decode) / median(decodes)
		r.DecodeFloorTokensPS = r.ReadBandwidthGBs * 1e9 / float64(r.DecodeBytesPerToken)
		r.DecodeFractionFloor = r.DecodeTokensPerS / r.DecodeFloorTokensPS
		if len(after) > 0 {
			r.DecodeAfterPromptTokensPerS = float64(o.Decode) / median(after)
		}
	}
	r.KVCacheBytes, r.KVType = s.KVBytes(), m.KVType().String()
	if len(o.Batch) > 0 {
		if r.Batch, err = batchDecode(m, o, ids, logf); err != nil {
			return nil, err
		}
		base := r.DecodeTokensPerS
		for _, b := range r.Batch {
			if b.Sequences == 1 {
				base = b.TokensPerS
			}
		}
		for i := range r.Batch {
			if base > 0 {
				r.Batch[i].Speedup = r.Batch[i].TokensPerS / base
			}
		}
	}
	r.PeakRSSBytes = peakRSS()
	return r, nil
}

// batchDecode prefills the prompt once in a paged KV pool, then for each
// batch size forks that many sequences from it and times Decode steps of
// one forward pass over a token of each, with their logits and a greedy
// pick: what the scheduler does per step, without the server around it.
func batchDecode(m *model.Model, o Options, prompt []int32, logf func(string, ...any)) ([]Batch, error) {
	for _, b := range o.Batch {
		if b < 1 || b > MaxBatch {
			return nil, fmt.Errorf("batch size %d: want 1..%d", b, MaxBatch)
		}
	}
	if o.Decode < 1 {
		return nil, fmt.Errorf("a batched decode needs tokens to decode")
	}
	cfg := m.Config.Text
	if o.Rounds < 0 || o.Rounds > 100 {
		return nil, fmt.Errorf("rounds %d: want 1..100", o.Rounds)
	}
	maxB := slices.Max(o.Batch)
	bs := cmp.Or(o.BlockSize, model.DefaultBlockSize)
	perSeq := (len(prompt)+o.Decode+3)/bs + 2
	pool, err := m.NewKVPool(model.PoolOptions{BlockSize: bs, FullBlocks: (maxB + 1) * perSeq, SlidingBlocks: (maxB + 1) * perSeq})
	if err != nil {
		return nil, err
	}
	ws := m.NewWorkspace(max(maxB, prefillChunk))
	ctx := context.Background()
	root := pool.NewSeq()
	defer root.Release()
	for pos := 0; pos < len(prompt); pos += prefillChunk {
		in := model.Input{IDs: prompt[pos:min(pos+prefillChunk, len(prompt))]}
		if _, err := m.Forward(ctx, ws, []model.Chunk{{KV: root, In: in}}); err != nil {
			return nil, err
		}
	}
	h, vocab := cfg.HiddenSize, cfg.VocabSize
	rows := make([]float32, maxB*h)
	logits := make([]float32, maxB*vocab)
	ids := make([]int32, maxB)
	chunks := make([]model.Chunk, maxB)
	steps := make([][]float64, len(o.Batch)) // seconds a step, per round
	for round := range max(o.Rounds, 1) {
		for bi, b := range o.Batch {
			logf("decode of %d tokens in %d sequences at once (round %d)", o.Decode, b, round+1)
			took, err := decodeSteps(m, ws, root, b, o.Decode, chunks, ids, rows, logits)
			if err != nil {
				return nil, err
			}
			steps[bi] = append(steps[bi], took/float64(o.Decode))
		}
	}
	out := make([]Batch, len(o.Batch))
	for bi, b := range o.Batch {
		step := median(steps[bi])
		out[bi] = Batch{Sequences: b, TokensPerS: float64(b) / step, StepSeconds: step, BlockSize: bs, Rounds: len(steps[bi])}
	}
	return out, nil
}

// median is the middle of xs (sorted in place; the upper middle of an even
// count).
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// decodeSteps forks b sequences from root and times n steps of one forward
// pass over a token of each, their logits and a greedy pick (after one
// step untimed: the first touches of new blocks).
func decodeSteps(m *model.Model, ws *model.Workspace, root *model.SeqKV, b, n int, chunks []model.Chunk, ids []int32, rows, logits []float32) (float64, error) {
	ctx := context.Background()
	h, vocab := m.Config.Text.HiddenSize, m.Config.Text.VocabSize
	greedy := generate.NewSampler(generate.Options{}, vocab, nil)
	for i := range b {
		ids[i] = int32(3 + i) // distinct tokens: the sequences differ from their first step
		chunks[i] = model.Chunk{KV: root.Fork(), In: model.Input{IDs: ids[i : i+1]}}
	}
	defer func() {
		for i := range b {
			chunks[i].KV.Release()
			chunks[i] = model.Chunk{}
		}
	}()
	step := func() error {
		hidden, err := m.Forward(ctx, ws, chunks[:b])
		if err != nil {
			return err
		}
		copy(rows, hidden[:b*h])
		m.Logits(logits, rows, b)
		for i := range b {
			ids[i] = greedy.Sample(logits[i*vocab : (i+1)*vocab])
		}
		return nil
	}
	if err := step(); err != nil {
		return 0, err
	}
	start := time.Now()
	for range n {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return time.Since(start).Seconds(), nil
}

// checkFits refuses a shape whose weights, cache and scratch would not fit in
// the memory available (or whose random weights would not fit on disk);
// quant is the type of a GGUF text model's weights (F32: the bf16
// checkpoint).
func checkFits(cfg *model.Config, ctx int, tmp string, typeOf func(string) gguf.Type) error {
	p := cfg.Params()
	weights := 2 * (p["text"] + p["vision"] + p["projector"])
	if typeOf != nil { // the text model only, each matrix in its type
		weights = 0
		for _, spec := range cfg.Tensors() {
			g, ok := model.GGUFTextName(spec.Name)
			if !ok {
				continue
			}
			n := int64(1)
			for _, d := range spec.Shape {
				n *= int64(d)
			}
			typ := gguf.F32
			if len(spec.Shape) == 2 {
				typ = typeOf(g)
			}
			weights += n * int64(typ.TypeSize()) / int64(typ.BlockSize())
		}
	}
	t := cfg.Text
	scratch := int64(prefillChunk) * int64(4*t.HiddenSize+2*t.IntermediateSize+2*t.NumAttentionHeads*t.HeadDim) * 4
	need := weights + cfg.KVCacheBytes(ctx) + scratch + int64(cfg.Text.VocabSize)*4
	if v := cfg.Vision; v != nil {
		side := v.ImageSize / v.PatchSize
		need += int64(side*side) * int64(6*v.HiddenSize+v.IntermediateSize) * 4
	}
	if avail := memAvailable(); avail > 0 && need > avail {
		return fmt.Errorf("%.1f GB of memory needed (weights %.1f GB, KV cache and activations %.1f GB), %.1f GB available",
			float64(need)/1e9, float64(weights)/1e9, float64(need-weights)/1e9, float64(avail)/1e9)
	}
	if tmp == "" {
		tmp = os.TempDir()
	}
	if free := freeDisk(tmp); free > 0 && weights > free {
		return fmt.Errorf("random weights need %.1f GB of disk in %s, %.1f GB free", float64(weights)/1e9, tmp, float64(free)/1e9)
	}
	return nil
}

// bandwidth measures memory read bandwidth with the given threads (a sum over
// a buffer much larger than any cache, in eight independent chains: one
// chain is bound by its additions, a word a cycle, not by memory, and
// measured less than decode reads) and single-thread copy bandwidth
// (bytes read plus bytes written).
func bandwidth(threads, size int) (readGBs, copyGBs float64) {
	buf := make([]uint64, size/8)
	for i := range buf {
		buf[i] = uint64(i)
	}
	best := 0.0
	for range 3 {
		start := time.Now()
		var wg sync.WaitGroup
		part := len(buf) / threads
		sums := make([]uint64, threads)
		for t := range threads {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var s [8]uint64
				p := buf[t*part : (t+1)*part]
				for len(p) >= 8 {
					s[0] += p[0]
					s[1] += p[1]
					s[2] += p[2]
					s[3] += p[3]
					s[4] += p[4]
					s[5] += p[5]
					s[6] += p[6]
					s[7] += p[7]
					p = p[8:]
				}
				for _, v := range p {
					s[0] += v
				}
				sums[t] = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]
			}()
		}
		wg.Wait()
		best = max(best, float64(size)/time.Since(start).Seconds()/1e9)
	}
	dst := make([]uint64, len(buf)/2)
	bestCopy := 0.0
	for range 3 {
		start := time.Now()
		copy(dst, buf[:len(dst)])
		bestCopy = max(bestCopy, 2*float64(len(dst)*8)/time.Since(start).Seconds()/1e9)
	}
	return best, bestCopy
}

// peakRSS reads VmHWM from /proc/self/status (Linux); 0 elsewhere.
func peakRSS() int64 {
	return procField("/proc/self/status", "VmHWM:")
}

func memAvailable() int64 {
	return procField("/proc/meminfo", "MemAvailable:")
}

// procField reads a "Name: N kB" line.
func procField(path, name string) int64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name); ok {
			fields := strings.Fields(rest)
			if len(fields) > 0 {
				kb, _ := strconv.ParseInt(fields[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func cpuName() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ":"))
		}
	}
	return runtime.GOARCH
}
