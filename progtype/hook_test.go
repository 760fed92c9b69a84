package progtype_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/progtype"
)

type hookInner struct {
	A uint8
	B uint64 `bpf:",rw"`
}

type hookCtx struct {
	Flag    bool
	Small   int8 `bpf:",rw"`
	Count   uint16
	Inner   hookInner
	Values  [3]int32 `bpf:"vals,rw"`
	Payload []byte   `bpf:",rw"`
	Skipped uint64   `bpf:"-"`
	private uint32
	SrcAddr uint32 `bpf:",ro"`
}

func TestNewHook_layout(t *testing.T) {
	h, err := progtype.NewHook[hookCtx]("events")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range h.Kind().Context().Fields {
		got = append(got, f.Name)
		_ = f
	}
	want := "flag small count inner.a inner.b vals payload payload_end src_addr"
	if strings.Join(got, " ") != want {
		t.Errorf("fields %q, want %q", strings.Join(got, " "), want)
	}
	l := h.Kind().Context()
	for _, c := range []struct {
		name      string
		off, size int
	}{{"flag", 0, 1}, {"small", 1, 1}, {"count", 2, 2}, {"inner.a", 8, 1}, {"inner.b", 16, 8}, {"vals", 24, 12}, {"payload", 40, 8}, {"payload_end", 48, 8}, {"src_addr", 56, 4}} {
		f := l.FieldByName(c.name)
		if f == nil || f.Off != c.off || f.Size != c.size {
			t.Errorf("%s: %+v, want offset %d size %d", c.name, f, c.off, c.size)
		}
	}
	if l.Size != 64 {
		t.Errorf("size %d, want 64", l.Size)
	}
	if h.Kind().Type() != progtype.UserHook || h.Kind().String() != "events" {
		t.Errorf("kind %s %s", h.Kind().Type(), h.Kind())
	}
}

func TestHook_Run(t *testing.T) {
	h, err := progtype.NewHook[hookCtx]("events")
	if err != nil {
		t.Fatal(err)
	}
	// Writes the writable fields from the read-only ones and the payload.
	prog := mustParse(t, `
		r2 = *(u8 *)(r1 + 0)        // flag
		r3 = *(u16 *)(r1 + 2)       // count
		r2 += r3
		*(u8 *)(r1 + 1) = r2        // small
		r4 = *(u64 *)(r1 + 40)      // payload
		r5 = *(u64 *)(r1 + 48)      // payload_end
		r6 = r4
		r6 += 2
		if r6 > r5 goto out
		r6 = *(u16 *)(r4 + 0)
		*(u64 *)(r1 + 16) = r6      // inner.b
		r6 = 0x7a
		*(u8 *)(r4 + 1) = r6        // the payload is writable
		r6 = *(u32 *)(r1 + 56)      // src_addr
		*(u32 *)(r1 + 32) = r6      // vals[2]
		r6 = -5
		*(u32 *)(r1 + 24) = r6      // vals[0]
	out:
		r0 = *(u8 *)(r1 + 8)        // inner.a
		exit`)
	p, err := h.Kind().Rewrite(prog)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range engines.All() {
		ip, err := mode.Load(p.Insns, engine.Options{UnsafeFastUnverified: !mode.Checked(), ContextVariants: p.Variants, ContextFaults: p.Faults})
		if err != nil {
			t.Fatal(err)
		}
		v := hookCtx{Flag: true, Count: 2, Inner: hookInner{A: 9}, Payload: []byte{0x34, 0x12, 0}, SrcAddr: 77, Skipped: 5}
		r0, err := h.Run(interpExec(ip), &v, progtype.Input{})
		if err != nil {
			t.Fatal(err)
		}
		want := hookCtx{Flag: true, Small: 3, Count: 2, Inner: hookInner{A: 9, B: 0x1234}, Values: [3]int32{-5, 0, 77},
			Payload: []byte{0x34, 0x7a, 0}, SrcAddr: 77, Skipped: 5}
		if r0 != 9 || v.Small != want.Small || v.Inner != want.Inner || v.Values != want.Values ||
			!bytes.Equal(v.Payload, want.Payload) || v.Skipped != 5 {
			t.Errorf("%s: r0 %d, context %+v, want 9 and %+v", mode, r0, v, want)
		}
	}
}

func TestHook_errors(t *testing.T) {
	if _, err := progtype.NewHook[int]("x"); err == nil {
		t.Error("a hook on int")
	}
	type withString struct{ S string }
	if _, err := progtype.NewHook[withString]("x"); err == nil {
		t.Error("a hook with a string field")
	}
	type withTag struct {
		A uint32 `bpf:",writable"`
	}
	if _, err := progtype.NewHook[withTag]("x"); err == nil {
		t.Error("an unknown tag option")
	}
	type empty struct{ a int }
	if _, err := progtype.NewHook[empty]("x"); err == nil {
		t.Error("a hook without fields")
	}
	h, err := progtype.NewHook[hookCtx]("events")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{
		"*(u8 *)(r1 + 0) = 1",          // flag is read-only
		"r0 = *(u32 *)(r1 + 4)",        // padding
		"r0 = *(u32 *)(r1 + 42)",       // half a pointer
		"*(u64 *)(r1 + 40) = r0",       // pointers are read-only
		"r0 = *(u64 *)(r1 + 2)",        // misaligned
		"r0 = *(u32 *)(r1 + 64)",       // past the end
		"r0 = *(u16 *)(r1 + 8)",        // runs past inner.a
		"r0 = *(s32 *)(r1 + 40)",       // pointers are read whole
		"lock *(u32 *)(r1 + 24) += r0", // atomics
	} {
		if _, err := h.Kind().Convert(mustParse(t, src+"\nexit"), []int{0}); err == nil {
			t.Errorf("%q was accepted", src)
		}
	}
	if _, err := h.NewRun(nil, progtype.Input{}); err == nil {
		t.Error("a run without a context")
	}
	if _, err := h.NewRun(&hookCtx{}, progtype.Input{Context: []byte{1}}); err == nil {
		t.Error("a run with both a Go context and Input.Context")
	}
}

func TestNewHookFields(t *testing.T) {
	k, err := progtype.NewHookFields("raw", []progtype.HookField{
		{Name: "a", Size: 4},
		{Name: "b", Size: 8, Writable: true},
		{Name: "buf", Size: 6, Elem: 2, Writable: true},
		{Name: "ptr", Pointer: true},
	}, progtype.AllowHelpers(14))
	if err != nil {
		t.Fatal(err)
	}
	l := k.Context()
	if l.Size != 32 || l.FieldByName("b").Off != 8 || l.FieldByName("buf").Off != 16 || l.FieldByName("ptr").Off != 24 {
		t.Fatalf("layout %+v", l)
	}
	if !k.Allowed(14) || k.Allowed(1) {
		t.Error("AllowHelpers(14) did not set the allowed helpers")
	}
	ctx := make([]byte, 32)
	ctx[0] = 5
	prog := mustParse(t, `
		r2 = *(u32 *)(r1 + 0)
		r2 += 1
		*(u64 *)(r1 + 8) = r2
		*(u16 *)(r1 + 20) = r2
		call 14
		exit`)
	task := &progtype.Task{PID: 3, TGID: 4}
	out, err := runProg(t, checked, k, prog, progtype.Input{Context: ctx, Task: task}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Retval != 3 || out.Context[8] != 6 || out.Context[20] != 6 {
		t.Errorf("retval %d, context %x", out.Retval, out.Context)
	}
	for _, bad := range [][]progtype.HookField{
		{{Name: "a", Size: 3}},
		{{Name: "a", Size: 4}, {Name: "a", Size: 4}},
		{{Name: "", Size: 4}},
		{{Name: "a", Size: 6, Elem: 4}},
		{{Name: "p", Size: 4, Pointer: true}},
		{},
	} {
		if _, err := progtype.NewHookFields("bad", bad); err == nil {
			t.Errorf("fields %+v were accepted", bad)
		}
	}
}
