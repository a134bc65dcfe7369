// Package chat turns a conversation into the token ids MedGemma reads: it
// renders the Gemma turn format exactly as the checkpoint's chat template does
// and expands each image into its soft tokens as transformers' Gemma3Processor
// does (with the pan-and-scan prompt when crops are used).
//
// Message and Part are the conversation types that the command line, the Go
// API and the HTTP server share. Their JSON form accepts what transformers'
// apply_chat_template and OpenAI clients write: content as a string or as a
// list of parts, and image parts as {"type":"image","image":...} (or the keys
// "url" and "path") and {"type":"image_url","image_url":{"url":...}}.
package chat

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Roles of a conversation. "model" is accepted as a synonym of "assistant".
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// PartType says what a Part holds.
type PartType string

// Part types.
const (
	TypeText  PartType = "text"
	TypeImage PartType = "image"
)

// Part is one piece of a message's content: text, or an image.
type Part struct {
	Type PartType
	Text string
	// Image names the image: a file path, a file:// URL, a data: URI or an
	// http(s) URL, as the user gave it. It may be empty where only the
	// image's place in the prompt matters (tokenizing a conversation).
	Image string
}

// Message is one turn of a conversation.
type Message struct {
	Role    string
	Content []Part
}

// Text returns a text part.
func Text(s string) Part { return Part{Type: TypeText, Text: s} }

// Image returns an image part naming its source.
func Image(source string) Part { return Part{Type: TypeImage, Image: source} }

// partJSON covers every key an image or text part may use.
type partJSON struct {
	Type     string          `json:"type"`
	Text     *string         `json:"text,omitempty"`
	Image    json.RawMessage `json:"image,omitempty"`
	URL      string          `json:"url,omitempty"`
	Path     string          `json:"path,omitempty"`
	ImageURL json.RawMessage `json:"image_url,omitempty"`
}

// UnmarshalJSON reads a part as transformers or OpenAI clients write it.
func (p *Part) UnmarshalJSON(data []byte) error {
	var j partJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	switch j.Type {
	case "text", "input_text":
		if j.Text == nil {
			return fmt.Errorf(`a %q part has no "text"`, j.Type)
		}
		*p = Text(*j.Text)
	case "image":
		src := j.URL
		if src == "" {
			src = j.Path
		}
		if len(j.Image) > 0 && string(j.Image) != "null" {
			if err := json.Unmarshal(j.Image, &src); err != nil {
				return fmt.Errorf(`an image part's "image" must be a string (a path, file:// or http(s) URL or data: URI): %w`, err)
			}
		}
		*p = Image(src)
	case "image_url":
		var u struct {
			URL string `json:"url"`
		}
		if len(j.ImageURL) > 0 && j.ImageURL[0] == '"' {
			if err := json.Unmarshal(j.ImageURL, &u.URL); err != nil {
				return err
			}
		} else if err := json.Unmarshal(j.ImageURL, &u); err != nil {
			return fmt.Errorf(`an image_url part needs "image_url": {"url": ...}: %w`, err)
		}
		if u.URL == "" {
			return fmt.Errorf(`an image_url part has no url`)
		}
		*p = Image(u.URL)
	case "":
		return fmt.Errorf(`a content part has no "type"`)
	default:
		return fmt.Errorf("content part type %q is not supported (text, image, image_url)", j.Type)
	}
	return nil
}

// MarshalJSON writes the transformers form.
func (p Part) MarshalJSON() ([]byte, error) {
	if p.Type == TypeImage {
		return json.Marshal(struct {
			Type  string `json:"type"`
			Image string `json:"image,omitempty"`
		}{"image", p.Image})
	}
	return json.Marshal(struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}{string(p.Type), p.Text})
}

type messageJSON struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// UnmarshalJSON reads {"role": ..., "content": string or [parts]}.
func (m *Message) UnmarshalJSON(data []byte) error {
	var j messageJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return err
	}
	if j.Role == "" {
		return fmt.Errorf(`a message has no "role"`)
	}
	m.Role = j.Role
	m.Content = nil
	c := bytes.TrimSpace(j.Content)
	switch {
	case len(c) == 0 || string(c) == "null":
		return fmt.Errorf(`%s message has no "content"`, j.Role)
	case c[0] == '"':
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return err
		}
		m.Content = []Part{Text(s)}
	case c[0] == '[':
		if err := json.Unmarshal(c, &m.Content); err != nil {
			return fmt.Errorf("%s message content: %w", j.Role, err)
		}
	default:
		return fmt.Errorf("%s message content must be a string or a list of parts", j.Role)
	}
	return nil
}

// MarshalJSON writes content as a list of parts.
func (m Message) MarshalJSON() ([]byte, error) {
	content := m.Content
	if content == nil {
		content = []Part{}
	}
	return json.Marshal(struct {
		Role    string `json:"role"`
		Content []Part `json:"content"`
	}{m.Role, content})
}

// ParseMessages reads a JSON array of messages (a leading UTF-8 byte order
// mark, which some editors write, is skipped).
func ParseMessages(data []byte) ([]Message, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("messages: want a JSON array of messages: %w", err)
	}
	msgs := make([]Message, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &msgs[i]); err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
	}
	return msgs, nil
}
