package model

import (
	"crypto/sha256"
	"encoding/binary"
)

// SeqKV is one sequence's view of a KVPool: the blocks that hold its
// positions, per part, and the hashes of its complete blocks. Positions are
// keyed by their token id and, for image soft tokens, the key of their
// image block (its content and preparation), so that two sequences share a
// block only when everything up to its end is the same.
type SeqKV struct {
	pool      *KVPool
	table     [2][]int32 // per part and logical block: the physical block, -1 when not held
	slideFrom int        // first logical block whose sliding part is still held
	len       int
	hashes    [][32]byte // chain hash of each complete block (while keyed)
	keyed     bool       // every position so far has a key: complete blocks are hashed
	pending   []byte     // the keys of the current block's positions
	buf       []byte
	lastGroup int32 // image group of the last position, -1 if none
}

// NewSeq returns an empty sequence of the pool.
func (p *KVPool) NewSeq() *SeqKV {
	return &SeqKV{pool: p, keyed: true, lastGroup: -1}
}

// Len is the number of positions computed.
func (s *SeqKV) Len() int { return s.len }

// Blocks is how many blocks the sequence holds in each part.
func (s *SeqKV) Blocks() (full, sliding int) {
	for kind, t := range s.table {
		for _, b := range t {
			if b >= 0 {
				if kind == 0 {
					full++
				} else {
					sliding++
				}
			}
		}
	}
	return full, sliding
}

// Bytes is the memory of the blocks the sequence holds.
func (s *SeqKV) Bytes() int64 {
	full, sliding := s.Blocks()
	var n int64
	for kind, count := range [2]int{full, sliding} {
		if pt := s.pool.parts[kind]; pt != nil {
			n += int64(count) * int64(pt.blockSize*pt.rowBytes) * 2 * int64(pt.layers)
		}
	}
	return n
}

// Release gives back every block; the sequence is then empty.
func (s *SeqKV) Release() {
	for kind, t := range s.table {
		for _, b := range t {
			if b >= 0 {
				s.pool.parts[kind].release(b)
			}
		}
		s.table[kind] = s.table[kind][:0]
	}
	s.len, s.slideFrom, s.keyed, s.lastGroup = 0, 0, true, -1
	s.hashes, s.pending = s.hashes[:0], s.pending[:0]
}

// Fork returns a sequence that shares every block of s (the choices of one
// prompt): a shared block is copied before either writes into it.
func (s *SeqKV) Fork() *SeqKV {
	f := &SeqKV{pool: s.pool, slideFrom: s.slideFrom, len: s.len, keyed: s.keyed, lastGroup: s.lastGroup,
		hashes: append([][32]byte(nil), s.hashes...), pending: append([]byte(nil), s.pending...)}
	for kind, t := range s.table {
		f.table[kind] = append([]int32(nil), t...)
		for _, b := range t {
			if b >= 0 {
				s.pool.parts[kind].retain(b)
			}
		}
	}
	return f
}

// tokenKey appends position's key: the id, then an image block's key.
func tokenKey(dst []byte, id int32, image *[32]byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(id))
	if image != nil {
		dst = append(dst, image[:]...)
	}
	return dst
}

// chain is the hash of a block after prev: sha256(prev, the block's keys).
func chain(buf []byte, prev [32]byte, keys []byte) ([32]byte, []byte) {
	buf = append(append(buf[:0], prev[:]...), keys...)
	return sha256.Sum256(buf), buf
}

// Reserve makes positions len..len+n writable: blocks taken for the new
// positions in each part, and a block the sequence shares (or that is
// cached) copied before it is written. ErrKVFull when a part has none left
// (the blocks taken so far stay held). Forward reserves what it writes; a
// scheduler reserves first to learn whether a step fits.
func (s *SeqKV) Reserve(n int) error {
	B := s.pool.blockSize
	first, last := s.len/B, (s.len+n-1)/B
	for kind, pt := range s.pool.parts {
		if pt == nil {
			continue
		}
		t := s.table[kind]
		for b := first; b <= last; b++ {
			if b < len(t) && t[b] >= 0 {
				if old := t[b]; pt.ref[old] > 1 || pt.hashed[old] {
					nb, ok := pt.alloc()
					if !ok {
						return ErrKVFull
					}
					pt.copyBlock(nb, old, s.len-b*B)
					pt.release(old)
					t[b] = nb
				}
				continue
			}
			nb, ok := pt.alloc()
			if !ok {
				s.table[kind] = t
				return ErrKVFull
			}
			for len(t) <= b {
				t = append(t, -1)
			}
			t[b] = nb
		}
		s.table[kind] = t
	}
	return nil
}

// advance records that in's positions, from len on, have been written:
// complete blocks are hashed and put in the prefix cache, and sliding
// blocks that no later query can reach are given back.
func (s *SeqKV) advance(in *Input) {
	B := s.pool.blockSize
	for i, id := range in.IDs {
		if s.keyed {
			var image *[32]byte
			if in.Groups != nil && in.Groups[i] >= 0 {
				if in.ImageKey == nil {
					s.keyed = false
				} else if k, ok := in.ImageKey(in.Groups[i]); ok {
					image = &k
				} else {
					s.keyed = false
				}
			}
			s.pending = tokenKey(s.pending, id, image)
		}
		s.len++
		if s.len%B != 0 {
			continue
		}
		if s.keyed {
			var prev [32]byte
			if len(s.hashes) > 0 {
				prev = s.hashes[len(s.hashes)-1]
			}
			var h [32]byte
			h, s.buf = chain(s.buf, prev, s.pending)
			s.hashes = append(s.hashes, h)
			b := s.len/B - 1
			for kind, pt := range s.pool.parts {
				if pt != nil && b < len(s.table[kind]) && s.table[kind][b] >= 0 {
					pt.register(s.table[kind][b], h)
				}
			}
		}
		s.pending = s.pending[:0]
	}
	if n := len(in.IDs); n > 0 && in.Groups != nil {
		s.lastGroup = in.Groups[n-1]
	} else {
		s.lastGroup = -1
	}
	s.dropOutOfWindow()
}

// dropOutOfWindow gives back the sliding blocks that end before the window
// of the next query (at position len).
func (s *SeqKV) dropOutOfWindow() {
	pt := s.pool.parts[1]
	if pt == nil {
		return
	}
	B, t := s.pool.blockSize, s.table[1]
	for ; s.slideFrom < len(t) && (s.slideFrom+1)*B <= s.len-s.pool.window+1; s.slideFrom++ {
		if b := t[s.slideFrom]; b >= 0 {
			pt.release(b)
			t[s.slideFrom] = -1
		}
	}
}

// Match makes an empty sequence start with the longest prefix of p that
// the pool has cached, at most limit positions (a caller keeps at least the
// last prompt token to compute), never ending inside an image; it returns
// the positions reused. The full-attention blocks of every reused position
// must be cached, and the sliding blocks of the window before the first new
// position.
func (s *SeqKV) Match(p *Prompt, limit int) int {
	if s.len != 0 {
		return 0
	}
	B := s.pool.blockSize
	full, slide := s.pool.parts[0], s.pool.parts[1]
	blockOf := imageBlocks(p)
	var hashes [][32]byte
	var keys, buf []byte
	var prev [32]byte
	keyOf := func(i int) (*[32]byte, bool) {
		if blockOf == nil || blockOf[i] < 0 {
			return nil, true
		}
		if blockOf[i] >= len(p.ImageKeys) {
			return nil, false // an image without a key: nothing from it on is shared
		}
		return &p.ImageKeys[blockOf[i]], true
	}
blocks:
	for pos := 0; pos+B <= min(limit, len(p.IDs)); pos += B {
		keys = keys[:0]
		for i := pos; i < pos+B; i++ {
			image, ok := keyOf(i)
			if !ok {
				break blocks
			}
			keys = tokenKey(keys, p.IDs[i], image)
		}
		prev, buf = chain(buf, prev, keys)
		if full != nil {
			if _, ok := full.byHash[prev]; !ok {
				break
			}
		}
		hashes = append(hashes, prev)
	}
	m := len(hashes)
	for ; m > 0; m-- {
		if blockOf != nil && m*B < len(p.IDs) && blockOf[m*B] >= 0 && blockOf[m*B] == blockOf[m*B-1] {
			continue // ends inside an image
		}
		if slide == nil {
			break
		}
		ok := true
		for b := s.tailStart(m); b < m && ok; b++ {
			_, ok = slide.byHash[hashes[b]]
		}
		if ok {
			break
		}
	}
	if m == 0 {
		return 0
	}
	for kind, pt := range s.pool.parts {
		if pt == nil {
			continue
		}
		from := 0
		if kind == 1 {
			from = s.tailStart(m)
		}
		t := s.table[kind][:0]
		for b := range m {
			if b < from {
				t = append(t, -1)
				continue
			}
			pb := pt.byHash[hashes[b]]
			pt.retain(pb)
			t = append(t, pb)
		}
		s.table[kind] = t
	}
	s.len, s.hashes, s.slideFrom = m*B, append(s.hashes[:0], hashes[:m]...), s.tailStart(m)
	s.lastGroup = -1
	if blockOf != nil {
		s.lastGroup = int32(blockOf[m*B-1])
	}
	return m * B
}

// tailStart is the first block the next query after m blocks reaches in
// the sliding layers.
func (s *SeqKV) tailStart(m int) int {
	return max(0, m*s.pool.blockSize-s.pool.window+1) / s.pool.blockSize
}

// imageBlocks gives each position of p its image block's index (-1 for
// text), or nil for a prompt without images.
func imageBlocks(p *Prompt) []int {
	if p.TokenTypeIDs == nil {
		return nil
	}
	out := make([]int, len(p.TokenTypeIDs))
	block := -1
	for i, tt := range p.TokenTypeIDs {
		out[i] = -1
		if tt == 1 {
			if i == 0 || p.TokenTypeIDs[i-1] != 1 {
				block++
			}
			out[i] = block
		}
	}
	return out
}
