package medgemma

import (
	"strings"

	"github.com/medgemma/medgemma/chat"
	"github.com/medgemma/medgemma/generate"
)

// MedGemma 27B thinks when its system prompt starts with this instruction;
// the thought comes first, between these markers.
const (
	ThinkingInstruction = "SYSTEM INSTRUCTION: think silently if needed."
	thoughtStartToken   = "<unused94>"
	thoughtStart        = thoughtStartToken + "thought"
	thoughtEnd          = "<unused95>"
)

// withThinkingInstruction puts the instruction at the start of the system
// prompt (adding one when there is none).
func withThinkingInstruction(msgs []chat.Message) []chat.Message {
	out := append([]chat.Message(nil), msgs...)
	if len(out) > 0 && out[0].Role == chat.RoleSystem && len(out[0].Content) == 1 && out[0].Content[0].Type == chat.TypeText {
		out[0] = chat.Message{Role: chat.RoleSystem, Content: []chat.Part{chat.Text(ThinkingInstruction + " " + out[0].Content[0].Text)}}
		return out
	}
	return append([]chat.Message{{Role: chat.RoleSystem, Content: []chat.Part{chat.Text(ThinkingInstruction)}}}, out...)
}

// splitThought separates a leading thought from the answer.
func splitThought(text string) (thought, answer string) {
	rest, ok := strings.CutPrefix(text, thoughtStart)
	if !ok {
		return "", text
	}
	t, a, found := strings.Cut(rest, thoughtEnd)
	if !found {
		return strings.TrimSpace(t), "" // still thinking when generation ended
	}
	return strings.TrimSpace(t), strings.TrimLeft(a, "\n ")
}

// thoughtFilter streams the answer to next and the thought to thought (when
// set), and to next too when show.
type thoughtFilter struct {
	show    bool
	next    func(string) error
	thought func(string) error
	buf     strings.Builder
	decided bool // whether the output starts with a thought is known
	inside  bool // within the thought
	trim    bool // the thought just ended: drop leading blank lines
}

func (f *thoughtFilter) emit(s string) error {
	if f.next == nil || s == "" {
		return nil
	}
	return f.next(s)
}

func (f *thoughtFilter) write(s string) error {
	if f.decided && !f.inside {
		return f.answer(s) // past the thought: straight through
	}
	f.buf.WriteString(s)
	text := f.buf.String()
	if !f.decided {
		if len(text) < len(thoughtStart) && strings.HasPrefix(thoughtStart, text) {
			return nil // could still be the marker
		}
		f.decided = true
		f.buf.Reset()
		if !strings.HasPrefix(text, thoughtStart) {
			return f.emit(text)
		}
		f.inside = true
		text = text[len(thoughtStart):]
		f.buf.WriteString(text)
	}
	if i := strings.Index(text, thoughtEnd); i >= 0 {
		f.inside, f.trim = false, true
		f.buf.Reset()
		if err := f.emitThought(text[:i]); err != nil {
			return err
		}
		if f.show {
			if err := f.emit("\n\n"); err != nil {
				return err
			}
		}
		return f.answer(text[i+len(thoughtEnd):])
	}
	if f.show || f.thought != nil {
		// Keep back what could be the start of the end marker.
		keep := 0
		for k := min(len(thoughtEnd)-1, len(text)); k > 0; k-- {
			if strings.HasSuffix(text, thoughtEnd[:k]) {
				keep = k
				break
			}
		}
		f.buf.Reset()
		f.buf.WriteString(text[len(text)-keep:])
		return f.emitThought(text[:len(text)-keep])
	}
	return nil
}

// emitThought passes thought text on.
func (f *thoughtFilter) emitThought(s string) error {
	if s == "" {
		return nil
	}
	if f.thought != nil {
		if err := f.thought(s); err != nil {
			return err
		}
	}
	if f.show {
		return f.emit(s)
	}
	return nil
}

// answer streams answer text, dropping the blank lines and spaces between
// the thought and the answer, in whichever pieces they come (as
// splitThought does for the final text).
func (f *thoughtFilter) answer(s string) error {
	if f.trim {
		s = strings.TrimLeft(s, "\n ")
		if s == "" {
			return nil
		}
		f.trim = false
	}
	return f.emit(s)
}

func (f *thoughtFilter) flush() error {
	text := f.buf.String()
	f.buf.Reset()
	if f.inside {
		return f.emitThought(text) // still thinking when generation ended
	}
	return f.emit(text)
}

// thoughtMarkers are the thought's start and end tokens for a grammar to
// wait behind (generate.Options.Thought): the answer it constrains comes
// after the thought. Nil without a grammar, or when the vocabulary lacks
// the markers (then the grammar applies from the first token).
func (m *Model) thoughtMarkers(o generate.Options) []int32 {
	if o.Grammar == nil {
		return nil
	}
	start, ok1 := m.tok.ID(thoughtStartToken)
	end, ok2 := m.tok.ID(thoughtEnd)
	if !ok1 || !ok2 {
		return nil
	}
	return []int32{start, end}
}
