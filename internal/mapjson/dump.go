package mapjson

import "fmt"

// Dump is the entries of one map in a document of dumps.
type Dump struct {
	Name    string
	Entries []*Node
}

// Dumps returns the maps of a document of dumps, an object whose "maps"
// member holds each map's entries by name, as `waggle run --map-dump
// --json` prints it:
//
//	{"maps": {"blocklist": [{"key": [...], "value": [...]}, ...], ...}}
//
// Other members of the object are ignored (a run's whole --json output
// is such a document). ok is false when n has no "maps" member.
func Dumps(n *Node) (dumps []Dump, ok bool, err error) {
	m, ok := n.Get("maps")
	if !ok {
		return nil, false, nil
	}
	if m.Kind != 'o' {
		return nil, true, fmt.Errorf(`"maps" is %s, want an object of arrays of entries by map name`, m.kindName())
	}
	seen := map[string]bool{}
	for i, name := range m.Keys {
		v := m.Values[i]
		if v.Kind != 'a' {
			return nil, true, fmt.Errorf("map %s: is %s, want an array of entries", name, v.kindName())
		}
		if seen[name] {
			return nil, true, fmt.Errorf("map %s: given twice", name)
		}
		seen[name] = true
		dumps = append(dumps, Dump{Name: name, Entries: v.Items})
	}
	return dumps, true, nil
}
