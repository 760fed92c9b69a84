package mapjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Node is a JSON value that keeps what encoding/json's maps lose: the
// order of an object's keys, and repeated keys (bpftool prints every
// anonymous member of a struct under the key "").
type Node struct {
	// Kind is one of 'o' (object), 'a' (array), 's' (string), 'n'
	// (number), 'b' (bool) and 'z' (null).
	Kind byte
	// Text is a string's value or a number's text.
	Text string
	Bool bool
	// Items are an array's elements.
	Items []*Node
	// Keys and Values are an object's members, in order.
	Keys   []string
	Values []*Node
}

// Get returns the value of an object's first member named key.
func (n *Node) Get(key string) (*Node, bool) {
	if n.Kind != 'o' {
		return nil, false
	}
	for i, k := range n.Keys {
		if k == key {
			return n.Values[i], true
		}
	}
	return nil, false
}

func (n *Node) kindName() string {
	switch n.Kind {
	case 'o':
		return "an object"
	case 'a':
		return "an array"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

// ParseNode reads one JSON value. Errors give the line and column.
func ParseNode(data []byte) (*Node, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	n, err := readNode(d, 0)
	if err != nil {
		return nil, at(data, d, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, at(data, d, errors.New("text after the JSON value"))
	}
	return n, nil
}

// ParseNodes reads a sequence of JSON values (as a stream of documents).
func ParseNodes(data []byte) ([]*Node, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var out []*Node
	for {
		n, err := readNode(d, 0)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, at(data, d, err)
		}
		out = append(out, n)
	}
}

// at prefixes a parse error with where the decoder stopped.
func at(data []byte, d *json.Decoder, err error) error {
	off := d.InputOffset()
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	off = min(max(off, 0), int64(len(data)))
	line := 1 + bytes.Count(data[:off], []byte{'\n'})
	col := off - int64(bytes.LastIndexByte(data[:off], '\n'))
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

func readNode(d *json.Decoder, depth int) (*Node, error) {
	n, err := readValue(d, depth)
	if err == io.EOF && depth > 0 {
		err = io.ErrUnexpectedEOF // inside an object or array
	}
	return n, err
}

func readValue(d *json.Decoder, depth int) (*Node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("JSON nests deeper than %d levels", maxDepth)
	}
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			n := &Node{Kind: 'o'}
			for d.More() {
				kt, err := d.Token()
				if err != nil {
					return nil, closing(err)
				}
				k, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key %v is not a string", kt)
				}
				v, err := readNode(d, depth+1)
				if err != nil {
					return nil, err
				}
				n.Keys, n.Values = append(n.Keys, k), append(n.Values, v)
			}
			if _, err := d.Token(); err != nil { // '}'
				return nil, closing(err)
			}
			return n, nil
		case '[':
			n := &Node{Kind: 'a'}
			for d.More() {
				v, err := readNode(d, depth+1)
				if err != nil {
					return nil, err
				}
				n.Items = append(n.Items, v)
			}
			if _, err := d.Token(); err != nil { // ']'
				return nil, closing(err)
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected %v", t)
	case string:
		return &Node{Kind: 's', Text: t}, nil
	case json.Number:
		return &Node{Kind: 'n', Text: t.String()}, nil
	case bool:
		return &Node{Kind: 'b', Bool: t}, nil
	case nil:
		return &Node{Kind: 'z'}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// closing is the error of a container's missing end.
func closing(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
