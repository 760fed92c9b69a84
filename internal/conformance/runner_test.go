package conformance

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	enginelist "github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/isa"
)

var engines = func() []Engine {
	var out []Engine
	for _, e := range enginelist.All() {
		out = append(out, On(e))
	}
	return out
}()

// TestSuite is the project's rule (testdata/conformance/README.md §6): every
// file of the suite passes on every engine, with every CPU version and group.
func TestRun_suite(t *testing.T) {
	files, err := Files("../../testdata/conformance/tests")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 313 {
		t.Errorf("%d test files, the suite has 313", len(files))
	}
	sum := RunFiles(files, engines, func(r Result) {
		if r.Outcome != Pass {
			t.Error(r)
		}
	})
	t.Log(sum)
	if want := len(files) * len(engines); sum.Passed != want {
		t.Errorf("%d of %d runs passed", sum.Passed, want)
	}
}

// TestKernelBugCases runs the programs on which Linux 6.18 contradicts RFC
// 9669: waggle gives the RFC's answer.
func TestRun_kernelBugs(t *testing.T) {
	files, err := Files("../../testdata/kernel-bugs")
	if err != nil {
		t.Fatal(err)
	}
	RunFiles(files, engines, func(r Result) {
		if r.Outcome != Pass {
			t.Error(r)
		}
	})
}

// TestNegative checks the runner on the upstream project's own negative
// inputs: the 45 unused-* programs (a reserved field set) must be rejected
// when loaded, and the runner must report the broken cases as such.
func TestRun_negative(t *testing.T) {
	files, err := Files("../../testdata/conformance/negative")
	if err != nil {
		t.Fatal(err)
	}
	unused := 0
	want := map[string]Outcome{
		"empty":                            Skip,
		"incorrect_return_value_high_bits": Fail,
		"invalid_register":                 Pass, // "-- error": the assembler refuses r11+
		"invalid_unknown_directive":        Skip,
		"error":                            Fail, // "or %r0, %r10" is valid; the file expects an error
	}
	RunFiles(files, engines, func(r Result) {
		name := strings.TrimSuffix(filepath.Base(r.Test), ".data")
		if strings.HasPrefix(name, "unused-") {
			unused++
			var verr *isa.Error
			if r.Outcome != Pass || !errors.As(r.Err, &verr) {
				t.Errorf("%s: want a load-time rejection by isa, got %v", r.Test, r)
			}
			return
		}
		t.Logf("%v (%v)", r, r.Err)
		if w, ok := want[name]; ok && r.Outcome != w {
			t.Errorf("%s: %s, want %s", r.Test, r.Outcome, w)
		}
	})
	if unused != 45*len(engines) {
		t.Errorf("%d unused-* runs, want %d", unused, 45*len(engines))
	}
}
