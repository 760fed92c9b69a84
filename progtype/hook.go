package progtype

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// A user hook is a program type a Go program defines for its own hook
// points: it declares the context its programs receive, either as a Go
// struct type (NewHook) or as a list of fields (NewHookFields), and runs the
// programs attached there with a value of that context. The programs are
// ordinary eBPF, written in C against a struct with the same layout:
//
//	type Request struct {
//		PID     uint32   `bpf:"pid"`
//		Method  [8]byte  `bpf:"method"`
//		Path    []byte   `bpf:"path"`     // the program sees __u64 path, path_end
//		Verdict int32    `bpf:"verdict,rw"`
//	}
//
//	struct request {                     // the program's view
//		__u32 pid;
//		char  method[8];
//		__u64 path, path_end;            // pointers to the bytes, as xdp_md's data
//		__s32 verdict;                   // writable
//	};
//
// Fields are read-only unless tagged "rw". The layout follows C's rules
// (each member aligned to its size, nested structs to their widest member),
// so it is what clang gives the C struct. Unexported fields and fields
// tagged `bpf:"-"` are not part of the context.
//
// A hook's runtime layout is its UAPI layout: the rewrite only checks
// accesses (inside one field, aligned, writes only to "rw" fields,
// pointers read whole) and keeps the instructions as they are.

// HookField declares one member of a hook context for NewHookFields.
type HookField struct {
	Name string
	// Size is the member's size in bytes: 1, 2, 4 or 8 for a scalar, a
	// multiple of Elem for an array.
	Size int
	// Elem is an array's element size (1, 2, 4 or 8); 0 for a scalar.
	Elem int
	// Pointer makes the member an 8-byte pointer, read-only and read
	// whole; the memory it points to is lent to the run with
	// Input.Memory.
	Pointer  bool
	Writable bool
}

// HookOption configures a user hook.
type HookOption func(*hookSpec)

// AllowHelpers sets the helpers the hook's programs may call (by Linux id),
// instead of the default: the base helpers every program type has, the
// current-task helpers (from Input.Task), bpf_get_func_ip (Input.FuncIP),
// bpf_send_signal and the bpf_probe_read_* family over Input.Memory.
func AllowHelpers(ids ...int32) HookOption {
	return func(h *hookSpec) { h.allowed = setOf(ids...) }
}

// hookSpec is what a user hook adds to its Kind.
type hookSpec struct {
	allowed idSet
}

// hookRun is the run state of a user hook.
type hookRun struct {
	back func(shadow []byte) // writes the writable fields back into a Go value
}

// NewHookFields makes a user hook whose context has the given fields, laid
// out in order with C's alignment. Its runs take the context as bytes
// (Input.Context) and return it in Output.Context.
func NewHookFields(name string, fields []HookField, opts ...HookOption) (*Kind, error) {
	b := &hookLayout{name: name}
	for _, f := range fields {
		if err := b.add(f); err != nil {
			return nil, fmt.Errorf("progtype: hook %s: %w", name, err)
		}
	}
	return b.kind(opts)
}

// hookLayout builds a hook's layout.
type hookLayout struct {
	name     string
	fields   []Field
	writable [][2]int
	off      int
	align    int
}

func (b *hookLayout) add(f HookField) error {
	if f.Name == "" {
		return fmt.Errorf("a field has no name")
	}
	for _, g := range b.fields {
		if g.Name == f.Name {
			return fmt.Errorf("two fields are named %q", f.Name)
		}
	}
	kind, align := Scalar, f.Size
	switch {
	case f.Pointer:
		if f.Size != 0 && f.Size != 8 || f.Elem != 0 {
			return fmt.Errorf("field %s: a pointer is 8 bytes", f.Name)
		}
		kind, align, f.Size = Pointer, 8, 8
		f.Writable = false
	case f.Elem != 0:
		if !validSize(f.Elem) || f.Size <= 0 || f.Size%f.Elem != 0 {
			return fmt.Errorf("field %s: an array of %d bytes of %d-byte elements", f.Name, f.Size, f.Elem)
		}
		kind, align = Array, f.Elem
	default:
		if !validSize(f.Size) {
			return fmt.Errorf("field %s: a scalar is 1, 2, 4 or 8 bytes, not %d", f.Name, f.Size)
		}
	}
	b.put(Field{Name: f.Name, Kind: kind, Size: f.Size, Elem: f.Elem}, align, f.Writable)
	return nil
}

// put places a field at the next offset aligned to align.
func (b *hookLayout) put(f Field, align int, writable bool) {
	b.off = (b.off + align - 1) / align * align
	if align > b.align {
		b.align = align
	}
	f.Off, f.Runtime = b.off, b.off
	b.off += f.Size
	b.fields = append(b.fields, f)
	if writable {
		n := len(b.writable)
		if n > 0 && b.writable[n-1][1] == f.Off {
			b.writable[n-1][1] = b.off
		} else {
			b.writable = append(b.writable, [2]int{f.Off, b.off})
		}
	}
}

func validSize(n int) bool { return n == 1 || n == 2 || n == 4 || n == 8 }

func (b *hookLayout) kind(opts []HookOption) (*Kind, error) {
	if b.name == "" {
		return nil, fmt.Errorf("progtype: a hook needs a name")
	}
	if len(b.fields) == 0 {
		return nil, fmt.Errorf("progtype: hook %s: the context has no fields", b.name)
	}
	align := max(b.align, 1)
	size := (b.off + align - 1) / align * align
	l := &Layout{Name: b.name, Size: size, RuntimeSize: (size + 7) / 8 * 8, Fields: b.fields, writable: b.writable}
	spec := &hookSpec{allowed: hookIDs}
	for _, o := range opts {
		o(spec)
	}
	return &Kind{typ: UserHook, name: b.name, layout: l, rules: hookRules, run: runHook,
		allowed: func(k *Kind, id int32) bool { return k.hook.allowed[id] }, hook: spec}, nil
}

// hookRules checks an access to a hook context: inside one field, aligned
// to its size, pointers read whole with 8-byte loads that do not sign
// extend, writes only to writable fields.
func hookRules(k *Kind, a ctxAccess) (conversion, string) {
	l := k.layout
	if a.off < 0 || a.off+a.size > l.Size {
		return conversion{}, fmt.Sprintf("offset %d is outside %s (%d bytes)", a.off, l.Name, l.Size)
	}
	if a.off%a.size != 0 {
		return conversion{}, fmt.Sprintf("%s access at offset %d is misaligned", sized(a.size), a.off)
	}
	f := l.Field(a.off)
	if f == nil {
		return conversion{}, "the bytes are padding"
	}
	if a.off+a.size > f.Off+f.Size {
		return conversion{}, fmt.Sprintf("%s access at offset %d runs past the field (%d bytes)", sized(a.size), a.off, f.Size)
	}
	if f.Kind == Pointer {
		if a.write {
			return conversion{}, "pointer fields are read-only"
		}
		if a.size != 8 || a.signExt {
			return conversion{}, "pointer fields are read whole, with 8-byte loads"
		}
	}
	if a.write && !l.Writable(a.off) {
		return conversion{}, "the field is read-only (tag it `bpf:\",rw\"` or set HookField.Writable)"
	}
	return conversion{off: a.off}, ""
}

// resetHook copies ctx_in into the shadow struct.
func (r *Run) resetHook(in *Input) error {
	if len(in.Data) != 0 {
		return einval("data_in of %d bytes: hook programs take no packet", len(in.Data))
	}
	if len(in.Context) > r.kind.layout.Size {
		return einval("ctx_in of %d bytes: %s is %d bytes", len(in.Context), r.kind.layout.Name, r.kind.layout.Size)
	}
	copy(r.shadow, in.Context)
	if r.hook == nil {
		r.hook = &hookRun{}
	}
	r.hook.back = nil
	return nil
}

// finishHook returns the context and writes it back into the Go value.
func (r *Run) finishHook(out *Output, parts OutputParts) {
	if parts&OutputContext != 0 {
		out.Context = r.shadow[:r.kind.layout.Size]
	}
	if r.hook.back != nil {
		r.hook.back(r.shadow)
	}
}

// Hook is a user hook whose context is the Go struct type T.
type Hook[T any] struct {
	kind   *Kind
	leaves []hookLeaf
}

// hookLeaf is one field of T in the context.
type hookLeaf struct {
	path     []int // reflect field index path
	off      int
	size     int // scalar or element size
	n        int // elements; 1 for a scalar
	bytes    bool
	writable bool
}

// Exec runs a program on a prepared run with whatever engine the caller
// uses and returns r0: r1 = r.Ctx(), the memory in r.Regions(), and
// helpers.State.Hook = r. The root package's programs provide one.
type Exec func(r *Run) (uint64, error)

// NewHook makes a user hook whose context is T, a struct of integers
// (int8 to uint64, bool), arrays of them, byte slices (seen by programs as
// two pointers, name and name_end) and nested structs of the same.
func NewHook[T any](name string, opts ...HookOption) (*Hook[T], error) {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("progtype: hook %s: the context must be a struct, not %s", name, t)
	}
	b := &hookLayout{name: name}
	h := &Hook[T]{}
	if err := h.walk(b, t, nil, "", false); err != nil {
		return nil, fmt.Errorf("progtype: hook %s: %w", name, err)
	}
	k, err := b.kind(opts)
	if err != nil {
		return nil, err
	}
	h.kind = k
	return h, nil
}

// walk lays out the fields of struct type t.
func (h *Hook[T]) walk(b *hookLayout, t reflect.Type, path []int, prefix string, rw bool) error {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("bpf")
		if !sf.IsExported() || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = snake(sf.Name)
		}
		name = prefix + name
		writable := rw
		for _, o := range strings.Split(opts, ",") {
			switch o {
			case "rw":
				writable = true
			case "", "ro":
			default:
				return fmt.Errorf("field %s: unknown tag option %q (rw, ro)", sf.Name, o)
			}
		}
		p := append(append([]int(nil), path...), i)
		ft := sf.Type
		switch {
		case ft.Kind() == reflect.Struct:
			align := structAlign(ft)
			b.off = (b.off + align - 1) / align * align
			if align > b.align {
				b.align = align
			}
			if err := h.walk(b, ft, p, name+".", writable); err != nil {
				return err
			}
			b.off = (b.off + align - 1) / align * align
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Uint8:
			b.put(Field{Name: name, Kind: Pointer, Size: 8}, 8, false)
			off := b.fields[len(b.fields)-1].Off
			b.put(Field{Name: name + "_end", Kind: Pointer, Size: 8}, 8, false)
			h.leaves = append(h.leaves, hookLeaf{path: p, off: off, size: 8, n: 1, bytes: true, writable: writable})
		case ft.Kind() == reflect.Array:
			es, ok := intSize(ft.Elem())
			if !ok || ft.Len() == 0 {
				return fmt.Errorf("field %s: %s is not an array of integers", sf.Name, ft)
			}
			b.put(Field{Name: name, Kind: Array, Size: es * ft.Len(), Elem: es}, es, writable)
			h.leaves = append(h.leaves, hookLeaf{path: p, off: b.fields[len(b.fields)-1].Off, size: es, n: ft.Len(), writable: writable})
		default:
			sz, ok := intSize(ft)
			if !ok {
				return fmt.Errorf("field %s: %s cannot be part of a context (integers, bools, arrays of them, []byte and structs can)", sf.Name, ft)
			}
			b.put(Field{Name: name, Size: sz}, sz, writable)
			h.leaves = append(h.leaves, hookLeaf{path: p, off: b.fields[len(b.fields)-1].Off, size: sz, n: 1, writable: writable})
		}
	}
	return nil
}

// structAlign is the C alignment of a nested context struct: that of its
// widest member (8 for byte slices, seen as pointers).
func structAlign(t reflect.Type) int {
	a := 1
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Tag.Get("bpf") == "-" {
			continue
		}
		ft := sf.Type
		n := 1
		switch {
		case ft.Kind() == reflect.Struct:
			n = structAlign(ft)
		case ft.Kind() == reflect.Slice:
			n = 8
		case ft.Kind() == reflect.Array:
			n, _ = intSize(ft.Elem())
		default:
			n, _ = intSize(ft)
		}
		a = max(a, n)
	}
	return a
}

// intSize returns the size of an integer or bool type.
func intSize(t reflect.Type) (int, bool) {
	switch t.Kind() {
	case reflect.Bool, reflect.Int8, reflect.Uint8:
		return 1, true
	case reflect.Int16, reflect.Uint16:
		return 2, true
	case reflect.Int32, reflect.Uint32:
		return 4, true
	case reflect.Int64, reflect.Uint64, reflect.Int, reflect.Uint, reflect.Uintptr:
		return int(t.Size()), t.Size() == 8 || t.Size() == 4
	}
	return 0, false
}

// snake turns a Go field name into a C one: "SrcAddr" → "src_addr",
// "PID" → "pid".
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Kind returns the hook's Kind: its context layout, rewrite and helpers.
func (h *Hook[T]) Kind() *Kind { return h.kind }

// NewRun prepares a run with *ctx as the context: its fields are copied
// into the shadow struct, its byte slices lent to the run (writable if
// tagged rw), and after Finish the writable fields are copied back into
// *ctx. in.Context must be nil; in.Task, in.FuncIP and in.Memory are used
// as for any run.
func (h *Hook[T]) NewRun(ctx *T, in Input) (*Run, error) {
	if ctx == nil {
		return nil, fmt.Errorf("progtype: hook %s: nil context", h.kind.name)
	}
	if in.Context != nil {
		return nil, fmt.Errorf("progtype: hook %s: the context is the Go value, not Input.Context", h.kind.name)
	}
	buf := make([]byte, h.kind.layout.Size)
	v := reflect.ValueOf(ctx).Elem()
	extra := make([]Region, 0, len(in.Memory)+1)
	extra = append(extra, in.Memory...)
	for _, lf := range h.leaves {
		fv := v.FieldByIndex(lf.path)
		if lf.bytes {
			b := fv.Bytes()
			addr := mem.Addr(b)
			le.PutUint64(buf[lf.off:], addr)
			le.PutUint64(buf[lf.off+8:], addr+uint64(len(b)))
			if len(b) > 0 {
				extra = append(extra, Region{Data: b, Writable: lf.writable})
			}
			continue
		}
		for i := 0; i < lf.n; i++ {
			ev := fv
			if fv.Kind() == reflect.Array {
				ev = fv.Index(i)
			}
			putInt(buf[lf.off+i*lf.size:], lf.size, ev)
		}
	}
	in.Context, in.Memory = buf, extra
	r, err := h.kind.NewRun(in)
	if err != nil {
		return nil, err
	}
	r.hook.back = func(shadow []byte) {
		for _, lf := range h.leaves {
			if !lf.writable || lf.bytes {
				continue
			}
			fv := v.FieldByIndex(lf.path)
			for i := 0; i < lf.n; i++ {
				ev := fv
				if fv.Kind() == reflect.Array {
					ev = fv.Index(i)
				}
				getInt(shadow[lf.off+i*lf.size:], lf.size, ev)
			}
		}
	}
	return r, nil
}

// Run runs a program at the hook with *ctx as its context: NewRun, exec,
// Finish. It returns the program's r0; the writable fields of *ctx hold
// what the program left in them.
func (h *Hook[T]) Run(exec Exec, ctx *T, in Input) (uint64, error) {
	r, err := h.NewRun(ctx, in)
	if err != nil {
		return 0, err
	}
	r0, err := exec(r)
	if err != nil {
		return r0, err
	}
	if _, err := r.Finish(r0); err != nil {
		return r0, err
	}
	return r0, nil
}

func putInt(b []byte, size int, v reflect.Value) {
	var x uint64
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			x = 1
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x = uint64(v.Int())
	default:
		x = v.Uint()
	}
	switch size {
	case 1:
		b[0] = byte(x)
	case 2:
		le.PutUint16(b, uint16(x))
	case 4:
		le.PutUint32(b, uint32(x))
	default:
		le.PutUint64(b, x)
	}
}

func getInt(b []byte, size int, v reflect.Value) {
	var x uint64
	switch size {
	case 1:
		x = uint64(b[0])
	case 2:
		x = uint64(le.Uint16(b))
	case 4:
		x = uint64(le.Uint32(b))
	default:
		x = le.Uint64(b)
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(x != 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		shift := 64 - 8*size
		v.SetInt(int64(x<<shift) >> shift)
	default:
		v.SetUint(x)
	}
}
