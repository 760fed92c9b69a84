package kselftest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
)

// cacheRoot is where the suite is built: the user's cache folder.
func cacheRoot() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "waggle", "kselftest")
}

// isRoot reports whether the kernel's verifier can be asked.
func isRoot() bool { return os.Geteuid() == 0 }

// mustSuite builds the suite, or skips the test saying what is missing.
func mustSuite(tb testing.TB) *Suite {
	tb.Helper()
	src, err := Find()
	if err != nil {
		tb.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	s, err := Build(ctx, src, cacheRoot(), tb.Logf)
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	tb.Logf("kselftest: %d files, %d cases in %s (cached %v, took %v; compiling took %s)",
		len(s.Files), len(s.Cases), s.Dir, s.Cached, time.Since(start).Round(time.Millisecond), s.BuildTook)
	return s
}

// findCase returns the case of a file's program in a mode.
func findCase(tb testing.TB, cases []Case, file, program string, mode Mode) Case {
	tb.Helper()
	for _, c := range cases {
		if c.File == file && c.Program == program && c.Mode == mode {
			return c
		}
	}
	tb.Fatalf("no case %s/%s@%s", file, program, mode)
	return Case{}
}

func patterns(msgs []Msg) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Pattern)
	}
	return out
}

// TestSuite builds the selftests and checks what the tags say against
// the sources (Linux 6.12's progs/verifier_*.c).
func TestSuite(t *testing.T) {
	s := mustSuite(t)
	var compiled, failed, programs, invalid int
	for _, f := range s.Files {
		switch {
		case f.Object == "":
			failed++
			t.Logf("%s did not compile: %s", f.Name, f.Err)
			continue
		case f.Err != "":
			t.Logf("%s: cilium/ebpf cannot read the object: %s", f.Name, f.Err)
		}
		compiled++
		programs += f.Programs
		for p, why := range f.Invalid {
			invalid++
			t.Errorf("%s: %s: tags not parsed: %s", f.Name, p, why)
		}
	}
	count := map[string]int{}
	for _, c := range s.Cases {
		count[c.Mode.String()+" "+c.Expect.String()]++
		if c.Skip != "" {
			count["skipped"]++
		}
		if len(c.Msgs) > 0 {
			count[c.Mode.String()+" with messages"]++
		}
	}
	t.Logf("%d files, %d compiled, %d failed; %d programs; %d cases: %v", len(s.Files), compiled, failed, programs, len(s.Cases), count)
	if len(s.Files) < 90 || compiled < 90 || len(s.Cases) < 1500 {
		t.Errorf("%d files, %d compiled, %d cases: Linux 6.12 has 95 files with over 1500 cases", len(s.Files), compiled, len(s.Cases))
	}

	// SEC("socket") __description("invalid and of negative number")
	// __failure __msg("R0 max value is outside of the allowed memory range")
	// __failure_unpriv __flag(BPF_F_ANY_ALIGNMENT)
	for _, mode := range []Mode{Privileged, Unprivileged} {
		c := findCase(t, s.Cases, "verifier_and.c", "invalid_and_of_negative_number", mode)
		want := "invalid and of negative number"
		if mode == Unprivileged {
			want += " @unpriv"
		}
		if c.Name != want || c.Expect != Failure || c.Type != ebpf.SocketFilter || c.Section != "socket" ||
			c.Flags != FlagAnyAlignment|TestingFlags || c.Retval != nil || len(c.Auxiliary) != 0 ||
			!slices.Equal(patterns(c.Msgs), []string{"R0 max value is outside of the allowed memory range"}) {
			t.Errorf("verifier_and.c: %+v", c)
		}
	}
	// __success __failure_unpriv __msg_unpriv("R0 leaks addr")
	// __retval(POINTER_VALUE)
	priv := findCase(t, s.Cases, "verifier_unpriv.c", "unpriv_return_pointer", Privileged)
	unpriv := findCase(t, s.Cases, "verifier_unpriv.c", "unpriv_return_pointer", Unprivileged)
	if priv.Expect != Success || len(priv.Msgs) != 0 || priv.Retval == nil || *priv.Retval != PointerValue {
		t.Errorf("unpriv_return_pointer: %+v", priv)
	}
	if unpriv.Expect != Failure || !slices.Equal(patterns(unpriv.Msgs), []string{"R0 leaks addr"}) ||
		unpriv.Retval == nil || *unpriv.Retval != PointerValue {
		t.Errorf("unpriv_return_pointer @unpriv: %+v", unpriv)
	}
	// __success __log_level(2) __flag(BPF_F_TEST_REG_INVARIANTS) and a
	// message with a {{.*}}; no unprivileged tag, so no unprivileged case.
	c := findCase(t, s.Cases, "verifier_bounds.c", "bounds_deduct_negative_overlap", Privileged)
	if c.LogLevel != 2 || c.Expect != Success || len(c.Msgs) != 1 || !c.Msgs[0].IsRegexp() {
		t.Errorf("bounds_deduct_negative_overlap: %+v", c)
	}
	for _, o := range s.Cases {
		if o.Program == c.Program && o.Mode == Unprivileged {
			t.Errorf("bounds_deduct_negative_overlap has an unprivileged case")
		}
	}
	// Four messages in the order of the source.
	c = findCase(t, s.Cases, "verifier_precision.c", "bpf_neg", Privileged)
	if len(c.Msgs) != 4 || c.Msgs[0].Pattern != "mark_precise: frame0: regs=r2 stack= before 3: (bf) r1 = r10" ||
		c.Msgs[3].Pattern != "mark_precise: frame0: regs=r2 stack= before 0: (b7) r2 = 8" || c.Type != ebpf.RawTracepoint {
		t.Errorf("bpf_neg: %+v", c)
	}
	// The __auxiliary tail call targets are loaded with every test of the
	// file and are no tests themselves.
	c = findCase(t, s.Cases, "verifier_ref_tracking.c", "ld_abs_while_holding_reference", Privileged)
	if !slices.Equal(c.Auxiliary, []string{"dummy_prog_24_tc", "dummy_prog_42_tc", "dummy_prog_loop1_tc"}) {
		t.Errorf("ld_abs_while_holding_reference: auxiliary %v", c.Auxiliary)
	}
	for _, o := range s.Cases {
		if strings.HasPrefix(o.Program, "dummy_prog_") && o.File == "verifier_ref_tracking.c" {
			t.Errorf("auxiliary program %s is a case", o.Program)
		}
	}

	// The older raw tests of verifier/*.c.
	if s.Raw != "" {
		t.Fatalf("verifier/*.c: %s", s.Raw)
	}
	raw := map[string]int{}
	for _, c := range s.Cases {
		if c.Insns != nil {
			raw[c.Mode.String()+" "+c.Expect.String()]++
		}
	}
	t.Logf("verifier/*.c: %v", raw)
	// "calls: invalid kfunc call not eliminated": 3 instructions, a
	// tracepoint (privileged only), REJECT with an errstr.
	c = findCase(t, s.Cases, "verifier/calls.c", "calls: invalid kfunc call not eliminated", Privileged)
	if len(c.Insns) != 3*8 || c.Type != ebpf.TracePoint || c.Expect != Failure || c.LogLevel != 4 ||
		!slices.Equal(patterns(c.Msgs), []string{"invalid kernel function call not eliminated in verifier pass"}) {
		t.Errorf("calls.c: %+v", c)
	}
	for _, o := range s.Cases {
		if o.File == c.File && o.Index == c.Index && o.Mode == Unprivileged {
			t.Errorf("a tracepoint test has an unprivileged case")
		}
	}
	// "direct map access, write test 1": mov, lddw (2 slots), st, exit;
	// the map of fixup_map_array_48b at instruction 1; a socket filter, so
	// unprivileged too, expecting the same.
	for _, mode := range []Mode{Privileged, Unprivileged} {
		c = findCase(t, s.Cases, "verifier/direct_value_access.c", "direct map access, write test 1", mode)
		if len(c.Insns) != 5*8 || c.Type != ebpf.SocketFilter || c.Expect != Success || len(c.Msgs) != 0 ||
			len(c.Fixups) != 1 || !slices.Equal(c.Fixups["map_array_48b"], []int{1}) || c.Flags != TestingFlags {
			t.Errorf("direct_value_access.c: %+v", c)
		}
	}
}

// shortFiles are the files -short loads: the oldest kinds of tests,
// unprivileged expectations, tail calls with auxiliary programs,
// log-level-2 messages with regular expressions, cpu v4 instructions, and
// two files of the older raw tests.
var shortFiles = []string{"verifier_and.c", "verifier_unpriv.c", "verifier_ref_tracking.c", "verifier_bounds.c", "verifier_sdiv.c",
	"verifier/calls.c", "verifier/jmp32.c"}

// TestVerdicts measures the running kernel's verifier ("kernel") and
// waggle's ("waggle") with Compare on every case (those of shortFiles with
// -short). The suite's kernel verdicts are loaded once and shared.
func TestVerdicts(t *testing.T) {
	s := mustSuite(t)
	cases := s.Cases
	if testing.Short() {
		cases = s.Select(shortFiles...)
	}
	t.Run("kernel", func(t *testing.T) { testKernel(t, s, cases) })
	t.Run("waggle", func(t *testing.T) { testWaggle(t, s, cases) })
}

// testKernel loads the cases into the running kernel and compares its
// verdicts with the expected ones. The selftests are Linux 6.12's and the
// kernel is whatever runs here, so disagreements are listed, not failed;
// the test fails on harness errors and on a few verdicts every kernel
// since 5.x gives.
func testKernel(t *testing.T, s *Suite, cases []Case) {
	if !isRoot() {
		t.Skip("loading programs into the kernel needs root")
	}
	rep := Compare(cases, s.Kernel, nil)
	var b strings.Builder
	rep.Write(&b)
	t.Logf("kernel verdicts against the selftests' expectations (%d cases, loads took %v):\n%s", len(cases), rep.Took.Round(time.Millisecond), b.String())
	for _, r := range rep.Results {
		if r.Verdict.Err != nil {
			t.Errorf("%s: harness error: %v", r.Case.ID(), r.Verdict.Err)
		}
	}
	if rep.Total.Run == 0 {
		t.Fatal("no case ran")
	}
	// Controls: verdicts and messages that have not changed since 5.x.
	for _, tc := range []struct {
		file, program string
		accepted      bool
		msg           string
	}{
		{"verifier_and.c", "invalid_and_of_negative_number", false, "R0 max value is outside of the allowed memory range"},
		{"verifier_unpriv.c", "unpriv_add_const_to_pointer", true, ""},
		{"verifier_unpriv.c", "unpriv_return_pointer", true, ""},
	} {
		for _, r := range rep.Results {
			if r.Case.File != tc.file || r.Case.Program != tc.program || r.Case.Mode != Privileged {
				continue
			}
			if !r.Ran() || r.Verdict.Accepted != tc.accepted || !strings.Contains(r.Verdict.Log, tc.msg) {
				t.Errorf("%s: %s, want accepted=%v with %q in the log:\n%s", r.Case.ID(), r.Verdict, tc.accepted, tc.msg, r.Verdict.Log)
			}
			if r.Verdict.Accepted && r.Verdict.Processed == 0 {
				t.Errorf("%s: accepted without a count of processed instructions", r.Case.ID())
			}
		}
	}
}
