// Package generate turns a prefilled model session into text: sampling
// (greedy, temperature, top-k, top-p, min-p), repetition, frequency and
// presence penalties, stop tokens and stop strings, logprobs, and the decode
// loop that streams text as it is generated.
package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/medgemma/medgemma/grammar"
	"github.com/medgemma/medgemma/internal/errkind"
)

// MaxNewTokens is the most tokens one generation may produce (MedGemma's
// output limit).
const MaxNewTokens = 8192

// Options control one generation. The zero value of a sampling field means
// "off"; Defaults fills them from a checkpoint's generation_config.json.
type Options struct {
	MaxNewTokens int
	// Temperature 0 means greedy decoding.
	Temperature float64
	TopK        int     // 0: off
	TopP        float64 // 0 or 1: off
	MinP        float64 // 0: off
	// RepetitionPenalty is transformers' (CTRL) penalty over prompt and
	// output tokens: a seen token's logit is divided by it when positive,
	// multiplied when negative. 0 or 1: off.
	RepetitionPenalty float64
	// FrequencyPenalty and PresencePenalty are OpenAI's, over the generated
	// tokens: logit -= frequency*count + presence*(count > 0).
	FrequencyPenalty float64
	PresencePenalty  float64
	// Seed makes sampling reproducible; without one it is seeded randomly.
	Seed    uint64
	HasSeed bool
	// StopTokens end generation without being emitted (eos ids).
	StopTokens []int32
	// StopStrings end generation; the text is cut before them.
	StopStrings []string
	// Logprobs asks for each generated token's logprob (OpenAI's logprobs),
	// with TopLogprobs most likely alternatives per step (0..20, OpenAI's
	// top_logprobs; 0 with Logprobs off means none at all).
	Logprobs    bool
	TopLogprobs int
	// Grammar, when set, constrains the answer to its language (a JSON
	// schema, any JSON object, a GBNF grammar; see package grammar): each
	// step samples among the tokens it allows, logprobs are those of this
	// constrained distribution, stop tokens may end the answer only where
	// the grammar may, and the generation ends (stop) once the grammar is
	// complete. One compiled grammar may serve many generations at once.
	Grammar *grammar.Compiled
	// Thought, when set with a Grammar, is a thought's start and end
	// markers (MedGemma 27B's <unused94> and <unused95>): a thought the
	// answer opens with runs unconstrained, and the grammar applies after
	// it.
	Thought []int32
}

// Limits on the options a request may set.
const (
	MaxTopLogprobs  = 20  // as OpenAI's top_logprobs
	MaxStopStrings  = 16  // stop strings per request
	MaxStopBytes    = 512 // bytes per stop string
	MaxPenaltyRange = 2.0 // frequency and presence penalties, as OpenAI's
)

// ErrInvalidOptions is the kind (errors.Is) of every error Validate returns.
var ErrInvalidOptions = errors.New("invalid generation options")

// Validate checks every field against its range. NaN and infinities are
// refused everywhere (a NaN passes every comparison, so each check is
// written to fail on it); requests reach the sampler only through here.
// Its errors are of the kind ErrInvalidOptions.
func (o *Options) Validate() error { return errkind.With(ErrInvalidOptions, o.validate()) }

func (o *Options) validate() error {
	finite := func(name string, v float64) error {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%s must be a finite number, got %v", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"temperature", o.Temperature}, {"top-p", o.TopP}, {"min-p", o.MinP}, {"repetition penalty", o.RepetitionPenalty},
		{"frequency penalty", o.FrequencyPenalty}, {"presence penalty", o.PresencePenalty}} {
		if err := finite(f.name, f.v); err != nil {
			return err
		}
	}
	switch {
	case o.MaxNewTokens < 1 || o.MaxNewTokens > MaxNewTokens:
		return fmt.Errorf("max new tokens %d is outside 1..%d", o.MaxNewTokens, MaxNewTokens)
	case !(o.Temperature >= 0):
		return fmt.Errorf("temperature %v must not be negative", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k %d must not be negative (0 is off)", o.TopK)
	case !(o.TopP >= 0 && o.TopP <= 1):
		return fmt.Errorf("top-p %v must be in 0..1", o.TopP)
	case !(o.MinP >= 0 && o.MinP <= 1):
		return fmt.Errorf("min-p %v must be in 0..1", o.MinP)
	case !(o.RepetitionPenalty >= 0):
		return fmt.Errorf("repetition penalty %v must be positive (1 or 0 is off)", o.RepetitionPenalty)
	case !(o.FrequencyPenalty >= -MaxPenaltyRange && o.FrequencyPenalty <= MaxPenaltyRange):
		return fmt.Errorf("frequency penalty %v must be in -2..2 (as OpenAI's)", o.FrequencyPenalty)
	case !(o.PresencePenalty >= -MaxPenaltyRange && o.PresencePenalty <= MaxPenaltyRange):
		return fmt.Errorf("presence penalty %v must be in -2..2 (as OpenAI's)", o.PresencePenalty)
	case o.TopLogprobs < 0 || o.TopLogprobs > MaxTopLogprobs:
		return fmt.Errorf("top logprobs %d must be in 0..%d", o.TopLogprobs, MaxTopLogprobs)
	case o.TopLogprobs > 0 && !o.Logprobs:
		return errors.New("top logprobs need logprobs on")
	case len(o.Thought) != 0 && len(o.Thought) != 2:
		return fmt.Errorf("thought markers: want a start and an end token, got %d", len(o.Thought))
	case len(o.StopStrings) > MaxStopStrings:
		return fmt.Errorf("%d stop strings; at most %d", len(o.StopStrings), MaxStopStrings)
	}
	for i, s := range o.StopStrings {
		if s == "" || len(s) > MaxStopBytes {
			return fmt.Errorf("stop string %d is %d bytes; want 1..%d", i, len(s), MaxStopBytes)
		}
	}
	return nil
}

// Defaults are the options a checkpoint's generation_config.json implies,
// with transformers' defaults for what it omits: sampling when do_sample is
// true (MedGemma: top_k 64, top_p 0.95, temperature 1), greedy otherwise; its
// eos ids as stop tokens.
func Defaults(dir string) (Options, error) {
	o := Options{MaxNewTokens: MaxNewTokens}
	data, err := os.ReadFile(filepath.Join(dir, "generation_config.json"))
	if errors.Is(err, os.ErrNotExist) {
		o.StopTokens = []int32{1, 106}
		return o, nil
	}
	if err != nil {
		return o, err
	}
	var g struct {
		DoSample          *bool           `json:"do_sample"`
		Temperature       *float64        `json:"temperature"`
		TopK              *int            `json:"top_k"`
		TopP              *float64        `json:"top_p"`
		MinP              *float64        `json:"min_p"`
		RepetitionPenalty *float64        `json:"repetition_penalty"`
		EOS               json.RawMessage `json:"eos_token_id"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		return o, fmt.Errorf("%s: %w", filepath.Join(dir, "generation_config.json"), err)
	}
	if g.DoSample != nil && *g.DoSample {
		o.Temperature, o.TopK, o.TopP = 1, 50, 1
		if g.Temperature != nil {
			o.Temperature = *g.Temperature
		}
		if g.TopK != nil {
			o.TopK = *g.TopK
		}
		if g.TopP != nil {
			o.TopP = *g.TopP
		}
		if g.MinP != nil {
			o.MinP = *g.MinP
		}
	}
	if g.RepetitionPenalty != nil {
		o.RepetitionPenalty = *g.RepetitionPenalty
	}
	var one int32
	var many []int32
	switch {
	case len(g.EOS) == 0 || string(g.EOS) == "null":
		o.StopTokens = []int32{1, 106}
	case json.Unmarshal(g.EOS, &one) == nil:
		o.StopTokens = []int32{one}
	case json.Unmarshal(g.EOS, &many) == nil:
		o.StopTokens = many
	default:
		return o, fmt.Errorf("generation_config.json: eos_token_id %s", g.EOS)
	}
	return o, nil
}
