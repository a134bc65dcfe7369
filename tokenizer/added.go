package tokenizer

// addedMatcher finds added tokens in raw text the way the tokenizers library
// does (Aho-Corasick, leftmost-longest): the match that starts first wins, and
// among matches starting at the same byte the longest. It is a byte trie; the
// table of first bytes lets the scan skip ordinary text quickly.
type addedMatcher struct {
	first [256]bool
	next  map[uint64]int32 // (node<<8 | byte) -> child node
	ids   []int32          // node -> token id ending here, or -1
}

func newAddedMatcher(tokens []addedTokenJSON) addedMatcher {
	m := addedMatcher{next: map[uint64]int32{}, ids: []int32{-1}}
	for _, a := range tokens {
		node := int32(0)
		for i := 0; i < len(a.Content); i++ {
			key := uint64(node)<<8 | uint64(a.Content[i])
			child, ok := m.next[key]
			if !ok {
				child = int32(len(m.ids))
				m.ids = append(m.ids, -1)
				m.next[key] = child
			}
			node = child
		}
		m.ids[node] = a.ID
		m.first[a.Content[0]] = true
	}
	return m
}

// find returns the first added token at or after byte from: its start, end and
// id. ok is false when there is none.
func (m *addedMatcher) find(text string, from int) (start, end int, id int32, ok bool) {
	for i := from; i < len(text); i++ {
		if !m.first[text[i]] {
			continue
		}
		node, bestEnd, bestID := int32(0), -1, int32(-1)
		for j := i; j < len(text); j++ {
			child, ok := m.next[uint64(node)<<8|uint64(text[j])]
			if !ok {
				break
			}
			node = child
			if m.ids[node] >= 0 {
				bestEnd, bestID = j+1, m.ids[node]
			}
		}
		if bestEnd > 0 {
			return i, bestEnd, bestID, true
		}
	}
	return 0, 0, 0, false
}
