package interp_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

func parse(tb testing.TB, src string) []isa.Instruction {
	tb.Helper()
	p, err := asm.Parse(src)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestRun_StackFrames: each frame owns the 512 bytes below its r10, no
// more, and reaches its callers' frames only through pointers they passed;
// the checked interpreter faults exactly where Linux's verifier rejects
// the access (as root, each program is loaded into the kernel too, which
// must accept the clean ones and reject the others with the message
// given).
func TestRun_StackFrames(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		// fault is the slot of the faulting access, -1 for a clean run;
		// kmsg is part of the kernel's rejection.
		fault int
		kmsg  string
	}{
		{name: "the frame's last byte", fault: -1, src: `
			r1 = *(u8 *)(r10 - 512)
			r0 = 0
			exit`},
		{name: "one byte below the frame", fault: 0, kmsg: "invalid", src: `
			r1 = *(u8 *)(r10 - 513)
			r0 = 0
			exit`},
		{name: "the frame's top 8 bytes", fault: -1, src: `
			r1 = 0
			*(u64 *)(r10 - 8) = r1
			r0 = *(u64 *)(r10 - 8)
			exit`},
		// Linux names the misalignment first: an access across a frame's
		// top cannot be aligned.
		{name: "straddling the frame's top", fault: 0, kmsg: "stack access", src: `
			r1 = *(u16 *)(r10 - 1)
			r0 = 0
			exit`},
		{name: "a callee's last byte", fault: -1, src: `
			call pc+2
			r0 = 0
			exit
			r1 = *(u8 *)(r10 - 512)
			r0 = 0
			exit`},
		{name: "a callee's r10 plus 0", fault: 3, kmsg: "invalid", src: `
			call pc+2
			r0 = 0
			exit
			r1 = *(u8 *)(r10 + 0)
			r0 = 0
			exit`},
		{name: "a callee's r10 plus 8, through a copy", fault: 5, kmsg: "invalid", src: `
			call pc+2
			r0 = 0
			exit
			r2 = r10
			r2 += 8
			r1 = *(u64 *)(r2 + 0)
			r0 = 0
			exit`},
		{name: "a callee in its caller's frame through the caller's pointer", fault: -1, src: `
			r2 = 7
			*(u64 *)(r10 - 8) = r2
			r1 = r10
			r1 += -8
			call pc+1
			exit
			r0 = *(u64 *)(r1 + 0)
			exit`},
		{name: "a callee through the caller's pointer past the caller's r10", fault: 6, kmsg: "invalid", src: `
			r2 = 7
			*(u64 *)(r10 - 8) = r2
			r1 = r10
			r1 += -8
			call pc+1
			exit
			r0 = *(u64 *)(r1 + 8)
			exit`},
		{name: "a callee through the caller's pointer below the caller's frame", fault: 6, kmsg: "invalid", src: `
			r2 = 7
			*(u64 *)(r10 - 8) = r2
			r1 = r10
			r1 += -8
			call pc+1
			exit
			r0 = *(u8 *)(r1 - 505)
			exit`},
		{name: "a callee's callee through its grandparent's pointer", fault: -1, src: `
			r2 = 7
			*(u64 *)(r10 - 512) = r2
			r1 = r10
			r1 += -512
			call pc+2
			r0 = 0
			exit
			call pc+1
			exit
			r0 = *(u64 *)(r1 + 0)
			exit`},
		{name: "a caller in its returned callee's frame", fault: 4, kmsg: "invalid", src: `
			call pc+5
			r1 = r10
			r1 += -2056
			r0 = 0
			r0 = *(u64 *)(r1 + 0)
			exit
			r1 = 1
			*(u64 *)(r10 - 8) = r1
			r0 = 0
			exit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := parse(t, tc.src)
			p, err := interp.Load(prog, interp.Options{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = interp.NewMachine().Run(p, &interp.Args{})
			var f *interp.Fault
			switch {
			case tc.fault < 0 && err != nil:
				t.Errorf("checked run: %v, want none", err)
			case tc.fault >= 0 && (!errors.As(err, &f) || !errors.Is(err, interp.ErrMemory) || f.PC != tc.fault):
				t.Errorf("checked run: %v, want a memory fault at %d", err, tc.fault)
			default:
				t.Logf("checked run: %v", err)
			}
			if kernel.Supported() != nil {
				return
			}
			kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.SocketFilter})
			switch {
			case tc.fault < 0 && err != nil:
				t.Errorf("the kernel rejects it: %v", err)
			case tc.fault >= 0 && err == nil:
				t.Errorf("the kernel accepts it")
			case tc.fault >= 0 && !strings.Contains(err.Error(), tc.kmsg):
				t.Errorf("the kernel rejects it for another reason: %v", err)
			}
			if kp != nil {
				kp.Close()
			}
		})
	}
}

// TestRun_StrictStack: with Options.StrictStack a frame reads only stack
// bytes written in this run, by itself or (through a pointer) by the frame
// that owns them; without it the same programs run and read zero.
func TestRun_StrictStack(t *testing.T) {
	// Helper 1 writes r2 bytes at r1 (a MEM_UNINIT output), helper 2
	// reads them.
	table := helpers.Table{
		1: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			b, err := env.Memory(a[0], a[1], true)
			for i := range b {
				b[i] = 1
			}
			return 0, err
		},
		2: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			_, err := env.Memory(a[0], a[1], false)
			return 0, err
		},
	}
	for _, tc := range []struct {
		name  string
		src   string
		fault int // the slot of the faulting read, -1 for none
	}{
		{name: "written, then read", fault: -1, src: `
			r1 = 3
			*(u64 *)(r10 - 512) = r1
			r0 = *(u64 *)(r10 - 512)
			exit`},
		{name: "never written", fault: 0, src: `
			r0 = *(u64 *)(r10 - 8)
			exit`},
		{name: "half written", fault: 2, src: `
			r1 = 3
			*(u32 *)(r10 - 8) = r1
			r0 = *(u64 *)(r10 - 8)
			exit`},
		{name: "the written half", fault: -1, src: `
			r1 = 3
			*(u32 *)(r10 - 4) = r1
			r0 = *(u32 *)(r10 - 4)
			exit`},
		{name: "an atomic on unwritten bytes", fault: 1, src: `
			r1 = 1
			lock *(u64 *)(r10 - 8) += r1
			r0 = 0
			exit`},
		{name: "the caller's written bytes through its pointer", fault: -1, src: `
			r2 = 7
			*(u64 *)(r10 - 8) = r2
			r1 = r10
			r1 += -8
			call pc+1
			exit
			r0 = *(u64 *)(r1 + 0)
			exit`},
		{name: "the caller's unwritten bytes through its pointer", fault: 6, src: `
			r2 = 7
			*(u32 *)(r10 - 4) = r2
			r1 = r10
			r1 += -8
			call pc+1
			exit
			r0 = *(u64 *)(r1 + 0)
			exit`},
		{name: "what an earlier callee at the same depth left", fault: 9, src: `
			r1 = 1
			call pc+3
			r1 = 0
			call pc+1
			exit
			if r1 == 0 goto +3
			r2 = 5
			*(u64 *)(r10 - 8) = r2
			exit
			r0 = *(u64 *)(r10 - 8)
			exit`},
		{name: "a helper's output", fault: -1, src: `
			r1 = r10
			r1 += -16
			r2 = 16
			call 1
			r0 = *(u64 *)(r10 - 16)
			r0 = *(u64 *)(r10 - 8)
			exit`},
		{name: "a helper's input, unwritten", fault: 5, src: `
			r3 = 0
			*(u64 *)(r10 - 8) = r3
			r1 = r10
			r1 += -16
			r2 = 16
			call 2
			exit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := parse(t, tc.src)
			for _, strict := range []bool{false, true} {
				p, err := interp.Load(prog, interp.Options{StrictStack: strict, Helpers: table})
				if err != nil {
					t.Fatal(err)
				}
				m := interp.NewMachine()
				// Twice: the second run must not count what the first wrote.
				for range 2 {
					_, err = m.Run(p, &interp.Args{})
					var f *interp.Fault
					switch {
					case (!strict || tc.fault < 0) && err != nil:
						t.Fatalf("strict %v: %v, want no fault", strict, err)
					case strict && tc.fault >= 0 && (!errors.As(err, &f) || !errors.Is(err, interp.ErrUninitStack) || f.PC != tc.fault):
						t.Fatalf("strict: %v, want a read of uninitialised stack at %d", err, tc.fault)
					case err != nil:
						t.Logf("strict: %v", err)
					}
				}
			}
		})
	}
}

// TestRun_StrictStackTailCall: a tail call's program starts with nothing
// written in its frame, as the verifier checks it alone.
func TestRun_StrictStackTailCall(t *testing.T) {
	var target *interp.Program
	tail := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		env.State().TailCall = target
		return 0, nil
	}
	opts := interp.Options{StrictStack: true, Helpers: helpers.Table{12: tail}}
	var err error
	if target, err = interp.Load(parse(t, `
		r0 = *(u64 *)(r10 - 8)
		exit`), opts); err != nil {
		t.Fatal(err)
	}
	caller, err := interp.Load(parse(t, `
		r1 = 1
		*(u64 *)(r10 - 8) = r1
		call 12
		r0 = 0
		exit`), opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = interp.NewMachine().Run(caller, &interp.Args{State: &helpers.State{}})
	if f := (*interp.Fault)(nil); !errors.As(err, &f) || !errors.Is(err, interp.ErrUninitStack) || f.Program != target {
		t.Fatalf("got %v, want a read of uninitialised stack in the tail call's program", err)
	}
}

// TestRun_RegionBounds: a region with Bounds allows exactly the bytes
// between them as they are at each access, and a helper that moves them
// (as bpf_xdp_adjust_tail does) moves what the program may touch.
func TestRun_RegionBounds(t *testing.T) {
	buf := mem.Aligned(64)
	base := mem.Addr(buf)
	var bounds [2]uint64
	// Helper 1 moves the end by r1 bytes, helper 2 reads r2 bytes at r1.
	table := helpers.Table{
		1: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			bounds[1] += a[0]
			return 0, nil
		},
		2: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			_, err := env.Memory(a[0], a[1], false)
			return 0, err
		},
	}
	// r1 is data (base+16), the region ends at base+32: 16 bytes.
	for _, tc := range []struct {
		name  string
		src   string
		fault int
		msg   string
	}{
		{name: "the last byte", fault: -1, src: `
			r0 = *(u8 *)(r1 + 15)
			exit`},
		{name: "one past the end", fault: 0, msg: "outside the packet", src: `
			r0 = *(u8 *)(r1 + 16)
			exit`},
		{name: "one before the start", fault: 0, msg: "outside the packet", src: `
			r0 = *(u8 *)(r1 - 1)
			exit`},
		{name: "running past the end", fault: 0, msg: "past the end of the packet", src: `
			r0 = *(u64 *)(r1 + 9)
			exit`},
		{name: "a write of the last byte", fault: -1, src: `
			*(u8 *)(r1 + 15) = 1
			r0 = 0
			exit`},
		{name: "after the helper grew it", fault: -1, src: `
			r6 = r1
			r1 = 4
			call 1
			r0 = *(u8 *)(r6 + 19)
			exit`},
		{name: "after the helper grew it, one past", fault: 3, src: `
			r6 = r1
			r1 = 4
			call 1
			r0 = *(u8 *)(r6 + 20)
			exit`},
		{name: "after the helper shrank it", fault: 3, src: `
			r6 = r1
			r1 = -4
			call 1
			r0 = *(u8 *)(r6 + 12)
			exit`},
		{name: "a helper's read to the end", fault: -1, src: `
			r2 = 16
			call 2
			exit`},
		{name: "a helper's read past the end", fault: 1, msg: "past the end of the packet", src: `
			r2 = 17
			call 2
			exit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bounds = [2]uint64{base + 16, base + 32}
			p, err := interp.Load(parse(t, tc.src), interp.Options{Helpers: table})
			if err != nil {
				t.Fatal(err)
			}
			a := &interp.Args{Regs: [5]uint64{base + 16}, Regions: []interp.Region{{Data: buf, Writable: true, Bounds: &bounds, Name: "the packet"}}}
			_, err = interp.NewMachine().Run(p, a)
			var f *interp.Fault
			switch {
			case tc.fault < 0 && err != nil:
				t.Fatalf("%v, want no fault", err)
			case tc.fault >= 0 && (!errors.As(err, &f) || !errors.Is(err, interp.ErrMemory) || f.PC != tc.fault || !strings.Contains(err.Error(), tc.msg)):
				t.Fatalf("%v, want a memory fault at %d saying %q", err, tc.fault, tc.msg)
			case err != nil:
				t.Log(err)
			}
		})
	}
}

// TestRun_Scratch: memory a helper lends (Env.Scratch) is readable for
// exactly the bytes lent, while the helper runs.
func TestRun_Scratch(t *testing.T) {
	// Helper 1 lends r1 bytes and calls the callback r2 with their
	// address; the callback reads the byte at r3 of them.
	lend := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		addr, _, err := env.Scratch(a[0])
		if err != nil {
			return 0, err
		}
		return env.Call(a[1], [5]uint64{addr, a[2]})
	}
	for _, tc := range []struct {
		name       string
		size, read int32
		fault      bool
	}{
		{"the last byte", 12, 11, false},
		{"one past", 12, 12, true},
		{"the whole scratch", 512, 511, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The callback's r2 is the helper's third argument.
			prog := parse(t, fmt.Sprintf(`
				r1 = %d
				r3 = %d
				r2 = func(cb) ll
				call 1
				exit
			cb:
				r1 += r2
				r0 = *(u8 *)(r1 + 0)
				exit`, tc.size, tc.read))
			p, err := interp.Load(prog, interp.Options{Helpers: helpers.Table{1: lend}})
			if err != nil {
				t.Fatal(err)
			}
			_, err = interp.NewMachine().Run(p, &interp.Args{})
			if tc.fault != errors.Is(err, interp.ErrMemory) || (!tc.fault && err != nil) {
				t.Fatalf("%v, want a fault: %v", err, tc.fault)
			}
		})
	}
}
