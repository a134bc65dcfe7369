package generate

import "strings"

// stopper holds generated text back until it cannot be the start of a stop
// string, and finds the first stop string, which is not emitted.
type stopper struct {
	stops   []string
	maxLen  int
	text    strings.Builder
	emitted int
}

func newStopper(stops []string) *stopper {
	s := &stopper{}
	for _, st := range stops {
		if st != "" {
			s.stops = append(s.stops, st)
			s.maxLen = max(s.maxLen, len(st))
		}
	}
	return s
}

// add appends generated text and returns what may be emitted now, and
// whether a stop string was reached (the text is then final).
func (s *stopper) add(piece string) (emit string, stopped bool) {
	before := s.text.Len()
	s.text.WriteString(piece)
	all := s.text.String()
	if len(s.stops) == 0 {
		emit = all[s.emitted:]
		s.emitted = len(all)
		return emit, false
	}
	// A stop string can only end in the new piece: search from maxLen back.
	from := max(0, before-s.maxLen+1)
	cut := -1
	for _, st := range s.stops {
		if i := strings.Index(all[from:], st); i >= 0 && (cut < 0 || from+i < cut) {
			cut = from + i
		}
	}
	if cut >= 0 {
		emit = all[s.emitted:max(cut, s.emitted)]
		s.emitted = len(all)
		s.text.Reset()
		s.text.WriteString(all[:cut])
		return emit, true
	}
	// Hold back the longest suffix that is a prefix of a stop string.
	safe := len(all)
	for _, st := range s.stops {
		for k := min(len(st)-1, len(all)); k > 0; k-- {
			if strings.HasSuffix(all, st[:k]) {
				safe = min(safe, len(all)-k)
				break
			}
		}
	}
	if safe > s.emitted {
		emit = all[s.emitted:safe]
		s.emitted = safe
	}
	return emit, false
}

// flush returns the held-back text at the end of generation.
func (s *stopper) flush() string {
	all := s.text.String()
	emit := all[min(s.emitted, len(all)):]
	s.emitted = len(all)
	return emit
}

// final is the full generated text (cut before a stop string).
func (s *stopper) final() string { return s.text.String() }
