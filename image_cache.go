package medgemma

import (
	"container/list"
	"sync"
)

// DefaultImageCacheBytes bounds the encoded-image cache unless
// LoadOptions.ImageCacheBytes says otherwise: about 100 images of the 4B
// model (256 x 2560 float32 each), 46 of the 27B.
const DefaultImageCacheBytes = 256 << 20

// featureCache keeps the features of recently encoded image blocks, keyed by
// the block's content and preparation, least recently used first out, so
// that an image sent again (a conversation resent whole, the same study in
// several questions) is not encoded again. Safe for concurrent use; the
// cached slices are shared and must not be written.
type featureCache struct {
	mu          sync.Mutex
	limit, size int64
	order       *list.List // of *cacheEntry, most recent first
	items       map[[32]byte]*list.Element
}

type cacheEntry struct {
	key   [32]byte
	feats []float32
}

// newFeatureCache returns a cache of at most limit bytes; nil when limit is
// not positive (no cache).
func newFeatureCache(limit int64) *featureCache {
	if limit <= 0 {
		return nil
	}
	return &featureCache{limit: limit, order: list.New(), items: map[[32]byte]*list.Element{}}
}

func (c *featureCache) get(key [32]byte) ([]float32, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).feats, true
}

func (c *featureCache) put(key [32]byte, feats []float32) {
	n := int64(len(feats)) * 4
	if c == nil || n > c.limit {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[key] = c.order.PushFront(&cacheEntry{key, feats})
	c.size += n
	for c.size > c.limit {
		last := c.order.Back()
		ent := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.items, ent.key)
		c.size -= int64(len(ent.feats)) * 4
	}
}

// bytes is what the cache holds now.
func (c *featureCache) bytes() int64 {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.size
}
