package verifier_test

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// Offsets in the kernel structs of Linux 6.18 on x86-64, which the
// programs below read; the messages depend on them, so the test skips on
// another layout (see btfLayout).
const (
	offTaskPid        = 1264 // struct task_struct: pid
	offTaskRealParent = 1280 // struct task_struct: real_parent
	offTaskCgroups    = 2376 // struct task_struct: cgroups
	sizePtRegs        = 168  // sizeof(struct pt_regs)
)

// TestVerify_btfPointers checks BTF-typed kernel pointers for target
// linux against the running kernel's BTF: the types helpers return and
// loads give, and the refusals, with Linux's messages (TestBTFPointers in
// package waggle compares verdicts with the kernel).
func TestVerify_btfPointers(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	kt := verifier.NewKernelTypes()
	btfLayout(t, kt)
	const task = "call 158\n" // bpf_get_current_task_btf
	tests := []struct {
		name   string
		typ    progtype.Type
		src    string
		opts   verifier.Options
		notGPL bool
		// want is "" for accepted, else a substring of the error; log,
		// when set, must be in the log.
		want, log string
	}{
		{name: "task pid", typ: progtype.Tracepoint, src: task + `
			r0 = *(u32 *)(r0 + 1264)
			exit`, log: "R0=trusted_ptr_task_struct()"},
		{name: "rcu parent", typ: progtype.Tracepoint, src: task + `
			r1 = *(u64 *)(r0 + 1280)
			r0 = *(u32 *)(r1 + 1268)
			exit`, log: "R1=rcu_ptr_task_struct()"},
		{name: "untrusted field", typ: progtype.Tracepoint, src: task + `
			r1 = *(u64 *)(r0 + 1136)
			r0 = *(u32 *)(r1 + 0)
			exit`, log: "R1=untrusted_ptr_mm_struct()"},
		{name: "negative offset", typ: progtype.Tracepoint, src: task + `
			r0 = *(u32 *)(r0 - 8)
			exit`, want: "R0 is ptr_task_struct invalid negative access: off=-8"},
		{name: "write", typ: progtype.Tracepoint, src: task + `
			*(u32 *)(r0 + 1264) = 1
			r0 = 0
			exit`, want: "only read is supported"},
		{name: "atomic", typ: progtype.Tracepoint, src: task + `
			r1 = 1
			lock *(u64 *)(r0 + 0) += r1
			r0 = 0
			exit`, want: "only read is supported"},
		{name: "or null", typ: progtype.SchedCLS, src: `
			r1 = *(u64 *)(r1 + 168)
			if r1 == 0 goto +3
			call 137
			r0 = *(u32 *)(r0 + 0)
			r0 = 0
			exit`, want: "R0 invalid mem access 'ptr_or_null_'", log: "R0=ptr_or_null_tcp_sock(id=2)"},
		{name: "not GPL", typ: progtype.SchedCLS, notGPL: true, src: `
			r1 = *(u64 *)(r1 + 168)
			if r1 == 0 goto +4
			call 137
			if r0 == 0 goto +2
			r0 = *(u32 *)(r0 + 0)
			r0 = 0
			exit`, want: "Cannot access kernel 'struct tcp_sock' from non-GPL compatible program"},
		{name: "untrusted to helper", typ: progtype.SchedCLS, src: `
			r1 = *(u64 *)(r1 + 168)
			if r1 == 0 goto +5
			call 137
			if r0 == 0 goto +3
			r1 = *(u64 *)(r0 + 288)
			call 137
			r0 = 0
			exit`, want: "R1 type=untrusted_ptr_ expected=sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_"},
		{name: "wrong struct", typ: progtype.Tracepoint, src: task + `
			r1 = r0
			call 175
			r1 = r0
			call 175
			r0 = 0
			exit`, want: "R1 is of type pt_regs but task_struct is expected"},
		{name: "pruning keeps types apart", typ: progtype.Tracepoint, src: task + `
			r6 = *(u64 *)(r0 + 1280)
			r7 = *(u64 *)(r0 + 2376)
			call 7
			if r0 == 0 goto +2
			r0 = 0
			goto +1
			r6 = r7
			r0 = *(u32 *)(r6 + 1264)
			r0 = 0
			exit`, want: "access beyond struct css_set at off 1264 size 4", log: "R7=rcu_ptr_css_set()"},
		{name: "map_ptr unprivileged", typ: progtype.SocketFilter, opts: verifier.Options{Unprivileged: true}, src: `
			r1 = map_idx(0) ll
			r0 = *(u32 *)(r1 + 76)
			r0 = 0
			exit`, want: "'struct bpf_array' access is allowed only to CAP_PERFMON and CAP_SYS_ADMIN"},
		{name: "map_ptr read", typ: progtype.SocketFilter, src: `
			r1 = map_idx(0) ll
			r0 = *(u32 *)(r1 + 76)
			r0 = 0
			exit`},
		{name: "map_ptr for waggle's runtime", typ: progtype.SocketFilter, opts: verifier.Options{Target: progtype.TargetUser}, src: `
			r1 = map_idx(0) ll
			r0 = *(u32 *)(r1 + 76)
			r0 = 0
			exit`, want: "map_ptr access is not supported by waggle's runtime"},
		{name: "map_ptr negative", typ: progtype.SocketFilter, src: `
			r1 = map_idx(0) ll
			r0 = *(u32 *)(r1 - 8)
			r0 = 0
			exit`, want: "R1 is bpf_array invalid negative access: off=-8"},
		{name: "no kernel BTF", typ: progtype.Tracepoint, opts: verifier.Options{KernelTypes: verifier.KernelTypesFrom(nil)}, src: task + `
			r0 = 0
			exit`, want: "needs the kernel's BTF, which is missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := asm.Parse(tc.src)
			if err != nil {
				t.Fatalf("assemble: %v", err)
			}
			kind, err := progtype.Lookup(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			p := &verifier.Program{Name: "test", Insns: insns, Kind: kind, GPL: !tc.notGPL,
				Maps: []verifier.Map{{Spec: maps.Spec{Name: "arr", Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4}, SpinLock: -1}}}
			opts := tc.opts
			if opts.Target == progtype.TargetUser && tc.name != "map_ptr for waggle's runtime" {
				opts.Target = progtype.TargetLinux
			}
			if opts.KernelTypes == nil {
				opts.KernelTypes = kt
			}
			var log bytes.Buffer
			opts.Log = &log
			_, err = verifier.Verify(context.Background(), p, &opts)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.log != "" && !strings.Contains(log.String(), tc.log) {
				t.Errorf("log has no %q:\n%s", tc.log, log.String())
			}
		})
	}
}

// btfLayout skips the test when the kernel's structs are not laid out as
// the programs expect.
func btfLayout(t *testing.T, kt *verifier.KernelTypes) {
	t.Helper()
	spec, err := kt.Spec()
	if err != nil {
		t.Skipf("kernel BTF: %v", err)
	}
	var task, regs *btf.Struct
	if err := spec.TypeByName("task_struct", &task); err != nil {
		t.Skipf("kernel BTF: %v", err)
	}
	if err := spec.TypeByName("pt_regs", &regs); err != nil {
		t.Skipf("kernel BTF: %v", err)
	}
	off := map[string]uint32{}
	for _, m := range task.Members {
		off[m.Name] = m.Offset.Bytes()
	}
	if off["pid"] != offTaskPid || off["real_parent"] != offTaskRealParent || off["cgroups"] != offTaskCgroups || regs.Size != sizePtRegs {
		t.Skipf("this kernel's task_struct or pt_regs is laid out differently (pid at %d, real_parent at %d, pt_regs of %d bytes)", off["pid"], off["real_parent"], regs.Size)
	}
}

// TestVerify_globalTrusted checks global functions' __arg_trusted
// arguments for target linux: the function is verified with a trusted
// pointer to the kernel struct of its prototype, and a call must pass
// one (kselftest's verifier_global_ptr_args.c compares with the kernel).
func TestVerify_globalTrusted(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	kt := verifier.NewKernelTypes()
	btfLayout(t, kt)
	taskP := &btf.Pointer{Target: &btf.Struct{Name: "task_struct___local"}}
	ctxP := &btf.Pointer{Target: &btf.Void{}}
	entry := fn{name: "prog", start: 0, global: true, params: []btf.Type{ctxP}, tags: [][]string{{"arg:ctx"}}}
	callee := func(start int, tags ...string) fn {
		return fn{name: "f", start: start, global: true, params: []btf.Type{taskP}, tags: [][]string{tags}}
	}
	tests := []struct {
		name, src string
		fns       []fn
		want, log string
	}{
		{name: "trusted task", src: `
			call 158
			r1 = r0
			call pc+2
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 1264)
			exit`, fns: []fn{entry, callee(5, "arg:trusted")}, log: "R1=trusted_ptr_task_struct(id="},
		{name: "NULL to nonnull", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 1264)
			exit`, fns: []fn{entry, callee(4, "arg:trusted")}, want: "Caller passes invalid args into func#1 ('f'): R1 type=scalar expected=ptr_, trusted_ptr_, rcu_ptr_"},
		{name: "nullable must be tested", src: `
			r1 = 0
			call pc+2
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 1264)
			exit`, fns: []fn{entry, callee(4, "arg:trusted", "arg:nullable")}, want: "R1 invalid mem access 'trusted_ptr_or_null_'"},
		{name: "untrusted", src: `
			call 158
			r1 = *(u64 *)(r0 + 1288)
			call pc+2
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 1264)
			exit`, fns: []fn{entry, callee(5, "arg:trusted")}, want: "R1 type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_"},
		{name: "trusted and nonnull", src: `
			call 158
			r1 = r0
			call pc+2
			r0 = 0
			exit
			r0 = 0
			exit`, fns: []fn{entry, callee(5, "arg:trusted", "arg:nonnull")}, want: "arg#0 has invalid combination of tags"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := asm.Parse(tc.src)
			if err != nil {
				t.Fatalf("assemble: %v", err)
			}
			kind, err := progtype.Lookup(progtype.Kprobe)
			if err != nil {
				t.Fatal(err)
			}
			p := withFuncs(&verifier.Program{Name: "test", Insns: insns, Kind: kind, GPL: true}, tc.fns...)
			var log bytes.Buffer
			_, err = verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux, KernelTypes: kt, Log: &log})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.log != "" && !strings.Contains(log.String(), tc.log) {
				t.Errorf("log has no %q:\n%s", tc.log, log.String())
			}
		})
	}
}

// TestKernelTypes_shared verifies programs that read kernel objects from
// several goroutines sharing one KernelTypes, which loads the BTF once
// (run with -race).
func TestKernelTypes_shared(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	kt := verifier.NewKernelTypes()
	kind, err := progtype.Lookup(progtype.Tracepoint)
	if err != nil {
		t.Fatal(err)
	}
	insns, err := asm.Parse(`
		call 158
		r1 = *(u64 *)(r0 + 1280)
		r0 = *(u8 *)(r1 + 0)
		r0 = 0
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			p := &verifier.Program{Name: "shared", Insns: insns, Kind: kind, GPL: true}
			_, err := verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux, KernelTypes: kt})
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// fakeKernel is a kernel BTF of a few hand-made structs, for the tests
// that need no running kernel: a task_struct with a pid, a pointer to its
// parent, a union, a bitfield and a flexible array.
func fakeKernel(t *testing.T) *verifier.KernelTypes {
	t.Helper()
	i32 := &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	i64 := &btf.Int{Name: "long", Size: 8, Encoding: btf.Signed}
	char := &btf.Int{Name: "char", Size: 1, Encoding: btf.Char}
	task := &btf.Struct{Name: "task_struct", Size: 40}
	u := &btf.Union{Size: 8, Members: []btf.Member{{Name: "a", Type: i32}, {Name: "b", Type: i64}}}
	task.Members = []btf.Member{
		{Name: "pid", Type: i32, Offset: 0},
		{Name: "flags", Type: i32, Offset: 32, BitfieldSize: 3},
		{Name: "real_parent", Type: &btf.Pointer{Target: task}, Offset: 64},
		{Name: "u", Type: u, Offset: 128},
		{Name: "stack", Type: &btf.Pointer{Target: &btf.Void{}}, Offset: 192},
		{Name: "comm", Type: &btf.Array{Index: i32, Type: char, Nelems: 8}, Offset: 256},
		{Name: "tail", Type: &btf.Array{Index: i32, Type: i32, Nelems: 0}, Offset: 320},
	}
	b, err := btf.NewBuilder([]btf.Type{task}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b.Marshal(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := btf.LoadSpecFromReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return verifier.KernelTypesFrom(spec)
}

// TestVerify_btfWalk walks a hand-made kernel struct: what each load of
// it gives, on any platform.
func TestVerify_btfWalk(t *testing.T) {
	kt := fakeKernel(t)
	kind, err := progtype.Lookup(progtype.Tracepoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, src, want, log string }{
		{name: "pid", src: "r0 = *(u32 *)(r0 + 0)"},
		{name: "pid and flags", src: "r0 = *(u64 *)(r0 + 0)", want: "access beyond the end of member pid (mend:4) in struct task_struct with off 0 size 8"},
		{name: "bitfield", src: "r0 = *(u8 *)(r0 + 4)"},
		{name: "parent", src: "r0 = *(u64 *)(r0 + 8)\nr0 = *(u32 *)(r0 + 0)", log: "R0=untrusted_ptr_task_struct()"},
		{name: "half a pointer", src: "r0 = *(u32 *)(r0 + 12)", want: "cannot access ptr member real_parent with moff 8 in struct task_struct with off 12 size 4"},
		{name: "union", src: "r0 = *(u64 *)(r0 + 16)"},
		{name: "void pointer", src: "r0 = *(u64 *)(r0 + 24)\nr0 = *(u64 *)(r0 + 4096)", log: "R0=rdonly_untrusted_mem("},
		{name: "array element", src: "r0 = *(u16 *)(r0 + 34)"},
		{name: "flexible array", src: "r0 = *(u32 *)(r0 + 4000)"},
		{name: "hole", src: "r0 = *(u8 *)(r0 + 6)", want: "struct task_struct doesn't have field at offset 6"},
		{name: "no such struct", src: "r1 = r0\ncall 175", want: "invalid return type 8 of func bpf_task_pt_regs#175"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			insns, err := asm.Parse("call 158\n" + tc.src + "\nr0 = 0\nexit")
			if err != nil {
				t.Fatal(err)
			}
			p := &verifier.Program{Name: "walk", Insns: insns, Kind: kind, GPL: true}
			var log bytes.Buffer
			_, err = verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux, KernelTypes: kt, Log: &log})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q, want %q", err, tc.want)
			}
			if tc.log != "" && !strings.Contains(log.String(), tc.log) {
				t.Errorf("log has no %q:\n%s", tc.log, log.String())
			}
		})
	}
}
