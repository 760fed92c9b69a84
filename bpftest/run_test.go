package bpftest_test

import (
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/bpftest"
	"github.com/waggle-bpf/waggle/kernel"
)

// engines returns the engines to compare: user space, and the kernel when
// this process can use it.
func engines(t *testing.T) []bpftest.Engine {
	es := []bpftest.Engine{bpftest.Interp{}}
	if err := kernel.Supported(); err != nil {
		t.Logf("kernel engine skipped: %v", err)
	} else {
		es = append(es, bpftest.Kernel{})
	}
	return es
}

// TestRun_convention runs testdata/convention.o, whose tests each check one
// rule of the harness or report one kind of outcome, and expects the same
// cases on every engine.
func TestRun_convention(t *testing.T) {
	obj, err := bpftest.Open("testdata/convention.o")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tail_unreachable"}; !reflect.DeepEqual(obj.Dropped, want) {
		t.Errorf("dropped %v, want %v", obj.Dropped, want)
	}
	if want := []bpftest.Tail{{Program: "tail_set_cb", Map: "jumps", Slot: 1}}; !reflect.DeepEqual(obj.Tails, want) {
		t.Errorf("tails %+v, want %+v", obj.Tails, want)
	}
	want := []string{
		"PASS a_state_write",
		"PASS b_state_read",
		"PASS c_records/passes [testdata/convention.c:87: suite message 7]",
		"FAIL c_records/fails [testdata/convention.c:91: negative -5 | testdata/convention.c:92: wide 123456789abc]",
		"SKIP d_skip [testdata/convention.c:102: feature 3 is off]",
		"PASS e_no_setup",
		"PASS f_verdict",
		"PASS g_ctx",
		"ERROR h_bad_status [check returned 7, want 100 (error), 101 (pass), 102 (fail) or 103 (skip)]",
		"ERROR i_error",
		"PASS j_cleared",
	}
	for _, e := range engines(t) {
		t.Run(e.Name(), func(t *testing.T) {
			results := bpftest.Run(obj, bpftest.Options{Engine: e})
			var got []string
			var sum bpftest.Summary
			for _, r := range results {
				sum.Add(r)
				for _, c := range r.Cases() {
					s := c.Status.String() + " " + c.Name
					if len(c.Logs) > 0 {
						s += " [" + strings.Join(c.Logs, " | ") + "]"
					}
					got = append(got, s)
				}
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("cases:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
			if s := sum.String(); s != "7 passed, 3 failed" || sum.Skipped != 1 {
				t.Errorf("summary %q, %d skipped", s, sum.Skipped)
			}
			for _, r := range results {
				if pass := r.Passed(); pass != (r.Test != "c_records" && r.Test != "h_bad_status" && r.Test != "i_error") {
					t.Errorf("%s: Passed() = %v", r.Test, pass)
				}
			}
		})
	}
}

// TestRun_select runs a subset: the order and the shared maps still hold
// among the selected tests, and b_state_read alone sees no state.
func TestRun_select(t *testing.T) {
	obj, err := bpftest.Open("testdata/convention.o")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		re   string
		want []string
	}{
		{"state", []string{"a_state_write PASS", "b_state_read PASS"}},
		{"^b_", []string{"b_state_read FAIL"}},
		{"nothing", nil},
	} {
		var got []string
		for _, r := range bpftest.Run(obj, bpftest.Options{Run: regexp.MustCompile(tc.re)}) {
			st := bpftest.Pass
			if !r.Passed() {
				st = bpftest.Fail
			}
			got = append(got, r.Test+" "+st.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("-run %s: %v, want %v", tc.re, got, tc.want)
		}
	}
}

// TestRun_loadError: an object that does not load gives every selected
// test the load error.
func TestRun_loadError(t *testing.T) {
	obj, err := bpftest.Open("testdata/convention.o")
	if err != nil {
		t.Fatal(err)
	}
	results := bpftest.Run(obj, bpftest.Options{Engine: failing{}})
	if len(results) != len(obj.Tests) {
		t.Fatalf("%d results for %d tests", len(results), len(obj.Tests))
	}
	for _, r := range results {
		cs := r.Cases()
		if r.Passed() || len(cs) != 1 || cs[0].Status != bpftest.Error || !strings.Contains(cs[0].Logs[0], "load: no kernel here") {
			t.Errorf("%s: %+v", r.Test, cs)
		}
	}
}

type failing struct{}

func (failing) Name() string { return "failing" }
func (failing) Load(*bpftest.Object) (bpftest.Instance, error) {
	return nil, fmt.Errorf("no kernel here")
}

func TestOpen_errors(t *testing.T) {
	if _, err := bpftest.Open("testdata/missing.o"); err == nil {
		t.Error("a missing file opened")
	}
	if _, err := bpftest.Parse("junk.o", []byte("\x7fELF junk")); err == nil || !strings.HasPrefix(err.Error(), "junk.o: ") {
		t.Errorf("junk: %v", err)
	}
	// An object without tests: the bundled tail-call example.
	if _, err := bpftest.Open("../examples/tailcall/dispatch.o"); err == nil || !strings.Contains(err.Error(), "no tests") {
		t.Errorf("dispatch.o: %v", err)
	}
}
