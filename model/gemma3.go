package model

import (
	"fmt"
	"math"

	"github.com/medgemma/medgemma/kernels"
)

// decoderLayer is one Gemma 3 decoder layer, named as in transformers.
type decoderLayer struct {
	sliding bool

	inputLayernorm           []float32
	qProj, kProj, vProj      kernels.Mat
	qNorm, kNorm             []float32
	oProj                    kernels.Mat
	postAttentionLayernorm   []float32
	preFeedforwardLayernorm  []float32
	gateProj, upProj         kernels.Mat
	downProj                 kernels.Mat
	postFeedforwardLayernorm []float32
}

// textModel is the Gemma 3 decoder with its embedding and LM head.
type textModel struct {
	cfg         TextConfig
	embedTokens kernels.Mat // [vocab, hidden]
	lmHead      kernels.Mat // the embedding matrix unless the checkpoint stores lm_head
	layers      []decoderLayer
	norm        []float32
	embedScale  float32 // sqrt(hidden_size) in float32
	scaling     float32 // query_pre_attn_scalar^-0.5
	ropeLocal   rope
	ropeGlobal  rope
}

func loadText(b *binder, cfg TextConfig) (*textModel, error) {
	h, inter := cfg.HiddenSize, cfg.IntermediateSize
	qDim, kvDim := cfg.NumAttentionHeads*cfg.HeadDim, cfg.NumKeyValueHeads*cfg.HeadDim
	var e errs
	m := &textModel{
		cfg:         cfg,
		embedTokens: e.mat(b, "embed_tokens.weight", cfg.VocabSize, h),
		norm:        e.norm(b, "norm.weight", h),
		embedScale:  float32(math.Sqrt(float64(h))),
		scaling:     float32(math.Pow(cfg.QueryPreAttnScalar, -0.5)),
	}
	// Layers are bound in order and binding stops at the first missing or
	// misshapen tensor, so what is allocated follows the tensors that exist,
	// not the sizes config.json claims.
	for i := 0; i < cfg.NumHiddenLayers && e.err == nil; i++ {
		p := fmt.Sprintf("layers.%d.", i)
		m.layers = append(m.layers, decoderLayer{
			sliding:                  cfg.Sliding(i),
			inputLayernorm:           e.norm(b, p+"input_layernorm.weight", h),
			qProj:                    e.mat(b, p+"self_attn.q_proj.weight", qDim, h),
			kProj:                    e.mat(b, p+"self_attn.k_proj.weight", kvDim, h),
			vProj:                    e.mat(b, p+"self_attn.v_proj.weight", kvDim, h),
			qNorm:                    e.norm(b, p+"self_attn.q_norm.weight", cfg.HeadDim),
			kNorm:                    e.norm(b, p+"self_attn.k_norm.weight", cfg.HeadDim),
			oProj:                    e.mat(b, p+"self_attn.o_proj.weight", h, qDim),
			postAttentionLayernorm:   e.norm(b, p+"post_attention_layernorm.weight", h),
			preFeedforwardLayernorm:  e.norm(b, p+"pre_feedforward_layernorm.weight", h),
			gateProj:                 e.mat(b, p+"mlp.gate_proj.weight", inter, h),
			upProj:                   e.mat(b, p+"mlp.up_proj.weight", inter, h),
			downProj:                 e.mat(b, p+"mlp.down_proj.weight", h, inter),
			postFeedforwardLayernorm: e.norm(b, p+"post_feedforward_layernorm.weight", h),
		})
	}
	if e.err != nil {
		return nil, e.err
	}
	m.ropeLocal = newRope(cfg.HeadDim, cfg.RopeLocalBaseFreq, 1)
	m.ropeGlobal = newRope(cfg.HeadDim, cfg.RopeTheta, cfg.RopeScalingFactor)
	m.lmHead = m.embedTokens
	for _, name := range lmHeadNames {
		if b.src.tensor(name) == nil {
			continue
		}
		head := &binder{src: b.src, prefixes: []string{""}, used: b.used}
		lm, err := head.mat(name, cfg.VocabSize, h)
		if err != nil {
			return nil, err
		}
		m.lmHead = lm
		break
	}
	return m, nil
}

// embed writes the scaled token embeddings of ids into x (len(ids) x hidden).
func (m *textModel) embed(x []float32, ids []int32) error {
	h := m.cfg.HiddenSize
	for i, id := range ids {
		if id < 0 || int(id) >= m.cfg.VocabSize {
			return fmt.Errorf("token id %d at position %d is outside the vocabulary (0..%d)", id, i, m.cfg.VocabSize-1)
		}
		row := x[i*h : (i+1)*h]
		m.embedTokens.Row(row, int(id))
		for j := range row {
			row[j] *= m.embedScale
		}
	}
	return nil
}
