package inspect

import (
	"fmt"
	"io"
	"strings"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/btfkind"
)

// RawType is one BTF type as `bpftool btf dump ... format raw` shows it,
// with the JSON names of `bpftool -j btf dump`. Fields a kind does not
// have are left out.
type RawType struct {
	ID          btf.TypeID   `json:"id"`
	Kind        string       `json:"kind"`
	Name        string       `json:"name"`
	Size        *uint32      `json:"size,omitempty"`
	BitsOffset  *uint32      `json:"bits_offset,omitempty"`
	NrBits      *uint32      `json:"nr_bits,omitempty"`
	Encoding    string       `json:"encoding,omitempty"`
	TypeID      *btf.TypeID  `json:"type_id,omitempty"`
	IndexTypeID *btf.TypeID  `json:"index_type_id,omitempty"`
	NrElems     *uint32      `json:"nr_elems,omitempty"`
	RetTypeID   *btf.TypeID  `json:"ret_type_id,omitempty"`
	Vlen        *int         `json:"vlen,omitempty"`
	Linkage     string       `json:"linkage,omitempty"`
	FwdKind     string       `json:"fwd_kind,omitempty"`
	Members     []RawMember  `json:"members,omitempty"`
	Params      []RawMember  `json:"params,omitempty"`
	Values      []RawEnumVal `json:"values,omitempty"`
	Vars        []RawSecVar  `json:"vars,omitempty"`
	Value       string       `json:"value,omitempty"` // a type tag's
}

// RawMember is a member of a struct or union, or a function's parameter.
type RawMember struct {
	Name         string     `json:"name"`
	TypeID       btf.TypeID `json:"type_id"`
	BitsOffset   *uint32    `json:"bits_offset,omitempty"`
	BitfieldSize *uint32    `json:"bitfield_size,omitempty"`
}

// RawEnumVal is an enumerator.
type RawEnumVal struct {
	Name  string `json:"name"`
	Value int64  `json:"val"`
}

// RawSecVar is a variable of a data section.
type RawSecVar struct {
	TypeID btf.TypeID `json:"type_id"`
	Offset uint32     `json:"offset"`
	Size   uint32     `json:"size"`
	Name   string     `json:"-"`
}

// TypeIDer gives the id of a type in its BTF (btf.Spec's TypeID).
type TypeIDer interface {
	TypeID(btf.Type) (btf.TypeID, error)
}

func ptrTo[T any](v T) *T { return &v }

// Raw describes t, whose id in spec is id. Types that refer to others give
// their ids in spec (0 for void or a type spec does not hold).
//
// Two things differ from bpftool's dump of an object file: data sections
// have the sizes and variable offsets cilium/ebpf fixes up from the ELF
// symbols (the object's BTF has zeros until libbpf fixes them at load),
// and declaration tags are not types of their own (cilium/ebpf folds them
// into the tagged types' Tags), so they are not listed.
func Raw(spec TypeIDer, id btf.TypeID, t btf.Type) RawType {
	idOf := func(t btf.Type) btf.TypeID {
		if t == nil {
			return 0
		}
		if _, ok := t.(*btf.Void); ok {
			return 0
		}
		n, err := spec.TypeID(t)
		if err != nil {
			return 0
		}
		return n
	}
	r := RawType{ID: id, Kind: btfkind.Name(t), Name: anon(t.TypeName())}
	switch t := t.(type) {
	case *btf.Int:
		r.Size, r.BitsOffset, r.NrBits = ptrTo(t.Size), ptrTo(uint32(0)), ptrTo(t.Size*8)
		switch t.Encoding {
		case btf.Signed:
			r.Encoding = "SIGNED"
		case btf.Char:
			r.Encoding = "CHAR"
		case btf.Bool:
			r.Encoding = "BOOL"
		default:
			r.Encoding = "(none)"
		}
	case *btf.Pointer:
		r.TypeID = ptrTo(idOf(t.Target))
	case *btf.Array:
		r.TypeID, r.IndexTypeID, r.NrElems = ptrTo(idOf(t.Type)), ptrTo(idOf(t.Index)), ptrTo(t.Nelems)
	case *btf.Struct:
		r.Size, r.Vlen, r.Members = ptrTo(t.Size), ptrTo(len(t.Members)), rawMembers(t.Members, idOf)
	case *btf.Union:
		r.Size, r.Vlen, r.Members = ptrTo(t.Size), ptrTo(len(t.Members)), rawMembers(t.Members, idOf)
	case *btf.Enum:
		r.Encoding = "UNSIGNED"
		if t.Signed {
			r.Encoding = "SIGNED"
		}
		r.Size, r.Vlen = ptrTo(t.Size), ptrTo(len(t.Values))
		for _, v := range t.Values {
			val := int64(v.Value)
			if t.Signed {
				val = signExtend(v.Value, t.Size)
			}
			r.Values = append(r.Values, RawEnumVal{Name: v.Name, Value: val})
		}
	case *btf.Fwd:
		r.FwdKind = t.Kind.String()
	case *btf.Typedef:
		r.TypeID = ptrTo(idOf(t.Type))
	case *btf.Volatile:
		r.TypeID = ptrTo(idOf(t.Type))
	case *btf.Const:
		r.TypeID = ptrTo(idOf(t.Type))
	case *btf.Restrict:
		r.TypeID = ptrTo(idOf(t.Type))
	case *btf.TypeTag:
		r.TypeID, r.Value = ptrTo(idOf(t.Type)), t.Value
	case *btf.Func:
		r.TypeID = ptrTo(idOf(t.Type))
		r.Linkage = [...]string{"static", "global", "extern"}[min(max(int(t.Linkage), 0), 2)]
	case *btf.FuncProto:
		r.RetTypeID, r.Vlen = ptrTo(idOf(t.Return)), ptrTo(len(t.Params))
		for _, p := range t.Params {
			r.Params = append(r.Params, RawMember{Name: anon(p.Name), TypeID: idOf(p.Type)})
		}
	case *btf.Var:
		r.TypeID = ptrTo(idOf(t.Type))
		r.Linkage = [...]string{"static", "global", "extern"}[min(max(int(t.Linkage), 0), 2)]
	case *btf.Datasec:
		r.Size, r.Vlen = ptrTo(t.Size), ptrTo(len(t.Vars))
		for _, v := range t.Vars {
			r.Vars = append(r.Vars, RawSecVar{TypeID: idOf(v.Type), Offset: v.Offset, Size: v.Size, Name: v.Type.TypeName()})
		}
	case *btf.Float:
		r.Size = ptrTo(t.Size)
	}
	if r.Members == nil && (r.Kind == "STRUCT" || r.Kind == "UNION") {
		r.Members = []RawMember{}
	}
	return r
}

// anon is how bpftool prints an empty name.
func anon(name string) string {
	if name == "" {
		return "(anon)"
	}
	return name
}

func rawMembers(ms []btf.Member, idOf func(btf.Type) btf.TypeID) []RawMember {
	out := make([]RawMember, 0, len(ms))
	for _, m := range ms {
		rm := RawMember{Name: anon(m.Name), TypeID: idOf(m.Type), BitsOffset: ptrTo(uint32(m.Offset))}
		if m.BitfieldSize > 0 {
			rm.BitfieldSize = ptrTo(uint32(m.BitfieldSize))
		}
		out = append(out, rm)
	}
	return out
}

// WriteRaw writes types in bpftool's raw format:
//
//	[3] STRUCT 'xdp_md' size=24 vlen=6
//		'data' type_id=1 bits_offset=0
func WriteRaw(w io.Writer, types []RawType) error {
	var b strings.Builder
	for _, r := range types {
		fmt.Fprintf(&b, "[%d] %s '%s'", r.ID, r.Kind, r.Name)
		u := func(key string, v *uint32) {
			if v != nil {
				fmt.Fprintf(&b, " %s=%d", key, *v)
			}
		}
		id := func(key string, v *btf.TypeID) {
			if v != nil {
				fmt.Fprintf(&b, " %s=%d", key, *v)
			}
		}
		switch r.Kind {
		case "INT":
			u("size", r.Size)
			u("bits_offset", r.BitsOffset)
			u("nr_bits", r.NrBits)
			fmt.Fprintf(&b, " encoding=%s", r.Encoding)
		case "ENUM", "ENUM64":
			fmt.Fprintf(&b, " encoding=%s", r.Encoding)
			u("size", r.Size)
		case "FWD":
			fmt.Fprintf(&b, " fwd_kind=%s", r.FwdKind)
		case "FUNC_PROTO":
			id("ret_type_id", r.RetTypeID)
		case "VAR":
			id("type_id", r.TypeID)
			fmt.Fprintf(&b, ", linkage=%s", r.Linkage)
		default:
			u("size", r.Size)
			id("type_id", r.TypeID)
			id("index_type_id", r.IndexTypeID)
			u("nr_elems", r.NrElems)
			if r.Linkage != "" {
				fmt.Fprintf(&b, " linkage=%s", r.Linkage)
			}
			if r.Value != "" {
				fmt.Fprintf(&b, " value=%q", r.Value)
			}
		}
		if r.Vlen != nil {
			fmt.Fprintf(&b, " vlen=%d", *r.Vlen)
		}
		b.WriteByte('\n')
		for _, m := range r.Members {
			fmt.Fprintf(&b, "\t'%s' type_id=%d bits_offset=%d", m.Name, m.TypeID, deref(m.BitsOffset))
			if m.BitfieldSize != nil {
				fmt.Fprintf(&b, " bitfield_size=%d", *m.BitfieldSize)
			}
			b.WriteByte('\n')
		}
		for _, p := range r.Params {
			fmt.Fprintf(&b, "\t'%s' type_id=%d\n", p.Name, p.TypeID)
		}
		for _, v := range r.Values {
			fmt.Fprintf(&b, "\t'%s' val=%d\n", v.Name, v.Value)
		}
		for _, v := range r.Vars {
			fmt.Fprintf(&b, "\ttype_id=%d offset=%d size=%d (VAR '%s')\n", v.TypeID, v.Offset, v.Size, v.Name)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func deref(p *uint32) uint32 {
	if p == nil {
		return 0
	}
	return *p
}

// SelectTypes returns the types of spec to dump: all of them in id order,
// or, with names, those named so (any kind; an error names a name no type
// has).
func SelectTypes(spec *btf.Spec, names []string) ([]btf.Type, error) {
	if len(names) == 0 {
		var out []btf.Type
		for t, err := range spec.All() {
			if err != nil {
				return nil, fmt.Errorf("btf: %w", err)
			}
			if _, void := t.(*btf.Void); void {
				continue
			}
			out = append(out, t)
		}
		return out, nil
	}
	var out []btf.Type
	for _, n := range names {
		ts, err := spec.AnyTypesByName(n)
		if err != nil {
			return nil, fmt.Errorf("btf: type %q: %w", n, err)
		}
		out = append(out, ts...)
	}
	return out, nil
}

// RawTypes describes types of spec in the raw form.
func RawTypes(spec *btf.Spec, types []btf.Type) []RawType {
	out := make([]RawType, 0, len(types))
	for _, t := range types {
		id, err := spec.TypeID(t)
		if err != nil {
			continue // not spec's: cannot be, SelectTypes took it from spec
		}
		out = append(out, Raw(spec, id, t))
	}
	return out
}
