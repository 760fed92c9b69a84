package helpers_test

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// run assembles src and runs it in checked mode with the generic helpers,
// r1 pointing to data, and returns r0.
func run(t *testing.T, src string, data []byte, st *helpers.State) uint64 {
	t.Helper()
	r0, err := runErr(t, src, data, st)
	if err != nil {
		t.Fatal(err)
	}
	return r0
}

// runErr is run returning the run's error.
func runErr(t *testing.T, src string, data []byte, st *helpers.State) (uint64, error) {
	t.Helper()
	prog, err := asm.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	p, err := checkedEngine(t).Load(prog, engine.Options{Helpers: helpers.Generic().Table(), Budgeted: true})
	if err != nil {
		t.Fatal(err)
	}
	a := &engine.Args{Regs: [5]uint64{mem.Addr(data), uint64(len(data))}, Regions: []engine.Region{{Data: data, Writable: true}}, State: st, Budget: 1 << 20}
	return p.Engine().NewMachine().Run(p, a)
}

// cstr lays out strings NUL-terminated at fixed 32-byte slots of a buffer.
func cstr(strs ...string) []byte {
	b := mem.Aligned(32 * (len(strs) + 2))
	for i, s := range strs {
		copy(b[32*i:], s)
	}
	return b
}

func TestTracePrintk(t *testing.T) {
	// Arguments replaced by the address of the test's string or address.
	const strArg, ipArg = 1001, 1002
	for _, tc := range []struct {
		name, format string
		args         [3]int64
		want         string
		ret          int64
	}{
		{"plain", "hello\n", [3]int64{}, "hello\n", 6},
		{"ints", "%d %u %x", [3]int64{-5, -5, 255}, "-5 4294967291 ff", 16},
		{"long", "%ld %lld %llx", [3]int64{-5, 1 << 40, -1}, "-5 1099511627776 ffffffffffffffff", 33},
		{"width", "[%5d|%-4x|%05u]", [3]int64{42, 10, 7}, "[   42|a   |00007]", 18},
		{"plus and space", "%+d % d", [3]int64{3, 4}, "+3  4", 5},
		{"percent", "100%% %c", [3]int64{'x'}, "100% x", 6},
		{"string", "name=%s!", [3]int64{strArg}, "name=waggle!", 12},
		{"ipv4", "%pI4 %pi4", [3]int64{ipArg, ipArg}, "192.168.0.1 192.168.000.001", 27},
		{"too many conversions", "%d %d %d %d", [3]int64{}, "", -22},
		{"unknown conversion", "%f", [3]int64{}, "", -22},
		{"%s followed by a letter", "%sx", [3]int64{strArg}, "", -22},
		{"control byte", "a\x01b", [3]int64{}, "", -22},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := cstr(tc.format, "waggle", "\xc0\xa8\x00\x01")
			for i, v := range tc.args {
				switch v {
				case strArg:
					tc.args[i] = int64(mem.Addr(data) + 32)
				case ipArg:
					tc.args[i] = int64(mem.Addr(data) + 64)
				}
			}
			binary.LittleEndian.PutUint64(data[96:], uint64(tc.args[0]))
			binary.LittleEndian.PutUint64(data[104:], uint64(tc.args[1]))
			binary.LittleEndian.PutUint64(data[112:], uint64(tc.args[2]))
			var out bytes.Buffer
			got := run(t, `
				r6 = r1
				r2 = 32
				r3 = *(u64 *)(r6 + 96)
				r4 = *(u64 *)(r6 + 104)
				r5 = *(u64 *)(r6 + 112)
				call 6
				exit`, data, &helpers.State{Trace: &out})
			if int64(got) != tc.ret || out.String() != tc.want {
				t.Errorf("returned %d and wrote %q; want %d and %q", int64(got), out.String(), tc.ret, tc.want)
			}
		})
	}
}

func TestSnprintf(t *testing.T) {
	data := cstr("x=%d y=%s", "abc")
	binary.LittleEndian.PutUint64(data[64:], 42)
	binary.LittleEndian.PutUint64(data[72:], mem.Addr(data)+32)
	// snprintf(out = data+96, 8, fmt = data, args = data+64, 16)
	got := run(t, `
		r6 = r1
		r1 += 96
		r2 = 8
		r3 = r6
		r4 = r6
		r4 += 64
		r5 = 16
		call 165
		exit`, data, nil)
	if got != 11 || string(data[96:104]) != "x=42 y=\x00" {
		t.Fatalf("returned %d, wrote %q; want 11 (10 bytes and the NUL) and the text cut to 7 bytes plus NUL", got, data[96:104])
	}
	// A data size that is not a multiple of 8 is -EINVAL.
	got = run(t, `r6 = r1
		r1 += 96
		r2 = 8
		r3 = r6
		r4 = r6
		r5 = 12
		call 165
		exit`, data, nil)
	if int64(got) != -22 {
		t.Fatalf("data_len 12: %d, want -EINVAL", int64(got))
	}
}

func TestStrtol(t *testing.T) {
	for _, tc := range []struct {
		in     string
		flags  uint64
		signed bool
		ret    int64
		res    int64
	}{
		{"  -42xyz", 0, true, 5, -42},
		{"0x1f", 0, true, 4, 31},
		{"0x1f", 16, true, 4, 31},
		{"017", 0, true, 3, 15},
		{"017", 10, true, 3, 17},
		{"9223372036854775807", 10, true, 19, 9223372036854775807},
		{"9223372036854775808", 10, true, -34, 0},
		{"-9223372036854775808", 10, true, 20, -9223372036854775808},
		{"18446744073709551616", 10, false, -34, 0},
		{"-1", 10, false, -22, 0},
		{"abc", 10, true, -22, 0},
		{"12", 2, true, -22, 0},
		{"   ", 0, true, -22, 0},
	} {
		id := 106
		if tc.signed {
			id = 105
		}
		data := mem.Aligned(64)
		copy(data[8:], tc.in)
		binary.LittleEndian.PutUint64(data, 0xdead)
		got := run(t, asmf(`
			r4 = r1
			r1 += 8
			r2 = %d
			r3 = %d
			call %d
			exit`, len(tc.in), tc.flags, id), data, nil)
		res := int64(binary.LittleEndian.Uint64(data))
		if int64(got) != tc.ret || res != tc.res {
			t.Errorf("strto(%q, %d): returned %d, res %d; want %d, %d", tc.in, tc.flags, int64(got), res, tc.ret, tc.res)
		}
	}
}

func TestStrncmp(t *testing.T) {
	for _, tc := range []struct {
		s1, s2 string
		n      int
		want   int64
	}{
		{"abc", "abc", 3, 0},
		{"abd", "abc", 3, 1},
		{"abb", "abc", 3, -1},
		{"abcdef", "abc", 3, 0},
		{"ab\x00zz", "ab", 5, 0},
		{"ab", "abc", 2, 0},
		{"abc", "abcd", 4, -1},
	} {
		data := cstr(tc.s1, tc.s2)
		got := run(t, asmf(`
			r3 = r1
			r3 += 32
			r2 = %d
			call 182
			exit`, tc.n), data, nil)
		if int64(got) != tc.want {
			t.Errorf("strncmp(%q, %q, %d) = %d, want %d", tc.s1, tc.s2, tc.n, int64(got), tc.want)
		}
	}
}

func TestLoop(t *testing.T) {
	data := mem.Aligned(8)
	src := `
		r1 = %d
		r2 = func(cb) ll
		r3 = r10
		r3 += -8
		r4 = %d
		r5 = 0
		*(u64 *)(r10 - 8) = r5
		call 181
		r1 = *(u64 *)(r10 - 8)
		r0 <<= 32
		r0 |= r1
		exit
	cb:
		r3 = *(u64 *)(r2 + 0)
		r3 += r1
		*(u64 *)(r2 + 0) = r3
		r0 = 0
		if r1 != 3 goto +1
		r0 = 1
		exit`
	for _, tc := range []struct {
		n, flags   int
		iterations int64
		sum        uint64
	}{
		{2, 0, 2, 0 + 1},
		{10, 0, 4, 0 + 1 + 2 + 3}, // the callback stops at i == 3
		{0, 0, 0, 0},
		{5, 1, -22, 0},
		{1<<23 + 1, 0, -7, 0},
	} {
		got := run(t, asmf(src, tc.n, tc.flags), data, nil)
		if int64(int32(got>>32)) != tc.iterations || uint64(uint32(got)) != tc.sum {
			t.Errorf("bpf_loop(%d, flags %d): %d iterations, sum %d; want %d, %d", tc.n, tc.flags, int32(got>>32), uint32(got), tc.iterations, tc.sum)
		}
	}
}

func TestPrandomAndCPU(t *testing.T) {
	st := &helpers.State{CPU: 3, Rand: 1}
	a := run(t, "call 7\nexit", nil, st)
	b := run(t, "call 7\nexit", nil, st)
	if a == b || a>>32 != 0 {
		t.Errorf("two draws %#x, %#x: want different 32-bit values", a, b)
	}
	if got := run(t, "call 8\nexit", nil, st); got != 3 {
		t.Errorf("smp_processor_id %d, want 3", got)
	}
}

// TestSpinLock: a lock and its unlock work, the lock's state lives in the
// table (the word in the value is left alone), and what Linux's verifier
// refuses is an error, never a spin: a second lock, an unlock without a
// lock or of another lock, an unaligned lock, a helper call or an exit
// while holding a lock.
func TestSpinLock(t *testing.T) {
	for _, tc := range []struct {
		name, src, err string
		want           uint64
	}{
		{"lock and unlock", `
			r6 = r1
			call 93
			r0 = *(u32 *)(r6 + 0)
			r1 = r6
			call 94
			r0 = 7
			exit`, "", 7},
		{"the word in the value is left alone", `
			r6 = r1
			call 93
			r7 = *(u32 *)(r6 + 0)
			r1 = r6
			call 94
			r0 = r7
			exit`, "", 0},
		{"twice", `
			r6 = r1
			call 93
			r1 = r6
			call 93
			exit`, "a second bpf_spin_lock", 0},
		{"two locks", `
			r6 = r1
			call 93
			r1 = r6
			r1 += 8
			call 93
			exit`, "a second bpf_spin_lock", 0},
		{"unlock without lock", `
			call 94
			exit`, "without a bpf_spin_lock held", 0},
		{"unlock of another lock", `
			r6 = r1
			call 93
			r1 = r6
			r1 += 8
			call 94
			exit`, "while the run holds the lock", 0},
		{"unaligned", `
			r1 += 2
			call 93
			exit`, "not 4-byte aligned", 0},
		{"outside memory", `
			r1 = 64
			call 93
			exit`, "bpf_spin_lock", 0},
		{"held at exit", `
			call 93
			r0 = 0
			exit`, "bpf_spin_unlock is missing", 0},
		{"helper call while held", `
			call 93
			call 7
			exit`, "while the run holds the bpf_spin_lock", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := mem.Aligned(16)
			st := &helpers.State{Locks: &maps.SpinLocks{}}
			got, err := runErr(t, tc.src, data, st)
			if tc.err == "" {
				if err != nil || got != tc.want {
					t.Fatalf("got %d, %v; want %d", got, err, tc.want)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %d, %v; want an error with %q", got, err, tc.err)
			}
			if st.Release(); st.Held != 0 {
				t.Fatal("Release left the lock held")
			}
			// The lock is free for the next run whatever happened.
			if got, err := runErr(t, "r6 = r1\ncall 93\nr1 = r6\ncall 94\nr0 = 1\nexit", data, st); err != nil || got != 1 {
				t.Fatalf("next run: %d, %v", got, err)
			}
		})
	}
}

// TestSpinLock_contention: runs on many goroutines increment a counter
// under one lock, and no increment is lost.
func TestSpinLock_contention(t *testing.T) {
	const goroutines, rounds = 8, 500
	data := mem.Aligned(16)
	locks := &maps.SpinLocks{}
	prog, err := asm.Parse(`
		r6 = r1
		call 93
		r0 = *(u64 *)(r6 + 8)
		r0 += 1
		*(u64 *)(r6 + 8) = r0
		r1 = r6
		call 94
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	p, err := checkedEngine(t).Load(prog, engine.Options{Helpers: helpers.Generic().Table()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			m := p.Engine().NewMachine()
			for range rounds {
				st := &helpers.State{Locks: locks}
				a := &engine.Args{Regs: [5]uint64{mem.Addr(data)}, Regions: []engine.Region{{Data: data, Writable: true}}, State: st}
				if _, err := m.Run(p, a); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got := binary.LittleEndian.Uint64(data[8:]); got != goroutines*rounds {
		t.Fatalf("counter %d, want %d", got, goroutines*rounds)
	}
}

func TestNames(t *testing.T) {
	if helpers.Name(1) != "map_lookup_elem" || helpers.Name(181) != "loop" || helpers.Name(0) != "" || helpers.Name(100000) != "" {
		t.Error("Name")
	}
	if id, ok := helpers.ID("bpf_ringbuf_output"); !ok || id != 130 {
		t.Errorf("ID(bpf_ringbuf_output) = %d, %v", id, ok)
	}
	for _, d := range helpers.Generic() {
		if helpers.Name(d.ID) != d.Name {
			t.Errorf("helper %d is %q in the kernel, %q here", d.ID, helpers.Name(d.ID), d.Name)
		}
	}
}

// checkedEngine is the engine helper tests run programs on: the checked
// interpreter, through the engine seam.
func checkedEngine(tb testing.TB) engine.Engine {
	tb.Helper()
	e, err := engines.ByName(engines.Interp)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
