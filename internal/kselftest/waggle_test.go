package kselftest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// waggleVerifier is waggle's verifier as Compare runs it: each object is
// loaded once as a waggle Collection (a raw case as RawSpec gives it), each
// case's program verified in its mode. Objects and programs waggle does
// not load are skipped with the reason.
func waggleVerifier(s *Suite) func(Case) Verdict {
	type loaded struct {
		coll *waggle.Collection
		err  error
	}
	colls := map[string]loaded{}
	// Target host, the kernel the verdicts are compared with; probing it
	// needs root, and without root upstream Linux's rules stand in.
	target := progtype.TargetHost
	if !isRoot() {
		target = progtype.TargetLinux
	}
	return func(c Case) Verdict {
		program := c.Program
		l, ok := colls[c.Object]
		if c.Insns != nil {
			program, ok = "test", false
		}
		if !ok {
			var spec *ebpf.CollectionSpec
			var err error
			if c.Insns != nil {
				spec, err = RawSpec(c)
			} else {
				spec, err = s.Spec(c)
			}
			if err == nil {
				l.coll, l.err = waggle.NewCollection(spec, nil)
			} else {
				l.err = err
			}
			if c.Insns == nil {
				colls[c.Object] = l
			}
		}
		if l.err != nil {
			if c.Insns != nil {
				// Raw tests: the loader's error names the instruction.
				return Verdict{Skip: "waggle does not load the test: " + l.err.Error()}
			}
			return Verdict{Skip: "waggle does not load the object: " + l.err.Error()}
		}
		p := l.coll.Programs[program]
		if p == nil {
			return Verdict{Skip: "waggle has no program " + c.Program}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		var log strings.Builder
		// The log level the kernel gets: the case's, with the stats.
		level := int(c.LogLevel) | 4
		if c.LogLevel == 0 {
			level = 2 | 4
		}
		opts := &verifier.Options{Unprivileged: c.Mode == Unprivileged, NoPerfmon: c.WithoutPerfmon(), Log: &log, LogLevel: level, Target: target,
			// BPF_F_ANY_ALIGNMENT wins over BPF_F_STRICT_ALIGNMENT, as
			// in bpf_check.
			StrictAlignment: c.Flags&FlagStrictAlignment != 0 && c.Flags&FlagAnyAlignment == 0}
		res, err := p.Verify(ctx, opts)
		switch {
		case err == nil:
			return Verdict{Accepted: true, Log: log.String(), Processed: res.Processed, Time: res.Duration}
		case errors.Is(err, verifier.ErrRejected):
			return Verdict{Log: log.String() + err.Error() + "\n"}
		case ctx.Err() != nil:
			return Verdict{Err: fmt.Errorf("waggle's verifier: %w", err)}
		}
		var pe *waggle.PrepareError
		if errors.As(err, &pe) {
			// Without the program's name, so that the report groups
			// the skips by reason.
			return Verdict{Skip: "waggle does not prepare the program: " + pe.Err.Error()}
		}
		return Verdict{Err: err}
	}
}

// knownAccepts are the cases waggle's verifier accepts and Linux's refuses
// (privileged), with what waggle lacks: each is a gap to close, not a
// difference to keep. A case accepted against the kernel's refusal that
// is not listed fails the test, and so does (on a full run) a listed one
// that no longer is.
var knownAccepts = map[string]string{}

// testWaggle measures waggle's verifier with Compare: against the
// selftests' expected verdicts and, as root, against this kernel's. It
// fails when the verifier does not finish within its context or returns
// an error that is neither a verdict nor a program waggle does not
// prepare; when it accepts a program the kernel refuses that knownAccepts
// does not list; and, on a full run, when it agrees with the kernel on
// fewer than 95% of the cases both decide.
func testWaggle(t *testing.T, s *Suite, cases []Case) {
	var kernel func(Case) Verdict
	if isRoot() {
		kernel = s.Kernel
	}
	rep := Compare(cases, waggleVerifier(s), kernel)
	var b strings.Builder
	rep.Write(&b)
	t.Logf("waggle's verifier against the selftests (%d cases, took %v):\n%s", len(cases), rep.Took.Round(time.Millisecond), b.String())
	seen := map[string]bool{}
	for _, r := range rep.Results {
		if r.Verdict.Err != nil {
			t.Errorf("%s: %v", r.Case.ID(), r.Verdict.Err)
		}
		if r.KernelCompared() && r.Verdict.Accepted && !r.Kernel.Accepted {
			id := r.Case.ID()
			if why, ok := knownAccepts[id]; ok {
				seen[id] = true
				t.Logf("%s: known gap, accepted where the kernel refuses: %s", id, why)
				continue
			}
			t.Errorf("%s: waggle's verifier accepts it, the kernel refuses it: %s", id, r.Kernel.Reason())
		}
	}
	if kernel == nil || testing.Short() {
		return
	}
	for id := range knownAccepts {
		if !seen[id] {
			t.Errorf("%s is listed in knownAccepts but the kernel's and waggle's verdicts no longer differ that way: remove it", id)
		}
	}
	if tot := rep.Total; tot.KernelCompared > 0 && tot.AgreeKernel*100 < 95*tot.KernelCompared {
		t.Errorf("waggle's verifier agrees with the kernel on %d of %d cases (%.1f%%), below 95%%", tot.AgreeKernel, tot.KernelCompared, 100*float64(tot.AgreeKernel)/float64(tot.KernelCompared))
	}
}
