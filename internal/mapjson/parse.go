package mapjson

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Error is an entry that cannot be parsed: the map, the entry (counting
// from 1; 0 when the error is about the map as a whole) and the path of
// the field that is wrong, such as "key.prefixlen" or
// "values[1].value.addr[3]".
type Error struct {
	Map   string
	Entry int
	Field string
	Err   error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("map ")
	b.WriteString(e.Map)
	if e.Entry > 0 {
		fmt.Fprintf(&b, ", entry %d", e.Entry)
	}
	if e.Field != "" {
		b.WriteString(": ")
		b.WriteString(e.Field)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// pathError carries the path of a field up from where parsing failed.
type pathError struct {
	path []string // outermost first
	err  error
}

func (e *pathError) Error() string { return joinPath(e.path) + ": " + e.err.Error() }

// in prefixes err's path with name ("key", "prefixlen", "[3]").
func in(name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *pathError
	if errors.As(err, &pe) {
		pe.path = append([]string{name}, pe.path...)
		return pe
	}
	return &pathError{path: []string{name}, err: err}
}

func joinPath(path []string) string {
	var b strings.Builder
	for i, p := range path {
		if i > 0 && !strings.HasPrefix(p, "[") {
			b.WriteByte('.')
		}
		b.WriteString(p)
	}
	return b.String()
}

// Elem is an element parsed from an entry.
type Elem struct {
	Key []byte
	// Value is the value (every CPU's for per-CPU maps, each padded to
	// Stride); nil when Object names the value instead.
	Value []byte
	// Object is the program (prog arrays) or map (maps of maps) the entry
	// stores, by name: such values are objects, not bytes.
	Object string
}

// holdsObjects reports whether values are programs or maps.
func (m *Map) holdsObjects() bool {
	switch m.Type {
	case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return true
	}
	return false
}

// ParseEntry parses one entry in the form AppendEntry prints: "key"
// and "value" (or, for per-CPU maps, "values": [{"cpu": N, "value": V}])
// as hex byte arrays, and "formatted" with the same typed from BTF. Typed
// keys and values may also stand directly in "key" and "value". A per-CPU
// map's single "value" is every CPU's.
//
// The hex form, when given, is what is stored (it holds every byte, also
// padding and bytes after a string's NUL); "formatted" must then be what
// the hex bytes format to, so that an edit of one form without the other
// is an error rather than lost. Without the hex form the typed one is
// stored; fields it leaves out keep what base returns for the key (the
// element's current value; nil for none, which means zeros).
//
// entry numbers the entry (from 1) in errors.
func (m *Map) ParseEntry(n *Node, entry int, base func(key []byte) []byte) (Elem, error) {
	el, err := m.parseEntry(n, base)
	if err != nil {
		e := &Error{Map: m.Name, Entry: entry, Err: err}
		var pe *pathError
		if errors.As(err, &pe) {
			e.Field, e.Err = joinPath(pe.path), pe.err
		}
		return Elem{}, e
	}
	return el, nil
}

func (m *Map) parseEntry(n *Node, base func([]byte) []byte) (Elem, error) {
	if n.Kind != 'o' {
		return Elem{}, fmt.Errorf("an entry is an object with key and value, not %s", n.kindName())
	}
	var fmtd *Node
	for i, k := range n.Keys {
		switch k {
		case "key", "value", "values":
		case "formatted":
			fmtd = n.Values[i]
			if fmtd.Kind != 'o' {
				return Elem{}, in("formatted", fmt.Errorf("is %s, want an object", fmtd.kindName()))
			}
			for _, fk := range fmtd.Keys {
				if fk != "key" && fk != "value" && fk != "values" {
					return Elem{}, in("formatted", fmt.Errorf("unknown member %q (it has key, and value or values)", fk))
				}
			}
			if !m.Typed() {
				return Elem{}, in("formatted", errors.New("the map has no BTF types: give key and value as hex bytes"))
			}
		default:
			return Elem{}, fmt.Errorf("unknown member %q (an entry has key, value or values, and formatted)", k)
		}
	}
	var el Elem
	var err error
	if el.Key, err = m.parseKey(n, fmtd); err != nil {
		return Elem{}, err
	}
	if m.holdsObjects() {
		v, ok := n.Get("value")
		if !ok || v.Kind != 's' {
			what := "no value"
			if ok {
				what = "the value is " + v.kindName()
			}
			held := "maps"
			if m.Type == ebpf.ProgramArray {
				held = "programs"
			}
			return Elem{}, in("value", fmt.Errorf("%s: a %s holds %s; give one by name, as a string", what, m.Type, held))
		}
		el.Object = v.Text
		return el, nil
	}
	start := make([]byte, m.ValueBytes())
	if base != nil {
		if b := base(el.Key); len(b) == len(start) {
			copy(start, b)
		}
	}
	if el.Value, err = m.valueForms(n, "", start, false); err != nil {
		return Elem{}, err
	}
	if el.Value == nil && fmtd != nil {
		if el.Value, err = m.valueForms(fmtd, "formatted.", start, true); err != nil {
			return Elem{}, err
		}
	}
	if el.Value == nil {
		return Elem{}, errors.New("no value")
	}
	if fmtd != nil {
		if err := m.consistent(n, fmtd, el); err != nil {
			return Elem{}, err
		}
	}
	return el, nil
}

// consistent checks that the parts of "formatted" that have a hex twin
// are what the hex bytes format to.
func (m *Map) consistent(n, fmtd *Node, el Elem) error {
	f, err := m.appendFormatted(nil, el.Key, el.Value)
	if err != nil {
		return in("formatted", err)
	}
	want, err := ParseNode(f)
	if err != nil {
		return in("formatted", err)
	}
	_, rawKey := n.Get("key")
	_, rawOne := n.Get("value")
	_, rawMany := n.Get("values")
	for i, k := range fmtd.Keys {
		got := fmtd.Values[i]
		var raw string
		var checks []*Node // what got must equal
		var paths []string
		switch {
		case k == "key" && rawKey:
			raw = "key"
			w, _ := want.Get("key")
			checks, paths = []*Node{w}, []string{""}
		case k != "key" && (rawOne || rawMany):
			raw = "value"
			if rawMany {
				raw = "values"
			}
			if w, ok := want.Get(k); ok {
				checks, paths = []*Node{w}, []string{""}
			} else if ws, ok := want.Get("values"); ok && k == "value" {
				// One formatted value for every CPU's.
				for cpu, item := range ws.Items {
					w, _ := item.Get("value")
					checks, paths = append(checks, w), append(paths, fmt.Sprintf(" (CPU %d)", cpu))
				}
			}
		}
		for j, w := range checks {
			if w == nil {
				continue
			}
			if path, g, e, ok := diff(got, w); !ok {
				return in("formatted."+k+path, fmt.Errorf("is %s, but the hex %s gives %s%s: edit one form and delete the other", g, raw, e, paths[j]))
			}
		}
	}
	return nil
}

// diff compares two JSON values and returns the path of the first
// difference and both sides there.
func diff(a, b *Node) (path, got, want string, same bool) {
	if a.Kind != b.Kind {
		return "", show(a), show(b), false
	}
	switch a.Kind {
	case 'o':
		if len(a.Keys) != len(b.Keys) {
			return "", show(a), show(b), false
		}
		for i := range a.Keys {
			if a.Keys[i] != b.Keys[i] {
				return "", show(a), show(b), false
			}
			if p, g, w, ok := diff(a.Values[i], b.Values[i]); !ok {
				return joinPath([]string{"", a.Keys[i]}) + p, g, w, false
			}
		}
	case 'a':
		if len(a.Items) != len(b.Items) {
			return "", show(a), show(b), false
		}
		for i := range a.Items {
			if p, g, w, ok := diff(a.Items[i], b.Items[i]); !ok {
				return fmt.Sprintf("[%d]", i) + p, g, w, false
			}
		}
	case 'b':
		if a.Bool != b.Bool {
			return "", show(a), show(b), false
		}
	default:
		if a.Text != b.Text {
			return "", show(a), show(b), false
		}
	}
	return "", "", "", true
}

// show prints a JSON value shortly, for messages.
func show(n *Node) string {
	switch n.Kind {
	case 's':
		return strconv.Quote(n.Text)
	case 'n':
		return n.Text
	case 'b':
		return strconv.FormatBool(n.Bool)
	case 'z':
		return "null"
	}
	return n.kindName()
}

// parseKey reads "key", or without it "formatted"."key".
func (m *Map) parseKey(n, fmtd *Node) ([]byte, error) {
	if k, ok := n.Get("key"); ok {
		b, err := m.bytesOrTyped(k, m.Key, int(m.KeySize), nil)
		return b, in("key", err)
	}
	if fmtd != nil {
		if k, ok := fmtd.Get("key"); ok {
			if !present(m.Key) {
				return nil, in("formatted.key", errors.New("the map has no BTF type for keys: give the key as hex bytes"))
			}
			b := make([]byte, m.KeySize)
			return b, in("formatted.key", parseTyped(m.Key, k, b, 0))
		}
	}
	switch {
	case m.KeySize == 0:
		return []byte{}, nil
	case (m.Type == ebpf.Array || m.Type == ebpf.PerCPUArray) && m.MaxEntries == 1:
		return make([]byte, m.KeySize), nil // global data: the only key is 0
	}
	return nil, errors.New("no key")
}

// valueForms reads "value" or "values" of an entry (or of its formatted
// object: typedOnly) onto a copy of start; nil if neither is there.
func (m *Map) valueForms(n *Node, prefix string, start []byte, typedOnly bool) ([]byte, error) {
	v, hasOne := n.Get("value")
	vs, hasMany := n.Get("values")
	if !hasOne && !hasMany {
		return nil, nil
	}
	if hasOne && hasMany {
		return nil, in(prefix+"value", errors.New("give value or values, not both"))
	}
	out := bytes.Clone(start)
	if !m.PerCPU() {
		if hasMany {
			return nil, in(prefix+"values", fmt.Errorf("a %s has one value per key, not one per CPU", m.Type))
		}
		b, err := m.part(v, typedOnly, out)
		if err != nil {
			return nil, in(prefix+"value", err)
		}
		copy(out, b)
		return out, nil
	}
	stride, cpus := m.Stride(), max(m.CPUs, 1)
	if hasOne { // every CPU's
		for cpu := range cpus {
			slot := out[cpu*stride : cpu*stride+int(m.ValueSize)]
			b, err := m.part(v, typedOnly, slot)
			if err != nil {
				return nil, in(prefix+"value", err)
			}
			copy(slot, b)
		}
		return out, nil
	}
	if vs.Kind != 'a' {
		return nil, in(prefix+"values", fmt.Errorf("is %s, want an array of {\"cpu\": N, \"value\": V}", vs.kindName()))
	}
	seen := map[int]bool{}
	for i, item := range vs.Items {
		at := fmt.Sprintf("%svalues[%d]", prefix, i)
		c, ok1 := item.Get("cpu")
		val, ok2 := item.Get("value")
		if item.Kind != 'o' || !ok1 || !ok2 || len(item.Keys) != 2 {
			return nil, in(at, errors.New(`want {"cpu": N, "value": V}`))
		}
		cpu, err := strconv.Atoi(c.Text)
		if c.Kind != 'n' || err != nil || cpu < 0 {
			return nil, in(at, fmt.Errorf("cpu %s is not a CPU number", show(c)))
		}
		if cpu >= cpus {
			return nil, in(at, fmt.Errorf("cpu %d, but the map has values for %d CPUs", cpu, cpus))
		}
		if seen[cpu] {
			return nil, in(at, fmt.Errorf("cpu %d given twice", cpu))
		}
		seen[cpu] = true
		slot := out[cpu*stride : cpu*stride+int(m.ValueSize)]
		b, err := m.part(val, typedOnly, slot)
		if err != nil {
			return nil, in(at+".value", err)
		}
		copy(slot, b)
	}
	return out, nil
}

// part reads one value onto start: hex bytes, or typed.
func (m *Map) part(n *Node, typedOnly bool, start []byte) ([]byte, error) {
	if typedOnly {
		b := bytes.Clone(start)
		return b, parseTyped(m.Value, n, b, 0)
	}
	return m.bytesOrTyped(n, m.Value, len(start), start)
}

// bytesOrTyped reads hex bytes (bpftool's ["0x0a", ...], or numbers
// 0-255 where there is no BTF type), or a value typed as t onto start
// (zeros if nil).
func (m *Map) bytesOrTyped(n *Node, t btf.Type, size int, start []byte) ([]byte, error) {
	if b, ok, err := hexBytes(n, size, !present(t)); ok || err != nil {
		return b, err
	}
	if !present(t) {
		return nil, fmt.Errorf("is %s; the map has no BTF type here: give %d bytes as hex, [\"0x00\", ...]", n.kindName(), size)
	}
	b := make([]byte, size)
	copy(b, start)
	return b, parseTyped(t, n, b, 0)
}

// hexBytes reads an array of "0xNN" strings (or, with numbers, of
// integers 0-255). ok is false when n is not such an array.
func hexBytes(n *Node, size int, numbers bool) ([]byte, bool, error) {
	if n.Kind != 'a' || len(n.Items) == 0 && size != 0 {
		return nil, false, nil
	}
	b := make([]byte, 0, len(n.Items))
	for _, it := range n.Items {
		switch {
		case it.Kind == 's' && len(it.Text) > 2 && len(it.Text) <= 4 && strings.EqualFold(it.Text[:2], "0x"):
			v, err := strconv.ParseUint(it.Text[2:], 16, 8)
			if err != nil {
				return nil, false, nil
			}
			b = append(b, byte(v))
		case numbers && it.Kind == 'n':
			v, err := strconv.ParseUint(it.Text, 10, 8)
			if err != nil {
				return nil, true, fmt.Errorf("[%d]: %s is not a byte (0-255)", len(b), it.Text)
			}
			b = append(b, byte(v))
		default:
			return nil, false, nil
		}
	}
	if len(b) != size {
		return nil, true, fmt.Errorf("%d bytes, want %d", len(b), size)
	}
	return b, true, nil
}

// parseTyped writes the value n gives for type t into dst, which holds
// exactly t's bytes (fields n leaves out keep dst's bytes).
func parseTyped(t btf.Type, n *Node, dst []byte, depth int) error {
	return parseNamed(t, "", n, dst, depth)
}

// parseNamed is parseTyped with the name the type was declared with (a
// typedef's, such as __u32), for messages.
func parseNamed(t btf.Type, name string, n *Node, dst []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	switch t := t.(type) {
	case *btf.Typedef:
		if name == "" {
			name = t.Name
		}
		return parseNamed(t.Type, name, n, dst, depth+1)
	case *btf.Volatile:
		return parseNamed(t.Type, name, n, dst, depth+1)
	case *btf.Const:
		return parseNamed(t.Type, name, n, dst, depth+1)
	case *btf.Restrict:
		return parseNamed(t.Type, name, n, dst, depth+1)
	case *btf.TypeTag:
		return parseNamed(t.Type, name, n, dst, depth+1)
	case *btf.Int:
		b, err := field(dst, 0, uint64(t.Size))
		if err != nil {
			return err
		}
		if name == "" {
			name = typeName(t)
		}
		return parseInt(t, name, n, b)
	case *btf.Enum:
		b, err := field(dst, 0, uint64(t.Size))
		if err != nil {
			return err
		}
		return parseEnum(t, n, b)
	case *btf.Pointer:
		b, err := field(dst, 0, 8)
		if err != nil {
			return err
		}
		v, err := integer(n, 64, false, "a pointer")
		if err != nil {
			return err
		}
		putUint(b, v.Uint64())
		return nil
	case *btf.Float:
		b, err := field(dst, 0, uint64(t.Size))
		if err != nil {
			return err
		}
		return parseFloat(n, b)
	case *btf.Array:
		return parseArray(t, n, dst, depth)
	case *btf.Struct:
		return parseMembers(typeName(t), t.Members, n, dst, depth)
	case *btf.Union:
		return parseMembers(typeName(t), t.Members, n, dst, depth)
	case *btf.Var:
		if n.Kind != 'o' || len(n.Keys) != 1 || n.Keys[0] != t.Name {
			return fmt.Errorf("want {%q: value}", t.Name)
		}
		return in(t.Name, parseTyped(t.Type, n.Values[0], dst, depth+1))
	case *btf.Datasec:
		return parseDatasec(t, n, dst, depth)
	}
	return fmt.Errorf("%s cannot be set", typeName(t))
}

// integer reads an integer of bits bits: a JSON integer, or a "0x" hex
// string (as bitfields and 128-bit integers print) taken as a bit
// pattern.
func integer(n *Node, bits int, signed bool, what string) (*big.Int, error) {
	v := new(big.Int)
	switch n.Kind {
	case 'n':
		if _, ok := v.SetString(n.Text, 10); !ok {
			return nil, fmt.Errorf("%s is not an integer", n.Text)
		}
	case 's':
		h, ok := strings.CutPrefix(strings.ToLower(n.Text), "0x")
		if _, ok2 := v.SetString(h, 16); !ok || !ok2 || strings.HasPrefix(h, "-") || strings.HasPrefix(h, "+") {
			return nil, fmt.Errorf("%q is not an integer (give a number, or hex as \"0x...\")", n.Text)
		}
		if v.BitLen() > bits {
			return nil, fmt.Errorf("%s does not fit in %d bits", n.Text, bits)
		}
		return v, nil
	default:
		return nil, fmt.Errorf("is %s, want %s", n.kindName(), what)
	}
	lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(bits))
	if signed {
		hi.Rsh(hi, 1)
		lo.Neg(hi)
	}
	hi.Sub(hi, big.NewInt(1))
	if v.Cmp(lo) < 0 || v.Cmp(hi) > 0 {
		return nil, fmt.Errorf("%s is out of range for %s (%s to %s)", n.Text, what, lo, hi)
	}
	if v.Sign() < 0 { // two's complement in bits bits
		v.Add(v, new(big.Int).Lsh(big.NewInt(1), uint(bits)))
	}
	return v, nil
}

func parseInt(t *btf.Int, what string, n *Node, dst []byte) error {
	switch {
	case t.Encoding == btf.Bool && n.Kind == 'b':
		putUint(dst, map[bool]uint64{false: 0, true: 1}[n.Bool])
		return nil
	case t.Encoding == btf.Bool && n.Kind != 'n':
		return fmt.Errorf("is %s, want true or false", n.kindName())
	case len(dst) == 1 && n.Kind == 's' && !strings.HasPrefix(strings.ToLower(n.Text), "0x"):
		r := []rune(n.Text)
		if len(r) != 1 || r[0] > 0xff {
			return fmt.Errorf("%q is not one character", n.Text)
		}
		dst[0] = byte(r[0])
		return nil
	}
	v, err := integer(n, 8*len(dst), t.Encoding == btf.Signed, what)
	if err != nil {
		return err
	}
	return putBig(dst, v)
}

// putBig writes v (non-negative, fitting) into dst in the host's order.
func putBig(dst []byte, v *big.Int) error {
	if v.Sign() < 0 || v.BitLen() > 8*len(dst) {
		return fmt.Errorf("%s does not fit in %d bytes", v, len(dst))
	}
	le := make([]byte, len(dst))
	be := v.FillBytes(make([]byte, len(dst)))
	for i := range be {
		le[i] = be[len(be)-1-i]
	}
	if nativeLE() {
		copy(dst, le)
	} else {
		copy(dst, be)
	}
	return nil
}

func nativeLE() bool { return binary.NativeEndian.Uint16([]byte{1, 0}) == 1 }

// putUint writes v into dst (1 to 8 bytes) in the host's order.
func putUint(dst []byte, v uint64) {
	var buf [8]byte
	if nativeLE() {
		binary.LittleEndian.PutUint64(buf[:], v)
		copy(dst, buf[:])
		return
	}
	binary.BigEndian.PutUint64(buf[:], v)
	copy(dst, buf[8-min(len(dst), 8):])
}

func parseEnum(t *btf.Enum, n *Node, dst []byte) error {
	if n.Kind == 's' && !strings.HasPrefix(strings.ToLower(n.Text), "0x") {
		for _, v := range t.Values {
			if v.Name == n.Text {
				putUint(dst, v.Value)
				return nil
			}
		}
		var names []string
		for _, v := range t.Values {
			names = append(names, v.Name)
		}
		return fmt.Errorf("%s has no enumerator %q (it has %s)", typeName(t), n.Text, strings.Join(names, ", "))
	}
	if n.Kind == 'n' && strings.HasPrefix(n.Text, "-") {
		v, err := integer(n, 8*len(dst), true, typeName(t))
		if err != nil {
			return err
		}
		return putBig(dst, v)
	}
	v, err := integer(n, 8*len(dst), false, typeName(t)+" (an enumerator's name or a number)")
	if err != nil {
		return err
	}
	return putBig(dst, v)
}

func parseFloat(n *Node, dst []byte) error {
	var f float64
	var err error
	switch n.Kind {
	case 'n':
		f, err = strconv.ParseFloat(n.Text, 64)
	case 's':
		f, err = strconv.ParseFloat(n.Text, 64) // NaN, +Inf, -Inf
	default:
		return fmt.Errorf("is %s, want a number", n.kindName())
	}
	if err != nil {
		return fmt.Errorf("%q is not a number", n.Text)
	}
	switch len(dst) {
	case 4:
		putUint(dst, uint64(math.Float32bits(float32(f))))
	case 8:
		putUint(dst, math.Float64bits(f))
	default:
		return fmt.Errorf("a float of %d bytes", len(dst))
	}
	return nil
}

func parseArray(t *btf.Array, n *Node, dst []byte, depth int) error {
	size, err := btf.Sizeof(t.Type)
	if err != nil {
		return err
	}
	if n.Kind == 's' && charElem(t.Type) {
		if uint64(len(n.Text)) > uint64(t.Nelems) {
			return fmt.Errorf("a string of %d bytes does not fit in %d", len(n.Text), t.Nelems)
		}
		b, err := field(dst, 0, uint64(t.Nelems))
		if err != nil {
			return err
		}
		clear(b)
		copy(b, n.Text)
		return nil
	}
	if n.Kind != 'a' {
		return fmt.Errorf("is %s, want an array of %d", n.kindName(), t.Nelems)
	}
	if uint64(len(n.Items)) != uint64(t.Nelems) {
		return fmt.Errorf("%d elements, want %d", len(n.Items), t.Nelems)
	}
	for i, it := range n.Items {
		b, err := field(dst, uint64(i)*uint64(size), uint64(size))
		if err != nil {
			return err
		}
		if err := parseTyped(t.Type, it, b, depth+1); err != nil {
			return in(fmt.Sprintf("[%d]", i), err)
		}
	}
	return nil
}

// memberPath finds a member by name: directly, or inside anonymous
// struct and union members (as C resolves s.field). It returns the
// members from the outermost.
func memberPath(members []btf.Member, name string, depth int) []btf.Member {
	if depth > maxDepth {
		return nil
	}
	for _, mb := range members {
		if mb.Name == name {
			return []btf.Member{mb}
		}
	}
	for _, mb := range members {
		if mb.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(mb.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if p := memberPath(inner, name, depth+1); p != nil {
			return append([]btf.Member{mb}, p...)
		}
	}
	return nil
}

// parseMembers writes the members an object names. Anonymous members
// print under "" (several times in one object), so the k-th "" is the
// k-th anonymous member. Members that overlap (in unions, also through
// anonymous ones) must give the same bits.
func parseMembers(name string, members []btf.Member, n *Node, dst []byte, depth int) error {
	if n.Kind != 'o' {
		return fmt.Errorf("is %s, want an object (%s)", n.kindName(), name)
	}
	written := make([]byte, len(dst)) // bits set by earlier members
	whoWrote := make([]string, len(dst))
	anon, seen := 0, map[string]bool{}
	for i, key := range n.Keys {
		var path []btf.Member
		label := key
		if key == "" {
			k := 0
			for _, mb := range members {
				if mb.Name == "" {
					if k == anon {
						path = []btf.Member{mb}
					}
					k++
				}
			}
			anon++
			label = fmt.Sprintf("anonymous member %d", anon)
			if path == nil {
				return fmt.Errorf("%d anonymous members given, %s has %d", anon, name, k)
			}
		} else {
			if seen[key] {
				return in(key, errors.New("given twice"))
			}
			seen[key] = true
			if path = memberPath(members, key, 0); path == nil {
				var names []string
				for _, mb := range members {
					if mb.Name != "" {
						names = append(names, mb.Name)
					}
				}
				return fmt.Errorf("%s has no field %q (it has %s)", name, key, strings.Join(names, ", "))
			}
		}
		target := bytes.Clone(dst)
		off, bits, err := setMember(path, n.Values[i], target, depth)
		if err != nil {
			return in(key, err)
		}
		for bit := off; bit < off+bits; {
			b, mask := bit/8, byte(0xff)
			if bit%8 != 0 || off+bits-bit < 8 {
				mask = 1 << (bit % 8)
				bit++
			} else {
				bit += 8
			}
			if written[b]&mask&(dst[b]^target[b]) != 0 {
				return in(key, fmt.Errorf("gives byte %d of %s as %#02x, but %s gave %#02x", b, name, target[b]&mask, whoWrote[b], dst[b]&mask))
			}
			dst[b] = dst[b]&^mask | target[b]&mask
			written[b] |= mask
			whoWrote[b] = label
		}
	}
	return nil
}

// setMember writes the value of the member at the end of path (through
// anonymous members) into dst and returns the bits it covers.
func setMember(path []btf.Member, n *Node, dst []byte, depth int) (off, bits uint64, err error) {
	for _, mb := range path[:len(path)-1] {
		off += uint64(mb.Offset)
	}
	mb := path[len(path)-1]
	off += uint64(mb.Offset)
	if mb.BitfieldSize > 0 {
		size := uint64(mb.BitfieldSize)
		v, err := integer(n, int(min(size, 64)), false, fmt.Sprintf("a %d-bit field", size))
		if err != nil {
			return 0, 0, err
		}
		if size > 64 || off+size > 8*uint64(len(dst)) {
			return 0, 0, fmt.Errorf("bitfield of %d bits at bit %d runs past the %d bytes of the value", size, off, len(dst))
		}
		u := v.Uint64()
		for i := range size {
			bit := off + i
			if u>>i&1 != 0 {
				dst[bit/8] |= 1 << (bit % 8)
			} else {
				dst[bit/8] &^= 1 << (bit % 8)
			}
		}
		return off, size, nil
	}
	if off%8 != 0 {
		return 0, 0, fmt.Errorf("member %s at bit %d is not byte-aligned", mb.Name, off)
	}
	size, err := btf.Sizeof(mb.Type)
	if err != nil {
		return 0, 0, err
	}
	b, err := field(dst, off/8, uint64(size))
	if err != nil {
		return 0, 0, err
	}
	return off, 8 * uint64(size), parseTyped(mb.Type, n, b, depth+1)
}

// parseDatasec reads a section's variables: bpftool's {".data": [{"var":
// value}, ...]}, or an object of variables by name. Variables left out
// keep their bytes.
func parseDatasec(t *btf.Datasec, n *Node, dst []byte, depth int) error {
	if n.Kind != 'o' {
		return fmt.Errorf("is %s, want {%q: [{\"variable\": value}, ...]}", n.kindName(), t.Name)
	}
	type item struct {
		name string
		val  *Node
	}
	var items []item
	if len(n.Keys) == 1 && n.Keys[0] == t.Name && n.Values[0].Kind == 'a' {
		for i, v := range n.Values[0].Items {
			if v.Kind != 'o' || len(v.Keys) != 1 {
				return in(fmt.Sprintf("%s[%d]", t.Name, i), errors.New(`want {"variable": value}`))
			}
			items = append(items, item{v.Keys[0], v.Values[0]})
		}
	} else {
		for i, k := range n.Keys {
			items = append(items, item{k, n.Values[i]})
		}
	}
	for _, it := range items {
		var vsi *btf.VarSecinfo
		var names []string
		for i := range t.Vars {
			v, ok := t.Vars[i].Type.(*btf.Var)
			if !ok {
				continue
			}
			names = append(names, v.Name)
			if v.Name == it.name {
				vsi = &t.Vars[i]
			}
		}
		if vsi == nil {
			return fmt.Errorf("section %s has no variable %q (it has %s)", t.Name, it.name, strings.Join(names, ", "))
		}
		b, err := field(dst, uint64(vsi.Offset), uint64(vsi.Size))
		if err != nil {
			return in(it.name, err)
		}
		if err := parseTyped(vsi.Type.(*btf.Var).Type, it.val, b, depth+1); err != nil {
			return in(it.name, err)
		}
	}
	return nil
}
