// Package generate turns a prefilled model session into text: sampling
// (greedy, temperature, top-k, top-p, min-p), repetition, frequency and
// presence penalties, stop tokens and stop strings, logprobs, and the decode
// loop that streams text as it is generated.
package generate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
	// TopLogprobs asks for the chosen token's logprob and this many
	// alternatives per step (OpenAI's logprobs/top_logprobs); -1: none.
	TopLogprobs int
}

// Validate checks the ranges.
func (o *Options) Validate() error {
	switch {
	case o.MaxNewTokens < 1 || o.MaxNewTokens > MaxNewTokens:
		return fmt.Errorf("max new tokens %d is outside 1..%d", o.MaxNewTokens, MaxNewTokens)
	case o.Temperature < 0:
		return errors.New("temperature must not be negative")
	case o.TopK < 0:
		return errors.New("top-k must not be negative")
	case o.TopP < 0 || o.TopP > 1:
		return errors.New("top-p must be in 0..1")
	case o.MinP < 0 || o.MinP > 1:
		return errors.New("min-p must be in 0..1")
	case o.RepetitionPenalty < 0:
		return errors.New("repetition penalty must not be negative")
	case o.FrequencyPenalty < -2 || o.FrequencyPenalty > 2 || o.PresencePenalty < -2 || o.PresencePenalty > 2:
		return errors.New("frequency and presence penalties must be in -2..2 (as OpenAI's)")
	case o.TopLogprobs > 20:
		return errors.New("top logprobs must be at most 20")
	}
	return nil
}

// Defaults are the options a checkpoint's generation_config.json implies,
// with transformers' defaults for what it omits: sampling when do_sample is
// true (MedGemma: top_k 64, top_p 0.95, temperature 1), greedy otherwise; its
// eos ids as stop tokens.
func Defaults(dir string) (Options, error) {
	o := Options{MaxNewTokens: MaxNewTokens, TopLogprobs: -1}
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
