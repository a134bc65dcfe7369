package chat

import (
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/medgemma/medgemma/internal/errkind"
)

// Token strings of the Gemma 3 turn format and image blocks.
const (
	BOS          = "<bos>"
	StartOfTurn  = "<start_of_turn>"
	EndOfTurn    = "<end_of_turn>"
	StartOfImage = "<start_of_image>"
	EndOfImage   = "<end_of_image>"
	ImageToken   = "<image_soft_token>"
)

// ErrRolesAlternate is the chat template's error, word for word, when the
// turns after the system message are not user, assistant, user, ...
//
//lint:ignore ST1005 the template's message, word for word
var ErrRolesAlternate = errors.New("Conversation roles must alternate user/assistant/user/assistant/...")

// ErrInvalidConversation is the kind (errors.Is) of the errors Render,
// Expand and Encode return for a conversation the template cannot render.
var ErrInvalidConversation = errors.New("invalid conversation")

// Render returns the prompt text that MedGemma's chat template produces, with
// each image as one <start_of_image> (Expand turns those into image blocks).
// The template's rules:
//
//   - the text starts with <bos>;
//   - a leading system message is folded into the first user turn, followed by
//     a blank line; its text is used as is (not trimmed);
//   - the other messages must alternate user, assistant, user, ...;
//     "assistant" is written as "model";
//   - each text part is trimmed of surrounding whitespace; parts are joined
//     with nothing in between;
//   - each turn ends with "<end_of_turn>\n"; with addGenerationPrompt the text
//     ends with "<start_of_turn>model\n".
//
// Where the template would silently produce something odd, Render returns an
// error instead: a system message that is not first, a system message with an
// image or several parts, unknown roles, no user message, and text that
// contains the image tokens' own strings.
func Render(msgs []Message, addGenerationPrompt bool) (string, error) {
	text, err := render(msgs, addGenerationPrompt)
	return text, errkind.With(ErrInvalidConversation, err)
}

func render(msgs []Message, addGenerationPrompt bool) (string, error) {
	if len(msgs) == 0 {
		return "", errors.New("chat: no messages")
	}
	var b strings.Builder
	b.WriteString(BOS)
	prefix := ""
	turns := msgs
	offset := 0
	if msgs[0].Role == RoleSystem {
		sys, err := systemText(msgs[0])
		if err != nil {
			return "", err
		}
		prefix = sys + "\n\n"
		turns, offset = msgs[1:], 1
		if len(turns) == 0 {
			return "", errors.New("chat: a system message needs a user message after it")
		}
	}
	for i, m := range turns {
		role := m.Role
		switch role {
		case RoleUser:
		case RoleAssistant, "model":
			role = "model"
		case RoleSystem:
			return "", fmt.Errorf("chat: messages[%d]: a system message must be the first message", i+offset)
		default:
			return "", fmt.Errorf("chat: messages[%d]: unknown role %q (system, user, assistant)", i+offset, m.Role)
		}
		if (m.Role == RoleUser) != (i%2 == 0) {
			return "", fmt.Errorf("chat: messages[%d]: %w", i+offset, ErrRolesAlternate)
		}
		b.WriteString(StartOfTurn)
		b.WriteString(role)
		b.WriteByte('\n')
		if i == 0 {
			b.WriteString(prefix)
		}
		for j, p := range m.Content {
			switch p.Type {
			case TypeImage:
				b.WriteString(StartOfImage)
			case TypeText:
				if err := checkReserved(p.Text); err != nil {
					return "", fmt.Errorf("chat: messages[%d] part %d: %w", i+offset, j, err)
				}
				b.WriteString(strings.TrimFunc(p.Text, pyIsSpace))
			default:
				return "", fmt.Errorf("chat: messages[%d] part %d: unknown part type %q", i+offset, j, p.Type)
			}
		}
		b.WriteString(EndOfTurn)
		b.WriteByte('\n')
	}
	if addGenerationPrompt {
		b.WriteString(StartOfTurn + "model\n")
	}
	return b.String(), nil
}

// systemText is the system message's text: the template uses the content
// string, or the text of its first part.
func systemText(m Message) (string, error) {
	if len(m.Content) != 1 || m.Content[0].Type != TypeText {
		return "", errors.New("chat: messages[0]: a system message must have exactly one text part (the Gemma template reads only the first)")
	}
	text := m.Content[0].Text
	if err := checkReserved(text); err != nil {
		return "", fmt.Errorf("chat: messages[0]: %w", err)
	}
	return text, nil
}

// checkReserved refuses text that spells the image tokens: they would be read
// as image placeholders with no image behind them.
func checkReserved(text string) error {
	for _, tok := range []string{StartOfImage, EndOfImage, ImageToken} {
		if strings.Contains(text, tok) {
			return fmt.Errorf("text contains %q, which only an image part may produce", tok)
		}
	}
	return nil
}

// pyIsSpace is Python's str.isspace for one character, which Jinja's trim
// filter uses: Unicode white space plus the separators U+001C..U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}
