package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode/utf8"
)

// Tokenizer encodes text to token ids and decodes ids to text. Create one with
// Load or Parse.
type Tokenizer struct {
	vocab  map[string]int32 // BPE model vocabulary
	tokens []string         // id -> token text (model and added tokens); "" where no token
	pieces []string         // id -> token text after the decoder's replacements
	byteOf []int16          // id -> byte value of a <0xNN> token, or -1
	flags  []uint8          // id -> flagSpecial | flagAdded

	merges  map[uint64]uint64 // (left<<32 | right) -> (rank<<32 | merged id)
	byteIDs [256]int32        // byte -> id of its <0xNN> token, or -1
	unkID   int32             // -1 when the model has no unk token
	fuseUnk bool

	added addedMatcher

	// normalizer: each occurrence of replaceFrom becomes replaceTo.
	replaceFrom, replaceTo string
	replaceToBytes         []byte
	// glue holds the characters that some vocabulary entry has right before a
	// non-leading replaceTo; the text is cut into cacheable pieces before every
	// other occurrence (see doc.go).
	glue map[rune]bool

	prefix, suffix []int32 // added around the text by the post-processor

	// decoder
	decodeReplace [][2]string
	byteFallback  bool

	cache wordCache
}

const (
	flagSpecial uint8 = 1 << iota
	flagAdded
)

// Load reads a tokenizer.json file.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

// LoadDir reads tokenizer.json from a checkpoint directory.
func LoadDir(dir string) (*Tokenizer, error) {
	return Load(filepath.Join(dir, "tokenizer.json"))
}

// fileJSON holds the small parts of tokenizer.json, decoded by encoding/json.
type fileJSON struct {
	AddedTokens   []addedTokenJSON `json:"added_tokens"`
	Normalizer    *componentJSON   `json:"normalizer"`
	PreTokenizer  *componentJSON   `json:"pre_tokenizer"`
	PostProcessor *componentJSON   `json:"post_processor"`
	Decoder       *componentJSON   `json:"decoder"`
}

type addedTokenJSON struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// componentJSON is any of the pipeline objects; only the fields of the kinds
// medgemma supports are declared.
type componentJSON struct {
	Type     string           `json:"type"`
	Pattern  *patternJSON     `json:"pattern"`
	Content  string           `json:"content"`
	Behavior string           `json:"behavior"`
	Invert   bool             `json:"invert"`
	Children []*componentJSON `json:"normalizers"`
	Decoders []*componentJSON `json:"decoders"`
	// TemplateProcessing
	Single        []templatePieceJSON `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

type patternJSON struct {
	String *string `json:"String"`
	Regex  *string `json:"Regex"`
}

type templatePieceJSON struct {
	SpecialToken *struct {
		ID string `json:"id"`
	} `json:"SpecialToken"`
	Sequence *struct {
		ID string `json:"id"`
	} `json:"Sequence"`
}

// modelJSON is the BPE model object, read by the scanner.
type modelJSON struct {
	typ          string
	unkToken     *string
	byteFallback bool
	fuseUnk      bool
	ignoreMerges bool
	prefixSuffix bool // continuing_subword_prefix or end_of_word_suffix set
	vocab        map[string]int32
	merges       [][2]int32 // token ids of each merge's two halves, in rank order
}

// Parse builds a Tokenizer from the bytes of a tokenizer.json file.
func Parse(data []byte) (*Tokenizer, error) {
	if len(data) == 0 {
		return nil, errors.New("empty file, not a tokenizer.json")
	}
	s := &scanner{data: data}
	var small fileJSON
	var model *modelJSON
	if err := readObject(s, func(key string) error {
		if key == "model" {
			m, err := readModel(s)
			model = m
			return err
		}
		raw, err := s.skipValue()
		if err != nil {
			return err
		}
		var dst any
		switch key {
		case "added_tokens":
			dst = &small.AddedTokens
		case "normalizer":
			dst = &small.Normalizer
		case "pre_tokenizer":
			dst = &small.PreTokenizer
		case "post_processor":
			dst = &small.PostProcessor
		case "decoder":
			dst = &small.Decoder
		default:
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("malformed tokenizer.json: %w", err)
	}
	if s.peek() != 0 {
		return nil, fmt.Errorf("malformed tokenizer.json: %w", s.errorf("data after the top-level object"))
	}
	if model == nil {
		return nil, errors.New(`no "model" object: not a tokenizer.json`)
	}
	if model.typ != "BPE" {
		return nil, fmt.Errorf("model type %q is not supported: medgemma reads BPE tokenizers (Gemma 3)", model.typ)
	}
	if len(model.vocab) == 0 {
		return nil, errors.New("model.vocab is missing or empty")
	}
	return build(model, &small)
}

// readObject reads an object, calling field for each key with the scanner
// positioned at its value; field must consume the value.
func readObject(s *scanner, field func(key string) error) error {
	empty, err := s.open('{', '}')
	if err != nil || empty {
		return err
	}
	for {
		k, err := s.str()
		if err != nil {
			return err
		}
		key := string(k)
		if err := s.expect(':'); err != nil {
			return err
		}
		if err := field(key); err != nil {
			return err
		}
		more, err := s.more('}')
		if err != nil || !more {
			return err
		}
	}
}

func readModel(s *scanner) (*modelJSON, error) {
	m := &modelJSON{}
	mergesAt := 0
	err := readObject(s, func(key string) error {
		switch key {
		case "vocab":
			return readVocab(s, m)
		case "merges":
			// Merges name vocabulary tokens; the vocabulary may come after them.
			s.skipSpace()
			mergesAt = s.pos
			_, err := s.skipValue()
			return err
		}
		raw, err := s.skipValue()
		if err != nil {
			return err
		}
		switch key {
		case "type":
			return json.Unmarshal(raw, &m.typ)
		case "unk_token":
			return json.Unmarshal(raw, &m.unkToken)
		case "byte_fallback":
			return json.Unmarshal(raw, &m.byteFallback)
		case "fuse_unk":
			return json.Unmarshal(raw, &m.fuseUnk)
		case "ignore_merges":
			return json.Unmarshal(raw, &m.ignoreMerges)
		case "continuing_subword_prefix", "end_of_word_suffix":
			m.prefixSuffix = string(raw) != "null" && string(raw) != `""`
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("model: %w", err)
	}
	if mergesAt > 0 && m.vocab != nil {
		sub := &scanner{data: s.data, pos: mergesAt}
		if err := readMerges(sub, m); err != nil {
			return nil, fmt.Errorf("model.merges: %w", err)
		}
	}
	return m, nil
}

func readVocab(s *scanner, m *modelJSON) error {
	m.vocab = make(map[string]int32)
	return readObject(s, func(key string) error {
		id, err := s.int()
		if err != nil {
			return fmt.Errorf("vocab %q: %w", key, err)
		}
		m.vocab[key] = id
		return nil
	})
}

// readMerges reads the merges in either published form: ["a", "b"] pairs
// (tokenizers >= 0.20) or "a b" strings.
func readMerges(s *scanner, m *modelJSON) error {
	m.merges = nil
	empty, err := s.open('[', ']')
	if err != nil || empty {
		return err
	}
	lookup := func(tok []byte) (int32, error) {
		id, ok := m.vocab[string(tok)]
		if !ok {
			return 0, fmt.Errorf("merge %d names %q, which is not in the vocabulary", len(m.merges), tok)
		}
		return id, nil
	}
	for {
		var pair [2]int32
		if s.peek() == '[' {
			s.pos++
			for i := range 2 {
				if i == 1 {
					if err := s.expect(','); err != nil {
						return err
					}
				}
				tok, err := s.str()
				if err != nil {
					return err
				}
				if pair[i], err = lookup(tok); err != nil {
					return err
				}
			}
			if err := s.expect(']'); err != nil {
				return err
			}
		} else {
			str, err := s.str()
			if err != nil {
				return err
			}
			a, b, ok := strings.Cut(string(str), " ")
			if !ok {
				return fmt.Errorf("merge %d %q is not two tokens separated by a space", len(m.merges), str)
			}
			if pair[0], err = lookup([]byte(a)); err != nil {
				return err
			}
			if pair[1], err = lookup([]byte(b)); err != nil {
				return err
			}
		}
		m.merges = append(m.merges, pair)
		more, err := s.more(']')
		if err != nil || !more {
			return err
		}
	}
}

// build checks the pipeline against what medgemma implements and assembles the
// Tokenizer.
func build(m *modelJSON, f *fileJSON) (*Tokenizer, error) {
	if m.prefixSuffix {
		return nil, errors.New("model: continuing_subword_prefix / end_of_word_suffix are not supported")
	}
	if m.ignoreMerges {
		return nil, errors.New("model: ignore_merges is not supported")
	}
	t := &Tokenizer{vocab: m.vocab, unkID: -1, fuseUnk: m.fuseUnk}
	n := 0
	for tok, id := range m.vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab: %q has negative id %d", tok, id)
		}
		n = max(n, int(id)+1)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 {
			return nil, fmt.Errorf("added_tokens: %q has negative id %d", a.Content, a.ID)
		}
		n = max(n, int(a.ID)+1)
	}
	// Ids index dense tables; refuse files whose ids are mostly holes.
	if count := len(m.vocab) + len(f.AddedTokens); n > 2*count+1024 {
		return nil, fmt.Errorf("token ids go up to %d for only %d tokens", n-1, count)
	}
	t.tokens = make([]string, n)
	t.flags = make([]uint8, n)
	for tok, id := range m.vocab {
		if t.tokens[id] != "" {
			return nil, fmt.Errorf("model.vocab: id %d is used by both %q and %q", id, t.tokens[id], tok)
		}
		t.tokens[id] = tok
	}
	if m.unkToken != nil {
		id, ok := m.vocab[*m.unkToken]
		if !ok {
			return nil, fmt.Errorf("model.unk_token %q is not in the vocabulary", *m.unkToken)
		}
		t.unkID = id
	}
	for b := range 256 {
		t.byteIDs[b] = -1
		if id, ok := m.vocab[fmt.Sprintf("<0x%02X>", b)]; ok && m.byteFallback {
			t.byteIDs[b] = id
		}
	}

	// Merges: rank is the position in the list.
	t.merges = make(map[uint64]uint64, len(m.merges))
	var buf []byte
	for rank, p := range m.merges {
		buf = append(append(buf[:0], t.tokens[p[0]]...), t.tokens[p[1]]...)
		id, ok := m.vocab[string(buf)]
		if !ok {
			return nil, fmt.Errorf("model.merges: merge %d (%q + %q) makes %q, which is not in the vocabulary", rank, t.tokens[p[0]], t.tokens[p[1]], buf)
		}
		key := uint64(uint32(p[0]))<<32 | uint64(uint32(p[1]))
		if _, dup := t.merges[key]; !dup { // the first (lowest) rank wins
			t.merges[key] = uint64(rank)<<32 | uint64(uint32(id))
		}
	}

	// Added tokens.
	var matchable []addedTokenJSON
	for _, a := range f.AddedTokens {
		if a.Content == "" {
			return nil, fmt.Errorf("added_tokens: id %d has empty content", a.ID)
		}
		if a.SingleWord || a.LStrip || a.RStrip || a.Normalized {
			return nil, fmt.Errorf("added_tokens: %q uses single_word/lstrip/rstrip/normalized, which medgemma does not support", a.Content)
		}
		if prev := t.tokens[a.ID]; prev != "" && prev != a.Content {
			return nil, fmt.Errorf("added_tokens: id %d is %q but the vocabulary has %q", a.ID, a.Content, prev)
		}
		t.tokens[a.ID] = a.Content
		t.flags[a.ID] |= flagAdded
		if a.Special {
			t.flags[a.ID] |= flagSpecial
		}
		matchable = append(matchable, a)
	}
	t.added = newAddedMatcher(matchable)
	// transformers' GemmaTokenizer declares "<mask>" its mask token, which makes
	// it special (skipped by decode) although tokenizer.json does not flag it.
	if id, ok := m.vocab["<mask>"]; ok && t.flags[id]&flagAdded != 0 {
		t.flags[id] |= flagSpecial
	}

	if err := t.setNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	if err := t.setPreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.setPostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	if err := t.setDecoder(f.Decoder); err != nil {
		return nil, err
	}

	// Derived tables for decoding and for cutting text into cacheable pieces.
	t.byteOf = make([]int16, n)
	t.pieces = make([]string, n)
	for id, tok := range t.tokens {
		t.byteOf[id] = -1
		if t.byteFallback && t.flags[id]&flagAdded == 0 {
			if b, ok := parseByteToken(tok); ok {
				t.byteOf[id] = int16(b)
			}
		}
		piece := tok
		for _, r := range t.decodeReplace {
			piece = strings.ReplaceAll(piece, r[0], r[1])
		}
		t.pieces[id] = piece
	}
	t.glue = map[rune]bool{}
	if t.replaceTo != "" {
		for tok := range m.vocab {
			for i := 1; i < len(tok); i++ {
				if strings.HasPrefix(tok[i:], t.replaceTo) && !strings.HasSuffix(tok[:i], t.replaceTo) {
					r, _ := utf8.DecodeLastRuneInString(tok[:i])
					t.glue[r] = true
				}
			}
		}
	}
	t.cache.init()
	return t, nil
}

// parseByteToken recognizes the byte-fallback tokens <0x00> ... <0xFF>.
func parseByteToken(tok string) (byte, bool) {
	if len(tok) != 6 || tok[:3] != "<0x" || tok[5] != '>' {
		return 0, false
	}
	var v byte
	for _, c := range []byte(tok[3:5]) {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | (c - '0')
		case c >= 'A' && c <= 'F':
			v = v<<4 | (c - 'A' + 10)
		case c >= 'a' && c <= 'f':
			v = v<<4 | (c - 'a' + 10)
		default:
			return 0, false
		}
	}
	return v, true
}

func (t *Tokenizer) setNormalizer(c *componentJSON) error {
	if c == nil {
		return nil
	}
	switch c.Type {
	case "Replace":
		if c.Pattern == nil || c.Pattern.String == nil {
			return errors.New("normalizer: only Replace with a String pattern is supported")
		}
		if t.replaceFrom != "" {
			return errors.New("normalizer: more than one Replace is not supported")
		}
		if *c.Pattern.String == "" {
			return errors.New("normalizer: Replace with an empty pattern")
		}
		t.replaceFrom, t.replaceTo = *c.Pattern.String, c.Content
		t.replaceToBytes = []byte(c.Content)
		return nil
	case "Sequence":
		for _, child := range c.Children {
			if err := t.setNormalizer(child); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("normalizer type %q is not supported (medgemma reads the Gemma 3 tokenizer)", c.Type)
}

func (t *Tokenizer) setPreTokenizer(c *componentJSON) error {
	if c == nil {
		return nil
	}
	// Gemma 3 splits on " " after the normalizer has replaced every " ": a no-op.
	if c.Type == "Split" && c.Pattern != nil && c.Pattern.String != nil &&
		*c.Pattern.String == t.replaceFrom && !strings.Contains(t.replaceTo, t.replaceFrom) {
		return nil
	}
	return fmt.Errorf("pre_tokenizer type %q with these settings is not supported (medgemma reads the Gemma 3 tokenizer)", c.Type)
}

func (t *Tokenizer) setPostProcessor(c *componentJSON) error {
	if c == nil {
		return nil
	}
	if c.Type != "TemplateProcessing" {
		return fmt.Errorf("post_processor type %q is not supported", c.Type)
	}
	seen := false
	for _, p := range c.Single {
		switch {
		case p.Sequence != nil:
			seen = true
		case p.SpecialToken != nil:
			st, ok := c.SpecialTokens[p.SpecialToken.ID]
			if !ok {
				return fmt.Errorf("post_processor: special token %q is not in special_tokens", p.SpecialToken.ID)
			}
			for _, id := range st.IDs {
				if id < 0 || int(id) >= len(t.tokens) {
					return fmt.Errorf("post_processor: special token %q has id %d, outside the vocabulary", p.SpecialToken.ID, id)
				}
			}
			if seen {
				t.suffix = append(t.suffix, st.IDs...)
			} else {
				t.prefix = append(t.prefix, st.IDs...)
			}
		default:
			return errors.New("post_processor: a template piece is neither SpecialToken nor Sequence")
		}
	}
	return nil
}

func (t *Tokenizer) setDecoder(c *componentJSON) error {
	if c == nil {
		return nil
	}
	steps := []*componentJSON{c}
	if c.Type == "Sequence" {
		steps = c.Decoders
	}
	fused := false
	for _, d := range steps {
		switch d.Type {
		case "Replace":
			if d.Pattern == nil || d.Pattern.String == nil || fused || t.byteFallback {
				return errors.New("decoder: only Replace with a String pattern, before ByteFallback and Fuse, is supported")
			}
			t.decodeReplace = append(t.decodeReplace, [2]string{*d.Pattern.String, d.Content})
		case "ByteFallback":
			if fused {
				return errors.New("decoder: ByteFallback after Fuse is not supported")
			}
			t.byteFallback = true
		case "Fuse":
			fused = true
		default:
			return fmt.Errorf("decoder type %q is not supported (medgemma reads the Gemma 3 tokenizer)", d.Type)
		}
	}
	return nil
}

// wordCache remembers the BPE result of recently seen pieces of text.
type wordCache struct {
	mu sync.RWMutex
	m  map[string][]int32
}

const (
	cacheMaxEntries = 1 << 16
	cacheMaxWordLen = 64
)

func (c *wordCache) init() { c.m = make(map[string][]int32, 1024) }

func (c *wordCache) get(word []byte) ([]int32, bool) {
	c.mu.RLock()
	ids, ok := c.m[string(word)]
	c.mu.RUnlock()
	return ids, ok
}

func (c *wordCache) put(word []byte, ids []int32) {
	c.mu.Lock()
	if len(c.m) >= cacheMaxEntries {
		clear(c.m)
	}
	c.m[string(word)] = ids
	c.mu.Unlock()
}
