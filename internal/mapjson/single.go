package mapjson

import "errors"

// ParseKey reads a key given on its own (a command line's KEY): hex bytes
// as AppendEntry prints them, or a value typed as the map's key type. The
// error is an *Error naming the field.
func (m *Map) ParseKey(n *Node) ([]byte, error) {
	b, err := m.bytesOrTyped(n, m.Key, int(m.KeySize), nil)
	if err != nil {
		return nil, m.single(in("key", err))
	}
	return b, nil
}

// ParseValue reads a value given on its own (a command line's VALUE) onto
// base (the element's current value, every CPU's for per-CPU maps; nil for
// zeros): hex bytes or typed, as "value" of an entry; for per-CPU maps
// one value is every CPU's, and {"values": [{"cpu": N, "value": V}, ...]}
// sets CPUs one by one. The error is an *Error naming the field.
func (m *Map) ParseValue(n *Node, base []byte) ([]byte, error) {
	if m.holdsObjects() {
		return nil, m.single(errors.New("the map's values are programs or maps, not bytes"))
	}
	start := make([]byte, m.ValueBytes())
	if len(base) == len(start) {
		copy(start, base)
	}
	entry := &Node{Kind: 'o', Keys: []string{"value"}, Values: []*Node{n}}
	if vs, ok := n.Get("values"); ok && len(n.Keys) == 1 {
		entry.Keys[0], entry.Values[0] = "values", vs
	}
	b, err := m.valueForms(entry, "", start, false)
	if err != nil {
		return nil, m.single(err)
	}
	return b, nil
}

func (m *Map) single(err error) error {
	e := &Error{Map: m.Name, Err: err}
	var pe *pathError
	if errors.As(err, &pe) {
		e.Field, e.Err = joinPath(pe.path), pe.err
	}
	return e
}
