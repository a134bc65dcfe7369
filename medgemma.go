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
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
	"github.com/medgemma/medgemma/gguf"
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
	// MMProj is the mmproj GGUF file (vision tower and projector) of a
	// GGUF model; by default the one mmproj*.gguf beside the model, if any.
	MMProj string
	// Resident reads the weights into memory instead of mapping them.
	Resident bool
	// Threads the model's kernels use; 0 means all (GOMAXPROCS).
	Threads int
	// Progress, when set, follows a download: file, bytes done, total.
	Progress func(file string, done, total int64)
	// ImageCacheBytes bounds the cache of encoded images (0:
	// DefaultImageCacheBytes; negative: no cache).
	ImageCacheBytes int64
	// KVType is how the KV cache stores keys and values: kernels.F32 (the
	// default), F16 (half the memory) or Q8_0 (34/128 of it); see
	// model.ParseKVType.
	KVType kernels.DType
}

// Resolve turns a model reference into a checkpoint directory or a GGUF
// file: the directory or .gguf file itself, else the Hugging Face cache,
// else a download when allowed.
func Resolve(ctx context.Context, ref string, progress func(string, int64, int64)) (string, error) {
	if st, err := os.Stat(ref); err == nil {
		if st.IsDir() || model.IsGGUF(ref) {
			return ref, nil
		}
		// A file that happens to be spelled org/name is not a repository id.
		return "", fmt.Errorf("model %q is a file: neither a checkpoint directory, a .gguf file nor a Hugging Face repository id", ref)
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
	Dir       string
	model     *model.Model
	weights   string // the checkpoint directory or GGUF file
	tok       *tokenizer.Tokenizer
	tokSource string
	image     imageproc.Config
	defaults  generate.Options

	// The session of the last answer, kept so that the next turn of the same
	// conversation only prefills what is new.
	mu       sync.Mutex
	idle     *model.Session // kept for the next call: its pool caches earlier conversations' blocks
	activeKV int64          // KV storage of running sessions (after their prefill)
	// Encoded image blocks by content and preparation.
	features *featureCache
}

// sessionCapacity is the context a session is made for unless the prompt and
// answer need more: full-attention layers grow their cache only as used.
const sessionCapacity = 32768

// Load opens a model. ref is a checkpoint directory, a GGUF file (or a
// directory holding one GGUF model and no config.json), or a Hugging Face
// repository id (google/medgemma-4b-it[@revision]) found in the standard
// cache (reusing what transformers downloaded) or downloaded into it unless
// HF_HUB_OFFLINE is set. A GGUF model takes opts.Tokenizer, else the
// tokenizer.json beside it, else its own vocabulary (TokenizerSource says
// which).
func Load(ctx context.Context, ref string, opts LoadOptions) (*Model, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Threads < 0 {
		return nil, fmt.Errorf("threads must be 0 (all) or more, got %d", opts.Threads)
	}
	dir, err := Resolve(ctx, ref, opts.Progress)
	if err != nil {
		return nil, err
	}
	weights := dir
	if model.IsGGUF(dir) {
		dir = filepath.Dir(dir)
	} else if weights, err = findGGUF(dir); err != nil {
		return nil, err
	}
	tokPath := opts.Tokenizer
	if tokPath == "" {
		tokPath = filepath.Join(dir, "tokenizer.json")
	}
	var tok *tokenizer.Tokenizer
	tokSource := tokPath
	if _, err := os.Stat(tokPath); err != nil && opts.Tokenizer == "" && model.IsGGUF(weights) {
		// No tokenizer.json: the GGUF file's own vocabulary, read from
		// the file the model opens below.
		tokSource = weights + " (its vocabulary)"
	} else if tok, err = tokenizer.Load(tokPath); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	mmproj := opts.MMProj
	if model.IsGGUF(weights) && mmproj == "" {
		if mmproj, err = findMMProj(dir); err != nil {
			return nil, err
		}
	} else if mmproj != "" && !model.IsGGUF(weights) {
		return nil, fmt.Errorf("--mmproj %s: an mmproj file goes with a GGUF model, and %s is a checkpoint directory", mmproj, weights)
	}
	m, err := model.LoadContext(ctx, weights, model.LoadOptions{Resident: opts.Resident, Threads: opts.Threads, MMProj: mmproj, KVType: opts.KVType})
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil { // a resident load takes a while
		m.Close()
		return nil, err
	}
	if tok == nil {
		if tok, err = ggufTokenizer(m.GGUF()); err != nil {
			m.Close()
			return nil, fmt.Errorf("%s has no tokenizer.json beside it, and its vocabulary does not make a tokenizer (%w): give one with --tokenizer", weights, err)
		}
	}
	img, err := imageproc.LoadConfig(dir)
	if err != nil {
		m.Close()
		return nil, err
	}
	if v := m.Config.Vision; v != nil && model.IsGGUF(weights) {
		// An mmproj file says the image size its tower takes.
		img.Width, img.Height = v.ImageSize, v.ImageSize
	}
	defaults, err := generate.Defaults(dir)
	if err != nil {
		m.Close()
		return nil, err
	}
	cacheBytes := opts.ImageCacheBytes
	if cacheBytes == 0 {
		cacheBytes = DefaultImageCacheBytes
	}
	return &Model{Dir: dir, weights: weights, model: m, tok: tok, tokSource: tokSource, image: img, defaults: defaults, features: newFeatureCache(cacheBytes)}, nil
}

// ggufTokenizer builds the tokenizer of a GGUF file from its vocabulary
// (tokenizer.ggml.*, a SentencePiece model).
func ggufTokenizer(f *gguf.File) (*tokenizer.Tokenizer, error) {
	if kind, err := f.String("tokenizer.ggml.model"); err != nil || kind != "llama" {
		return nil, fmt.Errorf("tokenizer.ggml.model is %q, not a SentencePiece (llama) vocabulary", kind)
	}
	tokens, err := f.Strings("tokenizer.ggml.tokens")
	if err != nil {
		return nil, err
	}
	scores, err := f.Float32s("tokenizer.ggml.scores")
	if err != nil {
		return nil, err
	}
	types, err := f.Int32s("tokenizer.ggml.token_type")
	if err != nil {
		return nil, err
	}
	bos := int64(2)
	if _, ok := f.Get("tokenizer.ggml.bos_token_id"); ok {
		if bos, err = f.Int("tokenizer.ggml.bos_token_id", 0, int64(len(tokens)-1)); err != nil {
			return nil, err
		}
	}
	addBOS := true
	if _, ok := f.Get("tokenizer.ggml.add_bos_token"); ok {
		if addBOS, err = f.Bool("tokenizer.ggml.add_bos_token"); err != nil {
			return nil, err
		}
	}
	return tokenizer.FromVocabulary(tokens, scores, types, int32(bos), addBOS)
}

// Weights is what the weights were read from: the checkpoint directory or
// the GGUF file.
func (m *Model) Weights() string { return m.weights }

// TokenizerSource says where the tokenizer came from: a tokenizer.json, or
// a GGUF file's vocabulary.
func (m *Model) TokenizerSource() string { return m.tokSource }

// findGGUF returns the GGUF model file of a directory without config.json
// (the mmproj-*.gguf of a vision tower aside), else dir itself.
func findGGUF(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "config.json")); err == nil {
		return dir, nil
	}
	f, err := oneGGUF(dir, false)
	if err != nil || f == "" {
		return dir, err
	}
	return f, nil
}

// findMMProj returns the one mmproj*.gguf file in dir ("" for none).
func findMMProj(dir string) (string, error) { return oneGGUF(dir, true) }

// oneGGUF returns the one .gguf file of dir that is (mmproj) or is not an
// mmproj file ("" for none, an error for several).
func oneGGUF(dir string, mmproj bool) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.gguf"))
	var found []string
	for _, f := range files {
		if strings.HasPrefix(strings.ToLower(filepath.Base(f)), "mmproj") == mmproj {
			found = append(found, f)
		}
	}
	switch {
	case len(found) > 1 && mmproj:
		return "", fmt.Errorf("%s holds %d mmproj files (%s): name one with --mmproj", dir, len(found), strings.Join(found, ", "))
	case len(found) > 1:
		return "", fmt.Errorf("%s holds %d GGUF models (%s): name the file", dir, len(found), strings.Join(found, ", "))
	case len(found) == 1:
		return found[0], nil
	}
	return "", nil
}

// Close releases the weights.
func (m *Model) Close() error { return m.model.Close() }

// Defaults are the generation options of the checkpoint's
// generation_config.json.
func (m *Model) Defaults() generate.Options { return m.defaults }

// ContextLimit is the most tokens of prompt and answer the model takes
// (max_position_embeddings).
func (m *Model) ContextLimit() int { return m.model.Config.Text.MaxPositionEmbeddings }

// Tokenizer returns the model's tokenizer.
func (m *Model) Tokenizer() *tokenizer.Tokenizer { return m.tok }

// ChatOptions control one answer.
type ChatOptions struct {
	// Generate holds sampling and stopping; start from Model.Defaults.
	Generate generate.Options
	// ImageSources says where images may be read from; the zero value
	// allows data: URIs only (LocalImageSources for files and URLs).
	ImageSources ImageSources
	// Image decoding (pixel limit, DICOM frame, window) and preparation.
	Image      imageproc.Options
	PanAndScan bool
	PadSquare  bool
	// OnText receives the answer as it is generated; an error stops it.
	OnText func(string) error
	// OnToken receives each generated token as it is sampled, with its
	// logprobs when Generate.Logprobs asks for them (before its text, which
	// may be held back, reaches OnText).
	OnToken func(generate.StepLogprobs) error
	// OnPrefill, when set, follows the prompt's prefill: tokens done, total.
	OnPrefill func(done, total int)
	// Context is the most tokens of prompt and answer; 0: the prompt plus
	// MaxNewTokens, within the model's limit.
	Context int
	// Thinking (MedGemma 27B) asks the model to think before answering:
	// "SYSTEM INSTRUCTION: think silently if needed." opens the system
	// prompt, and the thought (between <unused94>thought and <unused95>) is
	// separated from the answer. ShowThinking streams it too; OnThinking,
	// when set, receives it apart from the answer (a server's
	// reasoning_content).
	Thinking, ShowThinking bool
	OnThinking             func(string) error
}

// Timings of one answer. In JSON the durations are milliseconds, as their
// names say.
type Timings struct {
	ImageEncode       time.Duration // decoding, preparing and encoding images
	Prefill           time.Duration // the prompt's tokens through the decoder
	Decode            time.Duration
	PromptTokens      int
	PrefillTokensPerS float64
	DecodeTokensPerS  float64
}

// MarshalJSON writes the durations as milliseconds.
func (t Timings) MarshalJSON() ([]byte, error) {
	return json.Marshal(timingsJSON{
		ImageEncodeMS: ms(t.ImageEncode), PrefillMS: ms(t.Prefill), DecodeMS: ms(t.Decode), PromptTokens: t.PromptTokens,
		PrefillTokensPerS: t.PrefillTokensPerS, DecodeTokensPerS: t.DecodeTokensPerS,
	})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (t *Timings) UnmarshalJSON(data []byte) error {
	var j timingsJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	dur := func(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
	*t = Timings{ImageEncode: dur(j.ImageEncodeMS), Prefill: dur(j.PrefillMS), Decode: dur(j.DecodeMS), PromptTokens: j.PromptTokens,
		PrefillTokensPerS: j.PrefillTokensPerS, DecodeTokensPerS: j.DecodeTokensPerS}
	return nil
}

type timingsJSON struct {
	ImageEncodeMS     float64 `json:"image_encode_ms"`
	PrefillMS         float64 `json:"prefill_ms"`
	DecodeMS          float64 `json:"decode_ms"`
	PromptTokens      int     `json:"prompt_tokens"`
	PrefillTokensPerS float64 `json:"prefill_tokens_per_s"`
	DecodeTokensPerS  float64 `json:"decode_tokens_per_s"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

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
	// ImagesEncoded is how many image blocks went through the vision tower;
	// ImagesCached how many came from the cache of encoded images.
	ImagesEncoded, ImagesCached int
}

// prefillChunk is the prompt chunk size (an image's tokens are never split).
const prefillChunk = 512

// Chat answers a conversation.
//
// The order of the work bounds what a hostile conversation can cost: the
// prompt's length is counted before any image is read (so a thousand image
// parts over the context cost nothing), images are read within the
// policy's limits, and each image is decoded and encoded only when the
// prefill reaches it. Errors for what the caller sent are of the kinds in
// errors.go; a cancelled ctx stops image encoding and prefill within one
// layer (its error is returned) and generation within one token (the result
// so far, finish reason "cancelled").
func (m *Model) Chat(ctx context.Context, msgs []chat.Message, opts ChatOptions) (*Result, error) {
	c, err := m.prepareChat(ctx, msgs, opts)
	if err != nil {
		return nil, err
	}
	s, err := m.takeSession(c.capacity)
	if err != nil {
		return nil, err
	}
	defer m.putSession(s)
	res := &Result{PromptIDs: c.prompt.IDs}
	// The longest prefix cached from earlier conversations (its blocks are
	// keyed by every token and image up to their end).
	res.ReusedTokens = s.Match(c.p)
	start := time.Now()
	var progress []func(int, int)
	if opts.OnPrefill != nil {
		progress = append(progress, opts.OnPrefill)
	}
	last, err := generate.Prefill(ctx, s, c.p, prefillChunk, progress...)
	if err != nil {
		return nil, err
	}
	defer m.track(s)()
	c.prefilled(res, time.Since(start))
	if err := ctx.Err(); err != nil {
		res.FinishReason = generate.FinishCancelled
		return res, nil
	}
	g, err := generate.Run(ctx, s, m.tok, last, c.prompt.IDs, c.o, generate.Output{Text: c.onText, Token: opts.OnToken})
	if err != nil {
		return nil, err
	}
	if err := c.finish(res, g); err != nil {
		return nil, err
	}
	return res, nil
}

// conversation is a chat made ready for the decoder: its options checked,
// its prompt counted and tokenized, its images read (not yet decoded), and
// the thinking filter in place.
type conversation struct {
	o        generate.Options
	prompt   *chat.Prompt
	p        *model.Prompt
	images   *promptImages
	capacity int
	thought  *thoughtFilter
	onText   func(string) error // the caller's, behind the thinking filter
}

// prepareChat does the work of a chat before its first forward pass, in
// an order that bounds what a hostile conversation costs (see Chat).
func (m *Model) prepareChat(ctx context.Context, msgs []chat.Message, opts ChatOptions) (*conversation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg := m.model.Config
	c := &conversation{o: opts.Generate, onText: opts.OnText}
	if c.o.MaxNewTokens == 0 {
		c.o.MaxNewTokens = generate.MaxNewTokens
	}
	if err := c.o.Validate(); err != nil {
		return nil, err
	}
	if opts.Context < 0 {
		return nil, fmt.Errorf("%w: context %d", ErrInvalidOptions, opts.Context)
	}
	if opts.Thinking {
		msgs = withThinkingInstruction(msgs)
		c.thought = &thoughtFilter{show: opts.ShowThinking, next: opts.OnText, thought: opts.OnThinking}
		c.onText = c.thought.write
		c.o.Thought = m.thoughtMarkers(c.o)
	}
	images, err := m.imageParts(msgs, &opts)
	if err != nil {
		return nil, err
	}
	c.images = images
	// The prompt without crops: its length is a lower bound, found before
	// any image is read.
	limit := cfg.Text.MaxPositionEmbeddings
	if opts.Context > 0 {
		limit = min(opts.Context, limit)
	}
	imageTokens := max(cfg.MMTokensPerImage, 1)
	encode := func(crops []int) (*chat.Prompt, error) {
		p, err := chat.Encode(m.tok, msgs, chat.Options{AddGenerationPrompt: true, ImageTokens: imageTokens, Crops: crops, MaxTokens: limit})
		switch {
		case errors.Is(err, chat.ErrTooManyTokens):
			return nil, fmt.Errorf("%w: %v", ErrPromptTooLong, err)
		case err != nil:
			return nil, err
		case len(p.IDs) >= limit:
			return nil, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, len(p.IDs), limit)
		}
		return p, nil
	}
	if c.prompt, err = encode(nil); err != nil {
		return nil, err
	}
	if err := images.read(ctx); err != nil {
		return nil, err
	}
	if images.cfg.PanAndScan.Enabled && len(images.images) > 0 {
		crops, err := images.countCrops(ctx, len(c.prompt.IDs), imageTokens, limit)
		if err != nil {
			return nil, err
		}
		if c.prompt, err = encode(crops); err != nil {
			return nil, err
		}
	}
	images.index()
	if c.prompt.Images != len(images.blocks) {
		return nil, fmt.Errorf("the prompt has %d image blocks for %d prepared images", c.prompt.Images, len(images.blocks))
	}
	n := len(c.prompt.IDs)
	c.capacity = opts.Context
	if c.capacity == 0 {
		c.capacity = max(n+c.o.MaxNewTokens, sessionCapacity)
	}
	c.capacity = min(c.capacity, cfg.Text.MaxPositionEmbeddings)
	if n >= c.capacity {
		return nil, fmt.Errorf("%w: %d tokens, context %d", ErrPromptTooLong, n, c.capacity)
	}
	c.p = &model.Prompt{IDs: c.prompt.IDs}
	if len(images.blocks) > 0 {
		c.p.TokenTypeIDs, c.p.Image, c.p.ImageKeys = c.prompt.TokenTypeIDs, images.features, images.keys()
	}
	return c, nil
}

// prefilled records the prompt's timings once its prefill took took.
func (c *conversation) prefilled(res *Result, took time.Duration) {
	n := len(c.prompt.IDs)
	res.Timings.ImageEncode = c.images.encode
	res.ImagesEncoded, res.ImagesCached = c.images.encoded, c.images.cached
	res.Timings.Prefill = took - c.images.encode
	res.Timings.PromptTokens = n
	res.Timings.PrefillTokensPerS = float64(n-res.ReusedTokens) / res.Timings.Prefill.Seconds()
}

// finish fills res from the generation, separating the thought.
func (c *conversation) finish(res *Result, g *generate.Result) error {
	res.Text, res.Tokens, res.Logprobs, res.FinishReason = g.Text, g.Tokens, g.Logprobs, g.FinishReason
	res.Timings.Decode = g.DecodeTime
	res.Timings.DecodeTokensPerS = g.TokensPerSecond()
	if c.thought != nil {
		if err := c.thought.flush(); err != nil {
			return err
		}
		res.Thinking, res.Text = splitThought(res.Text)
	}
	return nil
}

// takeSession returns the model's idle session, emptied (its pool keeps the
// blocks of earlier conversations for Match), or a new one when there is
// none or it is too small.
func (m *Model) takeSession(capacity int) (*model.Session, error) {
	m.mu.Lock()
	s := m.idle
	m.idle = nil
	m.mu.Unlock()
	if s != nil && s.Capacity() >= capacity {
		s.Reset()
		return s, nil
	}
	return m.model.NewSession(capacity, prefillChunk+max(m.model.Config.MMTokensPerImage, 0))
}

// putSession keeps s as the idle session for the next call.
func (m *Model) putSession(s *model.Session) {
	s.Reset()
	m.mu.Lock()
	m.idle = s
	m.mu.Unlock()
}

// forget drops the idle session and with it every cached block: the next
// call computes its whole prompt.
func (m *Model) forget() {
	m.mu.Lock()
	m.idle = nil
	m.mu.Unlock()
}

// KVBytes is the memory of the KV caches the model holds: the sessions
// running and the idle one (whose blocks stay cached for the next turn).
func (m *Model) KVBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.activeKV
	if m.idle != nil {
		n += m.idle.PoolBytes()
	}
	return n
}

// ImageCacheBytes is the memory of the cache of encoded images.
func (m *Model) ImageCacheBytes() int64 { return m.features.bytes() }

// track counts a running session's KV storage in KVBytes until the
// returned function is called.
func (m *Model) track(s *model.Session) func() {
	n := s.PoolBytes()
	m.mu.Lock()
	m.activeKV += n
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		m.activeKV -= n
		m.mu.Unlock()
	}
}
