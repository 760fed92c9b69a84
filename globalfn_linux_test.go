package waggle_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/verifier"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/globalfn/globalfn.c -o testdata/globalfn/globalfn.o

const globalFnObj = "testdata/globalfn/globalfn.o"

// globalFnVerdicts are the verdicts of waggle's verifier on the programs
// of globalfn.c, which call global functions: "" for accepted, else a
// substring of the error.
var globalFnVerdicts = map[string]string{
	"ok_calls":            "",
	"ok_dead_call":        "",
	"ok_nonnull":          "",
	"bad_null_to_nonnull": "Caller passes invalid args into func#1 ('deref'): arg#0 is expected to be non-NULL",
	"bad_caller_bounds":   "invalid variable-offset read from stack",
	"bad_maybe_null":      "invalid mem access 'mem_or_null'",
	"bad_too_small":       "Caller passes invalid args into func#1 ('sum'): invalid indirect access to stack",
	"bad_live_call":       "invalid variable-offset read from stack",
	"bad_stale_packet":    "R6 invalid mem access 'scalar'",
}

// TestGlobalFuncs verifies clang-built programs that call global
// functions: each is verified once, on its own, for any argument its
// prototype allows, so a callee that relies on its caller's bounds is
// refused, and one called only from dead code is not verified. As root it
// compares the verdicts, and the processed instructions of the accepted
// programs, with the kernel's.
func TestGlobalFuncs(t *testing.T) {
	coll, err := waggle.LoadCollection(globalFnObj, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	var spec *ebpf.CollectionSpec
	if kernel.Supported() == nil {
		if spec, err = ebpf.LoadCollectionSpec(globalFnObj); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range globalFnVerdicts {
		t.Run(name, func(t *testing.T) {
			p := coll.Programs[name]
			if p == nil {
				t.Fatalf("no program %s", name)
			}
			res, err := p.Verify(context.Background(), nil)
			switch {
			case want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case want != "" && !errors.Is(err, verifier.ErrRejected):
				t.Fatalf("got %v, want a rejection with %q", err, want)
			case want != "" && !strings.Contains(err.Error(), want):
				t.Fatalf("error %q, want %q", err, want)
			}
			if spec == nil {
				return
			}
			accepted, insns, kerr := loadAlone(spec, name)
			if kerr != nil && !isVerifierError(kerr) {
				t.Skipf("the kernel cannot load it: %v", errLine(kerr))
			}
			if accepted != (want == "") {
				t.Fatalf("the kernel's verdict differs: accepted=%v %v", accepted, errLine(kerr))
			}
			// Verified inline at each call, ok_calls would take four
			// times as many for count(); the checkpoints each verifier
			// keeps make a small difference.
			if accepted && insns > 0 {
				t.Logf("processed insns: waggle %d, kernel %d", res.Processed, insns)
				if d := res.Processed - insns; d*10 > insns || -d*10 > insns {
					t.Errorf("waggle processed %d insns, the kernel %d: more than 10%% apart", res.Processed, insns)
				}
			}
		})
	}
}
