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
	rep, err := Verdicts(context.Background(), seed, n, Waggle(context.Background(), nil, 10*time.Second), Options{MaxCases: 10})
	if rep != nil {
		t.Logf("\n%s", rep.Summary(20))
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Escapes.N > 0 {
		t.Errorf("%d escapes, first %v", rep.Escapes.N, rep.Escapes.Cases[0])
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
