package model

import (
	"github.com/medgemma/medgemma/kernels"
)

// projector is Gemma3MultiModalProjector: average pooling of the patch grid
// down to mm_tokens_per_image, mm_soft_emb_norm (RMSNorm with 1 + weight and
// the vision eps), then mm_input_projection_weight [vision_hidden,
// text_hidden].
type projector struct {
	side, tokensPerSide int // patch grid side; pooled side
	visionHidden        int
	textHidden          int
	eps                 float32
	mmSoftEmbNorm       []float32
	mmInputProjection   kernels.Mat // [vision_hidden, text_hidden], used as x W
}

func loadProjector(b *binder, c *Config) (*projector, error) {
	v := c.Vision
	p := &projector{
		side:          v.ImageSize / v.PatchSize,
		tokensPerSide: intSqrt(c.MMTokensPerImage),
		visionHidden:  v.HiddenSize,
		textHidden:    c.Text.HiddenSize,
		eps:           float32(v.LayerNormEps),
	}
	var e errs
	p.mmSoftEmbNorm = e.norm(b, "mm_soft_emb_norm.weight", v.HiddenSize)
	p.mmInputProjection = e.mat(b, "mm_input_projection_weight", v.HiddenSize, c.Text.HiddenSize)
	return p, e.err
}

// forward maps the vision tower's output (side*side x vision_hidden) to
// mm_tokens_per_image x text_hidden image features.
func (p *projector) forward(vision []float32) []float32 {
	k := p.side / p.tokensPerSide
	vh := p.visionHidden
	n := p.tokensPerSide * p.tokensPerSide
	pooled := make([]float32, n*vh)
	div := float32(k * k)
	for ty := range p.tokensPerSide {
		for tx := range p.tokensPerSide {
			dst := pooled[(ty*p.tokensPerSide+tx)*vh : (ty*p.tokensPerSide+tx+1)*vh]
			for dy := range k {
				for dx := range k {
					src := vision[((ty*k+dy)*p.side+tx*k+dx)*vh:]
					for c := range dst {
						dst[c] += src[c]
					}
				}
			}
			for c := range dst {
				dst[c] /= div
			}
		}
	}
	kernels.RMSNorm(pooled, pooled, p.mmSoftEmbNorm, vh, p.eps)
	out := make([]float32, n*p.textHidden)
	kernels.MatMulT(out, pooled, n, &p.mmInputProjection)
	return out
}
