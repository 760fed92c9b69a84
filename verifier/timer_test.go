package verifier_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// timerProgram builds an XDP program for target linux with map 0 an
// array whose 24-byte values hold a struct bpf_timer at offset 8 and map
// 1 an array of the same shape without BTF.
func timerProgram(t testing.TB, src string) *verifier.Program {
	t.Helper()
	return timerProgramOf(t, progtype.XDP, src)
}

// timerProgramOf is timerProgram for program type typ.
func timerProgramOf(t testing.TB, typ progtype.Type, src string) *verifier.Program {
	t.Helper()
	insns, err := asm.Parse(src)
	if err != nil {
		t.Fatalf("assemble: %v", err)
	}
	kind, err := progtype.Lookup(typ)
	if err != nil {
		t.Fatal(err)
	}
	spec := maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 24, MaxEntries: 4}
	timers, nobtf := spec, spec
	timers.Name, nobtf.Name = "timers", "nobtf"
	// BTF func info: the entry global, the callbacks static, as clang
	// emits them (Linux takes callbacks only so).
	proto := &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}}
	funcs := []loader.Func{{Name: "test", Start: 0, BTF: &btf.Func{Name: "test", Type: proto, Linkage: btf.GlobalFunc}}}
	for pc, ins := range insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			t := pc + 1 + int(ins.Imm)
			funcs = append(funcs, loader.Func{Name: "cb", Start: t, BTF: &btf.Func{Name: "cb", Type: proto, Linkage: btf.StaticFunc}})
		}
	}
	return &verifier.Program{Name: "test", Insns: insns, Kind: kind, GPL: true, Funcs: funcs, Maps: []verifier.Map{
		{Spec: timers, SpinLock: -1, Timer: 8},
		{Spec: nobtf, SpinLock: -1, Timer: -1, NoBTF: true},
	}}
}

// TestVerifyTimer_callbackLinkage: a callback must be a static function
// of a program with BTF func info (check_ld_imm; timer.c's programs are
// compared with the kernel, and a global callback is refused by Linux
// 6.18 with this message).
func TestVerifyTimer_callbackLinkage(t *testing.T) {
	src := timerArm + "r0 = 0\nexit"
	p := timerProgram(t, src)
	p.Funcs[1].BTF.Linkage = btf.GlobalFunc
	_, err := verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux})
	if err == nil || !strings.Contains(err.Error(), "callback function not static") {
		t.Errorf("global callback: got %v, want \"callback function not static\"", err)
	}
	p = timerProgram(t, src)
	p.Funcs = nil
	_, err = verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux})
	if err == nil || !strings.Contains(err.Error(), "missing btf func_info") {
		t.Errorf("without BTF: got %v, want \"missing btf func_info\"", err)
	}
}

// timerArm looks up key 0 of map 0 into r6, bpf_timer_init's it and sets
// the callback at label cb. %MAP% is the map bpf_timer_init is given.
const timerArm = `
	r2 = 0
	*(u32 *)(r10 - 12) = r2
	r2 = r10
	r2 += -12
	r1 = map_idx(0) ll
	call 1
	if r0 == 0 goto out
	r6 = r0
	r1 = r0
	r1 += 8
	r2 = map_idx(0) ll
	r3 = 1
	call 169
	r1 = r6
	r1 += 8
	r2 = func(cb) ll
	call 170
out:
	r0 = 0
	exit
cb:
`

// TestVerifyTimer checks the rules of bpf_timer_* and of the timer
// callback that programs built from C cannot show (timer.c, compared with
// the kernel by TestVerify_kernel and TestVerifyTimer_messages, shows the
// others): the callback's own stack, a map without BTF, the callback's
// registers and the log's async_cb.
func TestVerifyTimer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		typ       progtype.Type // XDP when 0
		src       string
		noPerfmon bool
		want      string // "" for accepted, else a substring of the error
		logHas    string
	}{
		{name: "callback", src: timerArm + "r0 = 0\nexit", logHas: "R1=map_ptr(map=timers,ks=4,vs=24) R2=map_key(map=timers,ks=4,vs=24) R3=map_value(id=1,map=timers,ks=4,vs=24) R10=fp0 async_cb"},
		{name: "callback touches key and value", src: timerArm + "r1 = *(u32 *)(r2 + 0)\n*(u64 *)(r3 + 0) = r1\nr1 = *(u64 *)(r3 + 0)\nr0 = 0\nexit"},
		{name: "callback r4 unset", src: timerArm + "r0 = r4\nexit", want: "R4 !read_ok"},
		{name: "callback writes its timer", src: timerArm + "r1 = 0\n*(u32 *)(r3 + 20) = r1\nr0 = 0\nexit", want: "bpf_timer cannot be accessed directly by load/store"},
		{name: "callback returns r1", src: timerArm + "r0 = r1\nexit", want: "At async callback return the register R0 is not a known value (map_ptr)"},
		{name: "callback returns 2", src: timerArm + "r0 = 2\nexit", want: "At async callback return the register R0 has smin=2 smax=2 should have been in [0, 0]"},
		// The caller's stack is not the callback's: without CAP_PERFMON
		// reading a slot the callback never wrote is refused, though the
		// caller wrote it.
		{name: "callback reads the caller's stack", noPerfmon: true,
			src: "r1 = 7\n*(u64 *)(r10 - 8) = r1\n" + timerArm + "r0 = *(u64 *)(r10 - 8)\nr0 = 0\nexit", want: "invalid read from stack"},
		{name: "caller's stack kept", noPerfmon: true,
			src: "r1 = 7\n*(u64 *)(r10 - 8) = r1\n" + timerArm + "r1 = 1\n*(u64 *)(r10 - 8) = r1\nr0 = *(u64 *)(r10 - 8)\nr0 = 0\nexit"},
		{name: "no BTF", src: strings.Replace(strings.Replace(timerArm, "r1 = map_idx(0) ll\n\tcall 1", "r1 = map_idx(1) ll\n\tcall 1", 1), "r2 = map_idx(0)", "r2 = map_idx(1)", 1) + "r0 = 0\nexit",
			want: "map 'nobtf' has to have BTF in order to use bpf_timer"},
		// LD_ABS in a socket filter's timer callback: Linux does not
		// look at the async callback's own frame for "within
		// callback", and r6 is not set there.
		{name: "LD_ABS in the callback", typ: progtype.SocketFilter, src: timerArm + "r0 = *(u8 *)skb[0]\nr0 = 0\nexit", want: "R6 !read_ok"},
		{name: "LD_ABS in bpf_loop's callback in the callback", typ: progtype.SocketFilter, src: timerArm + `
			r1 = 2
			r2 = func(step) ll
			r3 = 0
			r4 = 0
			call 181
			r0 = 0
			exit
		step:
			r0 = *(u8 *)skb[0]
			r0 = 0
			exit`, want: "cannot use BPF_LD_[ABS|IND] within callback"},
		{name: "timer_start before init is the helper's business", src: `
			r2 = 0
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(0) ll
			call 1
			if r0 == 0 goto +5
			r1 = r0
			r1 += 8
			r2 = 0
			r3 = 0
			call 171
			r0 = 0
			exit`},
		// Key 7 is past the array's end: the lookup may fail.
		{name: "timer pointer may be NULL", src: `
			r2 = 7
			*(u32 *)(r10 - 4) = r2
			r2 = r10
			r2 += -4
			r1 = map_idx(0) ll
			call 1
			r1 = r0
			call 172
			r0 = 0
			exit`, want: "R1 type=map_value_or_null expected=map_value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log bytes.Buffer
			typ := tc.typ
			if typ == 0 {
				typ = progtype.XDP
			}
			_, err := verifier.Verify(context.Background(), timerProgramOf(t, typ, tc.src),
				&verifier.Options{Target: progtype.TargetLinux, NoPerfmon: tc.noPerfmon, Log: &log})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v\n%s", err, log.String())
			case tc.want != "" && !errors.Is(err, verifier.ErrRejected):
				t.Fatalf("got %v, want a rejection with %q", err, tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.logHas != "" && !strings.Contains(log.String(), tc.logHas) {
				t.Errorf("the log lacks %q:\n%s", tc.logHas, log.String())
			}
		})
	}
}

// FuzzVerifyTimer is FuzzVerify for programs arming timers, verified for
// target linux (which offers the bpf_timer_* helpers): whatever the
// bytecode, Verify returns a result or a *verifier.Error, never panics
// and stays within its budget.
func FuzzVerifyTimer(f *testing.F) {
	for _, cb := range []string{
		"r0 = 0\nexit",
		"r1 = *(u32 *)(r2 + 0)\n*(u64 *)(r3 + 0) = r1\nr0 = 0\nexit",
		"r1 = r3\nr1 += 8\nr2 = func(cb) ll\ncall 170\nr0 = 0\nexit",
		"r0 = 1\nexit",
	} {
		f.Add(isa.Encode(timerProgram(f, timerArm+cb).Insns))
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		insns, err := isa.Decode(code)
		if err != nil || len(insns) == 0 || len(insns) > 256 {
			return
		}
		p := timerProgram(t, "r0 = 0\nexit")
		p.Insns = insns
		// Every lddw of a function names a static function.
		p.Funcs = p.Funcs[:1]
		for pc, ins := range insns {
			if ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
				fn := *p.Funcs[0].BTF
				fn.Linkage = btf.StaticFunc
				p.Funcs = append(p.Funcs, loader.Func{Name: "cb", Start: pc + 1 + int(ins.Imm), BTF: &fn})
			}
		}
		res, err := verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux, MaxInsns: 20000})
		if err == nil {
			if res.Processed > 20000 {
				t.Fatalf("processed %d insns, budget 20000", res.Processed)
			}
			return
		}
		var ve *verifier.Error
		if !errors.As(err, &ve) {
			t.Fatalf("error %T is not a *verifier.Error: %v", err, err)
		}
		if strings.Contains(ve.Msg, "internal error") {
			t.Fatalf("verifier panicked: %v", err)
		}
	})
}
