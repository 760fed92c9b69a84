package mapjson

import (
	"bytes"
	"testing"
)

// FuzzParseEntry: any JSON as an entry of any of the test object's maps
// gives an element of the map's sizes or an *Error, never a panic.
func FuzzParseEntry(f *testing.F) {
	spec := loadSpec(f)
	for _, s := range []string{
		`{"key": {"prefixlen": 32, "addr": [10, 0, 0, 1]}, "value": {"counter": 5, "name": "x", "": {"word": 1}}}`,
		`{"key": 2, "values": [{"cpu": 1, "value": {"packets": 4}}]}`,
		`{"formatted": {"value": {".data": [{"hits": 99}]}}}`,
		`{"key": ["0x01", "0x00", "0x00", "0x00"], "value": "hi", "formatted": {"key": 1, "value": "hi"}}`,
		`{"key": "BLUE", "value": 3}`,
	} {
		f.Add(s)
	}
	maps := []*Map{}
	for _, ms := range spec.Maps {
		maps = append(maps, describe(ms, 2))
	}
	f.Fuzz(func(t *testing.T, in string) {
		n, err := ParseNode([]byte(in))
		if err != nil {
			return
		}
		for _, m := range maps {
			el, err := m.ParseEntry(n, 1, func([]byte) []byte { return make([]byte, m.ValueBytes()) })
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("map %s: error %T %v", m.Name, err, err)
				}
				continue
			}
			if len(el.Key) != int(m.KeySize) || len(el.Value) != m.ValueBytes() {
				t.Fatalf("map %s: %d-byte key, %d-byte value", m.Name, len(el.Key), len(el.Value))
			}
		}
	})
}

// FuzzFormat: any bytes of a map's sizes format to JSON that parses back
// to them.
func FuzzFormat(f *testing.F) {
	spec := loadSpec(f)
	var maps []*Map
	for _, ms := range spec.Maps {
		maps = append(maps, describe(ms, 2))
	}
	f.Add([]byte("hi\x00there, this is a longer buffer of bytes for the struct value........................................................"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range maps {
			need := int(m.KeySize) + m.ValueBytes()
			if len(b) < need {
				continue
			}
			key, value := b[:m.KeySize], bytes.Clone(b[m.KeySize:need])
			if m.PerCPU() {
				for cpu := range 2 {
					clear(value[cpu*m.Stride()+int(m.ValueSize) : (cpu+1)*m.Stride()])
				}
			}
			out, err := m.AppendEntry(nil, key, value)
			if err != nil {
				t.Fatalf("map %s: %v", m.Name, err)
			}
			n, err := ParseNode(out)
			if err != nil {
				t.Fatalf("map %s: invalid JSON %s: %v", m.Name, out, err)
			}
			el, err := m.ParseEntry(n, 1, nil)
			if err != nil {
				t.Fatalf("map %s: %s: %v", m.Name, out, err)
			}
			if !bytes.Equal(el.Key, key) || !bytes.Equal(el.Value, value) {
				t.Fatalf("map %s: %s parsed to % x = % x", m.Name, out, el.Key, el.Value)
			}
		}
	})
}
