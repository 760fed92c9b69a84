package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/maygoto/maygoto.c -o testdata/maygoto/maygoto.o

const mayGotoObj = "testdata/maygoto/maygoto.o"

// mayGotoBounded are packets for maygoto_bounded, whose first byte says how
// many of the following bytes its can_loop loop adds up, and what the
// program makes of them: the iterations, the sum and the verdict.
var mayGotoBounded = []struct {
	data    []byte
	i, sum  uint64
	verdict uint32
}{
	{data: make([]byte, 64), verdict: 2},
	{data: append([]byte{5, 1, 2, 3, 4, 5}, make([]byte, 58)...), i: 5, sum: 15, verdict: 1},
	{data: append([]byte{200, 7}, make([]byte, 62)...), i: 63, sum: 7, verdict: 1}, // ends at the packet's end
}

func lookupU64(t *testing.T, lookup func(key, value any) error, slot uint32) uint64 {
	t.Helper()
	var v uint64
	if err := lookup(slot, &v); err != nil {
		t.Fatalf("out[%d]: %v", slot, err)
	}
	return v
}

// TestMayGoto runs clang's can_loop loops (may_goto, BPF_JCOND) in waggle:
// a loop that only the budget ends runs exactly isa.MaxLoops times in every
// frame (the program, a callee, each bpf_loop callback), and a loop that
// ends by its own condition is not cut short.
func TestMayGoto(t *testing.T) {
	coll, err := waggle.LoadCollection(mayGotoObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	out := func(slot uint32) uint64 { return lookupU64(t, coll.Maps["out"].Lookup, slot) }
	for _, tc := range mayGotoBounded {
		ret, err := coll.Programs["maygoto_bounded"].Run(&waggle.RunOptions{Data: tc.data})
		if err != nil || ret != tc.verdict || out(1) != tc.i || out(2) != tc.sum {
			t.Errorf("bounded, data[0]=%d: %d, %v (i %d, sum %d), want %d (i %d, sum %d)", tc.data[0], ret, err, out(1), out(2), tc.verdict, tc.i, tc.sum)
		}
	}
	for _, name := range []string{"maygoto_exhaust", "maygoto_frames"} {
		if ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil || ret != 2 {
			t.Fatalf("%s: %d, %v; want 2", name, ret, err)
		}
	}
	// out[6] is the caller's: 3 iterations before the call and the rest
	// after it, one budget.
	for slot, want := range []uint64{isa.MaxLoops, 0, 0, isa.MaxLoops, isa.MaxLoops, isa.MaxLoops, isa.MaxLoops, 2} {
		if slot == 1 || slot == 2 {
			continue
		}
		if got := out(uint32(slot)); got != want {
			t.Errorf("out[%d] = %d, want %d", slot, got, want)
		}
	}
}

// haveMayGoto skips unless the running kernel's verifier takes may_goto
// (Linux 6.9): a tiny XDP program that returns 2 while the budget lasts.
func haveMayGoto(t *testing.T) {
	t.Helper()
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	if err := kernel.MayGotoSupported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
}

// mayGotoBudget checks a count of can_loop iterations that only the budget
// ended, as the kernel reported it, and names the budget the kernel used.
// Linux 6.9 to 6.12 (and later kernels whose JIT cannot read the clock)
// allow exactly isa.MaxLoops. x86-64 and arm64 since 6.15 allow 250 ms,
// counting down from 0xffff and refilling while time is left (the first
// refill always), so the count is a multiple of 0xffff, at least two.
func mayGotoBudget(t *testing.T, what string, n uint64) string {
	t.Helper()
	const refill = 0xffff
	switch {
	case n == isa.MaxLoops:
		return "countdown"
	case n%refill == 0 && n >= 2*refill:
		return "timed"
	}
	t.Errorf("kernel: %s ran %d iterations: neither BPF_MAX_LOOPS (%d) nor a multiple of 0xffff", what, n, isa.MaxLoops)
	return ""
}

// TestMayGoto_kernel runs the programs of TestMayGoto in Linux through
// BPF_PROG_TEST_RUN: verdicts and the results of loops that end by their
// own condition must equal waggle's. Loops that only the budget ends are
// checked against the kernel's rule (mayGotoBudget): where the kernel
// counts BPF_MAX_LOOPS, waggle must equal it exactly; where it times the
// loop (x86-64 since 6.15), it is not deterministic and waggle keeps the
// count.
func TestMayGoto_kernel(t *testing.T) {
	haveMayGoto(t)
	coll, err := waggle.LoadCollection(mayGotoObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	kc := kernelCollection(t, mayGotoObj, "maygoto_exhaust", "maygoto_bounded", "maygoto_frames")
	wout := func(slot uint32) uint64 { return lookupU64(t, coll.Maps["out"].Lookup, slot) }
	kout := func(slot uint32) uint64 { return lookupU64(t, kc.Maps["out"].Lookup, slot) }
	run := func(name string, data []byte) (uint32, uint32) {
		t.Helper()
		ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: data})
		if err != nil {
			t.Fatalf("waggle %s: %v", name, err)
		}
		kret, err := kc.Programs[name].Run(&ebpf.RunOptions{Data: data})
		if err != nil {
			t.Fatalf("kernel %s: %v", name, err)
		}
		return ret, kret
	}
	for _, tc := range mayGotoBounded {
		ret, kret := run("maygoto_bounded", tc.data)
		if ret != kret || wout(1) != kout(1) || wout(2) != kout(2) {
			t.Errorf("bounded, data[0]=%d: waggle %d (i %d, sum %d), kernel %d (i %d, sum %d)", tc.data[0], ret, wout(1), wout(2), kret, kout(1), kout(2))
		}
	}
	for _, name := range []string{"maygoto_exhaust", "maygoto_frames"} {
		if ret, kret := run(name, make([]byte, 64)); ret != kret {
			t.Errorf("%s: waggle %d, kernel %d", name, ret, kret)
		}
	}
	if k := kout(7); k != wout(7) {
		t.Errorf("bpf_loop returned %d in the kernel, %d in waggle", k, wout(7))
	}
	budgets := map[string]int{}
	for slot, what := range []string{0: "the program's loop", 3: "the callee", 4: "the first callback", 5: "the second callback", 6: "the caller after the call"} {
		if what == "" {
			continue
		}
		n := kout(uint32(slot))
		b := mayGotoBudget(t, what, n)
		budgets[b]++
		t.Logf("kernel: %s: %d iterations (%s budget); waggle %d", what, n, b, wout(uint32(slot)))
		if b == "countdown" && wout(uint32(slot)) != n {
			t.Errorf("%s: waggle %d iterations, kernel %d", what, wout(uint32(slot)), n)
		}
	}
	if len(budgets) != 1 {
		t.Errorf("the kernel used different budgets in one program: %v", budgets)
	}
}
