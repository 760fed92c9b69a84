package verifuzz

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/kernel"
)

// TestVerdicts_AcceptAll checks the soundness oracle with a verifier that
// accepts everything: among programs with near misses (a missing bounds
// check, an off-by-one), the checked interpreter must catch escapes, and
// the kernel, when present, must reject what it accepts wrongly.
func TestVerdicts_AcceptAll(t *testing.T) {
	const n = 400
	accept := func(*fuzzgen.PtrProgram) Verdict { return Verdict{Accepted: true} }
	rep, err := Verdicts(context.Background(), 0, n, accept, Options{NoKernel: true, Config: fuzzgen.PtrConfig{MutatePercent: 100}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", rep.Summary(10))
	if rep.Programs != n || rep.Accepted != n || rep.Kernel {
		t.Fatalf("programs %d, accepted %d, kernel %v", rep.Programs, rep.Accepted, rep.Kernel)
	}
	if rep.Runs == 0 || rep.Escapes.N == 0 {
		t.Fatalf("%d runs, %d escapes: accepting every near miss must let some program out of bounds", rep.Runs, rep.Escapes.N)
	}
	for _, c := range rep.Escapes.Cases {
		if c.Mutation == "" {
			t.Errorf("an escape without a near miss: %v", c)
		}
	}
}

func TestVerdicts_RejectAll(t *testing.T) {
	calls := 0
	reject := func(*fuzzgen.PtrProgram) Verdict { calls++; return Verdict{Reason: "no"} }
	rep, err := Verdicts(context.Background(), 7, 50, reject, Options{NoKernel: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 50 || rep.Accepted != 0 || rep.Runs != 0 || rep.Escapes.N != 0 {
		t.Fatalf("calls %d, accepted %d, runs %d, escapes %d", calls, rep.Accepted, rep.Runs, rep.Escapes.N)
	}
}

func TestVerdicts_Nothing(t *testing.T) {
	if _, err := Verdicts(context.Background(), 0, 1, nil, Options{NoKernel: true}); err == nil {
		t.Fatal("no verifier and no kernel: no error")
	}
}

func TestVerdicts_Canceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	accept := func(*fuzzgen.PtrProgram) Verdict { return Verdict{Accepted: true} }
	rep, err := Verdicts(ctx, 0, 1000, accept, Options{NoKernel: true})
	if !errors.Is(err, context.Canceled) || rep.Programs != 0 {
		t.Fatalf("err %v, %d programs", err, rep.Programs)
	}
}

// TestVerdicts_Kernel compares two verifiers with the kernel: one that
// accepts everything must be charged with every kernel rejection as a bug,
// and one that rejects everything with every kernel acceptance as a false
// alarm.
func TestVerdicts_Kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("needs the kernel: %v", err)
	}
	const n = 300
	accept := func(*fuzzgen.PtrProgram) Verdict { return Verdict{Accepted: true} }
	rep, err := Verdicts(context.Background(), 0, n, accept, Options{MaxCases: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if rep.AcceptsKernelRejects.N != n-rep.KernelAccepted || rep.RejectsKernelAccepts.N != 0 {
		t.Fatalf("accept-all: %d bugs, %d false alarms; kernel accepted %d of %d", rep.AcceptsKernelRejects.N, rep.RejectsKernelAccepts.N, rep.KernelAccepted, n)
	}
	for _, c := range rep.AcceptsKernelRejects.Cases {
		if c.Kernel == "" {
			t.Fatalf("a bug without the kernel's reason: %v", c)
		}
	}
	// Known differences are set apart.
	known := func(p *fuzzgen.PtrProgram, reason string) string {
		if strings.Contains(reason, "infinite loop") {
			return "test-difference"
		}
		return ""
	}
	rep2, err := Verdicts(context.Background(), 0, n, accept, Options{Known: known})
	if err != nil {
		t.Fatal(err)
	}
	if rep2.KnownDifferences.N == 0 || rep2.KnownDifferences.N+rep2.AcceptsKernelRejects.N != rep.AcceptsKernelRejects.N {
		t.Fatalf("known %d + bugs %d, want %d in all", rep2.KnownDifferences.N, rep2.AcceptsKernelRejects.N, rep.AcceptsKernelRejects.N)
	}
	reject := func(*fuzzgen.PtrProgram) Verdict { return Verdict{Reason: "no"} }
	rep3, err := Verdicts(context.Background(), 0, n, reject, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep3.RejectsKernelAccepts.N != rep3.KernelAccepted || rep3.AcceptsKernelRejects.N != 0 || rep3.Runs != 0 {
		t.Fatalf("reject-all: %d false alarms of %d accepted, %d bugs, %d runs", rep3.RejectsKernelAccepts.N, rep3.KernelAccepted, rep3.AcceptsKernelRejects.N, rep3.Runs)
	}
}
