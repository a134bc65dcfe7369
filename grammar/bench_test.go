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

// radiologyDoc is an answer radiologySchema accepts.
const radiologyDoc = `{"study_date": "2024-02-28", "modality": "CT", "body_part": "chest", "findings": [{"location": "right lower lobe", "description": "Patchy consolidation with air bronchograms.", "severity": 3, "measurements_mm": [42.5, 30]}, {"location": "left hilum", "description": "Mildly prominent lymph node.", "severity": 1}], "impression": "Right lower lobe pneumonia.", "urgent": false, "confidence": 0.85, "follow_up": "CT in 6 weeks", "icd10": ["J18.9"], "reader_id": "123e4567-e89b-12d3-a456-426614174000"}`

const benchDoc = `{"findings": [{"organ": "lung", "finding": "Patchy opacity in the right lower lobe, consistent with pneumonia.", "severity": 3}, {"organ": "heart", "finding": "Normal size.", "severity": 0}], "impression": "Right lower lobe pneumonia.", "urgent": false, "confidence": 0.85}`

// BenchmarkAnswerMasks is the masks of whole answers (json_object; the
// radiology schema) on the real
// vocabulary: the answer tokenized, then at each token the mask and the
// step past it. cold: a new compiled grammar (every frame's mask computed
// on first use, as a request with a new schema pays); warm: the same one
// again (a cached schema). Reported per token.
func BenchmarkAnswerMasks(b *testing.B) {
	v, encode, bytesOf := gemmaVocab(b)
	mask := make([]uint64, v.MaskWords())
	run := func(b *testing.B, c *Compiled, ids []int32) {
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
	for _, c := range []struct {
		name string
		make func() (*Grammar, error)
		doc  string
	}{
		{"json_object", func() (*Grammar, error) { return JSONObject(), nil }, benchDoc},
		{"radiology_schema", func() (*Grammar, error) { return FromJSONSchema([]byte(radiologySchema)) }, radiologyDoc},
	} {
		ids := encode(c.doc)
		compile := func(b *testing.B) *Compiled {
			g, err := c.make()
			if err != nil {
				b.Fatal(err)
			}
			comp, err := g.Compile()
			if err != nil {
				b.Fatal(err)
			}
			return comp
		}
		b.Run(c.name+"/cold", func(b *testing.B) {
			for b.Loop() {
				run(b, compile(b), ids)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(ids)), "ms/token")
		})
		b.Run(c.name+"/warm", func(b *testing.B) {
			comp := compile(b)
			run(b, comp, ids)
			for b.Loop() {
				run(b, comp, ids)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(ids)), "ms/token")
		})
	}
}

// BenchmarkSchemaCompile is compiling radiologySchema (10 fields, nested
// arrays, enums, bounds, patterns, formats) to automata.
func BenchmarkSchemaCompile(b *testing.B) {
	for b.Loop() {
		g, err := FromJSONSchema([]byte(radiologySchema))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Compile(); err != nil {
			b.Fatal(err)
		}
	}
}
