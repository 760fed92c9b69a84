package mapjson

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

//go:generate make -C testdata

const typesObject = "testdata/types.o"

// loadSpec reads the test object's spec.
func loadSpec(tb testing.TB) *ebpf.CollectionSpec {
	tb.Helper()
	spec, err := ebpf.LoadCollectionSpec(typesObject)
	if err != nil {
		tb.Fatal(err)
	}
	return spec
}

// describe makes the mapjson description of a map spec.
func describe(ms *ebpf.MapSpec, cpus int) *Map {
	return &Map{Name: ms.Name, Type: ms.Type, KeySize: ms.KeySize, ValueSize: ms.ValueSize,
		MaxEntries: ms.MaxEntries, Key: ms.Key, Value: ms.Value, CPUs: cpus}
}

// element is one key and value (every CPU's, padded) of a map.
type element struct{ key, value []byte }

// samples returns elements for each map of the test object: random bytes
// (with the few constraints the kernel and bpftool impose) and crafted
// ones for strings, enumerators and 128-bit integers.
func samples(tb testing.TB, spec *ebpf.CollectionSpec, cpus int) map[string][]element {
	tb.Helper()
	rng := rand.New(rand.NewPCG(6, 9))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	out := map[string][]element{}
	for name, ms := range spec.Maps {
		m := describe(ms, cpus)
		switch name {
		case ".data", ".rodata", ".bss":
			continue // their contents come from the object
		}
		n := min(int(ms.MaxEntries), 5)
		for i := range n {
			var key []byte
			switch ms.Type {
			case ebpf.Array, ebpf.PerCPUArray:
				key = binary.NativeEndian.AppendUint32(nil, uint32(i))
			case ebpf.LPMTrie:
				key = binary.NativeEndian.AppendUint32(nil, uint32(rng.IntN(33)))
				key = append(key, random(4)...)
			default:
				key = random(int(ms.KeySize))
			}
			value := random(m.ValueBytes())
			if m.PerCPU() { // the padding between CPUs' values reads as zeros
				for cpu := range cpus {
					clear(value[cpu*m.Stride()+int(m.ValueSize) : (cpu+1)*m.Stride()])
				}
			}
			if name == "things" {
				fixBool(tb, ms, value)
			}
			out[name] = append(out[name], element{key, value})
		}
	}
	// Crafted: a string with bytes after its NUL, an unnamed enumerator
	// value, a named negative one, and an all-printable array (no NUL: an
	// array, not a string).
	out["names"][0].value = []byte("hi\x00junk!")
	out["names"][1].value = []byte("abcdefgh")
	out["colors"][0].key = binary.NativeEndian.AppendUint32(nil, 0xfffffffd) // BLUE = -3
	out["colors"][1].key = binary.NativeEndian.AppendUint32(nil, 7)
	return out
}

// fixBool makes the struct value's _Bool 0 or 1 and the three bytes after
// it zero: bpftool reads a bool as a 4-byte int (btf_dumper_int,
// BTF_INT_BOOL), so only such values print the same in both.
func fixBool(tb testing.TB, ms *ebpf.MapSpec, value []byte) {
	st := ms.Value.(*btf.Struct)
	for _, mb := range st.Members {
		if mb.Name == "ok" {
			off := mb.Offset.Bytes()
			value[off] &= 1
			clear(value[off+1 : off+4])
			return
		}
	}
	tb.Fatal("no member ok")
}

// formatAll formats elements as a JSON array, as bpftool map dump -j
// prints a map.
func formatAll(tb testing.TB, m *Map, elems []element) []byte {
	tb.Helper()
	b := []byte{'['}
	for i, e := range elems {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = m.AppendEntry(b, e.key, e.value); err != nil {
			tb.Fatal(err)
		}
	}
	return append(b, ']')
}

// TestRoundTrip: every element formats to JSON that parses back to the
// same bytes, from the whole entry (hex and formatted, which must agree),
// and from the formatted form alone where it is lossless.
func TestRoundTrip(t *testing.T) {
	spec := loadSpec(t)
	for _, cpus := range []int{1, 3} {
		all := samples(t, spec, cpus)
		for name, elems := range all {
			m := describe(spec.Maps[name], cpus)
			if err := m.Check(); err != nil {
				t.Fatal(err)
			}
			doc, err := ParseNode(formatAll(t, m, elems))
			if err != nil {
				t.Fatalf("map %s: %v\n%s", name, err, formatAll(t, m, elems))
			}
			for i, n := range doc.Items {
				el, err := m.ParseEntry(n, i+1, nil)
				if err != nil {
					t.Fatalf("map %s: %v", name, err)
				}
				if !bytes.Equal(el.Key, elems[i].key) || !bytes.Equal(el.Value, elems[i].value) {
					t.Fatalf("map %s, entry %d: parsed % x = % x, want % x = % x", name, i+1, el.Key, el.Value, elems[i].key, elems[i].value)
				}
				// The formatted form alone gives the same bytes where every
				// byte is a field's (not for padding, strings with bytes
				// after their NUL, or bools other than 0 and 1).
				f, _ := n.Get("formatted")
				el2, err := m.ParseEntry(&Node{Kind: 'o', Keys: []string{"formatted"}, Values: []*Node{f}}, i+1, nil)
				if err != nil {
					t.Fatalf("map %s, entry %d, formatted only: %v", name, i+1, err)
				}
				if name != "things" && !(name == "names" && i == 0) &&
					(!bytes.Equal(el2.Key, elems[i].key) || !bytes.Equal(el2.Value, elems[i].value)) {
					t.Fatalf("map %s, entry %d, formatted only: parsed % x = % x, want % x = % x", name, i+1, el2.Key, el2.Value, elems[i].key, elems[i].value)
				}
				// And what it gives formats the same again.
				again, err := m.AppendEntry(nil, el2.Key, el2.Value)
				if err != nil {
					t.Fatal(err)
				}
				an, _ := ParseNode(again)
				af, _ := an.Get("formatted")
				if _, _, _, same := diff(af, f); !same {
					t.Fatalf("map %s, entry %d: formatted %s, parsed and formatted again %s", name, i+1, formatAll(t, m, elems[i:i+1]), again)
				}
			}
		}
	}
}

// TestFormat_text pins the formatted text of crafted elements.
func TestFormat_text(t *testing.T) {
	spec := loadSpec(t)
	for _, tc := range []struct {
		name       string
		cpus       int
		key, value []byte
		want       string
	}{
		{"names", 1, []byte{0, 0, 0, 0}, []byte("hi\x00junk!"),
			`{"key":["0x00","0x00","0x00","0x00"],"value":["0x68","0x69","0x00","0x6a","0x75","0x6e","0x6b","0x21"],"formatted":{"key":0,"value":"hi"}}`},
		{"names", 1, []byte{1, 0, 0, 0}, []byte("ab\x01\x00\x00\x00\x00\x00"),
			`{"key":["0x01","0x00","0x00","0x00"],"value":["0x61","0x62","0x01","0x00","0x00","0x00","0x00","0x00"],"formatted":{"key":1,"value":[97,98,1,0,0,0,0,0]}}`},
		{"colors", 2, []byte{0xfd, 0xff, 0xff, 0xff}, []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0},
			`{"key":["0xfd","0xff","0xff","0xff"],"values":[{"cpu":0,"value":["0x01","0x00","0x00","0x00"]},{"cpu":1,"value":["0x02","0x00","0x00","0x00"]}],"formatted":{"key":"BLUE","values":[{"cpu":0,"value":1},{"cpu":1,"value":2}]}}`},
		{"colors", 1, []byte{9, 0, 0, 0}, make([]byte, 8),
			`{"key":["0x09","0x00","0x00","0x00"],"values":[{"cpu":0,"value":["0x00","0x00","0x00","0x00"]}],"formatted":{"key":9,"values":[{"cpu":0,"value":0}]}}`},
		{"prefixes", 1, []byte{24, 0, 0, 0, 192, 168, 1, 0}, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
			`{"key":["0x18","0x00","0x00","0x00","0xc0","0xa8","0x01","0x00"],"value":["0xff","0xff","0xff","0xff","0xff","0xff","0xff","0xff"],"formatted":{"key":{"prefixlen":24,"addr":[192,168,1,0]},"value":-1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := describe(spec.Maps[tc.name], tc.cpus)
			got, err := m.AppendEntry(nil, tc.key, tc.value)
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s (%v)\nwant %s", got, err, tc.want)
			}
		})
	}
	// Global data: no key type, the section's variables.
	m := describe(spec.Maps[".data"], 1)
	got, err := m.AppendEntry(nil, make([]byte, 4), spec.Maps[".data"].Contents[0].Value.([]byte))
	want := `"formatted":{"value":{".data":[{"hits":7},{"greeting":"hello"}]}}}`
	if err != nil || !strings.HasSuffix(string(got), want) {
		t.Fatalf(".data: %s (%v), want it to end %s", got, err, want)
	}
}

// TestParseEntry_typed: values written by hand, typed, with fields left
// out keeping the base value.
func TestParseEntry_typed(t *testing.T) {
	spec := loadSpec(t)
	things := describe(spec.Maps["things"], 2)
	n, err := ParseNode([]byte(`{"key": {"prefixlen": 32, "addr": [10, 0, 0, 1]},
		"value": {"counter": 5, "name": "eth0", "color": "GREEN", "ok": true, "s8": -128, "s16": -2,
			"low": 7, "mid": "0x1f", "high": 16777215, "word": 16909060, "a": 1, "b": 65535,
			"pts": [{"x": -1, "y": 1}, {"x": 3, "y": -3}], "mac": [2, 0, 0, 0, 0, 1],
			"tag": "x", "ptr": 4096, "wide": "0x1000000000000000000000000000000f"}}`))
	if err != nil {
		t.Fatal(err)
	}
	base := make([]byte, things.ValueBytes())
	for i := range base {
		base[i] = 0xee
	}
	el, err := things.ParseEntry(n, 1, func([]byte) []byte { return base })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(el.Key, []byte{32, 0, 0, 0, 10, 0, 0, 1}) {
		t.Errorf("key % x", el.Key)
	}
	out, _ := things.AppendEntry(nil, el.Key, el.Value)
	for _, want := range []string{`"counter":5`, `"name":"eth0"`, `"color":"GREEN"`, `"ok":true`, `"s8":-128`,
		`"s32":-286331154`, `"low":"0x7","mid":"0x1f","high":"0xffffff"`, `"":{"word":16909060,"bytes":[4,3,2,1]}`,
		`"":{"a":1,"b":65535}`, `"pts":[{"x":-1,"y":1},{"x":3,"y":-3}]`, `"tag":120`, `"ptr":4096`, `"wide":"0x1000000000000000000000000000000f"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("formatted value lacks %s:\n%s", want, out)
		}
	}
	// Per-CPU: one value for every CPU, or one per CPU.
	percpu := describe(spec.Maps["percpu"], 3)
	for _, tc := range []struct {
		in   string
		want [3]uint64
	}{
		{`{"key": 2, "value": {"packets": 9}}`, [3]uint64{9, 9, 9}},
		{`{"key": 2, "values": [{"cpu": 2, "value": {"packets": 4}}, {"cpu": 0, "value": {"rx_packets": 1}}]}`, [3]uint64{1, 0, 4}},
		{`{"formatted": {"key": 1, "values": [{"cpu": 1, "value": {"packets": 6, "bytes": 1}}]}}`, [3]uint64{0, 6, 0}},
	} {
		n, err := ParseNode([]byte(tc.in))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(tc.in, "rx_packets") {
			continue // struct counts has no rx_packets: see TestParseEntry_errors
		}
		el, err := percpu.ParseEntry(n, 1, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		for cpu, want := range tc.want {
			if got := binary.NativeEndian.Uint64(el.Value[cpu*16:]); got != want {
				t.Errorf("%s: CPU %d has %d packets, want %d", tc.in, cpu, got, want)
			}
		}
	}
	// Global data: variables by name, the others kept.
	data := describe(spec.Maps[".data"], 1)
	initial := spec.Maps[".data"].Contents[0].Value.([]byte)
	for _, in := range []string{`{"value": {"hits": 99}}`, `{"formatted": {"value": {".data": [{"hits": 99}]}}}`} {
		n, _ := ParseNode([]byte(in))
		el, err := data.ParseEntry(n, 1, func([]byte) []byte { return initial })
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if binary.NativeEndian.Uint64(el.Value) != 99 || !bytes.Equal(el.Value[8:], initial[8:]) || !bytes.Equal(el.Key, []byte{0, 0, 0, 0}) {
			t.Errorf("%s: % x = % x", in, el.Key, el.Value)
		}
	}
}

// TestParseEntry_errors: each wrong entry is named by map, entry and
// field, with what is wrong.
func TestParseEntry_errors(t *testing.T) {
	spec := loadSpec(t)
	noBTF := &Map{Name: "raw", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	progs := &Map{Name: "jumps", Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}
	for _, tc := range []struct {
		m    *Map
		in   string
		want string
	}{
		{describe(spec.Maps["things"], 1), `[]`, "map things, entry 3: an entry is an object with key and value, not an array"},
		{describe(spec.Maps["things"], 1), `{"key": {"prefixlen": 4294967296}, "value": {}}`, "map things, entry 3: key.prefixlen: 4294967296 is out of range for __u32 (0 to 4294967295)"},
		{describe(spec.Maps["things"], 1), `{"key": {"prefixlen": -1}, "value": {}}`, "key.prefixlen: -1 is out of range"},
		{describe(spec.Maps["things"], 1), `{"key": {"prefix": 1}, "value": {}}`, `key: struct key has no field "prefix" (it has prefixlen, addr)`},
		{describe(spec.Maps["things"], 1), `{"key": {"addr": [1, 2, 3]}, "value": {}}`, "key.addr: 3 elements, want 4"},
		{describe(spec.Maps["things"], 1), `{"key": {"addr": [1, 2, 3, 256]}, "value": {}}`, "key.addr[3]: 256 is out of range for __u8"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"color": "PURPLE"}}`, `value.color: enum color has no enumerator "PURPLE" (it has RED, GREEN, BLUE)`},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"name": "a name that is too long"}}`, "value.name: a string of 23 bytes does not fit in 12"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"low": 8}}`, "value.low: 8 is out of range for a 3-bit field"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"word": 1, "bytes": [2, 0, 0, 0]}}`, "value.bytes: gives byte 52 of struct value as 0x02, but word gave 0x01"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"counter": 1.5}}`, "value.counter: 1.5 is not an integer"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"ok": "yes"}}`, "value.ok: is a string, want true or false"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "value": {"counter": 1, "counter": 2}}`, "value.counter: given twice"},
		{describe(spec.Maps["things"], 1), `{"key": {}}`, "map things, entry 3: no value"},
		{describe(spec.Maps["things"], 1), `{"value": {}}`, "map things, entry 3: no key"},
		{describe(spec.Maps["things"], 1), `{"key": {}, "vaule": {}}`, `unknown member "vaule"`},
		{describe(spec.Maps["things"], 1), `{"key": ["0x01"], "value": {}}`, "key: 1 bytes, want 8"},
		{describe(spec.Maps["percpu"], 2), `{"key": 0, "values": [{"cpu": 2, "value": {}}]}`, "values[0]: cpu 2, but the map has values for 2 CPUs"},
		{describe(spec.Maps["percpu"], 2), `{"key": 0, "values": [{"cpu": 0, "value": {"rx_packets": 1}}]}`, `values[0].value: struct counts has no field "rx_packets"`},
		{describe(spec.Maps["percpu"], 2), `{"key": 0, "values": {}}`, "values: is an object, want an array"},
		{describe(spec.Maps["percpu"], 2), `{"key": 0, "value": 1, "values": []}`, "value: give value or values, not both"},
		{describe(spec.Maps["names"], 1),
			`{"key":["0x00","0x00","0x00","0x00"],"value":["0x68","0x69","0x00","0x6a","0x75","0x6e","0x6b","0x21"],"formatted":{"key":0,"value":"ho"}}`,
			`formatted.value: is "ho", but the hex value gives "hi": edit one form and delete the other`},
		{describe(spec.Maps["names"], 1), `{"key":["0x01","0x00","0x00","0x00"],"formatted":{"key":0,"value":"a"}}`, `formatted.key: is 0, but the hex key gives 1`},
		{describe(spec.Maps[".data"], 1), `{"value": {"misses": 1}}`, `value: section .data has no variable "misses" (it has hits, greeting)`},
		{noBTF, `{"key": 5, "value": ["0x00"]}`, "map raw, entry 3: key: is a number; the map has no BTF type here: give 4 bytes as hex"},
		{noBTF, `{"key": [1, 2, 3, 300], "value": ["0x00"]}`, "key: [3]: 300 is not a byte (0-255)"},
		{noBTF, `{"key": [1, 2, 3, 4], "formatted": {"value": 1}}`, "formatted: the map has no BTF types"},
		{progs, `{"key": ["0x00", "0x00", "0x00", "0x00"], "value": ["0x01", "0x00", "0x00", "0x00"]}`, "value: the value is an array: a ProgramArray holds programs; give one by name, as a string"},
	} {
		n, err := ParseNode([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		_, err = tc.m.ParseEntry(n, 3, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
	// Prog arrays take programs by name.
	n, _ := ParseNode([]byte(`{"key": 2, "value": "xdp_tcp"}`))
	if _, err := progs.ParseEntry(n, 1, nil); err == nil {
		t.Errorf("typed key of a map without BTF accepted")
	}
	n, _ = ParseNode([]byte(`{"key": [2, 0, 0, 0], "value": "xdp_tcp"}`))
	el, err := progs.ParseEntry(n, 1, nil)
	if err != nil || el.Object != "xdp_tcp" || !slices.Equal(el.Key, []byte{2, 0, 0, 0}) {
		t.Errorf("prog array entry: %+v, %v", el, err)
	}
}

// TestParseNode_hostile: deep nesting, trailing text and broken JSON are
// errors.
func TestParseNode_hostile(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("[", 100) + strings.Repeat("]", 100),
		`{"a": 1} x`,
		`{"a": `,
		`{"a" 1}`,
		`{"maps": {"m": [`,
		`[1, 2`,
		``,
	} {
		if _, err := ParseNode([]byte(in)); err == nil {
			t.Errorf("%.40q parsed", in)
		}
	}
}
