// Package medgemma runs Google's MedGemma models from Go: load a checkpoint
// as Hugging Face publishes it, then chat with text and images (PNG, JPEG,
// DICOM, ...), streaming the answer.
//
//	m, err := medgemma.Load(ctx, "path/to/medgemma-4b-it", medgemma.LoadOptions{})
//	res, err := m.Chat(ctx, []chat.Message{
//		{Role: "system", Content: []chat.Part{chat.Text("You are an expert radiologist.")}},
//		{Role: "user", Content: []chat.Part{chat.Text("Describe this X-ray"), chat.Image("cxr.png")}},
//	}, medgemma.ChatOptions{OnText: func(s string) error { fmt.Print(s); return nil }})
//
// The pieces are importable on their own: tokenizer, chat, imageproc, model,
// generate.
package medgemma

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/hub"
	"github.com/medgemma/medgemma/imageproc"
	"github.com/medgemma/medgemma/kernels"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/tokenizer"
)

// LoadOptions control loading.
type LoadOptions struct {
	// Tokenizer is a tokenizer.json to use instead of the checkpoint's.
	Tokenizer string
	// Resident reads the weights into memory instead of mapping them.
	Resident bool
	// Threads for the kernels; 0 means all.
	Threads int
	// Progress, when set, follows a download: file, bytes done, total.
	Progress func(file string, done, total int64)
}

// Resolve turns a model reference into a checkpoint directory: the directory
// itself, else the Hugging Face cache, else a download when allowed.
func Resolve(ctx context.Context, ref string, progress func(string, int64, int64)) (string, error) {
	if st, err := os.Stat(ref); err == nil && st.IsDir() {
		return ref, nil
	}
	r, err := hub.ParseRef(ref)
	if err != nil {
		return "", fmt.Errorf("model %q: not a checkpoint directory, and %w", ref, err)
	}
	c := hub.NewClient()
	c.Progress = progress
	return c.Resolve(ctx, r)
}

// Model is a loaded checkpoint with its tokenizer, image preprocessing and
// generation defaults.
type Model struct {
	Dir      string
	model    *model.Model
	tok      *tokenizer.Tokenizer
	image    imageproc.Config
	defaults generate.Options

	// The session of the last answer, kept so that the next turn of the same
	// conversation only prefills what is new.
	mu     sync.Mutex
	cached *cachedSession
}

// cachedSession is a session, the prompt it was given and the state of its
// cache right after that prompt (before the answer).
type cachedSession struct {
	s      *model.Session
	prompt []int32
	snap   *model.Snapshot
}

// sessionCapacity is the context a session is made for unless the prompt and
// answer need more: full-attention layers grow their cache only as used.
const sessionCapacity = 32768

// Load opens a model. ref is a checkpoint directory, or a Hugging Face
// repository id (google/medgemma-4b-it[@revision]) found in the standard
// cache (reusing what transformers downloaded) or downloaded into it unless
// HF_HUB_OFFLINE is set.
func Load(ctx context.Context, ref string, opts LoadOptions) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dir, err := Resolve(ctx, ref, opts.Progress)
	if err != nil {
		return nil, err
	}
	if opts.Threads > 0 {
		kernels.SetThreads(opts.Threads)
	}
	tokPath := opts.Tokenizer
	if tokPath == "" {
		tokPath = filepath.Join(dir, "tokenizer.json")
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, err
	}
	m, err := model.LoadWith(dir, model.LoadOptions{Resident: opts.Resident})
	if err != nil {
		return nil, err
	}
	img, err := imageproc.LoadConfig(dir)
	if err != nil {
		m.Close()
		return nil, err
	}
	defaults, err := generate.Defaults(dir)
	if err != nil {
		m.Close()
		return nil, err
	}
	return &Model{Dir: dir, model: m, tok: tok, image: img, defaults: defaults}, nil
}

// Close releases the weights.
func (m *Model) Close() error { return m.model.Close() }

// Defaults are the generation options of the checkpoint's
// generation_config.json.
func (m *Model) Defaults() generate.Options { return m.defaults }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// ChatOptions control one answer.
type ChatOptions struct {
	// Generate holds sampling and stopping; start from Model.Defaults.
	Generate generate.Options
	// Image decoding (pixel limit, DICOM frame, window) and preparation.
	Image      imageproc.Options
	PanAndScan bool
	PadSquare  bool
	// OnText receives the answer as it is generated; an error stops it.
	OnText func(string) error
	// OnPrefill, when set, follows the prompt's prefill: tokens done, total.
	OnPrefill func(done, total int)
	// Context is the most tokens of prompt and answer; 0: the prompt plus
	// MaxNewTokens, within the model's limit.
	Context int
	// Thinking (MedGemma 27B) asks the model to think before answering:
	// "SYSTEM INSTRUCTION: think silently if needed." opens the system
	// prompt, and the thought (between <unused94>thought and <unused95>) is
	// separated from the answer. ShowThinking streams it too.
	Thinking, ShowThinking bool
}

// Timings of one answer.
type Timings struct {
	ImageEncode       time.Duration `json:"image_encode_ms"`
	Prefill           time.Duration `json:"prefill_ms"`
	Decode            time.Duration `json:"decode_ms"`
	PromptTokens      int           `json:"prompt_tokens"`
	PrefillTokensPerS float64       `json:"prefill_tokens_per_s"`
	DecodeTokensPerS  float64       `json:"decode_tokens_per_s"`
}

// Result is a finished answer.
type Result struct {
	Text         string // the answer (without the thought)
	Thinking     string // the thought, when Thinking was asked and the model thought
	Tokens       []int32
	Logprobs     []generate.StepLogprobs
	FinishReason string
	Timings      Timings
	PromptIDs    []int32
	// ReusedTokens is how many prompt tokens were already in the cache from
	// the previous turn (not prefilled again).
	ReusedTokens int
}

// prefillChunk is the prompt chunk size (an image's tokens are never split).
const prefillChunk = 512

// Chat answers a conversation.
func (m *Model) Chat(ctx context.Context, msgs []chat.Message, opts ChatOptions) (*Result, error) {
	cfg := m.model.Config
	var thought *thoughtFilter
	if opts.Thinking {
		msgs = withThinkingInstruction(msgs)
		thought = &thoughtFilter{show: opts.ShowThinking, next: opts.OnText}
		opts.OnText = thought.write
	}
	// Images, in order of appearance.
	var blocks [][]float32 // pixel values per image block (whole images and crops)
	var crops []int
	imgCfg := m.image
	imgCfg.PanAndScan.Enabled = imgCfg.PanAndScan.Enabled || opts.PanAndScan
	for i, msg := range msgs {
		for j, p := range msg.Content {
			if p.Type != chat.TypeImage {
				continue
			}
			if !m.model.HasVision() {
				return nil, fmt.Errorf("messages[%d] part %d: this checkpoint is text only and takes no images", i, j)
			}
			data, err := readImageSource(ctx, p.Image)
			if err != nil {
				return nil, fmt.Errorf("messages[%d] part %d: %w", i, j, err)
			}
			img, _, err := imageproc.Decode(data, opts.Image)
			if err != nil {
				return nil, fmt.Errorf("messages[%d] part %d: image %s: %w", i, j, describeSource(p.Image), err)
			}
			prepared, err := imageproc.Prepare(img, imgCfg, opts.PadSquare)
			if err != nil {
				return nil, err
			}
			for _, pimg := range prepared {
				pv, err := imageproc.PixelValues([]*imageproc.RGB{pimg}, imgCfg)
				if err != nil {
					return nil, err
				}
				blocks = append(blocks, pv)
			}
			crops = append(crops, len(prepared)-1)
		}
	}
	prompt, err := chat.Encode(m.tok, msgs, chat.Options{AddGenerationPrompt: true, ImageTokens: max(cfg.MMTokensPerImage, 1), Crops: crops})
	if err != nil {
		return nil, err
	}
	if prompt.Images != len(blocks) {
		return nil, fmt.Errorf("the prompt has %d image blocks for %d prepared images", prompt.Images, len(blocks))
	}
	res := &Result{PromptIDs: prompt.IDs}
	n, h := len(prompt.IDs), cfg.Text.HiddenSize
	o := opts.Generate
	if o.MaxNewTokens == 0 {
		o.MaxNewTokens = generate.MaxNewTokens
	}
	capacity := opts.Context
	if capacity == 0 {
		capacity = max(n+o.MaxNewTokens, sessionCapacity)
	}
	capacity = min(capacity, cfg.Text.MaxPositionEmbeddings)
	if n >= capacity {
		return nil, fmt.Errorf("%w: %d tokens, context %d", generate.ErrPromptTooLong, n, capacity)
	}
	s, reuse := m.takeSession(prompt, capacity)
	if s == nil {
		if s, err = m.model.NewSession(capacity, prefillChunk+cfg.MMTokensPerImage); err != nil {
			return nil, err
		}
	}
	res.ReusedTokens = reuse
	in := model.Input{IDs: prompt.IDs[reuse:]}
	if len(blocks) > 0 {
		start := time.Now()
		rest := n - reuse
		in.Groups, in.Replace, in.Embeds = make([]int32, rest), make([]bool, rest), make([]float32, rest*h)
		group, k := int32(-1), 0
		var feats []float32
		for i, tt := range prompt.TokenTypeIDs {
			if tt != 1 {
				if i >= reuse {
					in.Groups[i-reuse] = -1
				}
				continue
			}
			if i == 0 || prompt.TokenTypeIDs[i-1] != 1 {
				group++
				feats = nil
				if i >= reuse { // images already in the cache are not encoded again
					if feats, err = m.model.EncodeImage(blocks[group], nil); err != nil {
						return nil, err
					}
				}
				k = 0
			}
			if i >= reuse {
				in.Groups[i-reuse], in.Replace[i-reuse] = group, true
				copy(in.Embeds[(i-reuse)*h:(i-reuse+1)*h], feats[k*h:(k+1)*h])
			}
			k++
		}
		res.Timings.ImageEncode = time.Since(start)
	}
	start := time.Now()
	var progress []func(int, int)
	if opts.OnPrefill != nil {
		progress = append(progress, opts.OnPrefill)
	}
	last, err := generate.Prefill(s, in, prefillChunk, progress...)
	if err != nil {
		return nil, err
	}
	snap := s.Snapshot()
	res.Timings.Prefill = time.Since(start)
	res.Timings.PromptTokens = n
	res.Timings.PrefillTokensPerS = float64(n-reuse) / res.Timings.Prefill.Seconds()
	if err := ctx.Err(); err != nil {
		res.FinishReason = generate.FinishCancelled
		return res, nil
	}
	g, err := generate.Run(ctx, s, m.tok, last, prompt.IDs, o, opts.OnText)
	if err != nil {
		return nil, err
	}
	// Keep the session for the next turn, which starts with this prompt
	// (the chat template only adds to it).
	m.putSession(&cachedSession{s: s, prompt: prompt.IDs, snap: snap})
	res.Text, res.Tokens, res.Logprobs, res.FinishReason = g.Text, g.Tokens, g.Logprobs, g.FinishReason
	if thought != nil {
		if err := thought.flush(); err != nil {
			return nil, err
		}
		res.Thinking, res.Text = splitThought(res.Text)
	}
	res.Timings.Decode = g.DecodeTime
	res.Timings.DecodeTokensPerS = g.TokensPerSecond()
	return res, nil
}

// takeSession returns the cached session when its tokens are a prefix of
// the prompt (not cutting an image) and it has room; reuse is how many
// prompt tokens it already holds.
func (m *Model) takeSession(p *chat.Prompt, capacity int) (s *model.Session, reuse int) {
	m.mu.Lock()
	c := m.cached
	m.cached = nil
	m.mu.Unlock()
	if c == nil {
		return nil, 0
	}
	r := len(c.prompt)
	ok := r < len(p.IDs) && c.s.Capacity() >= capacity && slices.Equal(c.prompt, p.IDs[:r])
	if ok && r > 0 && p.TokenTypeIDs[r] == 1 && p.TokenTypeIDs[r-1] == 1 {
		ok = false // the cache ends inside an image
	}
	if !ok {
		if c.s.Capacity() >= capacity {
			c.s.Reset()
			return c.s, 0
		}
		return nil, 0
	}
	c.s.Restore(c.snap) // back to the end of the previous prompt
	return c.s, r
}

func (m *Model) putSession(c *cachedSession) {
	m.mu.Lock()
	m.cached = c
	m.mu.Unlock()
}

// ErrNoImage is returned for an image part without a source.
var ErrNoImage = errors.New("an image part has no image (path, file:// or http(s) URL, or data: URI)")
