package mapjson

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// maxDepth bounds how deeply types (and JSON values) nest, so a malformed
// BTF graph or document cannot recurse without end.
const maxDepth = 64

// Map describes a map for formatting and parsing: what bpftool reads from
// bpf_map_info and the map's BTF.
type Map struct {
	Name       string
	Type       ebpf.MapType
	KeySize    uint32
	ValueSize  uint32
	MaxEntries uint32
	// Key and Value are the BTF types of keys and values. Without a
	// Value type (nil or btf.Void) elements print as hex bytes only, as
	// bpftool prints maps without BTF; a map with a Value type but no Key
	// type (global data) prints only the value formatted.
	Key, Value btf.Type
	// CPUs is the number of values each key of a per-CPU map has.
	CPUs int
}

// PerCPU reports whether the map holds one value per CPU.
func (m *Map) PerCPU() bool {
	switch m.Type {
	case ebpf.PerCPUArray, ebpf.PerCPUHash, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}

// Stride is the distance between two CPUs' values in a per-CPU value:
// the value size rounded up to 8, as the bpf syscall lays them out.
func (m *Map) Stride() int { return (int(m.ValueSize) + 7) &^ 7 }

// ValueBytes is the size of a whole value: every CPU's for per-CPU maps.
func (m *Map) ValueBytes() int {
	if m.PerCPU() {
		return m.Stride() * max(m.CPUs, 1)
	}
	return int(m.ValueSize)
}

// Typed reports whether the map's elements have a "formatted" form.
func (m *Map) Typed() bool { return present(m.Value) }

func present(t btf.Type) bool {
	if t == nil {
		return false
	}
	_, void := t.(*btf.Void)
	return !void
}

// Check reports whether the BTF types fit the map's sizes, as the kernel
// checks them when the map is created (map_check_btf). A map whose types
// do not fit must be used without them.
func (m *Map) Check() error {
	for _, c := range []struct {
		what string
		t    btf.Type
		size uint32
	}{{"key", m.Key, m.KeySize}, {"value", m.Value, m.ValueSize}} {
		if !present(c.t) {
			continue
		}
		n, err := btf.Sizeof(c.t)
		if err != nil {
			return fmt.Errorf("map %s: %s type %s: %w", m.Name, c.what, typeName(c.t), err)
		}
		if n != int(c.size) {
			return fmt.Errorf("map %s: %s type %s is %d bytes, the map's %ss are %d", m.Name, c.what, typeName(c.t), n, c.what, c.size)
		}
	}
	return nil
}

// AppendEntry appends one element as `bpftool map dump -j` prints it,
// compact, fields in bpftool's order:
//
//	{"key":["0x0a",...],"value":[...],"formatted":{"key":K,"value":V}}
//	{"key":[...],"values":[{"cpu":0,"value":[...]},...],
//	 "formatted":{"key":K,"values":[{"cpu":0,"value":V},...]}}
//
// For per-CPU maps value holds every CPU's value, each padded to Stride.
func (m *Map) AppendEntry(dst, key, value []byte) ([]byte, error) {
	if len(key) != int(m.KeySize) {
		return dst, fmt.Errorf("map %s: key of %d bytes, want %d", m.Name, len(key), m.KeySize)
	}
	if len(value) != m.ValueBytes() {
		return dst, fmt.Errorf("map %s: value of %d bytes, want %d", m.Name, len(value), m.ValueBytes())
	}
	dst = append(dst, `{"key":`...)
	dst = appendHex(dst, key)
	if m.PerCPU() {
		dst = append(dst, `,"values":[`...)
		for cpu := range max(m.CPUs, 1) {
			if cpu > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"cpu":`...)
			dst = strconv.AppendInt(dst, int64(cpu), 10)
			dst = append(dst, `,"value":`...)
			dst = appendHex(dst, m.cpuValue(value, cpu))
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	} else {
		dst = append(dst, `,"value":`...)
		dst = appendHex(dst, value)
	}
	if m.Typed() {
		f, err := m.appendFormatted(nil, key, value)
		if err != nil {
			return dst, fmt.Errorf("map %s: %w", m.Name, err)
		}
		dst = append(dst, `,"formatted":`...)
		dst = append(dst, f...)
	}
	return append(dst, '}'), nil
}

func (m *Map) cpuValue(value []byte, cpu int) []byte {
	off := cpu * m.Stride()
	return value[off : off+int(m.ValueSize)]
}

// appendFormatted is bpftool's do_dump_btf.
func (m *Map) appendFormatted(dst, key, value []byte) ([]byte, error) {
	var err error
	dst = append(dst, '{')
	if present(m.Key) {
		dst = append(dst, `"key":`...)
		if dst, err = appendTyped(dst, m.Key, key, 0); err != nil {
			return dst, fmt.Errorf("key: %w", err)
		}
		dst = append(dst, ',')
	}
	if !m.PerCPU() {
		dst = append(dst, `"value":`...)
		if dst, err = appendTyped(dst, m.Value, value, 0); err != nil {
			return dst, fmt.Errorf("value: %w", err)
		}
		return append(dst, '}'), nil
	}
	dst = append(dst, `"values":[`...)
	for cpu := range max(m.CPUs, 1) {
		if cpu > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"cpu":`...)
		dst = strconv.AppendInt(dst, int64(cpu), 10)
		dst = append(dst, `,"value":`...)
		if dst, err = appendTyped(dst, m.Value, m.cpuValue(value, cpu), 0); err != nil {
			return dst, fmt.Errorf("value of CPU %d: %w", cpu, err)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), nil
}

// appendHex is bpftool's print_hex_data_json: ["0x0a","0x00",...].
func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '[')
	for i, c := range b {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"', '0', 'x', digits[c>>4], digits[c&15], '"')
	}
	return append(dst, ']')
}

var errDepth = errors.New("types nest too deeply")

// field returns the size bytes of data at off, or an error when the type
// runs past the data (BTF that does not fit what it describes).
func field(data []byte, off, size uint64) ([]byte, error) {
	if off > uint64(len(data)) || size > uint64(len(data))-off {
		return nil, fmt.Errorf("%d bytes at offset %d run past the %d bytes of the value", size, off, len(data))
	}
	return data[off : off+size], nil
}

// appendTyped is bpftool's btf_dumper_type: data holds exactly the type's
// bytes.
func appendTyped(dst []byte, t btf.Type, data []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return dst, errDepth
	}
	switch t := t.(type) {
	case *btf.Typedef:
		return appendTyped(dst, t.Type, data, depth+1)
	case *btf.Volatile:
		return appendTyped(dst, t.Type, data, depth+1)
	case *btf.Const:
		return appendTyped(dst, t.Type, data, depth+1)
	case *btf.Restrict:
		return appendTyped(dst, t.Type, data, depth+1)
	case *btf.TypeTag:
		return appendTyped(dst, t.Type, data, depth+1)
	case *btf.Int:
		b, err := field(data, 0, uint64(t.Size))
		if err != nil {
			return dst, err
		}
		return appendInt(dst, t, b), nil
	case *btf.Enum:
		b, err := field(data, 0, uint64(t.Size))
		if err != nil {
			return dst, err
		}
		return appendEnum(dst, t, b), nil
	case *btf.Pointer:
		b, err := field(data, 0, 8)
		if err != nil {
			return dst, err
		}
		return strconv.AppendUint(dst, binary.NativeEndian.Uint64(b), 10), nil
	case *btf.Float:
		b, err := field(data, 0, uint64(t.Size))
		if err != nil {
			return dst, err
		}
		return appendFloat(dst, b), nil
	case *btf.Array:
		return appendArray(dst, t, data, depth)
	case *btf.Struct:
		return appendMembers(dst, t.Members, data, depth)
	case *btf.Union:
		return appendMembers(dst, t.Members, data, depth)
	case *btf.Var:
		dst = append(dst, '{')
		dst = appendString(dst, t.Name)
		dst = append(dst, ':')
		dst, err := appendTyped(dst, t.Type, data, depth+1)
		return append(dst, '}'), err
	case *btf.Datasec:
		dst = append(dst, '{')
		dst = appendString(dst, t.Name)
		dst = append(dst, ":["...)
		for i, v := range t.Vars {
			if i > 0 {
				dst = append(dst, ',')
			}
			b, err := field(data, uint64(v.Offset), uint64(v.Size))
			if err != nil {
				return dst, err
			}
			if dst, err = appendTyped(dst, v.Type, b, depth+1); err != nil {
				return dst, err
			}
		}
		return append(dst, "]}"...), nil
	}
	return dst, fmt.Errorf("%s cannot be formatted", typeName(t))
}

// appendInt is btf_dumper_int for whole-byte integers: unsigned and
// signed decimal, a character as a one-letter string, a bool, and 128-bit
// integers as a hex string.
func appendInt(dst []byte, t *btf.Int, b []byte) []byte {
	if len(b) == 16 {
		return appendInt128(dst, b)
	}
	u := leUint(b)
	switch t.Encoding {
	case btf.Signed:
		return strconv.AppendInt(dst, signExtend(u, len(b)), 10)
	case btf.Char:
		c := byte(u)
		if c >= 0x20 && c < 0x7f {
			return appendString(dst, string(rune(c)))
		}
		return fmt.Appendf(dst, `"\u00%02x"`, c)
	case btf.Bool:
		return strconv.AppendBool(dst, u != 0)
	}
	return strconv.AppendUint(dst, u, 10)
}

// appendInt128 is btf_int128_print: "0x" and the value in hex, without
// leading zeros.
func appendInt128(dst, b []byte) []byte {
	lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		lo, hi = binary.BigEndian.Uint64(b[8:]), binary.BigEndian.Uint64(b)
	}
	if hi == 0 {
		return fmt.Appendf(dst, `"0x%x"`, lo)
	}
	return fmt.Appendf(dst, `"0x%x%016x"`, hi, lo)
}

// leUint reads an integer of 1 to 8 bytes in the host's order.
func leUint(b []byte) uint64 {
	var buf [8]byte
	b = b[:min(len(b), 8)]
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 {
		copy(buf[:], b)
		return binary.LittleEndian.Uint64(buf[:])
	}
	copy(buf[8-len(b):], b)
	return binary.BigEndian.Uint64(buf[:])
}

func signExtend(u uint64, size int) int64 {
	shift := 64 - 8*size
	return int64(u<<shift) >> shift
}

// appendEnum is btf_dumper_enum: the enumerator's name, or the value as a
// signed integer when no enumerator has it.
func appendEnum(dst []byte, t *btf.Enum, b []byte) []byte {
	u := leUint(b)
	mask := uint64(math.MaxUint64)
	if len(b) < 8 {
		mask = 1<<(8*len(b)) - 1
	}
	for _, v := range t.Values {
		if v.Value&mask == u {
			return appendString(dst, v.Name)
		}
	}
	return strconv.AppendInt(dst, signExtend(u, len(b)), 10)
}

// appendFloat prints a float as a JSON number (bpftool prints floats as
// "(unsupported-kind"; a number is what a reader can use).
func appendFloat(dst, b []byte) []byte {
	var f float64
	switch len(b) {
	case 4:
		f = float64(math.Float32frombits(uint32(leUint(b))))
	case 8:
		f = math.Float64frombits(leUint(b))
	default:
		return appendHexString(dst, b)
	}
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return appendString(dst, strconv.FormatFloat(f, 'g', -1, 64))
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func appendHexString(dst, b []byte) []byte {
	return fmt.Appendf(dst, `"0x%x"`, b)
}

// appendArray is btf_dumper_array: character arrays holding a
// NUL-terminated printable string print as that string, others as JSON
// arrays.
func appendArray(dst []byte, t *btf.Array, data []byte, depth int) ([]byte, error) {
	if s, ok := stringArray(t, data); ok {
		return appendString(dst, s), nil
	}
	size, err := btf.Sizeof(t.Type)
	if err != nil {
		return dst, err
	}
	dst = append(dst, '[')
	for i := range uint64(t.Nelems) {
		if i > 0 {
			dst = append(dst, ',')
		}
		b, err := field(data, i*uint64(size), uint64(size))
		if err != nil {
			return dst, err
		}
		if dst, err = appendTyped(dst, t.Type, b, depth+1); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

// charElem reports whether an array of t is a character array in
// bpftool's sense (is_str_array): one-byte integers named char or encoded
// as characters, through qualifiers but not typedefs.
func charElem(t btf.Type) bool {
	for range maxDepth {
		switch q := t.(type) {
		case *btf.Volatile:
			t = q.Type
		case *btf.Const:
			t = q.Type
		case *btf.Restrict:
			t = q.Type
		case *btf.TypeTag:
			t = q.Type
		case *btf.Int:
			return q.Size == 1 && (q.Encoding == btf.Char || q.Name == "char")
		default:
			return false
		}
	}
	return false
}

// stringArray returns the string a character array holds: printable
// ASCII up to a NUL within the array.
func stringArray(t *btf.Array, data []byte) (string, bool) {
	if t.Nelems == 0 || !charElem(t.Type) || uint64(len(data)) < uint64(t.Nelems) {
		return "", false
	}
	for i, c := range data[:t.Nelems] {
		if c == 0 {
			return string(data[:i]), true
		}
		if c <= 0x1f || c >= 0x7f {
			return "", false
		}
	}
	return "", false
}

// appendMembers is btf_dumper_struct, for structs and unions alike:
// every member by name (anonymous ones under ""), bitfields as hex
// strings.
func appendMembers(dst []byte, members []btf.Member, data []byte, depth int) ([]byte, error) {
	dst = append(dst, '{')
	for i, mb := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, mb.Name)
		dst = append(dst, ':')
		off := uint64(mb.Offset)
		if mb.BitfieldSize > 0 {
			v, err := bitfield(data, off, uint64(mb.BitfieldSize))
			if err != nil {
				return dst, fmt.Errorf("member %s: %w", mb.Name, err)
			}
			dst = fmt.Appendf(dst, `"0x%x"`, v)
			continue
		}
		size, err := btf.Sizeof(mb.Type)
		if err != nil {
			return dst, fmt.Errorf("member %s: %w", mb.Name, err)
		}
		b, err := field(data, off/8, uint64(size))
		if err != nil {
			return dst, fmt.Errorf("member %s: %w", mb.Name, err)
		}
		if dst, err = appendTyped(dst, mb.Type, b, depth+1); err != nil {
			return dst, fmt.Errorf("member %s: %w", mb.Name, err)
		}
	}
	return append(dst, '}'), nil
}

// bitfield reads size bits at bit offset off of a little-endian value
// (the layout clang gives bitfields on little-endian targets).
func bitfield(data []byte, off, size uint64) (uint64, error) {
	if size > 64 {
		return 0, fmt.Errorf("bitfield of %d bits", size)
	}
	if off+size > 8*uint64(len(data)) {
		return 0, fmt.Errorf("bitfield of %d bits at bit %d runs past the %d bytes of the value", size, off, len(data))
	}
	var v uint64
	for i := range size {
		bit := off + i
		if data[bit/8]>>(bit%8)&1 != 0 {
			v |= 1 << i
		}
	}
	return v, nil
}

// appendString appends s as a JSON string, escaping only what JSON
// requires (bpftool's json_writer does the same).
func appendString(dst []byte, s string) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', digits[c>>4], digits[c&15])
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return append(dst, '"')
}

// typeName names a type for messages: "struct lpm_key", "__u32".
func typeName(t btf.Type) string {
	switch t := t.(type) {
	case nil:
		return "no type"
	case *btf.Struct:
		return "struct " + t.Name
	case *btf.Union:
		return "union " + t.Name
	case *btf.Enum:
		return "enum " + t.Name
	case *btf.Array:
		return fmt.Sprintf("array of %d", t.Nelems)
	case *btf.Pointer:
		return "pointer"
	}
	if n := t.TypeName(); n != "" {
		return n
	}
	return fmt.Sprintf("%T", t)
}
