package verifuzz

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/kernel"
)

// envUint reads a knob of the tests from the environment.
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

func requireKernel(tb testing.TB) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("needs the kernel to judge programs: %v", err)
	}
}

// checkReport fails tb on what must not happen: an accepted program that
// escapes in the checked interpreter, runs on which the kernel and the
// interpreter differ or only one fails, and refusals to prepare (the
// runtime decides an unverified program's context accesses as it runs,
// so it has no reason left to refuse one). Programs without a near miss
// that Linux rejects are not failures: a few are safe programs whose
// bounds Linux loses track of (through a chain of ALU operations), which
// the verifier must reject too; TestKernelVerdicts bounds their share.
func checkReport(tb testing.TB, rep *Report) {
	tb.Helper()
	for _, l := range []struct {
		what string
		l    CaseList
	}{
		{"escapes", rep.Escapes},
		{"runs that only one engine could make", rep.RunErrors},
		{"runs on which the kernel and the interpreter differ", rep.Diffs},
		{"runs on which the interpreter and the JIT differ", rep.JITDiffs},
	} {
		if l.l.N > 0 {
			tb.Errorf("%d %s, first %v", l.l.N, l.what, l.l.Cases[0])
		}
	}
	for _, c := range rep.Refused.Cases {
		tb.Errorf("waggle refuses to prepare an accepted program: %v", c)
	}
}

// TestKernelVerdicts generates programs, loads each into the kernel, and
// runs those it accepts in the kernel and in the checked interpreter on
// every input, requiring the same return value, packet and maps and no
// escape (checkReport). It logs the acceptance rate, the kernel's
// rejection messages, the acceptance of each snippet variant and the
// throughput. Knobs:
//
//	WAGGLE_VFUZZ_N     programs (default 10000, 2000 with -short)
//	WAGGLE_VFUZZ_SEED  first seed (default 0)
func TestKernelVerdicts(t *testing.T) {
	requireKernel(t)
	def := uint64(10_000)
	if testing.Short() {
		def = 2_000
	}
	n := envUint(t, "WAGGLE_VFUZZ_N", def)
	seed := envUint(t, "WAGGLE_VFUZZ_SEED", 0)
	rep, err := Verdicts(context.Background(), seed, n, nil, Options{Config: fuzzgen.PtrConfig{MayGoto: mayGoto(t)}})
	if rep != nil {
		t.Logf("\n%s", rep.Summary(40))
		if testing.Verbose() {
			t.Logf("variants:\n%s", rep.VariantSummary())
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if rep.Programs != int(n) {
		t.Fatalf("%d programs of %d", rep.Programs, n)
	}
	checkReport(t, rep)
	if rep.Clean > 0 && rep.CleanRejected.N*100 > rep.Clean {
		t.Errorf("the kernel rejected %d of %d programs without a near miss, first %v", rep.CleanRejected.N, rep.Clean, rep.CleanRejected.Cases[0])
	}
	// The generator aims at about half; a rate far off means its
	// programs or the kernel changed.
	if rate := float64(rep.KernelAccepted) / float64(rep.Programs); n >= 1000 && (rate < 0.35 || rate > 0.8) {
		t.Errorf("the kernel accepted %.1f%% of the programs, want about half", 100*rate)
	}
}

// mayGoto reports whether the kernel loads may_goto (Linux 6.9 and later).
func mayGoto(tb testing.TB) bool {
	tb.Helper()
	k, err := NewKernel()
	if err != nil {
		tb.Fatal(err)
	}
	defer k.Close()
	// A may_goto loop program, checked to hold one.
	for seed := uint64(0); seed < 1000; seed++ {
		p := fuzzgen.GeneratePtr(seed, fuzzgen.PtrConfig{MayGoto: true, MutatePercent: -1, MaxSnippets: 1})
		if len(p.Snippets) == 1 && p.Snippets[0] == "loop/may-goto-unbounded" {
			prog, err := k.Load(p)
			if err != nil {
				tb.Logf("generating without may_goto: the kernel refuses it: %v", err)
				return false
			}
			prog.Close()
			return true
		}
	}
	tb.Fatal("no may_goto program in 1000 seeds")
	return false
}

// FuzzKernelVerdicts drives the generator from the fuzz input
// (fuzzgen.GeneratePtrBytes) and checks the program as TestKernelVerdicts
// does.
func FuzzKernelVerdicts(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("0123456789abcdef0123456789abcdef"))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3})
	requireKernel(f)
	k, err := NewKernel()
	if err != nil {
		f.Fatal(err)
	}
	defer k.Close()
	w := &worker{k: k, in: &Interp{}, max: 1}
	cfg := fuzzgen.PtrConfig{MayGoto: mayGoto(f)}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := fuzzgen.GeneratePtrBytes(b, cfg)
		rep := newReport()
		if err := w.one(rep, p); err != nil {
			t.Fatal(err)
		}
		if rep.Escapes.N+rep.RunErrors.N+rep.Diffs.N+rep.Refused.N > 0 {
			checkReport(t, rep)
			t.Logf("program:\n%s", Disasm(p))
		}
	})
}
