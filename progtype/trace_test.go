package progtype_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// runTrace runs src as a program of type typ on in, in both interpreter
// modes, and returns r0 (both must agree) and the run's context out.
func runTrace(t *testing.T, typ progtype.Type, src string, in progtype.Input) uint32 {
	t.Helper()
	var got []uint32
	for _, mode := range engines.All() {
		out, err := runProg(t, mode, mustKind(t, typ), mustParse(t, src), in, 1)
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		got = append(got, out.Retval)
	}
	if got[0] != got[1] {
		t.Fatalf("checked %#x, fast %#x", got[0], got[1])
	}
	return got[0]
}

const (
	eINVAL = 22
	eFAULT = 14
	ePERM  = 1
	eBUSY  = 16
)

func neg(e int) uint32 { return uint32(-e) }

func TestRun_kprobe(t *testing.T) {
	regs := progtype.PtRegs{DI: 7, SI: 0x100, DX: 3, IP: 0xffffffff81000000}
	task := &progtype.Task{PID: 42, TGID: 40, UID: 1000, GID: 100, Comm: "waggle-test-long-name"}
	in := progtype.Input{Context: regs.Bytes(), Task: task, FuncIP: 0xffffffff81000010}
	for _, tc := range []struct {
		name string
		src  string
		in   progtype.Input
		want uint32
	}{
		{"parm1+parm2", `
			r0 = *(u64 *)(r1 + 112)
			r2 = *(u64 *)(r1 + 104)
			r0 += r2
			exit`, in, 0x107},
		{"ip_high", `
			r0 = *(u64 *)(r1 + 128)
			r0 >>= 32
			exit`, in, 0xffffffff},
		{"pid_tgid", `
			call 14
			r1 = r0
			r1 >>= 32
			r0 <<= 8
			r0 |= r1
			exit`, in, 42<<8 | 40},
		{"pid_tgid_no_task", "call 14\nexit", progtype.Input{Context: regs.Bytes()}, neg(eINVAL)},
		{"uid_gid", "call 15\nr0 >>= 32\nexit", in, 100},
		{"uid", "call 15\nexit", in, 1000},
		{"comm", `
			r1 = r10
			r1 += -16
			r2 = 16
			call 16
			r1 = *(u64 *)(r10 - 16)
			r0 = *(u8 *)(r10 - 1)
			r0 <<= 8
			r1 &= 0xff
			r0 |= r1
			exit`, in, 'w'},
		{"comm_last_byte", `
			r1 = r10
			r1 += -16
			r2 = 16
			call 16
			r0 = *(u8 *)(r10 - 2)
			exit`, in, 'n'},
		{"comm_no_task", `
			r1 = -1
			*(u64 *)(r10 - 8) = r1
			r1 = r10
			r1 += -8
			r2 = 8
			call 16
			r1 = *(u64 *)(r10 - 8)
			r0 ^= r1
			exit`, progtype.Input{Context: regs.Bytes()}, neg(eINVAL)},
		{"func_ip", "call 173\nexit", in, 0x81000010},
		{"get_stack", `
			r6 = r1
			r1 = -1
			*(u64 *)(r10 - 8) = r1
			*(u64 *)(r10 - 16) = r1
			r1 = r6
			r2 = r10
			r2 += -16
			r3 = 16
			r4 = 0
			call 67
			r1 = *(u64 *)(r10 - 8)
			r2 = *(u64 *)(r10 - 16)
			r1 |= r2
			r0 ^= r1
			exit`, in, neg(eFAULT)},
		{"get_stack_bad_size", `
			r2 = r10
			r2 += -16
			r3 = 12
			r4 = 0
			call 67
			exit`, in, neg(eINVAL)},
		{"get_stackid", "r2 = 0\nr3 = 0\ncall 27\nexit", in, neg(eFAULT)},
		{"get_stackid_flags", "r2 = 0\nr3 = 0x800\ncall 27\nexit", in, neg(eINVAL)},
		{"send_signal_no_task", "r1 = 9\ncall 109\nexit", progtype.Input{Context: regs.Bytes()}, neg(ePERM)},
		{"send_signal_no_channel", "r1 = 9\ncall 109\nexit", in, neg(ePERM)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runTrace(t, progtype.Kprobe, tc.src, tc.in); got != tc.want {
				t.Errorf("r0 %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestRun_sendSignal(t *testing.T) {
	ch := make(chan progtype.Signal, 1)
	task := &progtype.Task{PID: 1, Signals: ch}
	in := progtype.Input{Context: make([]byte, progtype.PtRegsSize), Task: task}
	k := mustKind(t, progtype.Kprobe)
	for _, tc := range []struct {
		src  string
		want uint32
		sig  *progtype.Signal
	}{
		{"r1 = 10\ncall 109\nexit", 0, &progtype.Signal{Sig: 10}},
		{"r1 = 12\ncall 117\nexit", 0, &progtype.Signal{Sig: 12, Thread: true}},
		{"r1 = 65\ncall 109\nexit", neg(eINVAL), nil},
		{"r1 = 10\ncall 109\nr1 = 11\ncall 109\nexit", neg(eBUSY), &progtype.Signal{Sig: 10}},
	} {
		out, err := runProg(t, checked, k, mustParse(t, tc.src), in, 1)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != tc.want {
			t.Errorf("%q: r0 %#x, want %#x", tc.src, out.Retval, tc.want)
		}
		select {
		case s := <-ch:
			if tc.sig == nil || s != *tc.sig {
				t.Errorf("%q: signal %+v, want %+v", tc.src, s, tc.sig)
			}
		default:
			if tc.sig != nil {
				t.Errorf("%q: no signal, want %+v", tc.src, *tc.sig)
			}
		}
	}
}

// TestRun_probeRead reads memory the hook lends through pointers in the
// context, and fails with -EFAULT and a zeroed buffer elsewhere.
func TestRun_probeRead(t *testing.T) {
	lent := []byte("hello\x00world, a longer string\x00")
	addr := mem.Addr(lent)
	var regs progtype.PtRegs
	regs.DI = addr
	regs.SI = addr + 6
	regs.DX = 0x1000 // nothing there
	in := progtype.Input{Context: regs.Bytes(), Memory: []progtype.Region{{Data: lent}}}
	fill := `
		r6 = r1
		r1 = -1
		*(u64 *)(r10 - 8) = r1
		*(u64 *)(r10 - 16) = r1
		*(u64 *)(r10 - 24) = r1
		r1 = r10
		r1 += -24`
	sum := `
		r1 = *(u64 *)(r10 - 24)
		r2 = *(u64 *)(r10 - 16)
		r3 = *(u64 *)(r10 - 8)`
	for _, tc := range []struct {
		name string
		src  string
		want uint32
	}{
		// probe_read_kernel (113) of 5 bytes: "hello".
		{"kernel", fill + "\nr2 = 5\nr3 = *(u64 *)(r6 + 112)\ncall 113" + sum + "\nr0 = r1\nr0 &= 0xffffffff\nexit", binary.LittleEndian.Uint32([]byte("hell"))},
		{"kernel_result", fill + "\nr2 = 5\nr3 = *(u64 *)(r6 + 112)\ncall 113\nexit", 0},
		{"user", fill + "\nr2 = 5\nr3 = *(u64 *)(r6 + 104)\ncall 112" + sum + "\nr0 = r1\nr0 &= 0xffffffff\nexit", binary.LittleEndian.Uint32([]byte("worl"))},
		{"fault", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 96)\ncall 113\nexit", neg(eFAULT)},
		{"fault_zeroes", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 96)\ncall 113" + sum + "\nr1 |= r2\nr1 |= r3\nr0 = r1\nexit", 0},
		{"past_the_end", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 104)\nr3 += 20\ncall 113\nexit", neg(eFAULT)},
		{"own_context", fill + "\nr2 = 8\nr3 = r6\nr3 += 112\ncall 113\nr0 = *(u64 *)(r10 - 24)\nexit", uint32(addr)},
		// probe_read_kernel_str (115): the length with the NUL.
		{"str", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 112)\ncall 115\nexit", 6},
		{"str_truncated", fill + "\nr2 = 4\nr3 = *(u64 *)(r6 + 104)\ncall 115\nr1 = *(u32 *)(r10 - 24)\nr1 >>= 24\nr0 <<= 8\nr0 |= r1\nexit", 4 << 8},
		{"str_keeps_tail", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 112)\ncall 115\nr0 = *(u8 *)(r10 - 17)\nexit", 0xff},
		{"str_fault", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 96)\ncall 115\nexit", neg(eFAULT)},
		{"str_empty_kernel", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 112)\nr3 += 5\ncall 115\nexit", 1},
		{"str_empty_user", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 112)\nr3 += 5\ncall 114\nexit", 0},
		{"str_zero_size", fill + "\nr2 = 0\nr3 = *(u64 *)(r6 + 112)\ncall 115\nexit", 0},
		{"legacy", fill + "\nr2 = 2\nr3 = *(u64 *)(r6 + 112)\ncall 4\nr0 = *(u16 *)(r10 - 24)\nexit", 'h' | 'e'<<8},
		{"legacy_str", fill + "\nr2 = 24\nr3 = *(u64 *)(r6 + 104)\ncall 45\nexit", 23},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := runTrace(t, progtype.Kprobe, tc.src, in); got != tc.want {
				t.Errorf("r0 %#x, want %#x", got, tc.want)
			}
		})
	}
}

func TestRun_currentTask(t *testing.T) {
	task := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	in := progtype.Input{Context: make([]byte, 16), Task: &progtype.Task{Struct: task}}
	got := runTrace(t, progtype.RawTracepoint, `
		call 35
		r3 = r0
		r1 = r10
		r1 += -8
		r2 = 8
		call 113
		r0 = *(u32 *)(r10 - 4)
		exit`, in)
	if got != 0x08070605 {
		t.Errorf("r0 %#x, want the task struct's bytes 4..7", got)
	}
	if got := runTrace(t, progtype.RawTracepoint, "call 35\nexit", progtype.Input{}); got != 0 {
		t.Errorf("without a task r0 %#x, want 0", got)
	}
}

func TestRun_tracingContexts(t *testing.T) {
	record := make([]byte, 64)
	for i := range record {
		record[i] = byte(i)
	}
	args := make([]byte, 24)
	binary.LittleEndian.PutUint64(args[8:], 0x1122334455667788)
	pe := make([]byte, progtype.PerfEventDataSize)
	binary.LittleEndian.PutUint64(pe[progtype.PtRegsSize:], 0xaabbccdd00112233) // sample_period
	for _, tc := range []struct {
		typ  progtype.Type
		src  string
		in   progtype.Input
		want uint32
	}{
		{progtype.Tracepoint, "r0 = *(u32 *)(r1 + 8)\nexit", progtype.Input{Context: record}, 0x0b0a0908},
		{progtype.Tracepoint, "r0 = *(u32 *)(r1 + 100)\nexit", progtype.Input{Context: record}, 0},
		{progtype.RawTracepoint, "r0 = *(u64 *)(r1 + 8)\nr0 >>= 32\nexit", progtype.Input{Context: args}, 0x11223344},
		{progtype.RawTracepoint, "r0 = *(u8 *)(r1 + 15)\nexit", progtype.Input{Context: args}, 0x11},
		{progtype.PerfEvent, "r0 = *(u32 *)(r1 + 172)\nexit", progtype.Input{Context: pe}, 0xaabbccdd},
		{progtype.PerfEvent, "r0 = *(u16 *)(r1 + 168)\nexit", progtype.Input{Context: pe}, 0x2233},
	} {
		t.Run(fmt.Sprintf("%s/%s", tc.typ, tc.src), func(t *testing.T) {
			if got := runTrace(t, tc.typ, tc.src, tc.in); got != tc.want {
				t.Errorf("r0 %#x, want %#x", got, tc.want)
			}
		})
	}
	// A raw tracepoint's ctx_in must cover what the program reads, as
	// BPF_PROG_TEST_RUN requires.
	p, err := mustKind(t, progtype.RawTracepoint).Convert(mustParse(t, "r0 = *(u64 *)(r1 + 16)\nexit"), []int{0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewRun(progtype.Input{Context: args[:16]}); err == nil {
		t.Error("a 16-byte ctx_in for a program reading 24 bytes was accepted")
	}
	// Unverified (Rewrite), the reads are known only as the program runs:
	// the context is ctx_in, and the read past it is the same EINVAL.
	dyn, err := mustKind(t, progtype.RawTracepoint).Rewrite(mustParse(t, "r0 = *(u64 *)(r1 + 16)\nexit"))
	if err != nil {
		t.Fatal(err)
	}
	ip, err := checked.Load(dyn.Insns, engine.Options{ContextVariants: dyn.Variants, ContextFaults: dyn.Faults})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{16, 24, 0} {
		run, err := dyn.NewRun(progtype.Input{Context: args[:n]})
		if err != nil {
			t.Fatalf("ctx_in of %d bytes: %v", n, err)
		}
		r0, err := interpExec(ip)(run)
		var f *engine.Fault
		switch {
		case n >= 24 && (err != nil || r0 != binary.LittleEndian.Uint64(args[16:])):
			t.Errorf("ctx_in of %d bytes: %#x, %v", n, r0, err)
		case n < 24 && (!errors.As(err, &f) || !errors.Is(run.ContextFault(f.Addr, f.Size), maps.EINVAL)):
			t.Errorf("ctx_in of %d bytes: %v, want a fault that is EINVAL", n, err)
		}
	}
	if _, err := mustKind(t, progtype.Kprobe).NewRun(progtype.Input{Context: make([]byte, progtype.PtRegsSize+1)}); err == nil {
		t.Error("a ctx_in longer than pt_regs was accepted")
	}
	if _, err := mustKind(t, progtype.Kprobe).NewRun(progtype.Input{Data: []byte{1}}); err == nil {
		t.Error("a kprobe run with data_in was accepted")
	}
}
