package server

import (
	"slices"
	"testing"

	"github.com/medgemma/medgemma/generate"
)

// TestIgnoreEOS: ignore_eos drops the stop tokens (end of turn, end of
// text); without it the server's stay.
func TestIgnoreEOS(t *testing.T) {
	defaults := generate.Options{MaxNewTokens: 16, StopTokens: []int32{1, 106}}
	o, e := (&samplingRequest{}).options(defaults, nil, 1)
	if e != nil || !slices.Equal(o.StopTokens, []int32{1, 106}) {
		t.Errorf("without ignore_eos: %v %v", o.StopTokens, e)
	}
	o, e = (&samplingRequest{IgnoreEOS: true}).options(defaults, nil, 1)
	if e != nil || o.StopTokens != nil {
		t.Errorf("with ignore_eos: %v %v", o.StopTokens, e)
	}
}
