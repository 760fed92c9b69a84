package verifier_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// program builds a verifier.Program of type t from assembly, with one
// hash map (4-byte keys, 8-byte values) as map index 0 and the helpers
// the type may call.
func program(t testing.TB, typ progtype.Type, src string) *verifier.Program {
	t.Helper()
	insns, err := asm.Parse(src)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	kind, err := progtype.Lookup(typ)
	if err != nil {
		t.Fatal(err)
	}
	p := &verifier.Program{Name: "test", Insns: insns, Kind: kind, GPL: true, Helpers: map[int32]helpers.Proto{},
		Maps: []verifier.Map{
			{Spec: maps.Spec{Name: "m", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}, SpinLock: -1, Timer: -1},
			{Spec: maps.Spec{Name: "locked", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16}, SpinLock: 0, Timer: -1},
		}}
	for _, d := range helpers.Generic() {
		if kind.Allowed(d.ID) {
			p.Helpers[d.ID] = d.Proto
		}
	}
	for _, d := range kind.Helpers() {
		p.Helpers[d.ID] = d.Proto
	}
	return p
}

// The map reference "r1 = map_idx(0) ll" is written as its encoding.
const mapRef = "r1 = map_idx(0) ll"

func TestVerify(t *testing.T) {
	tests := []struct {
		name string
		typ  progtype.Type
		src  string
		// want is "" for accepted, else a substring of the error.
		want string
		hint string
		// logHas and logLacks are what the log must and must not show.
		logHas, logLacks string
		unpriv           bool
	}{
		{name: "return 0", typ: progtype.XDP, src: "r0 = 0\nexit"},
		{name: "r0 unset", typ: progtype.XDP, src: "exit", want: "R0 !read_ok"},
		{name: "fall off the end", typ: progtype.XDP, src: "r0 = 0", want: "last instruction is not exit or goto"},
		{name: "unreachable", typ: progtype.XDP, src: "r0 = 0\nexit\nr0 = 1\nexit", want: "unreachable insn 2"},
		{name: "jump out of range", typ: progtype.XDP, src: "r0 = 0\ngoto +5\nexit", want: "jump out of range"},
		{name: "into lddw", typ: progtype.XDP, src: "r0 = 0\nif r1 == 0 goto +1\nr2 = 0x100000000 ll\nexit", want: "second slot of the lddw"},
		{name: "stack write and read", typ: progtype.XDP, src: "r1 = 7\n*(u64 *)(r10 - 8) = r1\nr0 = *(u64 *)(r10 - 8)\nexit"},
		{name: "stack out of bounds", typ: progtype.XDP, src: "r1 = 7\n*(u64 *)(r10 - 520) = r1\nr0 = 0\nexit", want: "invalid write to stack R10 off=-520 size=8"},
		{name: "stack above fp", typ: progtype.XDP, src: "r0 = *(u64 *)(r10 + 0)\nexit", want: "invalid read from stack R10 off=0 size=8"},
		{name: "deref scalar", typ: progtype.XDP, src: "r1 = 5\nr0 = *(u64 *)(r1 + 0)\nexit", want: "R1 invalid mem access 'scalar'", hint: "holds a number"},
		{name: "packet without check", typ: progtype.XDP, src: "r2 = *(u32 *)(r1 + 0)\nr0 = *(u8 *)(r2 + 0)\nexit", want: "invalid access to packet", hint: "data_end"},
		{name: "packet with check", typ: progtype.XDP, src: `
			r2 = *(u32 *)(r1 + 0)
			r3 = *(u32 *)(r1 + 4)
			r4 = r2
			r4 += 14
			r0 = 1
			if r4 > r3 goto +1
			r0 = *(u8 *)(r2 + 13)
			exit`},
		{name: "packet off by one", typ: progtype.XDP, src: `
			r2 = *(u32 *)(r1 + 0)
			r3 = *(u32 *)(r1 + 4)
			r4 = r2
			r4 += 14
			r0 = 1
			if r4 > r3 goto +1
			r0 = *(u8 *)(r2 + 14)
			exit`, want: "invalid access to packet, off=14 size=1"},
		{name: "packet check reversed", typ: progtype.XDP, src: `
			r2 = *(u32 *)(r1 + 0)
			r3 = *(u32 *)(r1 + 4)
			r4 = r2
			r4 += 4
			r0 = 1
			if r3 >= r4 goto +1
			exit
			r0 = *(u32 *)(r2 + 0)
			exit`},
		{name: "ctx bad offset", typ: progtype.XDP, src: "r0 = *(u32 *)(r1 + 100)\nexit", want: "invalid bpf_context access off=100 size=4"},
		{name: "ctx write read-only", typ: progtype.XDP, src: "r2 = 1\n*(u32 *)(r1 + 0) = r2\nr0 = 0\nexit", want: "invalid bpf_context access"},
		{name: "modified ctx", typ: progtype.XDP, src: "r1 += 4\nr0 = *(u32 *)(r1 + 0)\nexit", want: "dereference of modified ctx ptr"},
		{name: "map lookup unchecked", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			r0 = *(u64 *)(r0 + 0)
			exit`, want: "R0 invalid mem access 'map_value_or_null'", hint: "NULL"},
		{name: "map lookup checked", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +2
			r0 = *(u64 *)(r0 + 0)
			exit
			r0 = 0
			exit`},
		{name: "map value out of bounds", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +2
			r0 = *(u64 *)(r0 + 4)
			exit
			r0 = 0
			exit`, want: "invalid access to map value, value_size=8 off=4 size=8"},
		{name: "map value variable index", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +5
			r1 = *(u32 *)(r0 + 0)
			r1 &= 7
			r0 += r1
			r0 = *(u8 *)(r0 + 0)
			exit
			r0 = 0
			exit`},
		{name: "map value unbounded index", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +4
			r1 = *(u32 *)(r0 + 0)
			r0 += r1
			r0 = *(u8 *)(r0 + 0)
			exit
			r0 = 0
			exit`, want: "R0 unbounded memory access", hint: "bound the index"},
		{name: "uninitialised key privileged", typ: progtype.XDP, src: `
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			r0 = 0
			exit`},
		{name: "key out of stack", typ: progtype.XDP, src: `
			r2 = r10
			r2 += -2
			` + mapRef + `
			call 1
			r0 = 0
			exit`, want: "invalid indirect access to stack R2 off=-2 size=4"},
		{name: "scalar key", typ: progtype.XDP, src: `
			r2 = 0
			` + mapRef + `
			call 1
			r0 = 0
			exit`, want: "R2 type=scalar expected=fp"},
		{name: "args clobbered", typ: progtype.XDP, src: "call 7\nr0 = r1\nexit", want: "R1 !read_ok", hint: "clobber"},
		{name: "unknown helper", typ: progtype.XDP, src: "call 9999\nr0 = 0\nexit", want: "invalid func unknown#9999"},
		{name: "helper not for type", typ: progtype.SocketFilter, src: "call 23\nr0 = 0\nexit", want: "program of this type cannot use helper"},
		{name: "bounded loop", typ: progtype.XDP, src: `
			r0 = 0
			r1 = 0
			r0 += r1
			r1 += 1
			if r1 < 10 goto -3
			exit`},
		{name: "infinite loop", typ: progtype.XDP, src: `
			r0 = 0
			r0 += 1
			goto -2`, want: "BPF program is too large"},
		{name: "divide by zero imm", typ: progtype.XDP, src: "r0 = 1\nr0 /= 0\nexit", want: "div by zero"},
		{name: "pointer arithmetic 32", typ: progtype.XDP, src: "r1 = r10\nw1 += 4\nr0 = 0\nexit", want: "32-bit pointer arithmetic prohibited"},
		{name: "pointer times", typ: progtype.XDP, src: "r1 = r10\nr1 *= 2\nr0 = 0\nexit", want: "pointer arithmetic with *= operator prohibited"},
		{name: "fp read only", typ: progtype.XDP, src: "r10 = 0\nr0 = 0\nexit", want: "frame pointer is read only"},
		// Linux refuses a write to r10 only where a path reaches it
		// (verifier_bounds.c, bounds_deduct_positive_overlap).
		{name: "fp write in dead code", typ: progtype.XDP, src: "r0 = 0\nif r0 == 0 goto +1\nr10 = 0\nexit"},
		{name: "load into fp", typ: progtype.XDP, src: "r1 = 0\n*(u64 *)(r10 - 8) = r1\nr10 = *(u64 *)(r10 - 8)\nr0 = 0\nexit", want: "frame pointer is read only"},
		{name: "lddw into fp", typ: progtype.XDP, src: "r10 = 0x100000000 ll\nr0 = 0\nexit", want: "frame pointer is read only"},
		{name: "mov into fp", typ: progtype.XDP, src: "r1 = 0\nr10 = r1\nr0 = 0\nexit", want: "frame pointer is read only"},
		{name: "bswap fp", typ: progtype.XDP, src: "r10 = bswap64 r10\nr0 = 0\nexit", want: "frame pointer is read only"},
		// An atomic on a stack slot leaves unknown data there, not its
		// operand: with the operand spilled, 10 + 5 would read as 5 and
		// the division by r3 - 5 would pass as by zero... the other way.
		{name: "atomic on spilled scalar", typ: progtype.XDP, src: `
			r1 = 10
			*(u64 *)(r10 - 8) = r1
			r2 = 5
			lock *(u64 *)(r10 - 8) += r2
			r3 = *(u64 *)(r10 - 8)
			r0 = 0
			if r3 != 5 goto +1
			exit
			r0 = 1
			exit`, logHas: "R3=scalar()"},
		{name: "kfunc call in dead code", typ: progtype.XDP, src: "r0 = 1\nif r0 > 0 goto +1\ncall kfunc#0\nr0 = 0\nexit"},
		{name: "kfunc call reached", typ: progtype.XDP, src: "r0 = 1\ncall kfunc#0\nr0 = 0\nexit", want: "kfuncs"},
		// A variable-offset zero store keeps a spilled zero (bpf_st_mem.c).
		{name: "var-off zero over spilled zero", typ: progtype.SkLookup, src: `
			*(u64 *)(r10 - 16) = 0
			*(u64 *)(r10 - 24) = 0
			call 7
			if r0 <= 16 goto +2
			r0 = 0
			exit
			r0 -= 32
			r0 += r10
			*(u8 *)(r0 + 0) = 0
			r0 = *(u32 *)(r10 - 20)
			exit`},
		{name: "unprivileged cgroup_skb data", typ: progtype.CgroupSKB, unpriv: true, src: "r2 = *(u32 *)(r1 + 76)\nr0 = 1\nexit", want: "invalid bpf_context access off=76 size=4"},
		{name: "cgroup_skb data", typ: progtype.CgroupSKB, src: "r2 = *(u32 *)(r1 + 76)\nr0 = 1\nexit"},
		{name: "unprivileged too large", typ: progtype.SocketFilter, unpriv: true, src: strings.Repeat("r0 = 0\n", 4096) + "exit", want: "at most 4096 without CAP_BPF"},
		{name: "privileged 4097 insns", typ: progtype.SocketFilter, src: strings.Repeat("r0 = 0\n", 4096) + "exit"},
		{name: "fetch into fp", typ: progtype.XDP, src: "r1 = 0\n*(u64 *)(r10 - 8) = r1\nr10 = atomic64_fetch_add((u64 *)(r10 - 8), r10)\nr0 = 0\nexit", want: "frame pointer is read only"},
		{name: "local call", typ: progtype.XDP, src: `
			r1 = 3
			call pc+2
			r0 = 0
			exit
			r0 = r1
			exit`},
		// Frames round to 16 bytes, as Linux rounds them for its JIT:
		// 200 and 304 bytes fit in 512 (checked against Linux 6.18), 216
		// and 296 do not.
		{name: "combined stack of 512 bytes", typ: progtype.SocketFilter, src: `
			r0 = 0
			*(u64 *)(r10 - 200) = r0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			*(u64 *)(r10 - 304) = r0
			exit`},
		{name: "combined stack of 528 bytes", typ: progtype.SocketFilter, src: `
			r0 = 0
			*(u64 *)(r10 - 216) = r0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			*(u64 *)(r10 - 296) = r0
			exit`, want: "combined stack size of 2 calls is 528. Too large"},
		{name: "callee reads r6", typ: progtype.XDP, src: `
			r6 = 3
			call pc+2
			r0 = 0
			exit
			r0 = r6
			exit`, want: "R6 !read_ok"},
		// Precision: the checkpoint at the join must not cover r6 = 9
		// after r6 = 0 passed, because the access depends on r6.
		{name: "precise after join", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +16
			r7 = r0
			call 7
			r6 = 9
			if r0 > 10 goto +8
			r6 = 0
			r1 = 1
			r1 = 2
			r1 = 3
			r1 = 4
			r1 = 5
			r1 = 6
			goto +0
			r1 = 1
			r7 += r6
			r0 = *(u8 *)(r7 + 0)
			exit
			r0 = 0
			exit`, want: "invalid access to map value, value_size=8 off=9 size=1", logLacks: "20: safe"},
		// The same with r6 only stored: the checkpoint covers r6 = 9.
		{name: "imprecise pruned", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +16
			r7 = r0
			call 7
			r6 = 9
			if r0 > 10 goto +8
			r6 = 0
			r1 = 1
			r1 = 2
			r1 = 3
			r1 = 4
			r1 = 5
			r1 = 6
			goto +0
			r1 = 1
			*(u64 *)(r7 + 0) = r6
			r0 = 0
			exit
			r0 = 0
			exit`, logHas: "20: safe"},
		// An imprecise counter does not stop a may_goto loop from
		// converging.
		{name: "may_goto counter", typ: progtype.XDP, src: `
			r0 = 0
			r6 = 0
			may_goto +2
			r6 += 1
			goto -3
			exit`},
		{name: "spin lock", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(1) ll
			call 1
			if r0 == 0 goto +8
			r6 = r0
			r1 = r6
			call 93
			r1 = *(u32 *)(r6 + 4)
			r1 = r6
			call 94
			r0 = 0
			exit
			r0 = 0
			exit`},
		{name: "spin lock held at exit", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(1) ll
			call 1
			if r0 == 0 goto +5
			r6 = r0
			r1 = r6
			call 93
			r0 = 0
			exit
			r0 = 0
			exit`, want: "bpf_spin_unlock is missing"},
		{name: "call under spin lock", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(1) ll
			call 1
			if r0 == 0 goto +8
			r6 = r0
			r1 = r6
			call 93
			call 7
			r1 = r6
			call 94
			r0 = 0
			exit
			r0 = 0
			exit`, want: "function calls are not allowed while holding a lock"},
		{name: "spin lock read directly", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(1) ll
			call 1
			if r0 == 0 goto +8
			r6 = r0
			r1 = r6
			call 93
			r1 = *(u32 *)(r6 + 0)
			r1 = r6
			call 94
			r0 = 0
			exit
			r0 = 0
			exit`, want: "bpf_spin_lock cannot be accessed directly"},
		{name: "ctx or stack", typ: progtype.XDP, src: `
			r6 = r1
			r3 = 0
			*(u64 *)(r10 - 8) = r3
			call 7
			r2 = r10
			r2 += -8
			if r0 > 5 goto +1
			r2 = r6
			r0 = *(u32 *)(r2 + 0)
			r0 = 0
			exit`, want: "same insn cannot be used with different pointers"},
		{name: "return range cgroup", typ: progtype.CgroupSKB, src: "r0 = 2\nexit", want: "should have been in [0, 1]"},
		{name: "ringbuf on a hash map", typ: progtype.XDP, src: `
			` + mapRef + `
			r2 = 8
			r3 = 0
			call 131
			r0 = 0
			exit`, want: "cannot pass map_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := program(t, tt.typ, tt.src)
			var log bytes.Buffer
			res, err := verifier.Verify(context.Background(), p, &verifier.Options{Log: &log, MaxInsns: 100000, Unprivileged: tt.unpriv})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v\n%s", err, log.String())
				}
				if res.Processed == 0 {
					t.Fatal("no instruction processed")
				}
				if tt.logHas != "" && !strings.Contains(log.String(), tt.logHas) {
					t.Fatalf("the log lacks %q\n%s", tt.logHas, log.String())
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted, want an error with %q\n%s", tt.want, log.String())
			}
			var ve *verifier.Error
			if !errors.As(err, &ve) || !errors.Is(err, verifier.ErrRejected) {
				t.Fatalf("error %T %v is not a *verifier.Error", err, err)
			}
			if !strings.Contains(ve.Msg, tt.want) {
				t.Fatalf("error %q, want %q", ve.Msg, tt.want)
			}
			if tt.logLacks != "" && strings.Contains(log.String(), tt.logLacks) {
				t.Fatalf("the log has %q: the path was pruned\n%s", tt.logLacks, log.String())
			}
			if tt.hint != "" && !strings.Contains(ve.Hint, tt.hint) {
				t.Fatalf("hint %q, want it to mention %q", ve.Hint, tt.hint)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("Error() is not one line: %q", err.Error())
			}
		})
	}
}

// sockLookup looks up a TCP socket (bpf_sk_lookup_tcp with a zeroed
// tuple) into r0 and r6, and skips the next 4 instructions when there is
// none.
const sockLookup = `
	r2 = 0
	*(u64 *)(r10 - 8) = r2
	*(u64 *)(r10 - 16) = r2
	*(u64 *)(r10 - 24) = r2
	*(u64 *)(r10 - 32) = r2
	*(u64 *)(r10 - 40) = r2
	r2 = r10
	r2 += -40
	r3 = 36
	r4 = 0
	r5 = 0
	call 84
	r6 = r0
	if r0 == 0 goto +4`

// checkMTU calls bpf_check_mtu with mtu_len on a stack slot never written.
const checkMTU = `
	r3 = r10
	r3 += -4
	r2 = 0
	r4 = 0
	r5 = 0
	call 163
	r0 = 0
	exit`

// strictAlign is verifier_direct_packet_access.c's test17: a 4-byte store
// at data + 14 or data + 15, minus 4.
const strictAlign = `
	r2 = *(u32 *)(r1 + 76)
	r3 = *(u32 *)(r1 + 80)
	r7 = *(u32 *)(r1 + 8)
	r0 = r2
	r0 += 14
	if r7 > 1 goto +4
	if r0 > r3 goto +1
	*(u32 *)(r0 - 4) = r0
	r0 = 0
	exit
	r0 += 1
	goto -6`

// ldAbsSub calls a subprogram at slot 3 that loads with LD_ABS.
const ldAbsSub = `
	call pc+2
	r0 = 0
	exit
	r6 = r1
	r0 = *(u32 *)skb[0]
	r0 = 1
	exit`

// subprogReturns gives a program BTF for its entry and its subprogram at
// slot 3, which returns ret.
func subprogReturns(ret btf.Type) func(*verifier.Program) { return subprogAt(3, ret) }

// subprogAt gives a program BTF for its entry and its subprogram at slot
// start, which returns ret.
func subprogAt(start int, ret btf.Type) func(*verifier.Program) {
	return func(p *verifier.Program) {
		i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
		p.Funcs = []loader.Func{
			{Name: "test", Start: 0, BTF: &btf.Func{Name: "test", Type: &btf.FuncProto{Return: i32}, Linkage: btf.GlobalFunc}},
			{Name: "sub", Start: start, BTF: &btf.Func{Name: "sub", Type: &btf.FuncProto{Return: ret}, Linkage: btf.StaticFunc}},
		}
	}
}

// TestVerify_kernelDifferences holds programs Linux refuses that waggle's
// verifier once accepted (internal/kselftest's knownAccepts), each with
// the kernel's message, and programs Linux refuses that waggle's verifier
// accepts on purpose (want ""). patch, when set, edits the assembled
// program (what assembly cannot write: odd encodings, BTF); opts, when
// set, replaces the defaults.
func TestVerify_kernelDifferences(t *testing.T) {
	tests := []struct {
		name  string
		typ   progtype.Type
		src   string
		patch func(*verifier.Program)
		opts  *verifier.Options
		want  string
	}{
		// verifier/ld_imm64.c "test14 ld_imm64: reject 2nd imm != 0".
		{name: "map reference with a second imm", typ: progtype.XDP, src: mapRef + "\nr0 = 0\nexit",
			patch: func(p *verifier.Program) { p.Insns[1].Imm = 47 }, want: "unrecognized bpf_ld_imm64 insn"},
		// verifier_var_off.c zero_sized_access_max_out_of_bound.
		{name: "zero-sized stack access past r10", typ: progtype.SocketFilter, src: `
			r0 = 0
			*(u64 *)(r10 - 16) = r0
			*(u64 *)(r10 - 8) = r0
			r1 = *(u32 *)(r1 + 0)
			r1 &= 63
			r1 += -16
			r1 += r10
			r2 = 0
			r3 = 0
			call 113
			exit`, want: "invalid variable-offset indirect access to stack R1"},
		// verifier_helper_packet_access.c test12_cls_unsuitable_helper_2:
		// bpf_skb_load_bytes may not write into the packet directly.
		{name: "packet to a helper without packet access", typ: progtype.SchedCLS, src: `
			r6 = *(u32 *)(r1 + 76)
			r7 = *(u32 *)(r1 + 80)
			r3 = r6
			r6 += 8
			if r6 > r7 goto +3
			r2 = 0
			r4 = 4
			call 26
			r0 = 0
			exit`, want: "helper access to the packet is not allowed"},
		// verifier_jeq_infer_not_null.c unchanged_for_jne_true_branch: r0
		// is 0, and r7 differing from it proves nothing.
		{name: "maybe-NULL unequal to a NULL register", typ: progtype.CgroupSKB, src: `
			r6 = *(u64 *)(r1 + 168)
			if r6 == 0 goto +9
			r1 = r6
			call 95
			r7 = r0
			r1 = r6
			call 95
			if r0 != 0 goto +3
			if r0 != r7 goto +1
			goto +1
			r0 = *(u32 *)(r7 + 8)
			r0 = 0
			exit`, want: "R7 invalid mem access 'sock_or_null'"},
		// socket_for_jne_false_branch: equal to a socket that is not
		// NULL, r7 is not NULL either.
		{name: "maybe-NULL equal to a socket", typ: progtype.CgroupSKB, src: `
			r6 = *(u64 *)(r1 + 168)
			if r6 == 0 goto +8
			r1 = r6
			call 95
			r7 = r0
			r1 = r6
			call 95
			if r0 == 0 goto +2
			if r0 != r7 goto +1
			r0 = *(u32 *)(r7 + 8)
			r0 = 1
			exit`},
		// verifier_ref_tracking.c _64_bit_access_of_member: bpf_sock's
		// fields are 4 bytes.
		{name: "socket field read in 8 bytes", typ: progtype.SchedCLS, src: sockLookup + `
			r2 = *(u64 *)(r0 + 0)
			r1 = r6
			call 86
			r0 = 0
			exit`, want: "invalid sock access off=0 size=8"},
		{name: "socket protocol read in 2 bytes", typ: progtype.SchedCLS, src: sockLookup + `
			r2 = *(u16 *)(r0 + 12)
			r1 = r6
			call 86
			r0 = 0
			exit`},
		{name: "socket dst_port read in 2 bytes", typ: progtype.SchedCLS, src: sockLookup + `
			r2 = *(u16 *)(r0 + 48)
			r1 = r6
			call 86
			r0 = 0
			exit`},
		{name: "socket mark read in 2 bytes", typ: progtype.SchedCLS, src: sockLookup + `
			r2 = *(u16 *)(r0 + 16)
			r1 = r6
			call 86
			r0 = 0
			exit`, want: "invalid sock access off=16 size=2"},
		// verifier_mtu.c tc_uninit_mtu, which prog_tests/verifier.c
		// loads without CAP_PERFMON: bpf_check_mtu reads the length it
		// writes back, and that stack is never written.
		{name: "uninitialised mtu_len without CAP_PERFMON", typ: progtype.SchedCLS, src: checkMTU,
			opts: &verifier.Options{NoPerfmon: true}, want: "invalid read from stack R3 off -4+0 size 4"},
		// With CAP_PERFMON Linux lets the stack be read uninitialised.
		{name: "uninitialised mtu_len", typ: progtype.SchedCLS, src: checkMTU},
		// verifier_meta_access.c meta_access_test6: the metadata's end is
		// the packet's start, not 8 bytes into the packet.
		{name: "metadata against data plus 8", typ: progtype.XDP, src: `
			r2 = *(u32 *)(r1 + 8)
			r3 = *(u32 *)(r1 + 0)
			r0 = r3
			r0 += 8
			r4 = r2
			r4 += 8
			if r4 > r0 goto +1
			r0 = *(u8 *)(r2 + 0)
			r0 = 0
			exit`, want: "invalid access to packet"},
		// meta_access_test7: against the packet's start it is bounded.
		{name: "metadata against data", typ: progtype.XDP, src: `
			r2 = *(u32 *)(r1 + 8)
			r3 = *(u32 *)(r1 + 0)
			r4 = r2
			r4 += 8
			if r4 > r3 goto +1
			r0 = *(u8 *)(r2 + 0)
			r0 = 0
			exit`},
		// verifier_direct_packet_access.c
		// packet_access_test17_pruning_alignment, loaded with
		// BPF_F_STRICT_ALIGNMENT: data + 15 - 4 is 2 bytes off a word
		// once the packet starts at NET_IP_ALIGN.
		{name: "strict alignment in the packet", typ: progtype.SchedCLS, src: strictAlign,
			opts: &verifier.Options{StrictAlignment: true}, want: "misaligned packet access off 2+0+15+-4 size 4"},
		{name: "packet without strict alignment", typ: progtype.SchedCLS, src: strictAlign},
		{name: "strict alignment in a map value", typ: progtype.XDP, src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			` + mapRef + `
			call 1
			if r0 == 0 goto +1
			r1 = *(u32 *)(r0 + 2)
			r0 = 0
			exit`, opts: &verifier.Options{StrictAlignment: true}, want: "misaligned value access off 0+0+2 size 4"},
		// verifier_ld_ind.c ld_abs_subprog_early_exit: a failed LD_ABS
		// returns 0 from the subprogram, so the caller's r0 may be 0
		// and r9 is read on that path.
		{name: "LD_ABS failure returns from a subprogram", typ: progtype.SocketFilter, src: `
			call pc+4
			if r0 != 0 goto +1
			r0 = r9
			r0 = 0
			exit
			r6 = r1
			r0 = *(u32 *)skb[0]
			r0 = 1
			exit`, patch: subprogAt(5, &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}), want: "R9 !read_ok"},
		{name: "LD_IND failure returns from a subprogram", typ: progtype.SocketFilter, src: `
			call pc+4
			if r0 != 0 goto +1
			r0 = r9
			r0 = 0
			exit
			r6 = r1
			r7 = 0
			r0 = *(u32 *)skb[r7 + 0]
			r0 = 1
			exit`, patch: subprogAt(5, &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}), want: "R9 !read_ok"},
		{name: "LD_ABS in a subprogram, both returns safe", typ: progtype.SocketFilter, src: `
			call pc+2
			r0 = 0
			exit
			r6 = r1
			r0 = *(u32 *)skb[0]
			r0 = 1
			exit`, patch: subprogReturns(&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed})},
		// Without BTF func info, no function but the entry may use LD_ABS
		// (check_abnormal_return).
		{name: "LD_ABS in a subprogram without BTF", typ: progtype.SocketFilter, src: ldAbsSub,
			want: "LD_ABS is not allowed in subprogs without BTF"},
		// ld_abs_void_subprog_reject: a function with LD_ABS must return
		// int by its BTF, since a failed load returns 0 from it.
		{name: "LD_ABS in a void subprogram", typ: progtype.SocketFilter, src: ldAbsSub,
			patch: subprogReturns(&btf.Void{}), want: "LD_ABS is only allowed in functions that return 'int'."},
		{name: "LD_ABS in an int subprogram", typ: progtype.SocketFilter, src: ldAbsSub,
			patch: subprogReturns(&btf.Int{Name: "int", Size: 4, Encoding: btf.Signed})},
		// Linux refuses this one ("invalid write to stack R8 off=2
		// size=1"): on the fall-through of "if r4 > 64" it keeps r4 in
		// [64, 64] and bit 1 set, which no value satisfies, and explores
		// it. The side cannot be taken, and waggle's verifier drops it
		// (internal/verifuzz's kernelImprecise).
		{name: "dead side of a branch", typ: progtype.XDP, src: `
			call 7
			r4 = r0
			if r4 <= 63 goto +6
			r4 |= 2
			r8 = r10
			r8 += -64
			if r4 > 64 goto +2
			r8 += r4
			*(u8 *)(r8 + 0) = r0
			r0 = 0
			exit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := program(t, tt.typ, tt.src)
			if tt.patch != nil {
				tt.patch(p)
			}
			opts := tt.opts
			if opts == nil {
				opts = &verifier.Options{}
			}
			var log bytes.Buffer
			opts.Log = &log
			_, err := verifier.Verify(context.Background(), p, opts)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("rejected: %v\n%s", err, log.String())
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
		})
	}
}

// TestVerify_path checks that an error names the branches that led to it.
func TestVerify_path(t *testing.T) {
	p := program(t, progtype.XDP, `
		r2 = *(u32 *)(r1 + 0)
		r3 = *(u32 *)(r1 + 4)
		r0 = 0
		if r2 == r3 goto +1
		exit
		r0 = *(u8 *)(r2 + 0)
		exit`)
	_, err := verifier.Verify(context.Background(), p, nil)
	var ve *verifier.Error
	if !errors.As(err, &ve) {
		t.Fatalf("got %v, want a rejection", err)
	}
	if ve.Insn != 5 || len(ve.Path) != 1 || ve.Path[0].Insn != 3 || !ve.Path[0].Taken {
		t.Fatalf("insn %d, path %+v; want insn 5 after taking the branch at 3", ve.Insn, ve.Path)
	}
	if !strings.Contains(ve.Explain(), "insn 3: branch taken") {
		t.Fatalf("Explain does not show the path:\n%s", ve.Explain())
	}
}

// TestVerify_stopped: a verification whose context ends gives no verdict:
// the error wraps the context's, not ErrRejected, and is no *Error; a
// long program stops within the processed instructions of one check.
func TestVerify_stopped(t *testing.T) {
	p := program(t, progtype.XDP, `
		r0 = 0
		exit`)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := verifier.Verify(ctx, p, nil)
	var ve *verifier.Error
	if !errors.Is(err, context.Canceled) || errors.Is(err, verifier.ErrRejected) || errors.As(err, &ve) {
		t.Fatalf("canceled: %v; want an error wrapping context.Canceled and no verdict", err)
	}
	// A loop that takes long to converge, stopped while it runs.
	long := program(t, progtype.XDP, `
		r1 = 0
		r1 += 1
		if r1 < 100000 goto -2
		r0 = 0
		exit`)
	ctx, cancel = context.WithCancel(context.Background())
	var done int
	opts := &verifier.Options{Log: writerFunc(func(b []byte) (int, error) {
		if done++; done == 1000 {
			cancel()
		}
		return len(b), nil
	})}
	_, err = verifier.Verify(ctx, long, opts)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled while running: %v", err)
	}
}

// writerFunc is an io.Writer from a function.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// TestVerify_log checks the kernel-style log line for line: the layout
// is the kernel's level 2 log (TestVerifyLog_kernel in the root package
// diffs it against the running kernel's).
func TestVerify_log(t *testing.T) {
	p := program(t, progtype.XDP, `
		r4 = *(u32 *)(r1 + 12)
		r0 = 2
		*(u32 *)(r10 - 4) = r0
		if r4 > 7 goto +1
		r0 = 1
		exit`)
	var log bytes.Buffer
	if _, err := verifier.Verify(context.Background(), p, &verifier.Options{Log: &log}); err != nil {
		t.Fatal(err)
	}
	want := `func#0 @0
Live regs before insn:
      0: .1........ (61) r4 = *(u32 *)(r1 +12)
      1: ....4..... (b7) r0 = 2
      2: 0...4..... (63) *(u32 *)(r10 -4) = r0
      3: 0...4..... (25) if r4 > 0x7 goto pc+1
      4: .......... (b7) r0 = 1
      5: 0......... (95) exit
0: R1=ctx() R10=fp0
0: (61) r4 = *(u32 *)(r1 +12)         ; R1=ctx() R4=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))
1: (b7) r0 = 2                        ; R0=2
2: (63) *(u32 *)(r10 -4) = r0         ; R0=2 R10=fp0 fp-8=mmmm????
3: (25) if r4 > 0x7 goto pc+1         ; R4=scalar(smin=smin32=0,smax=umax=smax32=umax32=7,var_off=(0x0; 0x7))
4: (b7) r0 = 1                        ; R0=1
5: (95) exit

from 3 to 5: R0=2 R1=ctx() R4=scalar(smin=umin=umin32=8,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R10=fp0 fp-8=mmmm????
5: R0=2 R1=ctx() R4=scalar(smin=umin=umin32=8,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R10=fp0 fp-8=mmmm????
5: (95) exit
processed 7 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
`
	if got := log.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

// TestVerify_logLevel1 checks the level 1 log: only the path to the
// error is left, cut where the kernel's is (Linux 6.18 prints this log
// for this program, the instruction line of the branch cut at the
// position the path was saved at).
func TestVerify_logLevel1(t *testing.T) {
	p := program(t, progtype.XDP, `
		r4 = *(u32 *)(r1 + 12)
		r0 = 2
		if r4 > 7 goto +2
		r0 = 1
		exit
		r0 = *(u64 *)(r2 + 0)
		exit`)
	var log bytes.Buffer
	if _, err := verifier.Verify(context.Background(), p, &verifier.Options{Log: &log, LogLevel: 1}); err == nil {
		t.Fatal("accepted")
	}
	want := `0: R1=ctx() R10=fp0
0: (61) r4 = *(u32 *)(r1 +12)         ; R1=ctx() R4=scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))
1: (b7) r0 = 2                        ; R0=2
2: (25) if r4 > 0x7 goto pc+2 5: R0=2 R1=ctx() R4=scalar(smin=umin=umin32=8,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff)) R10=fp0
5: (79) r0 = *(u64 *)(r2 +0)
R2 !read_ok
processed 6 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0
`
	if got := log.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}
