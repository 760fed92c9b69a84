package kselftest

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestMatchMsgs(t *testing.T) {
	log := "0: (b7) r0 = 0\n1: (95) exit\nR0 leaks addr as return value\nprocessed 2 insns (limit 1000000)\n"
	for _, tc := range []struct {
		name string
		msgs []string
		want int
	}{
		{"none", nil, -1},
		{"substring", []string{"leaks addr"}, -1},
		{"in order", []string{"r0 = 0", "exit", "leaks"}, -1},
		{"out of order", []string{"exit", "r0 = 0"}, 1},
		{"after the previous match", []string{"exit", "exit"}, 1},
		{"missing", []string{"invalid mem access"}, 0},
		{"regexp", []string{"processed {{[0-9]+}} insns"}, -1},
		{"regexp literal outside braces", []string{"(b7) r0 = {{0}}"}, -1},
		{"regexp no match", []string{"processed {{[a-z]+}} insns"}, 0},
		{"regexp is line-bound", []string{"exit{{.*}}leaks"}, 0},
		{"regexp anchors at lines", []string{"{{^}}R0 leaks"}, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []Msg
			for _, p := range tc.msgs {
				m, err := newMsg(p)
				if err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			if got := MatchMsgs(log, msgs); got != tc.want {
				t.Errorf("MatchMsgs = %d, want %d", got, tc.want)
			}
		})
	}
	if _, err := newMsg("a {{[0-9]+"); err == nil {
		t.Error("an open {{ compiled")
	}
	if _, err := newMsg("a {{[0-9}}"); err == nil {
		t.Error("a bad regular expression compiled")
	}
}

func TestParseTags(t *testing.T) {
	int32p := func(v int32) *int32 { return &v }
	for _, tc := range []struct {
		name   string
		tags   []string
		err    bool
		check  func(*spec) bool
		detail string
	}{
		{name: "no tags: a privileged success", tags: nil,
			check: func(s *spec) bool { return s.modes == modePriv && !s.priv.failure && s.flags == TestingFlags }},
		{name: "failure and unpriv inheriting it", tags: []string{"comment:test_expect_failure", "comment:test_expect_msg=0=bad", "comment:test_expect_success_unpriv"},
			check: func(s *spec) bool {
				return s.modes == modePriv|modeUnpriv && s.priv.failure && !s.unpriv.failure &&
					len(s.unpriv.msgs) == 1 && s.unpriv.msgs[0].Pattern == "bad"
			}},
		{name: "unpriv message only", tags: []string{"comment:test_expect_msg_unpriv=3=leak"},
			check: func(s *spec) bool {
				return s.modes == modeUnpriv && len(s.priv.msgs) == 0 && s.unpriv.msgs[0].Pattern == "leak"
			}},
		{name: "message with = in it", tags: []string{"comment:test_expect_msg=7=R1=ctx() R10=fp0"},
			check: func(s *spec) bool { return s.priv.msgs[0].Pattern == "R1=ctx() R10=fp0" }},
		{name: "retval inherited", tags: []string{"comment:test_retval=POINTER_VALUE", "comment:test_expect_failure_unpriv"},
			check: func(s *spec) bool {
				return *s.priv.retval == PointerValue && *s.unpriv.retval == PointerValue && s.unpriv.failure && !s.priv.failure
			}},
		{name: "retvals", tags: []string{"comment:test_retval=-1", "comment:test_retval_unpriv=0x10"},
			check: func(s *spec) bool { return *s.priv.retval == *int32p(-1) && *s.unpriv.retval == 16 }},
		{name: "INT_MIN", tags: []string{"comment:test_retval=INT_MIN"},
			check: func(s *spec) bool { return *s.priv.retval == -1<<31 }},
		{name: "flags set and cleared", tags: []string{"comment:test_prog_flags=BPF_F_STRICT_ALIGNMENT", "comment:test_prog_flags=!BPF_F_TEST_RND_HI32", "comment:test_prog_flags=0x100"},
			check: func(s *spec) bool { return s.flags == FlagStrictAlignment|FlagTestRegInvariant|0x100 }},
		{name: "log level", tags: []string{"comment:test_log_level=2"},
			check: func(s *spec) bool { return s.logLevel == 2 && s.modes == modePriv }},
		{name: "auxiliary", tags: []string{"comment:test_auxiliary"},
			check: func(s *spec) bool { return s.auxiliary && s.modes == modePriv }},
		{name: "arch", tags: []string{"comment:test_arch=ARM64", "comment:test_jited=0=  mov"},
			check: func(s *spec) bool { return slices.Equal(s.archs, []string{"ARM64"}) }},
		{name: "jited before arch", tags: []string{"comment:test_jited=0=  mov"}, err: true},
		{name: "bad arch", tags: []string{"comment:test_arch=MIPS"}, err: true},
		{name: "bad number", tags: []string{"comment:test_retval=12x"}, err: true},
		{name: "bad regexp", tags: []string{"comment:test_expect_msg=0={{(}}"}, err: true},
		{name: "other tags ignored", tags: []string{"kfunc", "comment:something_else"},
			check: func(s *spec) bool { return s.modes == modePriv }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := parseTags(tc.tags)
			if tc.err {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(s) {
				t.Errorf("%+v", s)
			}
		})
	}
}

func TestCompare(t *testing.T) {
	mk := func(file, prog string, e Expect, msgs ...string) Case {
		c := Case{File: file, Program: prog, Expect: e}
		for _, m := range msgs {
			c.Msgs = append(c.Msgs, Msg{Pattern: m})
		}
		return c
	}
	cases := []Case{
		mk("a.c", "ok", Success),
		mk("a.c", "rejects", Failure, "bad"),
		mk("a.c", "wrong_msg", Failure, "bad"),
		mk("b.c", "accepts_bad", Failure),
		mk("b.c", "broken", Success),
		mk("b.c", "skipped", Success),
		{File: "b.c", Program: "arm", Skip: "for ARM64 only"},
	}
	verdicts := map[string]Verdict{
		"ok":          {Accepted: true, Log: "processed 7 insns (limit 1000000)\n"},
		"rejects":     {Log: "0: (95) exit\nbad thing\nprocessed 1 insns\n"},
		"wrong_msg":   {Log: "other thing\n"},
		"accepts_bad": {Accepted: true},
		"broken":      {Err: errors.New("boom")},
		"skipped":     {Skip: "no map type"},
	}
	kernel := map[string]bool{"ok": true, "rejects": false, "wrong_msg": true, "accepts_bad": true}
	rep := Compare(cases, func(c Case) Verdict {
		v := verdicts[c.Program]
		v.Stats()
		return v
	}, func(c Case) Verdict {
		if c.Program == "broken" || c.Program == "skipped" {
			return Verdict{Skip: "kernel"}
		}
		return Verdict{Accepted: kernel[c.Program]}
	})
	want := Tally{Cases: 7, Skipped: 2, Errors: 1, Run: 4, AgreeExpected: 3, MsgsMatched: 2, WithMsgs: 2,
		KernelCompared: 4, AgreeKernel: 3, Processed: 8}
	if rep.Total != want {
		t.Errorf("total %+v\nwant  %+v", rep.Total, want)
	}
	if a, b := rep.Files["a.c"], rep.Files["b.c"]; a.Run != 3 || a.AgreeExpected != 3 || b.Run != 1 || b.AgreeExpected != 0 {
		t.Errorf("files a %+v b %+v", a, b)
	}
	var why []string
	for _, r := range rep.Disagreements() {
		why = append(why, r.Case.Program+": "+r.Why())
	}
	wantWhy := []string{
		`wrong_msg: message "bad" not in the log; kernel accepts`,
		"accepts_bad: expected failure, accepted",
	}
	if !slices.Equal(why, wantWhy) {
		t.Errorf("disagreements %q, want %q", why, wantWhy)
	}
	var b strings.Builder
	rep.Write(&b)
	for _, s := range []string{"total", "DIFF b.c/accepts_bad@priv", "ERROR b.c/broken@priv: error: boom", "SKIP b.c/arm@priv: skipped: for ARM64 only"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, b.String())
		}
	}
}

func TestVerdict_Reason(t *testing.T) {
	for _, tc := range []struct {
		v    Verdict
		want string
	}{
		{Verdict{Log: "0: (95) exit\nR0 !read_ok\nprocessed 1 insns (limit 1000000) max_states_per_insn 0\n"}, "R0 !read_ok"},
		{Verdict{Log: "R1 type=scalar expected=fp\nverification time 12 usec\nstack depth 0\nprocessed 3 insns\n"}, "R1 type=scalar expected=fp"},
		{Verdict{Log: "processed 0 insns\n", Errno: errors.New("operation not permitted")}, "operation not permitted, empty log"},
		{Verdict{}, ""},
	} {
		if got := tc.v.Reason(); got != tc.want {
			t.Errorf("Reason(%q) = %q, want %q", tc.v.Log, got, tc.want)
		}
	}
	v := Verdict{Log: "processed 12 insns (limit 1000000)\nverification time 34 usec\n"}
	v.Stats()
	if v.Processed != 12 || v.Time.Microseconds() != 34 {
		t.Errorf("Stats: %+v", v)
	}
}
