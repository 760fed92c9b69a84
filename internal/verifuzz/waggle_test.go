package verifuzz

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
)

// findVariant returns the first one-snippet program from seed 0 on whose
// snippet is variant.
func findVariant(tb testing.TB, variant string, bad bool) *fuzzgen.PtrProgram {
	tb.Helper()
	mut := -1
	if bad {
		mut = 100
	}
	for seed := range uint64(20_000) {
		p := fuzzgen.GeneratePtr(seed, fuzzgen.PtrConfig{MaxSnippets: 1, MutatePercent: mut})
		if p.Snippets[0] == variant {
			return p
		}
	}
	tb.Fatalf("no program with %s in 20,000 seeds", variant)
	return nil
}

// TestWaggle checks the adapter of waggle's verifier on programs whose
// verdict is not in doubt: a packet load behind a right bounds check, and
// the same without the check.
func TestWaggle(t *testing.T) {
	verify := Waggle(context.Background(), nil, time.Minute)
	if v := verify(findVariant(t, "pkt/jgt", false)); !v.Accepted {
		t.Errorf("pkt/jgt rejected: %s", v.Reason)
	}
	if v := verify(findVariant(t, "pkt/no-check", true)); v.Accepted || v.Reason == "" {
		t.Errorf("pkt/no-check: %+v", v)
	}
}

// TestWaggleVerifier measures waggle's verifier with generated programs
// and fails on escapes: programs it accepts that access memory out of
// bounds in the checked interpreter; and, on the default slice (seeds 0
// to 2,000; 500 with -short), on any program it accepts that the kernel
// refuses or refuses that the kernel accepts. It logs the agreement with
// the kernel's verdicts (when this process can load programs), the
// disagreements by kind, and the slow verifications. Knobs as
// TestKernelVerdicts's; WAGGLE_VFUZZ_WAGGLE=1 with WAGGLE_VFUZZ_N and
// WAGGLE_VFUZZ_SEED runs a larger measurement, which fails on escapes
// only (1,000,000 programs take about 25 minutes here).
func TestWaggleVerifier(t *testing.T) {
	slice := os.Getenv("WAGGLE_VFUZZ_WAGGLE") == ""
	def := uint64(2_000)
	if testing.Short() {
		def = 500
	}
	n := envUint(t, "WAGGLE_VFUZZ_N", def)
	seed := envUint(t, "WAGGLE_VFUZZ_SEED", 0)
	rep, err := Verdicts(context.Background(), seed, n, Waggle(context.Background(), nil, 10*time.Second), Options{MaxCases: 10, Known: knownImprecise, JIT: true})
	if rep != nil {
		t.Logf("\n%s", rep.Summary(20))
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Escapes.N > 0 {
		t.Errorf("%d escapes, first %v", rep.Escapes.N, rep.Escapes.Cases[0])
	}
	if rep.JITDiffs.N > 0 {
		t.Errorf("%d runs differ between the interpreter and the JIT, first %v", rep.JITDiffs.N, rep.JITDiffs.Cases[0])
	}
	if slice {
		if rep.AcceptsKernelRejects.N > 0 {
			t.Errorf("waggle's verifier accepts %d programs the kernel refuses, first %v", rep.AcceptsKernelRejects.N, rep.AcceptsKernelRejects.Cases[0])
		}
		if rep.RejectsKernelAccepts.N > 0 {
			t.Errorf("waggle's verifier refuses %d programs the kernel accepts, first %v", rep.RejectsKernelAccepts.N, rep.RejectsKernelAccepts.Cases[0])
		}
	}
}

// kernelImprecise are generated programs Linux refuses only because its
// verifier explores a branch no value can take, and that waggle's
// verifier accepts. Each adds a constant to a register known to be at
// least some bound, ORs in low bits, and compares with a bound the sum
// cannot be below or equal to: 64 or more with bit 1 set is at least 66,
// so "if r4 > 64" is always taken. Linux keeps the bounds [64, 64] and
// the tnum (bit 1 set) side by side on the fall-through without noticing
// that no value fits both (its reg_bounds_sync then calls the register
// the tnum's lowest value, 66), explores the dead side and refuses the
// out-of-bounds access there. waggle's verifier finds the refined value
// empty and drops that side, as a path no run can take. This is Linux
// 6.18's precision, not a rule programs rely on: the difference is kept,
// not copied. The checked interpreter runs every one of them without an
// out-of-bounds access.
var kernelImprecise = map[uint64]string{
	2876288: "dead branch: (r7 + 13) | 7 is at least 15, so r4 > 14 always holds; the kernel explores the other side with r4 = 15",
	3331638: "dead branch: r4 >= 64 with bit 1 set is at least 66, so r4 > 64 always holds; the kernel explores the other side with r4 = 66",
	3694459: "dead branch: (r7 + 8) | 6 is at least 14, so r4 > 8 always holds; the kernel explores the other side with r4 = 14",
	9128694: "dead branch: (w7 + 8) | 6 is at least 14, so r4 s> 8 always holds; the kernel explores the other side and refuses r8 + r4 there",
}

// knownImprecise is Options.Known for kernelImprecise.
func knownImprecise(p *fuzzgen.PtrProgram, _ string) string {
	if why, ok := kernelImprecise[p.Seed]; ok {
		return "kernel imprecision: " + why
	}
	return ""
}

// TestWaggleVerifier_kernelImprecise replays kernelImprecise: waggle's
// verifier accepts each program, the checked interpreter runs it on all
// its inputs without an escape and, where the kernel can be asked, the
// kernel still refuses it (else the entry is stale: remove it).
func TestWaggleVerifier_kernelImprecise(t *testing.T) {
	for seed, why := range kernelImprecise {
		rep, err := Verdicts(context.Background(), seed, 1, Waggle(context.Background(), nil, 10*time.Second), Options{Workers: 1, Known: knownImprecise})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if rep.Accepted != 1 {
			t.Errorf("seed %d (%s): waggle's verifier refuses it", seed, why)
		}
		if rep.Escapes.N > 0 || rep.RunErrors.N > 0 || rep.Runs == 0 {
			t.Errorf("seed %d: %d runs, %d escapes, %d run errors", seed, rep.Runs, rep.Escapes.N, rep.RunErrors.N)
		}
		if rep.Kernel && rep.KnownDifferences.N != 1 {
			t.Errorf("seed %d: the kernel accepts it now (%d accepted): remove it from kernelImprecise", seed, rep.KernelAccepted)
		}
	}
}
