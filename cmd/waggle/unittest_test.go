package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/kernel"
)

func TestTest_example(t *testing.T) {
	code, out, errOut := runCLI(t, "", "test", "../../examples/unittest/ttl_test.o")
	want := `PASS  ttl_test.o: ttl_expired
PASS  ttl_test.o: ttl_forward/verdict
PASS  ttl_test.o: ttl_forward/ttl
PASS  ttl_test.o: ttl_forward/checksum
4 passed, 0 failed
`
	if code != 0 || out != want {
		t.Fatalf("status %d, stdout:\n%s\nwant:\n%s\nstderr: %s", code, out, want, errOut)
	}
}

// TestTest_failures: failing, skipped and erroring tests are printed with
// their messages, counted, and make the status 1; --run selects.
func TestTest_failures(t *testing.T) {
	code, out, _ := runCLI(t, "", "test", "../../bpftest/testdata/convention.o")
	for _, want := range []string{
		"FAIL  convention.o: c_records/fails\n      testdata/convention.c:91: negative -5\n",
		"SKIP  convention.o: d_skip\n      testdata/convention.c:102: feature 3 is off\n",
		"ERROR convention.o: h_bad_status\n      check returned 7",
		"\n1 skipped\n7 passed, 3 failed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 || !strings.HasSuffix(out, "7 passed, 3 failed\n") {
		t.Errorf("status %d, output:\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "test", "../../bpftest/testdata/convention.o", "--run", "state|verdict")
	if code != 0 || out != "PASS  convention.o: a_state_write\nPASS  convention.o: b_state_read\nPASS  convention.o: f_verdict\n3 passed, 0 failed\n" {
		t.Errorf("--run: status %d, output:\n%s", code, out)
	}
}

func TestTest_json(t *testing.T) {
	code, out, _ := runCLI(t, "", "test", "../../bpftest/testdata/convention.o", "../../examples/unittest/ttl_test.o", "--json")
	var rep testReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// The report names the engine the default picked, not "auto".
	if code != 1 || rep.Engine != defaultEngine() || rep.Passed != 11 || rep.Failed != 3 || rep.Skipped != 1 || len(rep.Cases) != 15 {
		t.Errorf("status %d, report %+v", code, rep)
	}
	c := rep.Cases[3]
	if c.Object != "convention.o" || c.Name != "c_records/fails" || c.Status != "FAIL" || len(c.Logs) != 2 {
		t.Errorf("case 3: %+v", c)
	}
}

func TestTest_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	_, user, _ := runCLI(t, "", "test", "../../bpftest/testdata/convention.o", "../../examples/unittest/ttl_test.o")
	code, kern, errOut := runCLI(t, "", "test", "../../bpftest/testdata/convention.o", "../../examples/unittest/ttl_test.o", "--engine", "kernel")
	if code != 1 || kern != user {
		t.Errorf("status %d, kernel:\n%s\nuser space:\n%s\nstderr: %s", code, kern, user, errOut)
	}
}

// TestTest_engines: every user-space engine prints what the default
// prints, case by case.
func TestTest_engines(t *testing.T) {
	args := []string{"test", "../../bpftest/testdata/convention.o", "../../examples/unittest/ttl_test.o"}
	_, want, _ := runCLI(t, "", args...)
	if !strings.HasSuffix(want, "11 passed, 3 failed\n") {
		t.Fatalf("default engine:\n%s", want)
	}
	for _, e := range []string{"interp", "interp-fast", "jit"} {
		code, got, errOut := runCLI(t, "", append(args, "--engine", e)...)
		if code != 1 || got != want {
			t.Errorf("--engine %s: status %d:\n%s\nthe default:\n%s\nstderr: %s", e, code, got, want, errOut)
		}
	}
}

func TestTest_errors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"test", "../../examples/unittest/ttl_test.o", "--engine", "turbo"}, 1, `--engine: unknown engine "turbo", want one of auto, interp, interp-fast, jit or kernel`},
		{[]string{"test", "../../examples/unittest/ttl_test.o", "--run", "("}, 1, "--run: error parsing regexp"},
		{[]string{"test"}, 1, "requires at least 1 arg"},
	} {
		code, _, errOut := runCLI(t, "", tc.args...)
		if code != tc.code || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: status %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	// An object without tests is a failed case, and the others still run.
	code, out, _ := runCLI(t, "", "test", "../../examples/tailcall/dispatch.o", "../../examples/unittest/ttl_test.o")
	if code != 1 || !strings.Contains(out, "ERROR ../../examples/tailcall/dispatch.o\n      dispatch.o: no tests") || !strings.HasSuffix(out, "4 passed, 1 failed\n") {
		t.Errorf("status %d, output:\n%s", code, out)
	}
}
