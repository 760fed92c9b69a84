//go:build linux

package difftest

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// requireKernel skips the test when this process cannot load and test-run
// XDP programs (not root, no bpf syscall).
func requireKernel(tb testing.TB) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("kernel differential test needs the kernel: %v", err)
	}
}

// mayGotoSupported reports whether the kernel loads may_goto (Linux 6.9 and
// later), so that the generated loops may use it.
func mayGotoSupported(t *testing.T) bool {
	t.Helper()
	p, err := kernel.Load([]isa.Instruction{
		{Op: 0xb7, Dst: isa.R0},         // r0 = 0
		{Op: isa.OpMayGoto, Off: 1},     // may_goto +1
		{Op: 0xb7, Dst: isa.R0, Imm: 1}, // r0 = 1
		{Op: isa.OpExit},
	}, kernel.LoadOptions{Type: kernel.XDP})
	if err != nil {
		t.Logf("generated loops without may_goto: the kernel refuses it: %v", err)
		return false
	}
	p.Close()
	return true
}

// Knobs of TestKernelDiff, from the environment:
//
//	WAGGLE_DIFF_N      programs to compare (default 100000, 2000 with -short)
//	WAGGLE_DIFF_SEED   first fuzzgen seed (default 0); seeds are consecutive
//	WAGGLE_DIFF_NODES  fuzzgen.Config.MaxNodes (default: fuzzgen's)
func envUint(tb testing.TB, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// maxRejectRate is the share of generated programs the verifier may reject
// before the test fails: each rejection is a generator bug.
const maxRejectRate = 0.001

// maxReported bounds the reproducers printed per run.
const maxReported = 3

// TestKernelDiff generates programs with fuzzgen, runs each through
// BPF_PROG_TEST_RUN and through the interpreter in checked and fast mode,
// and requires the same return value and output packet. Differences
// explained by a known kernel bug (see the package documentation) are
// counted and logged, not failed.
func TestKernelDiff(t *testing.T) {
	requireKernel(t)
	def := uint64(100_000)
	if testing.Short() {
		def = 2_000
	}
	n := envUint(t, "WAGGLE_DIFF_N", def)
	seed0 := envUint(t, "WAGGLE_DIFF_SEED", 0)
	cfg := fuzzgen.Config{MaxNodes: int(envUint(t, "WAGGLE_DIFF_NODES", 0)), MayGoto: mayGotoSupported(t)}
	workers := runtime.GOMAXPROCS(0)

	var (
		next      atomic.Uint64
		mu        sync.Mutex
		rejected  int
		firstRej  string
		failures  []*Diff
		known     = map[string]int{}
		knownOps  = map[string]int{}
		firstSeen = map[string]*Diff{}
		cats      = map[string]int{}
		slots     int
		runners   []*Runner
		fatal     error
	)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		r := NewRunner()
		runners = append(runners, r)
		wg.Go(func() {
			localCats := map[string]int{}
			localSlots := 0
			defer func() {
				mu.Lock()
				for c, k := range localCats {
					cats[c] += k
				}
				slots += localSlots
				mu.Unlock()
			}()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				p := fuzzgen.Generate(seed0+i, cfg)
				localSlots += len(p.Insns)
				for pc := p.BodyStart; pc < p.BodyEnd; pc++ {
					localCats[fuzzgen.Category(p.Insns[pc], pc)]++
				}
				res, err := r.Check(p)
				mu.Lock()
				switch {
				case err != nil:
					if fatal == nil {
						fatal = err
					}
				case res.Rejected != nil:
					rejected++
					if firstRej == "" {
						firstRej = fmt.Sprintf("seed %d: %+v\nprogram:\n%s", p.Seed, res.Rejected, disasm(p.Insns, "  "))
					}
				case res.Diff != nil && res.Diff.Known != nil:
					k := res.Diff.Known
					known[k.Name]++
					knownOps[k.Name+": "+k.Op]++
					if firstSeen[k.Name] == nil {
						firstSeen[k.Name] = res.Diff
					}
				case res.Diff != nil:
					failures = append(failures, res.Diff)
				}
				stop := fatal != nil
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	if fatal != nil {
		t.Fatal(fatal)
	}

	var kload, krun, itime time.Duration
	for _, r := range runners {
		kload += r.KernelLoad
		krun += r.KernelRun
		itime += r.InterpTime
	}
	nKnown := 0
	for _, k := range known {
		nKnown += k
	}
	t.Logf("%d programs (seeds %d..%d, %d slots on average) in %v on %d workers: %.0f programs/s",
		n, seed0, seed0+n-1, slots/max(int(n), 1), wall.Round(time.Millisecond), workers, float64(n)/wall.Seconds())
	t.Logf("time per program: kernel %v (load and verify %v, test run %v), interp %v (checked and fast)",
		per(kload+krun, n), per(kload, n), per(krun, n), per(itime, n))
	t.Logf("verifier rejected %d (%.4f%%); differences: %d known kernel bugs, %d unexplained",
		rejected, 100*float64(rejected)/float64(n), nKnown, len(failures))
	for _, name := range slices.Sorted(maps.Keys(knownOps)) {
		t.Logf("  known kernel bug %s: %d", name, knownOps[name])
	}
	var b strings.Builder
	for _, c := range slices.Sorted(maps.Keys(cats)) {
		fmt.Fprintf(&b, "  %-22s %8d\n", c, cats[c])
	}
	t.Logf("body instructions by category:\n%s", b.String())

	r := runners[0]
	for _, name := range slices.Sorted(maps.Keys(firstSeen)) {
		d := firstSeen[name]
		t.Logf("first %s (seed %d), minimised:\n%s", name, d.Seed, r.Reproducer(d))
	}
	if rejected > 0 {
		msg := fmt.Sprintf("the verifier rejected %d of %d generated programs (a generator bug); first:\n%s", rejected, n, firstRej)
		if float64(rejected) > maxRejectRate*float64(n) {
			t.Error(msg)
		} else {
			t.Log(msg)
		}
	}
	slices.SortFunc(failures, func(a, b *Diff) int { return int(a.Seed - b.Seed) })
	for i, d := range failures {
		if i == maxReported {
			t.Errorf("... and %d more differences", len(failures)-maxReported)
			break
		}
		t.Errorf("difference on seed %d (rerun: WAGGLE_DIFF_SEED=%d WAGGLE_DIFF_N=1):\nkernel:  %v\nchecked: %v\nfast:    %v\njit:     %v\nreproducer:\n%s",
			d.Seed, d.Seed, d.Kernel, d.Checked, d.Fast, d.JIT, r.Reproducer(d))
	}
	for _, d := range failures[min(len(failures), maxReported):] {
		t.Logf("also differs: seed %d", d.Seed)
	}
}

func per(d time.Duration, n uint64) time.Duration {
	if n == 0 {
		return 0
	}
	return (d / time.Duration(n)).Round(100 * time.Nanosecond)
}

// TestKernelDiff_ShortPacket runs generated programs on packets shorter
// than they need: both engines must take the prologue's early exit and
// return fuzzgen.ShortReturn with the packet untouched.
func TestKernelDiff_ShortPacket(t *testing.T) {
	requireKernel(t)
	r := NewRunner()
	for seed := range uint64(200) {
		p := fuzzgen.Generate(seed, fuzzgen.Config{})
		p.Packet = p.Packet[:14+int(seed)%(fuzzgen.PacketSize-14)]
		res, err := r.Check(p)
		switch {
		case err != nil:
			t.Fatal(err)
		case res.Rejected != nil:
			t.Fatalf("seed %d: %v", seed, res.Rejected)
		case res.Diff != nil:
			t.Fatalf("seed %d, %d-byte packet: kernel %v, checked %v, fast %v", seed, len(p.Packet), res.Diff.Kernel, res.Diff.Checked, res.Diff.Fast)
		}
		k := r.Kernel(p.Insns, p.Packet)
		if k.Ret != fuzzgen.ShortReturn || !slices.Equal(k.Packet, p.Packet) {
			t.Fatalf("seed %d: kernel %v, want r0 %#x and the packet unchanged", seed, k, fuzzgen.ShortReturn)
		}
	}
}

// FuzzKernelDiff is TestKernelDiff for one program per input: go test
// -fuzz=FuzzKernelDiff ./internal/difftest explores seeds.
func FuzzKernelDiff(f *testing.F) {
	for _, s := range []uint64{0, 1, 2, 42, 1 << 32, 0xdeadbeef} {
		f.Add(s)
	}
	var (
		mu sync.Mutex
		r  *Runner
	)
	f.Fuzz(func(t *testing.T, seed uint64) {
		requireKernel(t)
		mu.Lock()
		defer mu.Unlock()
		if r == nil {
			r = NewRunner()
		}
		p := fuzzgen.Generate(seed, fuzzgen.Config{})
		res, err := r.Check(p)
		switch {
		case err != nil:
			t.Fatal(err)
		case res.Rejected != nil:
			t.Fatalf("seed %d: the verifier rejected a generated program: %+v\n%s", seed, res.Rejected, disasm(p.Insns, "  "))
		case res.Diff != nil && res.Diff.Known != nil:
			t.Logf("seed %d: known kernel bug %s: %s", seed, res.Diff.Known.Name, res.Diff.Known.Evidence)
		case res.Diff != nil:
			d := res.Diff
			t.Fatalf("seed %d differs:\nkernel:  %v\nchecked: %v\nfast:    %v\njit:     %v\nreproducer:\n%s", seed, d.Kernel, d.Checked, d.Fast, d.JIT, r.Reproducer(d))
		}
	})
}

// TestKernelBugs_Linux runs the known kernel-bug programs in the kernel (as
// the conformance suite's kernel plugin does) and logs what Linux returns
// next to RFC 9669's answer. It does not fail on the kernel's answer: that
// is the bug.
func TestKernelBugs_Linux(t *testing.T) {
	requireKernel(t)
	r := NewRunner()
	for _, path := range kernelBugFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".data"), func(t *testing.T) {
			c := mustReadData(t, path)
			got, err := r.KernelConformance(c.Insns, c.Mem)
			if err != nil {
				t.Fatalf("kernel: %+v", err)
			}
			if got == c.Result {
				t.Logf("Linux returns %#x, as RFC 9669 says: the bug does not reproduce on this kernel", got)
			} else {
				t.Logf("Linux returns %#x, RFC 9669 says %#x: known kernel bug reproduced", got, c.Result)
			}
		})
	}
}
