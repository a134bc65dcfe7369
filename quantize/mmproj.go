package quantize

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/medgemma/medgemma/gguf"
	"github.com/medgemma/medgemma/imageproc"
	"github.com/medgemma/medgemma/model"
	"github.com/medgemma/medgemma/safetensors"
)

// MMProj writes the vision tower and projector of the multimodal
// checkpoint in dir as llama.cpp's mmproj file at out (architecture clip,
// projector type gemma3): matrices in F16 (or F32 when f32 is set), vectors
// in F32, the soft-embedding norm as 1 + w. In F16 files the patch and
// position embeddings stay F32, as llama.cpp's converter keeps them
// (Gemma3VisionModel.tensor_force_quant): its CPU backend cannot add an F16
// position embedding to the F32 patches.
func MMProj(ctx context.Context, dir, out string, f32 bool, progress func(done, total int)) error {
	cfg, err := model.LoadConfig(dir)
	if err != nil {
		return err
	}
	v := cfg.Vision
	if v == nil {
		return fmt.Errorf("%s is a text-only checkpoint: it has no vision tower to write", dir)
	}
	img, err := imageproc.LoadConfig(dir)
	if err != nil {
		return err
	}
	ckpt, err := safetensors.OpenDir(dir)
	if err != nil {
		return err
	}
	defer ckpt.Close()
	matrices, fileType := gguf.F16, uint32(1)
	if f32 {
		matrices, fileType = gguf.F32, 0
	}
	var jobs []job
	for _, name := range ckpt.Names() {
		g, ok := model.GGUFMMProjName(name)
		if !ok {
			continue
		}
		t := ckpt.Tensor(name)
		j := job{src: t, spec: gguf.TensorSpec{Name: g, Type: gguf.F32, Dims: reversed(t.Shape)}, norm: model.IsNorm(name)}
		if len(t.Shape) >= 2 && !strings.Contains(name, ".embeddings.") {
			j.spec.Type = matrices
		}
		jobs = append(jobs, j)
	}
	side := v.ImageSize / v.PatchSize
	pooled := 1
	for pooled*pooled < cfg.MMTokensPerImage {
		pooled++
	}
	kv := func(k string, val gguf.Value) gguf.KV { return gguf.KV{Key: k, Value: val} }
	u32 := func(n int) gguf.Value { return gguf.Of(uint32(n)) }
	f32s := func(a [3]float64) gguf.Value {
		return gguf.ArrayOf([]float32{float32(a[0]), float32(a[1]), float32(a[2])})
	}
	meta := []gguf.KV{
		kv("general.architecture", gguf.Of("clip")),
		kv("general.name", gguf.Of(filepath.Base(filepath.Clean(dir))+" mmproj")),
		kv("general.file_type", gguf.Of(fileType)),
		kv("clip.projector_type", gguf.Of("gemma3")),
		kv("clip.has_vision_encoder", gguf.Of(true)),
		kv("clip.vision.projection_dim", u32(cfg.Text.HiddenSize)),
		kv("clip.vision.image_size", u32(v.ImageSize)),
		kv("clip.vision.patch_size", u32(v.PatchSize)),
		kv("clip.vision.embedding_length", u32(v.HiddenSize)),
		kv("clip.vision.feed_forward_length", u32(v.IntermediateSize)),
		kv("clip.vision.block_count", u32(v.NumHiddenLayers)),
		kv("clip.vision.attention.head_count", u32(v.NumAttentionHeads)),
		kv("clip.vision.image_mean", f32s(img.Mean)),
		kv("clip.vision.image_std", f32s(img.Std)),
		kv("clip.vision.attention.layer_norm_epsilon", gguf.Of(float32(v.LayerNormEps))),
		kv("clip.use_gelu", gguf.Of(true)),
	}
	if scale := side / pooled; scale != 4 {
		meta = append(meta, kv("clip.vision.projector.scale_factor", u32(scale)))
	}
	return writeFile(ctx, out, meta, jobs, progress)
}
