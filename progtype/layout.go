package progtype

import (
	"errors"
	"fmt"
)

// Layout describes a context struct twice: as programs see it (the UAPI
// layout their loads and stores address, e.g. struct __sk_buff) and as
// waggle lays it out in memory for a run (the runtime layout). The runtime
// layout is a flat shadow struct whose fields programs read and write
// directly; waggle fills it from the run's state before the run and reads
// the writable fields back after it.
//
// Every field has the same size in both layouts except pointer fields
// (xdp_md.data and friends), which are 4 bytes in the UAPI and 8 at run
// time. So every context access is rewritten into exactly one instruction:
// the same load or store at the runtime offset, with the pointer loads
// widened to 8 bytes. The kernel's rewrite (each type's convert_ctx_access
// in net/core/filter.c) emits several instructions because it reads the
// real sk_buff and xdp_buff; the shadow struct is what makes one enough, so
// slot indices, jump offsets and error messages stay valid after the
// rewrite.
//
// Read-only and writable fields live in separate parts of the runtime
// layout (see Regions), so an engine that checks memory accesses can refuse
// writes to read-only fields at run time too.
type Layout struct {
	// Name is the C name of the context ("__sk_buff", "xdp_md").
	Name string
	// Size is the size of the UAPI struct in bytes.
	Size int
	// RuntimeSize is the size of the runtime layout in bytes.
	RuntimeSize int
	// Fields lists the members, in UAPI order. Padding is not listed.
	Fields []Field
	// writable lists [lo, hi) ranges of the runtime layout programs may
	// write, sorted.
	writable [][2]int
}

// FieldKind classifies how a field may be accessed.
type FieldKind uint8

// Field kinds.
const (
	// Scalar fields hold a number.
	Scalar FieldKind = iota
	// Pointer fields (data, data_end, data_meta) hold an address: 4 bytes
	// in the UAPI, 8 at run time; they are read with whole-field loads
	// that are not sign-extending.
	Pointer
	// Array fields (cb[5], args[12]) may be accessed with any size at an
	// aligned offset inside the array.
	Array
)

// Field is one member of a context struct.
type Field struct {
	// Name is the member's C name ("mark", "cb", "data").
	Name string
	Kind FieldKind
	// Off and Size place the member in the UAPI struct.
	Off, Size int
	// Elem is the element size of an Array field.
	Elem int
	// Runtime is the member's offset in the runtime layout; its size there
	// is Size, or 8 for a Pointer.
	Runtime int
}

// RuntimeSize returns the size of the field in the runtime layout.
func (f *Field) RuntimeSize() int {
	if f.Kind == Pointer {
		return 8
	}
	return f.Size
}

// contains reports whether UAPI offset off lies in the field.
func (f *Field) contains(off int) bool { return off >= f.Off && off < f.Off+f.Size }

// Field returns the member that contains UAPI offset off, or nil.
func (l *Layout) Field(off int) *Field {
	for i := range l.Fields {
		if l.Fields[i].contains(off) {
			return &l.Fields[i]
		}
	}
	return nil
}

// FieldByName returns the member with the given name, or nil.
func (l *Layout) FieldByName(name string) *Field {
	for i := range l.Fields {
		if l.Fields[i].Name == name {
			return &l.Fields[i]
		}
	}
	return nil
}

// Writable reports whether runtime offset off lies in the writable part of
// the runtime layout.
func (l *Layout) Writable(off int) bool {
	for _, r := range l.writable {
		if off >= r[0] && off < r[1] {
			return true
		}
	}
	return false
}

// regions splits a shadow buffer of this layout into the regions an engine
// receives: the writable ranges writable, everything else read-only.
func (l *Layout) regions(shadow []byte, out *regionList) {
	at := 0
	for _, r := range l.writable {
		lo, hi := min(r[0], len(shadow)), min(r[1], len(shadow))
		if lo > at {
			out.add(Region{Data: shadow[at:lo]})
		}
		if hi > lo {
			out.add(Region{Data: shadow[lo:hi], Writable: true})
		}
		at = max(at, hi)
	}
	if at < len(shadow) {
		out.add(Region{Data: shadow[at:]})
	}
}

// describe names a UAPI offset for messages: "__sk_buff.mark",
// "__sk_buff.cb[2]" or "__sk_buff+181".
func (l *Layout) describe(off int) string {
	f := l.Field(off)
	if f == nil {
		return fmt.Sprintf("%s+%d", l.Name, off)
	}
	s := l.Name + "." + f.Name
	switch {
	case f.Kind == Array:
		s += fmt.Sprintf("[%d]", (off-f.Off)/f.Elem)
		if r := (off - f.Off) % f.Elem; r != 0 {
			s += fmt.Sprintf("+%d", r)
		}
	case off != f.Off:
		s += fmt.Sprintf("+%d", off-f.Off)
	}
	return s
}

// layoutBuilder assembles a Layout from UAPI fields placed in a runtime
// order chosen for the read-only/writable split.
type layoutBuilder struct {
	l  Layout
	rt int
}

func newLayout(name string, size int) *layoutBuilder {
	return &layoutBuilder{l: Layout{Name: name, Size: size}}
}

// place appends the UAPI member f at the next runtime offset (aligned to
// its runtime size, at most 8) and marks it writable if asked.
func (b *layoutBuilder) place(f Field, writable bool) {
	align := f.RuntimeSize()
	if f.Kind == Array {
		align = f.Elem
	}
	if align > 8 {
		align = 8
	}
	b.rt = (b.rt + align - 1) / align * align
	f.Runtime = b.rt
	b.rt += f.RuntimeSize()
	b.l.Fields = append(b.l.Fields, f)
	if writable {
		n := len(b.l.writable)
		if n > 0 && b.l.writable[n-1][1] == f.Runtime {
			b.l.writable[n-1][1] = b.rt
		} else {
			b.l.writable = append(b.l.writable, [2]int{f.Runtime, b.rt})
		}
	}
}

// align pads the runtime layout to a multiple of n.
func (b *layoutBuilder) align(n int) { b.rt = (b.rt + n - 1) / n * n }

// done sorts the fields into UAPI order and returns the layout.
func (b *layoutBuilder) done() *Layout {
	b.align(8)
	b.l.RuntimeSize = b.rt
	sortFields(b.l.Fields)
	l := b.l
	return &l
}

// sortFields sorts fields by UAPI offset (insertion sort: layouts are
// small).
func sortFields(fs []Field) {
	for i := 1; i < len(fs); i++ {
		for j := i; j > 0 && fs[j].Off < fs[j-1].Off; j-- {
			fs[j], fs[j-1] = fs[j-1], fs[j]
		}
	}
}

// ErrContextAccess is the class of every *AccessError, for errors.Is.
var ErrContextAccess = errors.New("invalid context access")

// AccessError is a context access the kernel's verifier would refuse (the
// program type's is_valid_access in net/core/filter.c or
// kernel/trace/bpf_trace.c, or check_ctx_access and check_mem_access in
// kernel/bpf/verifier.c). It names the instruction, the field and the rule:
//
//	instruction 7: write to __sk_buff.len: the field is read-only
type AccessError struct {
	Insn  int    // slot index of the load or store
	Ctx   string // the context struct ("__sk_buff")
	Where string // the field accessed ("__sk_buff.cb[2]", "__sk_buff+181")
	Off   int    // UAPI offset accessed
	Size  int    // bytes accessed
	Write bool
	Rule  string // what the kernel requires
}

// Error returns "instruction N: read of field: rule" (or "write to").
func (e *AccessError) Error() string {
	verb := "read of"
	if e.Write {
		verb = "write to"
	}
	return fmt.Sprintf("instruction %d: %s %s: %s", e.Insn, verb, e.Where, e.Rule)
}

// Unwrap returns ErrContextAccess.
func (e *AccessError) Unwrap() error { return ErrContextAccess }

// sized spells an access size for messages: "a 4-byte", "an 8-byte".
func sized(n int) string {
	if n == 8 {
		return fmt.Sprintf("an %d-byte", n)
	}
	return fmt.Sprintf("a %d-byte", n)
}
