package grammar

import (
	"testing"

	"github.com/medgemma/medgemma/internal/testtok"
)

// gemmaVocab indexes the real Gemma 3 vocabulary (262,144 ids) as the
// model will: each token's bytes, special tokens left out.
func gemmaVocab(tb testing.TB) (*Vocab, func(string) []int32, func(int32) []byte) {
	tok := testtok.Gemma3(tb)
	toks := make([][]byte, tok.Len())
	for id := range toks {
		if !tok.IsSpecial(int32(id)) {
			toks[id] = tok.Bytes(int32(id))
		}
	}
	return NewVocab(toks), func(s string) []int32 { return tok.Encode(s, false) }, func(id int32) []byte { return toks[id] }
}

const benchDoc = `{"findings": [{"organ": "lung", "finding": "Patchy opacity in the right lower lobe, consistent with pneumonia.", "severity": 3}, {"organ": "heart", "finding": "Normal size.", "severity": 0}], "impression": "Right lower lobe pneumonia.", "urgent": false, "confidence": 0.85}`

// BenchmarkAnswerMasks is the masks of a whole answer on the real
// vocabulary: the answer tokenized, then at each token the mask and the
// step past it. cold: a new compiled grammar (every frame's mask computed
// on first use, as a request with a new schema pays); warm: the same one
// again (a cached schema). Reported per token.
func BenchmarkAnswerMasks(b *testing.B) {
	v, encode, bytesOf := gemmaVocab(b)
	ids := encode(benchDoc)
	mask := make([]uint64, v.MaskWords())
	run := func(b *testing.B, c *Compiled) {
		m := c.NewMatcher()
		for _, id := range ids {
			if err := m.Mask(v, mask); err != nil {
				b.Fatal(err)
			}
			if mask[id/64]>>(id%64)&1 == 0 {
				b.Fatalf("token %d %q not in the mask", id, bytesOf(id))
			}
			if !m.Advance(bytesOf(id)) {
				b.Fatal("refused")
			}
		}
		if !m.Done() {
			b.Fatal("not done")
		}
	}
	b.Run("json_object/cold", func(b *testing.B) {
		for b.Loop() {
			c, err := JSONObject().Compile()
			if err != nil {
				b.Fatal(err)
			}
			run(b, c)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(ids)), "ms/token")
	})
	b.Run("json_object/warm", func(b *testing.B) {
		c, err := JSONObject().Compile()
		if err != nil {
			b.Fatal(err)
		}
		run(b, c)
		for b.Loop() {
			run(b, c)
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(ids)), "ms/token")
	})
}
