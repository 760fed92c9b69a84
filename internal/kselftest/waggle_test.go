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
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var log strings.Builder
		res, err := p.Verify(ctx, &verifier.Options{Unprivileged: c.Mode == Unprivileged, Log: &log})
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

// testWaggle measures waggle's verifier with Compare: against the
// selftests' expected verdicts and, as root, against this kernel's. It
// reports the agreement; it fails only when the verifier does not finish
// within its context or returns an error that is neither a verdict nor a
// program waggle does not prepare.
func testWaggle(t *testing.T, s *Suite, cases []Case) {
	var kernel func(Case) Verdict
	if isRoot() {
		kernel = s.Kernel
	}
	rep := Compare(cases, waggleVerifier(s), kernel)
	var b strings.Builder
	rep.Write(&b)
	t.Logf("waggle's verifier against the selftests (%d cases, took %v):\n%s", len(cases), rep.Took.Round(time.Millisecond), b.String())
	for _, r := range rep.Results {
		if r.Verdict.Err != nil {
			t.Errorf("%s: %v", r.Case.ID(), r.Verdict.Err)
		}
	}
}
