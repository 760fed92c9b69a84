package inspect

import (
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/cilium/ebpf/btf"
)

// WriteC writes types as C declarations, each after the types its
// definition needs, as `bpftool btf dump ... format c` does (libbpf's
// btf_dump): a struct, union or enum used by value is defined first; one
// used through a pointer only gets a forward declaration ("struct
// sk_buff;"), and its definition if it is among types, which keeps one
// kernel type from pulling in the whole kernel. Types without a name of their own (pointers,
// arrays, anonymous structs) appear inside the declarations that use them;
// a Func prints as its prototype, a Var as its declaration (a whole
// object's types go through TypeDefinitions first, as libbpf prints only
// types).
//
// The layout is BTF's: explicit padding and packed attributes where the
// offsets depart from C's natural layout, as libbpf adds them.
func WriteC(w io.Writer, types []btf.Type) error {
	d := newCWriter()
	for _, t := range types {
		d.top(t)
	}
	_, err := io.WriteString(w, d.out.String())
	return err
}

func newCWriter() *cWriter {
	return &cWriter{state: map[btf.Type]cState{}, declared: map[btf.Type]bool{}, names: map[btf.Type]string{}, taken: map[string]int{}}
}

type cState uint8

const (
	cNone cState = iota
	cDefining
	cDefined
)

// cWriter is one WriteC: what it has declared and what it wrote.
type cWriter struct {
	state    map[btf.Type]cState
	declared map[btf.Type]bool
	out      strings.Builder
	depth    int
	// names are the names types print with: a second distinct type
	// with a name already taken in its C namespace (tags, or typedefs
	// and enumerators) gets libbpf's suffix, "name___2".
	names map[btf.Type]string
	taken map[string]int
}

// name is the name t prints with (its own unless taken).
func (d *cWriter) name(t btf.Type) string {
	if n, ok := d.names[t]; ok {
		return n
	}
	own := t.TypeName()
	ns := "tag "
	if _, ok := t.(*btf.Typedef); ok {
		ns = "ordinary "
	}
	n := d.unique(ns, own)
	d.names[t] = n
	return n
}

func (d *cWriter) unique(ns, own string) string {
	if own == "" {
		return ""
	}
	d.taken[ns+own]++
	if c := d.taken[ns+own]; c > 1 {
		return fmt.Sprintf("%s___%d", own, c)
	}
	return own
}

// maxCDepth bounds the recursion through BTF's type graph; deeper types
// print as an error comment.
const maxCDepth = 256

// top writes one requested type. Types without a name of their own
// (pointers, arrays, anonymous structs) and data sections appear only
// inside the declarations that use them, as libbpf's btf_dump prints them.
func (d *cWriter) top(t btf.Type) {
	switch t := t.(type) {
	case *btf.Func:
		d.need(t.Type, false)
		fmt.Fprintf(&d.out, "%s;\n\n", d.decl(t.Type, t.Name, 0))
	case *btf.Var:
		d.need(t.Type, true)
		fmt.Fprintf(&d.out, "%s;\n\n", d.decl(t.Type, t.Name, 0))
	case *btf.Datasec:
	default:
		d.need(t, true)
	}
}

// need makes sure what t's use needs is written: byValue asks for complete
// types, otherwise a forward declaration of a struct or union is enough.
func (d *cWriter) need(t btf.Type, byValue bool) {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxCDepth {
		return
	}
	switch t := t.(type) {
	case *btf.Pointer:
		d.need(t.Target, false)
	case *btf.Array:
		d.need(t.Type, byValue)
	case *btf.Const:
		d.need(t.Type, byValue)
	case *btf.Volatile:
		d.need(t.Type, byValue)
	case *btf.Restrict:
		d.need(t.Type, byValue)
	case *btf.TypeTag:
		d.need(t.Type, byValue)
	case *btf.FuncProto:
		d.need(t.Return, false)
		for _, p := range t.Params {
			d.need(p.Type, false)
		}
	case *btf.Typedef:
		if d.state[t] >= cDefining {
			if byValue && d.state[t] == cDefined {
				d.need(t.Type, true) // declared for a pointer before
			}
			return
		}
		if tagged(t.Type) {
			// typedef struct x_s x_t: declared after a forward declaration
			// of the struct, so types that point at each other through
			// typedefs can use them before the structs are complete.
			d.need(t.Type, false)
			fmt.Fprintf(&d.out, "typedef %s;\n\n", d.decl(t.Type, d.name(t), 0))
			d.state[t] = cDefined
			if byValue {
				d.need(t.Type, true)
			}
			return
		}
		d.state[t] = cDefining
		d.need(t.Type, byValue)
		fmt.Fprintf(&d.out, "typedef %s;\n\n", d.decl(t.Type, d.name(t), 0))
		d.state[t] = cDefined
	case *btf.Struct:
		d.composite(t, d.name(t), "struct", t.Members, byValue)
	case *btf.Union:
		d.composite(t, d.name(t), "union", t.Members, byValue)
	case *btf.Enum:
		if t.Name == "" || d.state[t] == cDefined {
			return
		}
		d.state[t] = cDefined
		fmt.Fprintf(&d.out, "%s;\n\n", d.enumBody(t, 0))
	case *btf.Fwd:
		if t.Name == "" || d.declared[t] {
			return
		}
		d.declared[t] = true
		fmt.Fprintf(&d.out, "%s %s;\n\n", t.Kind, d.name(t))
	}
}

// tagged reports whether t is a named struct or union.
func tagged(t btf.Type) bool {
	switch t := t.(type) {
	case *btf.Struct:
		return t.Name != ""
	case *btf.Union:
		return t.Name != ""
	}
	return false
}

func (d *cWriter) composite(t btf.Type, name, kw string, members []btf.Member, byValue bool) {
	if name == "" {
		// Anonymous: printed inline where used, its members' needs first.
		for _, m := range members {
			d.need(m.Type, true)
		}
		return
	}
	switch st := d.state[t]; {
	case st == cDefined:
		return
	case st == cDefining || !byValue:
		// A pointer to a type not defined yet (or being defined): a
		// forward declaration is enough, and the definition comes when
		// the type's turn comes (or never, for one not asked for).
		if !d.declared[t] {
			d.declared[t] = true
			fmt.Fprintf(&d.out, "%s %s;\n\n", kw, name)
		}
		return
	}
	d.state[t] = cDefining
	for _, m := range members {
		d.need(m.Type, true)
	}
	d.state[t] = cDefined
	fmt.Fprintf(&d.out, "%s;\n\n", d.body(t, 0))
}

// body is the definition of a struct or union, its members indented one
// level deeper than indent, laid out as BTF says: where a member's offset
// is past where C would put it, anonymous bitfields pad up to it ("long:
// 64;"), as libbpf's btf_dump_emit_bit_padding does; a struct whose
// members are not at their natural alignment, or whose size is not a
// multiple of it, is packed; a struct longer than its members is padded
// at the end.
func (d *cWriter) body(t btf.Type, indent int) string {
	var kw, name string
	var members []btf.Member
	var size uint32
	isStruct := false
	switch t := t.(type) {
	case *btf.Struct:
		kw, name, members, size, isStruct = "struct", d.name(t), t.Members, t.Size, true
	case *btf.Union:
		kw, name, members, size = "union", d.name(t), t.Members, t.Size
	}
	packed := isStruct && structPacked(members, size)
	var b strings.Builder
	b.WriteString(kw)
	if name != "" {
		b.WriteString(" " + name)
	}
	b.WriteString(" {\n")
	pad := strings.Repeat("\t", indent+1)
	off, prevBitfield := uint64(0), false
	for _, m := range members {
		mOff, mBits := uint64(m.Offset), uint64(m.BitfieldSize)
		mAlign := uint64(1)
		if !packed {
			mAlign = uint64(alignOf(m.Type, 0))
		}
		if isStruct {
			bitPadding(&b, pad, off, mOff, mAlign, prevBitfield && mBits != 0)
		}
		b.WriteString(pad)
		b.WriteString(d.decl(m.Type, m.Name, indent+1))
		if mBits > 0 {
			fmt.Fprintf(&b, ": %d", mBits)
			off, prevBitfield = mOff+mBits, true
		} else {
			n, _ := btf.Sizeof(m.Type)
			off, prevBitfield = mOff+uint64(max(n, 0))*8, false
		}
		b.WriteString(";\n")
	}
	if isStruct {
		bitPadding(&b, pad, off, uint64(size)*8, uint64(alignOf(t, 0)), false)
	}
	b.WriteString(strings.Repeat("\t", indent) + "}")
	if packed {
		b.WriteString(" __attribute__((packed))")
	}
	return b.String()
}

// alignOf is a type's alignment in bytes on a 64-bit target (libbpf's
// btf__align_of); 1 for a struct that must be packed.
func alignOf(t btf.Type, depth int) int {
	if depth > maxCDepth {
		return 1
	}
	switch t := t.(type) {
	case *btf.Int:
		return int(min(t.Size, 8))
	case *btf.Enum:
		return int(min(t.Size, 8))
	case *btf.Float:
		return int(min(t.Size, 8))
	case *btf.Pointer:
		return 8
	case *btf.Typedef:
		return alignOf(t.Type, depth+1)
	case *btf.Const:
		return alignOf(t.Type, depth+1)
	case *btf.Volatile:
		return alignOf(t.Type, depth+1)
	case *btf.Restrict:
		return alignOf(t.Type, depth+1)
	case *btf.TypeTag:
		return alignOf(t.Type, depth+1)
	case *btf.Array:
		return alignOf(t.Type, depth+1)
	case *btf.Struct:
		return compositeAlign(t.Members, t.Size, depth)
	case *btf.Union:
		return compositeAlign(t.Members, t.Size, depth)
	}
	return 1
}

func compositeAlign(members []btf.Member, size uint32, depth int) int {
	most := 1
	for _, m := range members {
		a := alignOf(m.Type, depth+1)
		most = max(most, a)
		if m.BitfieldSize == 0 && uint64(m.Offset)%uint64(8*a) != 0 {
			return 1
		}
	}
	if size%uint32(most) != 0 {
		return 1
	}
	return most
}

// structPacked reports whether a struct's layout needs
// __attribute__((packed)) (libbpf's btf_is_struct_packed).
func structPacked(members []btf.Member, size uint32) bool {
	most := 1
	for _, m := range members {
		a := alignOf(m.Type, 0)
		if m.BitfieldSize == 0 && uint64(m.Offset)%uint64(8*a) != 0 {
			return true
		}
		most = max(most, a)
	}
	return size%uint32(most) != 0
}

// bitPadding writes anonymous bitfields that move a struct's layout from
// bit cur to bit next, where a member aligned to align bytes starts (or
// the struct ends): libbpf's btf_dump_emit_bit_padding. It pads with the
// largest of long, int, short and char that reaches an aligned boundary
// within the gap, relying on the compiler's natural alignment where it
// can.
func bitPadding(b *strings.Builder, pad string, cur, next, align uint64, inBitfield bool) {
	if cur >= next {
		return
	}
	pads := [...]struct {
		name string
		bits uint64
	}{{"long", 64}, {"int", 32}, {"short", 16}, {"char", 8}}
	roundup := func(x, to uint64) uint64 { return (x + to - 1) / to * to }
	var newOff, padBits uint64
	var padType string
	for _, p := range pads {
		padBits, padType = p.bits, p.name
		newOff = roundup(cur, padBits)
		if newOff <= next {
			break
		}
	}
	if newOff > cur && newOff <= next {
		if inBitfield || newOff == next && roundup(cur, align*8) != newOff || newOff != next && next-newOff <= newOff-cur {
			n := uint64(0)
			if inBitfield {
				n = newOff - cur
			}
			fmt.Fprintf(b, "%s%s: %d;\n", pad, padType, n)
		}
		cur = newOff
	}
	for cur != next {
		bits := min(next-cur, padBits)
		if bits == padBits {
			fmt.Fprintf(b, "%s%s: %d;\n", pad, padType, padBits)
			cur += bits
			continue
		}
		for i := len(pads) - 1; i >= 0; i-- {
			if pads[i].bits < bits {
				continue
			}
			fmt.Fprintf(b, "%s%s: %d;\n", pad, pads[i].name, bits)
			cur += bits
			break
		}
	}
}

func (d *cWriter) enumBody(t *btf.Enum, indent int) string {
	var b strings.Builder
	b.WriteString("enum")
	if t.Name != "" {
		b.WriteString(" " + d.name(t))
	}
	b.WriteString(" {\n")
	pad := strings.Repeat("\t", indent+1)
	for i, v := range t.Values {
		val := fmt.Sprint(v.Value)
		if v.Value > math.MaxInt64 {
			val += "ULL"
		}
		if t.Signed {
			val = fmt.Sprint(signExtend(v.Value, t.Size))
		}
		fmt.Fprintf(&b, "%s%s = %s", pad, d.unique("ordinary ", v.Name), val)
		if i < len(t.Values)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString(strings.Repeat("\t", indent) + "}")
	// An enum's size is the compiler's to choose unless forced, as
	// libbpf's btf_dump_emit_enum_def forces it.
	switch t.Size {
	case 1:
		b.WriteString(" __attribute__((mode(byte)))")
	case 2:
		b.WriteString(" __attribute__((mode(HI)))")
	case 8:
		wide := false
		for _, v := range t.Values {
			if t.Signed && (int64(v.Value) < math.MinInt32 || int64(v.Value) > math.MaxUint32) || !t.Signed && v.Value > math.MaxUint32 {
				wide = true // a value C's int cannot hold makes the enum 8 bytes itself
			}
		}
		if !wide {
			b.WriteString(" __attribute__((mode(word)))")
		}
	}
	return b.String()
}

func signExtend(v uint64, size uint32) int64 {
	if size == 0 || size >= 8 {
		return int64(v)
	}
	shift := 64 - 8*size
	return int64(v<<shift) >> shift
}

// decl is the C declaration of name with type t ("int (*fn)(void *)",
// "char comm[16]"); with an empty name, the type's own spelling.
func (d *cWriter) decl(t btf.Type, name string, indent int) string {
	d.depth++
	defer func() { d.depth-- }()
	if d.depth > maxCDepth {
		return "/* types nest too deeply */ void " + name
	}
	join := func(base string) string {
		if name == "" {
			return base
		}
		if strings.HasPrefix(name, "[") || strings.HasPrefix(name, "(") && !strings.HasPrefix(name, "(*") {
			return base + name
		}
		return base + " " + name
	}
	switch t := t.(type) {
	case nil, *btf.Void:
		return join("void")
	case *btf.Int:
		return join(t.Name)
	case *btf.Float:
		return join(t.Name)
	case *btf.Typedef:
		return join(d.name(t))
	case *btf.Fwd:
		return join(t.Kind.String() + " " + d.name(t))
	case *btf.Struct:
		if t.Name == "" {
			return join(d.body(t, indent))
		}
		return join("struct " + d.name(t))
	case *btf.Union:
		if t.Name == "" {
			return join(d.body(t, indent))
		}
		return join("union " + d.name(t))
	case *btf.Enum:
		if t.Name == "" {
			return join(d.enumBody(t, indent))
		}
		return join("enum " + d.name(t))
	case *btf.Pointer:
		switch t.Target.(type) {
		case *btf.Array, *btf.FuncProto:
			return d.decl(t.Target, "(*"+name+")", indent)
		}
		return d.decl(t.Target, "*"+name, indent)
	case *btf.Array:
		return d.decl(t.Type, name+fmt.Sprintf("[%d]", t.Nelems), indent)
	case *btf.Const:
		return d.qualified("const", t.Type, name, indent)
	case *btf.Volatile:
		return d.qualified("volatile", t.Type, name, indent)
	case *btf.Restrict:
		return d.qualified("restrict", t.Type, name, indent)
	case *btf.TypeTag:
		return d.qualified(fmt.Sprintf("__attribute__((btf_type_tag(%q)))", t.Value), t.Type, name, indent)
	case *btf.FuncProto:
		params := make([]string, 0, len(t.Params))
		for _, p := range t.Params {
			params = append(params, d.decl(p.Type, p.Name, indent))
		}
		if len(params) == 0 {
			params = append(params, "void")
		} else if _, void := t.Params[len(t.Params)-1].Type.(*btf.Void); void {
			params[len(params)-1] = "..." // a variadic function's last parameter
		}
		return d.decl(t.Return, name+"("+strings.Join(params, ", ")+")", indent)
	case *btf.Func:
		return d.decl(t.Type, t.Name, indent)
	case *btf.Var:
		return d.decl(t.Type, t.Name, indent)
	case *btf.Datasec:
		return join("/* DATASEC " + t.Name + " */ void")
	}
	return join(fmt.Sprintf("/* %T */ void", t))
}

// qualified applies a qualifier: after the star of a pointer ("char
// *const p"), before anything else ("const int x").
func (d *cWriter) qualified(q string, t btf.Type, name string, indent int) string {
	if _, ok := t.(*btf.Pointer); ok {
		if name == "" {
			return d.decl(t, q, indent)
		}
		return d.decl(t, q+" "+name, indent)
	}
	return q + " " + d.decl(t, name, indent)
}

// FuncPrototype is a function's C prototype as bpftool prints it above a
// program's instructions: "int xdp_prog(struct xdp_md * ctx)".
func FuncPrototype(fn *btf.Func) string {
	proto, ok := fn.Type.(*btf.FuncProto)
	if !ok {
		return fn.Name + "()"
	}
	d := newCWriter()
	params := make([]string, 0, len(proto.Params))
	for _, p := range proto.Params {
		params = append(params, spacedStars(d.decl(p.Type, p.Name, 0)))
	}
	if len(params) == 0 {
		params = append(params, "void")
	}
	return d.decl(proto.Return, "", 0) + " " + fn.Name + "(" + strings.Join(params, ", ") + ")"
}

// spacedStars writes "struct xdp_md *ctx" as bpftool's prototypes do:
// "struct xdp_md * ctx".
func spacedStars(s string) string {
	if i := strings.LastIndexByte(s, '*'); i >= 0 && i+1 < len(s) && s[i+1] != ' ' && s[i+1] != ')' {
		return s[:i+1] + " " + s[i+1:]
	}
	return s
}

// TypeDefinitions drops functions, variables and data sections from
// types: what a C header of the types holds.
func TypeDefinitions(types []btf.Type) []btf.Type {
	var out []btf.Type
	for _, t := range types {
		switch t.(type) {
		case *btf.Func, *btf.Var, *btf.Datasec:
			continue
		}
		out = append(out, t)
	}
	return out
}
