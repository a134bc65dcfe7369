package grammar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// A jsonValue is a decoded JSON value that keeps its objects' member order
// (a schema's properties come out in the order written).
type jsonValue struct {
	kind    byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	members []jsonMember
	items   []*jsonValue
	str     string
	num     json.Number
	boolean bool
}

type jsonMember struct {
	key   string
	value *jsonValue
}

// get returns the member named key, or nil.
func (v *jsonValue) get(key string) *jsonValue {
	for _, m := range v.members {
		if m.key == key {
			return m.value
		}
	}
	return nil
}

// Limits on a schema document.
const (
	MaxSchemaBytes = 1 << 20
	maxSchemaDepth = 64
)

// parseOrdered decodes one JSON document.
func parseOrdered(data []byte) (*jsonValue, error) {
	if len(data) > MaxSchemaBytes {
		return nil, grammarError("schema of %d bytes; at most %d", len(data), MaxSchemaBytes)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	v, err := readValue(d, 0)
	if err != nil {
		return nil, grammarError("schema is not valid JSON: %v", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return nil, grammarError("schema has data after its end")
	}
	return v, nil
}

func readValue(d *json.Decoder, depth int) (*jsonValue, error) {
	if depth > maxSchemaDepth {
		return nil, fmt.Errorf("nested more than %d deep", maxSchemaDepth)
	}
	t, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := t.(type) {
	case json.Delim:
		switch t {
		case '{':
			v := &jsonValue{kind: 'o'}
			for d.More() {
				k, err := d.Token()
				if err != nil {
					return nil, err
				}
				key, _ := k.(string)
				for _, m := range v.members {
					if m.key == key {
						return nil, fmt.Errorf("key %q twice in one object", key)
					}
				}
				val, err := readValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				v.members = append(v.members, jsonMember{key, val})
			}
			_, err := d.Token()
			return v, err
		case '[':
			v := &jsonValue{kind: 'a'}
			for d.More() {
				val, err := readValue(d, depth+1)
				if err != nil {
					return nil, err
				}
				v.items = append(v.items, val)
			}
			_, err := d.Token()
			return v, err
		}
	case string:
		return &jsonValue{kind: 's', str: t}, nil
	case json.Number:
		return &jsonValue{kind: 'n', num: t}, nil
	case bool:
		return &jsonValue{kind: 'b', boolean: t}, nil
	case nil:
		return &jsonValue{kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected %v", t)
}

// encode writes v as compact JSON (strings escaped as encoding/json does,
// without HTML escaping), member order kept.
func (v *jsonValue) encode(b *bytes.Buffer) {
	switch v.kind {
	case 'o':
		b.WriteByte('{')
		for i, m := range v.members {
			if i > 0 {
				b.WriteByte(',')
			}
			encodeString(b, m.key)
			b.WriteByte(':')
			m.value.encode(b)
		}
		b.WriteByte('}')
	case 'a':
		b.WriteByte('[')
		for i, it := range v.items {
			if i > 0 {
				b.WriteByte(',')
			}
			it.encode(b)
		}
		b.WriteByte(']')
	case 's':
		encodeString(b, v.str)
	case 'n':
		b.WriteString(v.num.String())
	case 'b':
		fmt.Fprint(b, v.boolean)
	case 'z':
		b.WriteString("null")
	}
}

func encodeString(b *bytes.Buffer, s string) {
	e := json.NewEncoder(b)
	e.SetEscapeHTML(false)
	_ = e.Encode(s)         // a string always encodes
	b.Truncate(b.Len() - 1) // the encoder's newline
}
