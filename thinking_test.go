package medgemma

import (
	"strings"
	"testing"

	"github.com/medgemma/medgemma/chat"
)

func TestThinking(t *testing.T) {
	msgs := withThinkingInstruction([]chat.Message{{Role: "system", Content: []chat.Part{chat.Text("Be brief.")}}, {Role: "user", Content: []chat.Part{chat.Text("q")}}})
	if got := msgs[0].Content[0].Text; got != "SYSTEM INSTRUCTION: think silently if needed. Be brief." {
		t.Errorf("system prompt %q", got)
	}
	msgs = withThinkingInstruction([]chat.Message{{Role: "user", Content: []chat.Part{chat.Text("q")}}})
	if len(msgs) != 2 || msgs[0].Role != "system" || msgs[0].Content[0].Text != ThinkingInstruction {
		t.Errorf("added system prompt: %+v", msgs)
	}
	full := "<unused94>thought\nThe film shows consolidation.<unused95>Right lower lobe pneumonia."
	if th, ans := splitThought(full); th != "The film shows consolidation." || ans != "Right lower lobe pneumonia." {
		t.Errorf("split: %q / %q", th, ans)
	}
	if th, ans := splitThought("No thought here."); th != "" || ans != "No thought here." {
		t.Errorf("no thought: %q / %q", th, ans)
	}
	for _, show := range []bool{false, true} {
		var out strings.Builder
		f := &thoughtFilter{show: show, next: func(s string) error { out.WriteString(s); return nil }}
		for _, piece := range []string{"<unu", "sed94>tho", "ught\nThe film", " shows consolidation.<unu", "sed95>", "\n", "\n", "Right lower", " lobe pneumonia."} {
			f.write(piece)
		}
		f.flush()
		want := "Right lower lobe pneumonia."
		if show {
			want = "\nThe film shows consolidation.\n\nRight lower lobe pneumonia."
		}
		if out.String() != want {
			t.Errorf("show=%v: streamed %q, want %q", show, out.String(), want)
		}
	}
	// The thought to its own sink (a server's reasoning_content).
	var thought, answer strings.Builder
	f := &thoughtFilter{next: func(s string) error { answer.WriteString(s); return nil }, thought: func(s string) error { thought.WriteString(s); return nil }}
	for _, piece := range []string{"<unused94>thought\nA", "B<unused", "95>\n\nC", "D"} {
		f.write(piece)
	}
	f.flush()
	if thought.String() != "\nAB" || answer.String() != "CD" {
		t.Errorf("thought %q, answer %q", thought.String(), answer.String())
	}
	var out strings.Builder
	f = &thoughtFilter{next: func(s string) error { out.WriteString(s); return nil }}
	f.write("<u")
	f.write("nrelated answer")
	f.flush()
	if out.String() != "<unrelated answer" {
		t.Errorf("a prefix that is not the marker: %q", out.String())
	}
}
