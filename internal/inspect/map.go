package inspect

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/mapjson"
)

// Map is what `bpftool map show` says about a map.
type Map struct {
	ID           uint32 `json:"id"`
	Type         string `json:"type"`
	Name         string `json:"name,omitempty"`
	Flags        uint32 `json:"flags"`
	BytesKey     uint32 `json:"bytes_key"`
	BytesValue   uint32 `json:"bytes_value"`
	MaxEntries   uint32 `json:"max_entries"`
	BytesMemlock uint64 `json:"bytes_memlock"`
	Frozen       int    `json:"frozen"`
	BTFID        uint32 `json:"btf_id,omitempty"`
	// TypeNum is the map type's number (enum bpf_map_type).
	TypeNum uint32 `json:"-"`
}

// Entry is one element: its key, and its value (every CPU's for per-CPU
// maps, each padded to 8 bytes, as the bpf syscall lays them out).
type Entry struct {
	Key, Value []byte
}

// ParseHex reads bytes written as bpftool takes them on its command line:
// hexadecimal bytes separated by spaces, each of one or two digits, with
// or without "0x" ("0a 00 00 01", "0x0a 0x0 0x0 0x1"). ok is false when s
// is not in that form (it may then be JSON).
func ParseHex(s string) (b []byte, ok bool) {
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return nil, false
	}
	for _, f := range fields {
		h := f
		if len(h) > 2 && (h[:2] == "0x" || h[:2] == "0X") {
			h = h[2:]
		}
		if len(h) == 0 || len(h) > 2 {
			return nil, false
		}
		v, err := strconv.ParseUint(h, 16, 8)
		if err != nil {
			return nil, false
		}
		b = append(b, byte(v))
	}
	return b, true
}

// ParseKey reads a KEY argument for m: hex bytes (ParseHex) when they are
// exactly a key's size, or else JSON: typed as the map's BTF key type
// (10, {"prefixlen": 32, "addr": "10.0.0.1"} where BTF says so) or
// bpftool's ["0x0a", ...]. So "5" is the byte 0x05 for a one-byte key
// and the number 5 for a four-byte one.
func ParseKey(m *mapjson.Map, arg string) ([]byte, error) {
	b, hex := ParseHex(arg)
	if hex && len(b) == int(m.KeySize) {
		return b, nil
	}
	n, err := mapjson.ParseNode([]byte(arg))
	if err != nil {
		if hex {
			return nil, fmt.Errorf("map %s: key of %d bytes, want %d", m.Name, len(b), m.KeySize)
		}
		return nil, fmt.Errorf("map %s: key %q is neither hex bytes (\"0a 00 00 01\") nor JSON: %w", m.Name, arg, err)
	}
	if hex && !m.Typed() {
		return nil, fmt.Errorf("map %s: key of %d bytes, want %d", m.Name, len(b), m.KeySize)
	}
	return m.ParseKey(n)
}

// ParseValue reads a VALUE argument for m onto base (see ParseKey for the
// forms). For per-CPU maps a value of one CPU's size is every CPU's, as
// bpftool fills them; JSON may also give {"values": [{"cpu": N, "value":
// V}, ...]}.
func ParseValue(m *mapjson.Map, arg string, base []byte) ([]byte, error) {
	switch m.Type {
	case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return nil, fmt.Errorf("map %s is a %s: its values are programs or maps, given by id or pin, not bytes", m.Name, MapTypeName(uint32(m.Type)))
	}
	b, hex := ParseHex(arg)
	if hex && len(b) == int(m.ValueSize) {
		if !m.PerCPU() {
			return b, nil
		}
		out := make([]byte, m.ValueBytes())
		for cpu := 0; cpu < max(m.CPUs, 1); cpu++ {
			copy(out[cpu*m.Stride():], b)
		}
		return out, nil
	}
	if hex && m.PerCPU() && len(b) == m.ValueBytes() {
		return b, nil
	}
	n, err := mapjson.ParseNode([]byte(arg))
	if err != nil {
		if hex {
			return nil, fmt.Errorf("map %s: value of %d bytes, want %d", m.Name, len(b), m.ValueSize)
		}
		return nil, fmt.Errorf("map %s: value %q is neither hex bytes (\"01 00 00 00\") nor JSON: %w", m.Name, arg, err)
	}
	if hex && !m.Typed() {
		return nil, fmt.Errorf("map %s: value of %d bytes, want %d", m.Name, len(b), m.ValueSize)
	}
	return m.ParseValue(n, base)
}

// EntryText formats an element as `bpftool map dump` prints a map without
// BTF:
//
//	key: 0a 00 00 01  value: 01 00 00 00 00 00 00 00
//
// and, for per-CPU maps, a key line and a value line per CPU.
func EntryText(m *mapjson.Map, e Entry) string {
	var b strings.Builder
	if !m.PerCPU() {
		b.WriteString("key: ")
		b.WriteString(spacedHex(e.Key))
		b.WriteString("  value: ")
		b.WriteString(spacedHex(e.Value))
		b.WriteByte('\n')
		return b.String()
	}
	b.WriteString("key:\n")
	b.WriteString(spacedHex(e.Key))
	b.WriteByte('\n')
	for cpu := 0; cpu < max(m.CPUs, 1); cpu++ {
		off := cpu * m.Stride()
		if off+int(m.ValueSize) > len(e.Value) {
			break
		}
		fmt.Fprintf(&b, "value (CPU %02d): %s\n", cpu, spacedHex(e.Value[off:off+int(m.ValueSize)]))
	}
	return b.String()
}

// EntryJSON formats an element as `bpftool map dump -j` prints it, with a
// "formatted" member when the map has BTF.
func EntryJSON(m *mapjson.Map, e Entry) ([]byte, error) {
	return m.AppendEntry(nil, e.Key, e.Value)
}

// Formatted returns an element's "formatted" member alone (the key and
// value typed from BTF), or nil when the map has no BTF.
func Formatted(m *mapjson.Map, e Entry) (*mapjson.Node, error) {
	if !m.Typed() {
		return nil, nil
	}
	raw, err := m.AppendEntry(nil, e.Key, e.Value)
	if err != nil {
		return nil, err
	}
	n, err := mapjson.ParseNode(raw)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", m.Name, err) // AppendEntry's JSON always parses
	}
	f, _ := n.Get("formatted")
	return f, nil
}

// padPerCPU joins per-CPU values, each padded to stride.
func padPerCPU(vs [][]byte, stride int) []byte {
	var out bytes.Buffer
	for _, v := range vs {
		out.Write(v)
		out.Write(make([]byte, (stride-len(v)%stride)%stride))
	}
	return out.Bytes()
}
