package verifier_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// BTF types for hand-built prototypes.
var (
	btfInt    = &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	btfIntPtr = &btf.Pointer{Target: btfInt}
	btfXDPMd  = &btf.Pointer{Target: &btf.Struct{Name: "xdp_md", Size: 24}}
	btfVoidP  = &btf.Pointer{Target: &btf.Void{}}
)

// fn is a function of a hand-built program: where it starts, its
// linkage and its prototype.
type fn struct {
	name    string
	start   int
	global  bool
	ret     btf.Type
	params  []btf.Type
	tags    [][]string
	noProto bool
}

// withFuncs gives p the BTF func info of fns.
func withFuncs(p *verifier.Program, fns ...fn) *verifier.Program {
	for _, f := range fns {
		proto := &btf.FuncProto{Return: f.ret}
		if proto.Return == nil {
			proto.Return = btfInt
		}
		for i, t := range f.params {
			proto.Params = append(proto.Params, btf.FuncParam{Name: string(rune('a' + i)), Type: t})
		}
		link := btf.StaticFunc
		if f.global {
			link = btf.GlobalFunc
		}
		p.Funcs = append(p.Funcs, loader.Func{Name: f.name, Start: f.start,
			BTF: &btf.Func{Name: f.name, Type: proto, Linkage: link, ParamTags: f.tags}})
	}
	return p
}

// varStack is a function that reads its stack at an offset its argument
// gives: safe for the caller's r1 = 3, not for any int.
const varStack = `
	r1 = 3
	call pc+2
	r0 = 0
	exit
	r2 = 0
	*(u64 *)(r10 - 8) = r2
	r2 = r10
	r2 += -8
	r2 += r1
	r0 = *(u8 *)(r2 + 0)
	exit`

func TestVerify_global(t *testing.T) {
	entry := fn{name: "prog", start: 0, global: true, params: []btf.Type{btfXDPMd}}
	tests := []struct {
		name string
		src  string
		fns  []fn
		// want is "" for accepted, else a substring of the error.
		want   string
		logHas []string
		// inGlobal says the error is found verifying a global function.
		inGlobal bool
	}{
		{name: "static callee sees the caller's bounds", src: varStack,
			fns: []fn{entry, {name: "f", start: 4, params: []btf.Type{btfInt}}}},
		{name: "without BTF the callee is static", src: varStack},
		{name: "global callee does not", src: varStack,
			fns:      []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfInt}}},
			want:     "math between fp pointer and register with unbounded min value",
			logHas:   []string{"Func#1 ('f') is global and assumed valid.", "Validating f() func#1..."},
			inGlobal: true},
		{name: "ctx argument given the stack", src: `
			r1 = r10
			r1 += -8
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 5, global: true, params: []btf.Type{btfXDPMd}}},
			want: "Caller passes invalid args into func#1 ('f'): arg#0 expects pointer to ctx"},
		{name: "ctx argument", src: `
			call pc+2
			r0 = 0
			exit
			r2 = *(u32 *)(r1 + 0)
			r0 = 0
			exit`,
			fns:    []fn{entry, {name: "f", start: 3, global: true, params: []btf.Type{btfXDPMd}}},
			logHas: []string{"Func#1 ('f') is safe for any args that match its prototype"}},
		{name: "__arg_ctx void pointer", src: `
			call pc+2
			r0 = 0
			exit
			r2 = *(u32 *)(r1 + 0)
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 3, global: true, params: []btf.Type{btfVoidP}, tags: [][]string{{"arg:ctx"}}}}},
		{name: "moved ctx", src: `
			r1 += 4
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfXDPMd}}},
			want: "dereference of modified ctx ptr R1 off=4 disallowed"},
		{name: "scalar argument given a pointer", src: `
			r1 = r10
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfInt}}},
			want: "R1 is not a scalar"},
		{name: "memory may be NULL", src: `
			r1 = 0
			*(u32 *)(r10 - 4) = r1
			r1 = r10
			r1 += -4
			call pc+2
			r0 = 0
			exit
			r2 = *(u32 *)(r1 + 0)
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 7, global: true, params: []btf.Type{btfIntPtr}}},
			want: "invalid mem access 'mem_or_null'"},
		{name: "memory checked for NULL", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			if r1 == 0 goto +1
			r0 = *(u32 *)(r1 + 0)
			exit`,
			fns: []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfIntPtr}}}},
		{name: "__arg_nonnull memory", src: `
			r1 = 0
			*(u32 *)(r10 - 4) = r1
			r1 = r10
			r1 += -4
			call pc+2
			r0 = 0
			exit
			r2 = *(u32 *)(r1 + 0)
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 7, global: true, params: []btf.Type{btfIntPtr}, tags: [][]string{{"arg:nonnull"}}}}},
		{name: "memory too small", src: `
			r1 = r10
			r1 += -2
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 5, global: true, params: []btf.Type{btfIntPtr}}},
			want: "invalid indirect access to stack R1 off=-2 size=4"},
		{name: "packet without bounds", src: `
			r1 = *(u32 *)(r1 + 0)
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfIntPtr}}},
			want: "invalid access to packet"},
		{name: "NULL to __arg_nonnull", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 0)
			exit`,
			fns:  []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfIntPtr}, tags: [][]string{{"arg:nonnull"}}}},
			want: "Caller passes invalid args into func#1 ('f'): arg#0 is expected to be non-NULL"},
		{name: "maybe-NULL memory to __arg_nonnull", src: `
			r1 = 0
			*(u32 *)(r10 - 4) = r1
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			r1 = r0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 11, global: true, params: []btf.Type{btfIntPtr}, tags: [][]string{{"arg:nonnull"}}}},
			want: "arg#0 is expected to be non-NULL"},
		// The callee may write what it was given: the caller's zero
		// is unknown after the call.
		{name: "stack clobbered by the call", src: `
			r1 = 0
			*(u64 *)(r10 - 8) = r1
			r1 = r10
			r1 += -8
			call pc+9
			r1 = *(u64 *)(r10 - 8)
			r2 = 0
			*(u64 *)(r10 - 16) = r2
			r2 = r10
			r2 += -16
			r2 += r1
			r0 = *(u8 *)(r2 + 0)
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 14, global: true, params: []btf.Type{btfIntPtr}}},
			want: "math between fp pointer and register with unbounded min value"},
		{name: "void return", src: `
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 3, global: true, ret: &btf.Void{}}},
			want: "Global function f() doesn't return scalar"},
		{name: "returns a pointer", src: `
			call pc+2
			r0 = 0
			exit
			r0 = r10
			exit`,
			fns:  []fn{entry, {name: "f", start: 3, global: true}},
			want: "At subprogram exit the register R0 is not a scalar value (fp)"},
		{name: "forward-declared struct", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 4, global: true,
				params: []btf.Type{&btf.Pointer{Target: &btf.Fwd{Name: "S", Kind: btf.FwdStruct}}}}},
			want: "arg#0 reference type('FWD S') size cannot be determined"},
		{name: "dynptr given a scalar", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 4, global: true,
				params: []btf.Type{&btf.Pointer{Target: &btf.Struct{Name: "bpf_dynptr", Size: 16}}}}},
			want: "Caller passes invalid args into func#1 ('f'): arg#0 expected pointer to stack or const struct bpf_dynptr"},
		{name: "dynptr not initialised", src: `
			r1 = r10
			r1 += -16
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 5, global: true,
				params: []btf.Type{&btf.Pointer{Target: &btf.Struct{Name: "bpf_dynptr", Size: 16}}}}},
			want: "Caller passes invalid args into func#1 ('f'): Expected an initialized dynptr as arg #0"},
		{name: "struct by value", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns: []fn{entry, {name: "f", start: 4, global: true,
				params: []btf.Type{&btf.Struct{Name: "pair", Size: 8}}}},
			want: "Arg#0 type STRUCT in f() is not supported yet."},
		{name: "tag on a scalar", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 4, global: true, params: []btf.Type{btfInt}, tags: [][]string{{"arg:nonnull"}}}},
			want: "arg#0 has pointer tag, but is not a pointer type"},
		{name: "call under a lock", src: `
			r1 = 0
			*(u32 *)(r10 - 4) = r1
			r2 = r10
			r2 += -4
			r1 = map_idx(1) ll
			call 1
			if r0 == 0 goto +6
			r6 = r0
			r1 = r0
			call 93
			call pc+4
			r1 = r6
			call 94
			r0 = 0
			exit
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 16, global: true}},
			want: "global function calls are not allowed while holding a lock"},
		// A global function called only from dead code is not verified
		// (Linux 6.8 on).
		{name: "dead call", src: `
			r1 = 0
			if r1 != 0 goto +2
			r0 = 0
			exit
			call pc+2
			r0 = 0
			exit
			r0 = r10
			r0 = *(u64 *)(r0 + 8)
			exit`,
			fns: []fn{entry, {name: "f", start: 7, global: true}}},
		// One called from live code is, whatever its result is used
		// for.
		{name: "live call", src: `
			call pc+2
			r0 = 0
			exit
			r0 = r10
			r0 = *(u64 *)(r0 + 8)
			exit`,
			fns:  []fn{entry, {name: "f", start: 3, global: true}},
			want: "invalid read from stack R0 off=8 size=8"},
		// Global functions called by global functions are verified in
		// turn.
		{name: "transitive", src: `
			call pc+2
			r0 = 0
			exit
			call pc+2
			r0 = 0
			exit
			r0 = r10
			r0 = *(u64 *)(r0 + 8)
			exit`,
			fns:    []fn{entry, {name: "f", start: 3, global: true}, {name: "g", start: 6, global: true}},
			want:   "invalid read from stack R0 off=8 size=8",
			logHas: []string{"Func#1 ('f') is safe for any args", "Validating g() func#2..."}},
		{name: "changes packet data", src: `
			r2 = *(u32 *)(r1 + 4)
			r6 = *(u32 *)(r1 + 0)
			r3 = r6
			r3 += 1
			if r3 > r2 goto +4
			call pc+5
			r0 = *(u8 *)(r6 + 0)
			r0 = 0
			exit
			r0 = 0
			exit
			r2 = 0
			call 44
			r0 = 0
			exit`,
			fns:  []fn{entry, {name: "f", start: 11, global: true, params: []btf.Type{btfXDPMd}}},
			want: "R6 invalid mem access 'scalar'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := withFuncs(program(t, progtype.XDP, tt.src), tt.fns...)
			var log bytes.Buffer
			res, err := verifier.Verify(context.Background(), p, &verifier.Options{Log: &log})
			for _, want := range tt.logHas {
				if !strings.Contains(log.String(), want) {
					t.Errorf("the log lacks %q\n%s", want, log.String())
				}
			}
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v\n%s", err, log.String())
				}
				if res.Processed == 0 {
					t.Fatal("no instruction processed")
				}
				return
			}
			var ve *verifier.Error
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a rejection with %q\n%s", err, tt.want, log.String())
			}
			if !strings.Contains(ve.Msg, tt.want) {
				t.Fatalf("error %q, want %q\n%s", ve.Msg, tt.want, log.String())
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Error() is not one line: %q", err.Error())
			}
			if tt.inGlobal && !strings.Contains(ve.Hint, "is a global function") {
				t.Fatalf("the hint %q does not say the function is verified on its own", ve.Hint)
			}
		})
	}
}

// TestVerify_globalOnce checks that a global function called from
// several places is verified once, and a static one at every call.
func TestVerify_globalOnce(t *testing.T) {
	src := `
		r1 = 1
		call pc+8
		r1 = 2
		call pc+6
		r1 = 3
		call pc+4
		r1 = 4
		call pc+2
		r0 = 0
		exit
		r0 = r1
		r0 += 1
		r0 += 1
		r0 += 1
		r0 += 1
		exit`
	entry := fn{name: "prog", start: 0, global: true, params: []btf.Type{btfXDPMd}}
	count := func(global bool) int {
		p := withFuncs(program(t, progtype.XDP, src), entry, fn{name: "f", start: 10, global: global, params: []btf.Type{btfInt}})
		res, err := verifier.Verify(context.Background(), p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res.Processed
	}
	static, global := count(false), count(true)
	// 10 instructions of the entry, the callee's 6 four times or once.
	if static != 10+4*6 || global != 10+6 {
		t.Fatalf("processed %d insns with a static callee, %d with a global one; want %d and %d", static, global, 10+4*6, 10+6)
	}
}

// TestVerify_globalStack checks that global functions count in the
// stack of the chains of calls they are on, and that many calls of them
// do not make the check slow.
func TestVerify_globalStack(t *testing.T) {
	entry := fn{name: "prog", start: 0, global: true, params: []btf.Type{btfXDPMd}}
	t.Run("combined", func(t *testing.T) {
		p := withFuncs(program(t, progtype.XDP, `
			r1 = 0
			*(u64 *)(r10 - 256) = r1
			call pc+2
			r0 = 0
			exit
			r1 = 0
			*(u64 *)(r10 - 296) = r1
			r0 = 0
			exit`), entry, fn{name: "f", start: 5, global: true})
		_, err := verifier.Verify(context.Background(), p, nil)
		if err == nil || !strings.Contains(err.Error(), "combined stack size of 2 calls is 560") {
			t.Fatalf("got %v, want the combined stack refused", err)
		}
	})
	// Eight functions deep, each calling the next 30 times: 30^7 chains;
	// nine are too many.
	for _, tc := range []struct {
		depth, calls int
		want         string
	}{{8, 30, ""}, {9, 1, "the call stack of 8 frames is too deep !"}} {
		t.Run(fmt.Sprintf("%d deep, %d calls", tc.depth, tc.calls), func(t *testing.T) {
			testCallChain(t, tc.depth, tc.calls, tc.want)
		})
	}
}

// testCallChain verifies depth global functions, each calling the next
// calls times.
func testCallChain(t *testing.T, depth, calls int, want string) {
	t.Helper()
	var src strings.Builder
	fns := []fn{{name: "prog", start: 0, global: true, params: []btf.Type{btfXDPMd}}}
	for i := range depth {
		start := i * (calls + 2)
		if i > 0 {
			fns = append(fns, fn{name: fmt.Sprintf("f%d", i), start: start, global: true})
		}
		for j := range calls {
			if i < depth-1 {
				fmt.Fprintf(&src, "call pc+%d\n", calls+1-j)
			} else {
				src.WriteString("r0 = 0\n")
			}
		}
		src.WriteString("r0 = 0\nexit\n")
	}
	p := withFuncs(program(t, progtype.XDP, src.String()), fns...)
	_, err := verifier.Verify(context.Background(), p, nil)
	if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Fatalf("got %v, want %q", err, want)
	}
}

// TestVerify_tailCallStack: a function that tail-calls must be reached
// with less than 256 bytes on its callers' stacks (a tail call unwinds
// only its own frame), as Linux requires.
func TestVerify_tailCallStack(t *testing.T) {
	for _, tc := range []struct {
		depth int
		want  string
	}{
		{240, ""},
		{248, "tail_calls are not allowed when call stack of previous frames is 256 bytes. Too large"}, // 248 rounds up to 256
	} {
		p := withFuncs(program(t, progtype.SocketFilter, fmt.Sprintf(`
			r0 = 0
			*(u64 *)(r10 - %d) = r0
			call pc+2
			r0 = 0
			exit
			r2 = map_idx(2) ll
			r3 = 0
			call 12
			r0 = 0
			exit`, tc.depth)), fn{name: "prog", start: 0}, fn{name: "f", start: 5})
		p.Maps = append(p.Maps, verifier.Map{Spec: maps.Spec{Name: "jmp", Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}, SpinLock: -1, Timer: -1})
		_, err := verifier.Verify(context.Background(), p, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("callers' stack %d: %v", tc.depth, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("callers' stack %d: %v, want %q", tc.depth, err, tc.want)
		}
	}
}
