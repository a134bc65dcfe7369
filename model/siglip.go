package model

import (
	"context"
	"fmt"
	"math"

	"github.com/medgemma/medgemma/kernels"
)

// visionLayer is one SigLIP encoder layer (pre-LN, biased attention and MLP).
type visionLayer struct {
	layerNorm1W, layerNorm1B []float32
	qProj, kProj, vProj      kernels.Mat
	qBias, kBias, vBias      []float32
	outProj                  kernels.Mat
	outBias                  []float32
	layerNorm2W, layerNorm2B []float32
	fc1, fc2                 kernels.Mat
	fc1Bias, fc2Bias         []float32
}

// visionModel is the SigLIP vision tower (without the pooling head).
type visionModel struct {
	cfg            VisionConfig
	patchWeight    kernels.Mat // conv [hidden, 3*patch*patch]
	patchBias      []float32
	positionEmbeds kernels.Mat // [patches, hidden]
	layers         []visionLayer
	postW, postB   []float32
}

func loadVision(b *binder, cfg VisionConfig) (*visionModel, error) {
	h, inter, p := cfg.HiddenSize, cfg.IntermediateSize, cfg.PatchSize
	patches := (cfg.ImageSize / p) * (cfg.ImageSize / p)
	var e errs
	v := &visionModel{
		cfg:            cfg,
		patchWeight:    e.mat(b, "embeddings.patch_embedding.weight", h, cfg.NumChannels, p, p),
		patchBias:      e.vec(b, "embeddings.patch_embedding.bias", h),
		positionEmbeds: e.mat(b, "embeddings.position_embedding.weight", patches, h),
		postW:          e.vec(b, "post_layernorm.weight", h),
		postB:          e.vec(b, "post_layernorm.bias", h),
	}
	for i := 0; i < cfg.NumHiddenLayers && e.err == nil; i++ { // stops at the first missing tensor
		pre := fmt.Sprintf("encoder.layers.%d.", i)
		v.layers = append(v.layers, visionLayer{
			layerNorm1W: e.vec(b, pre+"layer_norm1.weight", h), layerNorm1B: e.vec(b, pre+"layer_norm1.bias", h),
			qProj: e.mat(b, pre+"self_attn.q_proj.weight", h, h), qBias: e.vec(b, pre+"self_attn.q_proj.bias", h),
			kProj: e.mat(b, pre+"self_attn.k_proj.weight", h, h), kBias: e.vec(b, pre+"self_attn.k_proj.bias", h),
			vProj: e.mat(b, pre+"self_attn.v_proj.weight", h, h), vBias: e.vec(b, pre+"self_attn.v_proj.bias", h),
			outProj: e.mat(b, pre+"self_attn.out_proj.weight", h, h), outBias: e.vec(b, pre+"self_attn.out_proj.bias", h),
			layerNorm2W: e.vec(b, pre+"layer_norm2.weight", h), layerNorm2B: e.vec(b, pre+"layer_norm2.bias", h),
			fc1: e.mat(b, pre+"mlp.fc1.weight", inter, h), fc1Bias: e.vec(b, pre+"mlp.fc1.bias", inter),
			fc2: e.mat(b, pre+"mlp.fc2.weight", h, inter), fc2Bias: e.vec(b, pre+"mlp.fc2.bias", h),
		})
	}
	return v, e.err
}

func addBias(x, b []float32) {
	for off := 0; off < len(x); off += len(b) {
		row := x[off : off+len(b)]
		for i, v := range b {
			row[i] += v
		}
	}
}

// forward encodes one image, pixels [3, S, S], into patches x hidden values
// (the last hidden state, after post_layernorm), on the pool's threads. A
// cancelled ctx stops it before the next layer.
func (v *visionModel) forward(ctx context.Context, pool kernels.Pool, pixels []float32) ([]float32, error) {
	c := &v.cfg
	S, P, h := c.ImageSize, c.PatchSize, c.HiddenSize
	if len(pixels) != 3*S*S {
		return nil, fmt.Errorf("pixel values hold %d floats, want 3x%dx%d", len(pixels), S, S)
	}
	side := S / P
	n := side * side
	// Patch embedding: the stride-P convolution as a matrix product over
	// flattened patches ordered [channel][ky][kx], like the conv weight.
	pd := 3 * P * P
	patches := make([]float32, n*pd)
	for py := range side {
		for px := range side {
			dst := patches[(py*side+px)*pd:]
			i := 0
			for ch := range 3 {
				for ky := range P {
					row := pixels[ch*S*S+(py*P+ky)*S+px*P:]
					copy(dst[i:i+P], row[:P])
					i += P
				}
			}
		}
	}
	x := make([]float32, n*h)
	pool.MatMul(x, patches, n, &v.patchWeight)
	addBias(x, v.patchBias)
	pos := make([]float32, h)
	for i := range n {
		v.positionEmbeds.Row(pos, i)
		row := x[i*h : (i+1)*h]
		for j := range row {
			row[j] += pos[j]
		}
	}

	eps := float32(c.LayerNormEps)
	xn := make([]float32, n*h)
	q, k, vv := make([]float32, n*h), make([]float32, n*h), make([]float32, n*h)
	att := make([]float32, n*h)
	tmp := make([]float32, n*h)
	mlp := make([]float32, n*c.IntermediateSize)
	heads := c.NumAttentionHeads
	hd := h / heads
	kt := make([]float32, n*h)
	if hd > kernels.HeadDimPadded {
		return nil, fmt.Errorf("vision head dimension %d is over %d", hd, kernels.HeadDimPadded)
	}
	vp := make([]float32, heads*n*kernels.HeadDimPadded)
	scale := float32(math.Pow(float64(hd), -0.5))
	for _, L := range v.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		kernels.LayerNorm(xn, x, L.layerNorm1W, L.layerNorm1B, h, eps)
		pool.MatMul(q, xn, n, &L.qProj)
		addBias(q, L.qBias)
		pool.MatMul(k, xn, n, &L.kProj)
		addBias(k, L.kBias)
		pool.MatMul(vv, xn, n, &L.vProj)
		addBias(vv, L.vBias)
		// Keys transposed per head ([head][dim][patch]) and values padded to
		// 80 wide ([head][patch][80]) for the attention micro-kernels.
		for j := range n {
			for hh := range heads {
				for d := range hd {
					kt[(hh*hd+d)*n+j] = k[j*h+hh*hd+d]
					vp[(hh*n+j)*kernels.HeadDimPadded+d] = vv[j*h+hh*hd+d]
				}
			}
		}
		pool.ParallelFor(n/4+1, func(lo, hi int) {
			lo, hi = lo*4, min(hi*4, n)
			if lo >= hi {
				return
			}
			scratch := make([]float32, kernels.AttentionScratch(n))
			for hh := range heads {
				kernels.BidirectionalAttention(att[lo*h+hh*hd:], h, q[lo*h+hh*hd:], h,
					kt[hh*hd*n:(hh+1)*hd*n], vp[hh*n*kernels.HeadDimPadded:(hh+1)*n*kernels.HeadDimPadded],
					hi-lo, n, hd, scale, scratch)
			}
		})
		pool.MatMul(tmp, att, n, &L.outProj)
		addBias(tmp, L.outBias)
		for i := range x {
			x[i] += tmp[i]
		}
		kernels.LayerNorm(xn, x, L.layerNorm2W, L.layerNorm2B, h, eps)
		pool.MatMul(mlp, xn, n, &L.fc1)
		addBias(mlp, L.fc1Bias)
		kernels.GELUTanhSlice(mlp)
		pool.MatMul(tmp, mlp, n, &L.fc2)
		addBias(tmp, L.fc2Bias)
		for i := range x {
			x[i] += tmp[i]
		}
	}
	kernels.LayerNorm(x, x, v.postW, v.postB, h, eps)
	return x, nil
}
