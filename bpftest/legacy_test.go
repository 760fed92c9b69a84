package bpftest_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/bpftest"
)

// TestRun_legacy runs testdata/legacy.o, written in the conventions of
// Cilium's tests before 1.19 (statuses 0 to 3, a tail call placed by its
// "2/1" section in the prog array with iproute2 id 2, configuration
// inlined by the loader), and expects the same cases on every engine.
func TestRun_legacy(t *testing.T) {
	obj, err := bpftest.Open("testdata/legacy.o")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"tail_unreachable"}; !reflect.DeepEqual(obj.Dropped, want) {
		t.Errorf("dropped %v, want %v", obj.Dropped, want)
	}
	if want := []bpftest.Tail{{Program: "tail_mark", Map: "calls", Slot: 1}}; !reflect.DeepEqual(obj.Tails, want) {
		t.Errorf("tails %+v, want %+v", obj.Tails, want)
	}
	if err := obj.InlineGlobalData(".rodata.config"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PASS a_tail/tail",
		"PASS b_config/inlined",
		"FAIL c_fail/fails [testdata/legacy.c:122: cb[1] is 0]",
		"SKIP d_skip",
		"ERROR e_bad_status [check returned 101, want 0 (error), 1 (pass), 2 (fail) or 3 (skip)]",
	}
	for _, e := range engines(t) {
		t.Run(e.Name(), func(t *testing.T) {
			var got []string
			for _, r := range bpftest.Run(obj, bpftest.Options{Engine: e, LegacyStatus: true}) {
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
		})
	}
}

// TestRun_legacyStatusOff reads the same object with today's numbering:
// its passes (1) are statuses out of range.
func TestRun_legacyStatusOff(t *testing.T) {
	obj, err := bpftest.Open("testdata/legacy.o")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range bpftest.Run(obj, bpftest.Options{}) {
		if r.Test == "a_tail" && (r.Err == nil || !strings.Contains(r.Err.Error(), "check returned 1, want 100")) {
			t.Errorf("a_tail: error %v, want check returned 1 out of range", r.Err)
		}
	}
}

// TestInlineGlobalData_notInlined checks that without inlining the
// configuration is the variable's address, not its value: the rewrite is
// what makes b_config pass.
func TestInlineGlobalData_notInlined(t *testing.T) {
	obj, err := bpftest.Open("testdata/legacy.o")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range bpftest.Run(obj, bpftest.Options{LegacyStatus: true}) {
		if r.Test == "b_config" && r.Passed() {
			t.Error("b_config passes without InlineGlobalData")
		}
	}
	if err := obj.InlineGlobalData(".no-such-section"); err != nil {
		t.Errorf("a section the object lacks: %v", err)
	}
}
