package medgemma

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"time"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/imageproc"
	"github.com/medgemma/medgemma/internal/errkind"
)

// promptImages are the images of one conversation: read from their sources
// (under the caller's policy) and keyed by their bytes and how they are
// prepared, then decoded, prepared and encoded one at a time when the
// prefill reaches them, so that memory holds one decoded image however many
// the conversation has, and images in a reused cache are never decoded.
type promptImages struct {
	m      *Model
	opts   *ChatOptions
	cfg    imageproc.Config // the model's, with pan and scan as asked
	images []promptImage
	blocks []blockRef // one per image block of the prompt, in order

	cur      int              // image whose blocks are prepared, -1 for none
	prepared []*imageproc.RGB // its whole image and crops
	encode   time.Duration    // spent decoding and encoding
	// blocks through the vision tower, and found in the model's cache
	encoded, cached int
}

type promptImage struct {
	where string // messages[i] part j
	src   string
	data  []byte
	key   [32]byte // sha256 of the bytes and the preparation
	crops int
}

type blockRef struct {
	image, crop int
	key         [32]byte
}

// imageParts lists the image parts of a conversation after checking each
// against the model and the policy, reading nothing.
func (m *Model) imageParts(msgs []chat.Message, opts *ChatOptions) (*promptImages, error) {
	pi := &promptImages{m: m, opts: opts, cfg: m.image, cur: -1}
	pi.cfg.PanAndScan.Enabled = pi.cfg.PanAndScan.Enabled || opts.PanAndScan
	for i, msg := range msgs {
		for j, p := range msg.Content {
			if p.Type != chat.TypeImage {
				continue
			}
			where := fmt.Sprintf("messages[%d] part %d", i, j)
			if !m.model.HasVision() {
				return nil, fmt.Errorf("%s: %w", where, ErrTextOnly)
			}
			if err := opts.ImageSources.check(p.Image); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			pi.images = append(pi.images, promptImage{where: where, src: p.Image})
		}
	}
	return pi, nil
}

// read reads every image's bytes within the per-image and total limits and
// keys it by its bytes and preparation.
func (pi *promptImages) read(ctx context.Context) error {
	var total int64
	limit := pi.opts.ImageSources.maxTotalBytes()
	prep := pi.preparation()
	for i := range pi.images {
		im := &pi.images[i]
		data, err := pi.opts.ImageSources.read(ctx, im.src)
		if err != nil {
			return fmt.Errorf("%s: %w", im.where, err)
		}
		if total += int64(len(data)); total > limit {
			return fmt.Errorf("%s: %w", im.where, errkind.With(ErrImageTooLarge,
				fmt.Errorf("the conversation's images are over the %d-byte limit for all of them", limit)))
		}
		h := sha256.New()
		h.Write(prep)
		h.Write(data)
		h.Sum(im.key[:0])
		im.data = data
	}
	return nil
}

// preparation encodes everything besides the bytes that changes what an
// image becomes.
func (pi *promptImages) preparation() []byte {
	o := pi.opts
	b := binary.AppendVarint(nil, int64(o.Image.Frame))
	if w := o.Image.Window; w != nil {
		b = binary.AppendUvarint(b, math.Float64bits(w.Center))
		b = binary.AppendUvarint(b, math.Float64bits(w.Width))
	}
	flags := byte(0)
	if pi.cfg.PanAndScan.Enabled {
		flags |= 1
	}
	if o.PadSquare {
		flags |= 2
	}
	if o.Image.Window != nil {
		flags |= 4
	}
	return append(b, flags)
}

// decode decodes and prepares image i: the whole image, then its crops.
func (pi *promptImages) decode(i int) ([]*imageproc.RGB, error) {
	im := &pi.images[i]
	img, _, err := imageproc.Decode(im.data, pi.opts.Image)
	if err != nil {
		return nil, fmt.Errorf("%s: image %s: %w", im.where, describeSource(im.src), err)
	}
	prepared, err := imageproc.Prepare(img, pi.cfg, pi.opts.PadSquare)
	if err != nil {
		return nil, fmt.Errorf("%s: image %s: %w", im.where, describeSource(im.src), err)
	}
	return prepared, nil
}

// countCrops decodes each image to learn its pan-and-scan crops (they
// depend on its size), one image at a time, keeping none. Each crop adds at
// least imageTokens tokens; as soon as the prompt cannot fit the context
// (base tokens without crops, plus the crops so far) it stops.
func (pi *promptImages) countCrops(ctx context.Context, base, imageTokens, limit int) ([]int, error) {
	crops := make([]int, len(pi.images))
	if !pi.cfg.PanAndScan.Enabled {
		return crops, nil
	}
	n := int64(base)
	for i := range pi.images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		prepared, err := pi.decode(i)
		if err != nil {
			return nil, err
		}
		crops[i] = len(prepared) - 1
		pi.images[i].crops = crops[i]
		if n += int64(crops[i]) * int64(imageTokens); n >= int64(limit) {
			return nil, fmt.Errorf("%w: at least %d tokens with the pan-and-scan crops of %d images, context %d", ErrPromptTooLong, n, i+1, limit)
		}
	}
	return crops, nil
}

// index lays out the image blocks: each image, then its crops.
func (pi *promptImages) index() {
	pi.blocks = pi.blocks[:0]
	for i, im := range pi.images {
		for k := 0; k <= im.crops; k++ {
			key := sha256.Sum256(binary.AppendUvarint(im.key[:], uint64(k)))
			pi.blocks = append(pi.blocks, blockRef{image: i, crop: k, key: key})
		}
	}
}

// keys are the blocks' keys, in order.
func (pi *promptImages) keys() [][32]byte {
	out := make([][32]byte, len(pi.blocks))
	for i, b := range pi.blocks {
		out[i] = b.key
	}
	return out
}

// features is model.Prompt.Image: block b's features, decoding and
// preparing its image when the block is the image's first needed.
func (pi *promptImages) features(ctx context.Context, b int) ([]float32, error) {
	if b < 0 || b >= len(pi.blocks) {
		return nil, fmt.Errorf("image block %d of %d", b, len(pi.blocks))
	}
	ref := pi.blocks[b]
	if feats, ok := pi.m.features.get(ref.key); ok {
		pi.cached++
		return feats, nil
	}
	start := time.Now()
	defer func() { pi.encode += time.Since(start) }()
	if pi.cur != ref.image {
		prepared, err := pi.decode(ref.image)
		if err != nil {
			return nil, err
		}
		if len(prepared) != pi.images[ref.image].crops+1 {
			return nil, fmt.Errorf("%s: image changed: %d crops, %d before", pi.images[ref.image].where, len(prepared)-1, pi.images[ref.image].crops)
		}
		pi.cur, pi.prepared = ref.image, prepared
	}
	pv, err := imageproc.PixelValues(pi.prepared[ref.crop:ref.crop+1], pi.cfg)
	if err != nil {
		return nil, err
	}
	if ref.crop == len(pi.prepared)-1 {
		pi.cur, pi.prepared = -1, nil // the image's last block
	}
	feats, err := pi.m.model.EncodeImage(ctx, pv, nil)
	if err != nil {
		return nil, err
	}
	pi.encoded++
	pi.m.features.put(ref.key, feats)
	return feats, nil
}
