// Package quantize writes a Hugging Face MedGemma checkpoint as a GGUF file
// laid out as llama.cpp's converter and llama-quantize lay it out: the
// gemma3 architecture's metadata, the tokenizer's vocabulary, llama.cpp's
// tensor names, RMSNorm weights as float32 1 + w, and the weight matrices
// in the chosen type, quantized as ggml's reference quantizers do (Q8_0 and
// Q4_0 byte for byte).
//
// Why: people run MedGemma on CPUs from GGUF files; writing them here needs
// no Python and no llama.cpp checkout, and tensors are converted one at a
// time, so memory stays near one tensor's size whatever the model's.
package quantize

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/safetensors"
	"github.com/medgemma/medgemma/tokenizer"
)

// Types are the types Text writes, by the names llama-quantize takes.
var Types = map[string]struct {
	weights  gguf.Type
	fileType uint32 // llama_ftype, general.file_type
}{
	"f32":    {gguf.F32, 0},
	"bf16":   {gguf.BF16, 32},
	"q8_0":   {gguf.Q8_0, 7},
	"q4_0":   {gguf.Q4_0, 2},
	"q6_k":   {gguf.Q6_K, 18},
	"q4_k_m": {gguf.Q4_K, 15},
	"q5_k_m": {gguf.Q5_K, 17},
}

// Options control Text.
type Options struct {
	// Type is a key of Types.
	Type string
	// Tokenizer is the tokenizer.json whose vocabulary goes into the file
	// (default: the checkpoint's).
	Tokenizer string
	// Progress, when set, is called after each tensor: tensors done, total.
	Progress func(done, total int)
}

// Text writes the text model of the checkpoint in dir as a GGUF file at
// out, each matrix in the type TensorType chooses (a matrix whose rows are
// not a whole number of its blocks in Q8_0 or F16); vectors stay F32.
func Text(ctx context.Context, dir, out string, opts Options) error {
	typ, ok := Types[opts.Type]
	if !ok {
		return fmt.Errorf("type %q is not supported (f32, bf16, q8_0, q6_k, q5_k_m, q4_k_m, q4_0)", opts.Type)
	}
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return err
	}
	tokPath := opts.Tokenizer
	if tokPath == "" {
		tokPath = filepath.Join(dir, "tokenizer.json")
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return err
	}
	ckpt, err := safetensors.OpenDir(dir)
	if err != nil {
		return err
	}
	defer ckpt.Close()

	var jobs []job
	vocab := tok.Len()
	for _, name := range ckpt.Names() {
		g, ok := model.GGUFTextName(name)
		if !ok {
			continue
		}
		t := ckpt.Tensor(name)
		dims := reversed(t.Shape)
		if g == "token_embd.weight" || g == "output.weight" {
			// llama.cpp keeps one row per token of the vocabulary.
			if len(dims) != 2 || dims[1] < vocab {
				return fmt.Errorf("tensor %s has shape %v for a vocabulary of %d", name, t.Shape, vocab)
			}
			dims[1] = vocab
		}
		j := job{src: t, spec: gguf.TensorSpec{Name: g, Type: gguf.F32, Dims: dims}, norm: model.IsNorm(name)}
		if len(dims) == 2 {
			j.spec.Type = TensorType(opts.Type, g, cfg.Text.NumHiddenLayers)
			if dims[0]%j.spec.Type.BlockSize() != 0 {
				// Rows of whole 32s take Q8_0 (llama-quantize takes its
				// Q5_0 for the K types), others F16, as it falls back.
				j.spec.Type = gguf.F16
				if dims[0]%32 == 0 {
					j.spec.Type = gguf.Q8_0
				}
			}
		}
		jobs = append(jobs, j)
	}
	// llama.cpp's order: the embedding and final norm, then layer by layer.
	sort.SliceStable(jobs, func(a, b int) bool { return tensorOrder(jobs[a].spec.Name) < tensorOrder(jobs[b].spec.Name) })

	meta, err := metadata(cfg, tok, filepath.Base(filepath.Clean(dir)), typ.fileType)
	if err != nil {
		return err
	}
	tmpl, err := chatTemplate(dir)
	if err != nil {
		return err
	}
	if tmpl != "" {
		meta = append(meta, gguf.KV{Key: "tokenizer.chat_template", Value: gguf.Of(tmpl)})
	}
	return writeFile(ctx, out, meta, jobs, opts.Progress)
}

// maxTemplateBytes bounds a chat template file.
const maxTemplateBytes = 1 << 20

// chatTemplate is the checkpoint's chat template, which llama.cpp's
// converter writes as tokenizer.chat_template (llama.cpp's chat tools
// need it): chat_template.jinja, else chat_template.json's, else
// tokenizer_config.json's ("chat_template" a string, or a list whose entry
// named "default" is taken); "" when there is none.
func chatTemplate(dir string) (string, error) {
	read := func(name string) ([]byte, error) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxTemplateBytes+1))
		if err == nil && len(b) > maxTemplateBytes {
			err = fmt.Errorf("%s: over %d bytes", name, maxTemplateBytes)
		}
		return b, err
	}
	if b, err := read("chat_template.jinja"); err == nil {
		return string(b), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	for _, name := range []string{"chat_template.json", "tokenizer_config.json"} {
		b, err := read(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		var c struct {
			ChatTemplate json.RawMessage `json:"chat_template"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		if len(c.ChatTemplate) == 0 || string(c.ChatTemplate) == "null" {
			continue
		}
		var t string
		if json.Unmarshal(c.ChatTemplate, &t) == nil {
			return t, nil
		}
		var list []struct{ Name, Template string }
		if err := json.Unmarshal(c.ChatTemplate, &list); err != nil {
			return "", fmt.Errorf("%s: chat_template is neither a string nor a list of named templates", name)
		}
		for _, e := range list {
			if e.Name == "default" {
				return e.Template, nil
			}
		}
	}
	return "", nil
}

// job is one tensor to convert: from the checkpoint, into its GGUF spec
// (norm: a Gemma RMSNorm weight, stored as 1 + w).
type job struct {
	src  *safetensors.Tensor
	spec gguf.TensorSpec
	norm bool
}

// writeFile writes a GGUF file of meta and the jobs' tensors, converted one
// at a time; a failed or cancelled write leaves no file.
func writeFile(ctx context.Context, out string, meta []gguf.KV, jobs []job, progress func(done, total int)) error {
	specs := make([]gguf.TensorSpec, len(jobs))
	for i, j := range jobs {
		specs[i] = j.spec
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	w, err := gguf.NewWriter(f, meta, specs)
	for i, j := range jobs {
		if err != nil {
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		err = w.WriteTensorFunc(func(w io.Writer) error { return convert(w, j.src, j.spec, j.norm) })
		if progress != nil {
			progress(i+1, len(jobs))
		}
	}
	if err == nil {
		err = w.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("%s: %w", out, err)
	}
	// Written, the file sits in the page cache as 4 KB folios, which a
	// mapping maps as 4 KB pages: decoding from it would run several times
	// slower than once Linux reads it back in large folios.
	return safetensors.Evict(out)
}

// reversed is a transformers shape in ggml's order (row length first).
func reversed(shape []int) []int {
	dims := make([]int, len(shape))
	for i, d := range shape {
		dims[len(dims)-1-i] = d
	}
	return dims
}

// TensorType is the type of weight matrix name (llama.cpp's) in a file of
// fileType (a key of Types) for a model of layers layers, as llama-quantize
// chooses: the tied embedding (the LM head) in Q6_K for
// q4_0 and the _m mixes; in those also the value projections and the MLP's
// down projections of the layers that matter most (the first and last
// eighths, and every third between) in Q6_K.
func TensorType(fileType, name string, layers int) gguf.Type {
	t := Types[fileType].weights
	mix := fileType == "q4_k_m" || fileType == "q5_k_m"
	if fileType != "q4_0" && !mix {
		return t
	}
	if name == "token_embd.weight" || name == "output.weight" {
		return gguf.Q6_K
	}
	var layer int
	var kind string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &layer, &kind); n == 2 && mix &&
		(kind == "attn_v.weight" || kind == "ffn_down.weight") && moreBits(layer, layers) {
		return gguf.Q6_K
	}
	return t
}

// moreBits is llama.cpp's use_more_bits: layer i of n is in the first or
// last eighth, or every third layer between.
func moreBits(i, n int) bool { return i < n/8 || i >= 7*n/8 || (i-n/8)%3 == 2 }

// tensorOrder sorts llama.cpp's names: global tensors first, then blocks in
// number order (names within a block alphabetically, as the converter's
// sorted state dict leaves them).
func tensorOrder(name string) string {
	var blk int
	var rest string
	if n, _ := fmt.Sscanf(name, "blk.%d.%s", &blk, &rest); n == 2 {
		return fmt.Sprintf("1%09d.%s", blk, rest)
	}
	return "0" + name
}

// chunkFloats bounds the weights convert widens at a time (16 MB of
// float32), so that converting the 27B model's 1.4 G-weight embedding needs
// no more memory than a small tensor. (A variable for the tests.)
var chunkFloats = 1 << 22

// convert writes one tensor in its GGUF type to w, a run of whole rows at a
// time: widened to float32 (norm weights plus one), then stored or
// quantized, the run's rows split across GOMAXPROCS threads. Rows past the spec's (the embedding's beyond the vocabulary)
// are dropped.
func convert(w io.Writer, t *safetensors.Tensor, spec gguf.TensorSpec, norm bool) error {
	var src kernels.DType
	switch t.DType {
	case safetensors.BF16:
		src = kernels.BF16
	case safetensors.F16:
		src = kernels.F16
	case safetensors.F32:
		src = kernels.F32
	default:
		return fmt.Errorf("tensor %s: dtype %s is not supported (BF16, F16, F32)", t.Name, t.DType)
	}
	cols := spec.Dims[0]
	rows := 1
	for _, d := range spec.Dims[1:] {
		rows *= d
	}
	if _, err := spec.Type.RowBytes(cols); err != nil || cols == 0 {
		return fmt.Errorf("tensor %s: %v", spec.Name, err)
	}
	if need := kernels.RowBytes(src, rows*cols); len(t.Data) < need {
		return fmt.Errorf("tensor %s: %d bytes, %v of %s needs %d", t.Name, len(t.Data), spec.Dims, src, need)
	}
	step := max(1, chunkFloats/cols)
	x := make([]float32, min(step, rows)*cols)
	out := make([]byte, kernels.RowBytes(dtypeOf(spec.Type), len(x)))
	threads := runtime.GOMAXPROCS(0)
	errs := make([]error, threads)
	for r0 := 0; r0 < rows; r0 += step {
		k := min(step, rows-r0)
		// The chunk's rows split among the threads: rows are independent,
		// so the bytes are the same however they split.
		var wg sync.WaitGroup
		per := (k + threads - 1) / threads
		for i := range threads {
			lo, hi := i*per, min((i+1)*per, k)
			if lo >= hi {
				break
			}
			wg.Go(func() {
				xs := x[lo*cols : hi*cols]
				kernels.Dequantize(src, xs, t.Data[kernels.RowBytes(src, (r0+lo)*cols):])
				if norm {
					for j, v := range xs {
						xs[j] = 1 + v
					}
				}
				o := out[kernels.RowBytes(dtypeOf(spec.Type), lo*cols):kernels.RowBytes(dtypeOf(spec.Type), hi*cols)]
				errs[i] = encode(o, xs, spec)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if _, err := w.Write(out[:kernels.RowBytes(dtypeOf(spec.Type), k*cols)]); err != nil {
			return err
		}
	}
	return nil
}

// encode stores or quantizes xs into o in the spec's type.
func encode(o []byte, xs []float32, spec gguf.TensorSpec) error {
	switch spec.Type {
	case gguf.F32:
		for i, v := range xs {
			binary.LittleEndian.PutUint32(o[4*i:], math.Float32bits(v))
		}
	case gguf.F16:
		for i, v := range xs {
			binary.LittleEndian.PutUint16(o[2*i:], kernels.F32ToF16(v))
		}
	case gguf.BF16:
		for i, v := range xs {
			binary.LittleEndian.PutUint16(o[2*i:], F32ToBF16(v))
		}
	case gguf.Q8_0:
		kernels.QuantizeQ8_0(o, xs)
	case gguf.Q4_0:
		kernels.QuantizeQ4_0(o, xs)
	case gguf.Q6_K:
		kernels.QuantizeQ6_K(o, xs)
	case gguf.Q4_K:
		kernels.QuantizeQ4_K(o, xs)
	case gguf.Q5_K:
		kernels.QuantizeQ5_K(o, xs)
	default:
		return fmt.Errorf("tensor %s: no quantizer for %s", spec.Name, spec.Type)
	}
	return nil
}

// dtypeOf is the kernels' dtype of a GGUF type this package writes.
func dtypeOf(t gguf.Type) kernels.DType {
	d, _ := t.DType()
	return d
}

// F32ToBF16 rounds to bfloat16 as ggml does: to nearest, ties to even, NaN
// kept quiet.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 64
	}
	return uint16((b + 0x7fff + (b >> 16 & 1)) >> 16)
}

// metadata is the gemma3 architecture's keys (model.GGUFMetadata), the
// tokenizer's vocabulary, and the file type.
func metadata(cfg *model.Config, tok *tokenizer.Tokenizer, name string, fileType uint32) ([]gguf.KV, error) {
	meta, err := model.GGUFMetadata(cfg, name)
	if err != nil {
		return nil, err
	}
	kv := func(k string, v gguf.Value) gguf.KV { return gguf.KV{Key: k, Value: v} }
	u32 := func(v int) gguf.Value { return gguf.Of(uint32(v)) }
	tokens, scores, types := tok.Vocabulary()
	id := func(s string, def int) int {
		if v, ok := tok.ID(s); ok {
			return int(v)
		}
		return def
	}
	eos := 1
	if len(cfg.EOSTokenIDs) > 0 {
		eos = cfg.EOSTokenIDs[0]
	}
	meta = append(meta,
		kv("tokenizer.ggml.model", gguf.Of("llama")),
		kv("tokenizer.ggml.pre", gguf.Of("default")),
		kv("tokenizer.ggml.tokens", gguf.ArrayOf(tokens)),
		kv("tokenizer.ggml.scores", gguf.ArrayOf(scores)),
		kv("tokenizer.ggml.token_type", gguf.ArrayOf(types)),
		kv("tokenizer.ggml.bos_token_id", u32(id("<bos>", 2))),
		kv("tokenizer.ggml.eos_token_id", u32(eos)),
		kv("tokenizer.ggml.padding_token_id", u32(id("<pad>", 0))),
		kv("tokenizer.ggml.unknown_token_id", u32(id("<unk>", 3))),
		kv("tokenizer.ggml.add_bos_token", gguf.Of(true)),
		kv("tokenizer.ggml.add_space_prefix", gguf.Of(false)),
		kv("general.quantization_version", u32(2)),
		kv("general.file_type", gguf.Of(fileType)),
	)
	return meta, nil
}
