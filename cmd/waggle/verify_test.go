package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVerifyCmd(t *testing.T) {
	code, out, errOut := runCLI(t, "", "verify", "../../examples/counter/counter.o")
	if code != 0 || !strings.Contains(out, "xdp_count (xdp): accepted") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "verify", "../../testdata/buggy/buggy.o")
	if code != 1 {
		t.Fatalf("exit %d for a rejected program, want 1", code)
	}
	for _, want := range []string{"rejected", "R0 invalid mem access 'map_value_or_null'", "buggy.c:23", "hint:", "registers:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "", "verify", "--json", "../../testdata/buggy/buggy.o", "../../examples/counter/counter.o")
	if code != 1 {
		t.Fatalf("exit %d, want 1: one program is rejected", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d JSON lines, want 2:\n%s", len(lines), out)
	}
	var got []map[string]any
	for _, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, m)
	}
	for _, k := range []string{"object", "section", "program", "verdict", "processed_insns", "states", "verification_usec"} {
		if _, ok := got[1][k]; !ok {
			t.Errorf("JSON lacks key %q: %v", k, got[1])
		}
	}
	if got[0]["verdict"] != "rejected" || got[0]["insn"] != float64(7) || got[0]["line"] == nil || got[1]["verdict"] != "accepted" {
		t.Errorf("verdicts: %v", got)
	}
	if code, _, errOut := runCLI(t, "", "verify", "--target", "moon", "../../examples/counter/counter.o"); code == 0 || !strings.Contains(errOut, "--target") {
		t.Errorf("--target moon: exit %d, %q", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "verify", "--program", "nope", "../../examples/counter/counter.o"); code == 0 || !strings.Contains(errOut, "no program") {
		t.Errorf("--program nope: exit %d, %q", code, errOut)
	}
}

func TestVerifyCmd_log(t *testing.T) {
	code, out, errOut := runCLI(t, "", "verify", "--log", "../../examples/counter/counter.o")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	for _, want := range []string{
		"func#0 @0\n", "Live regs before insn:\n", "0: R1=ctx() R10=fp0\n",
		"0: (61) r7 = *(u32 *)(r1 +4)          ; R1=ctx() R7=pkt_end()\n",
		"43: (95) exit\n", "processed ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("--log output lacks %q:\n%s", want, out)
		}
	}
	// Level 1: only the path to the error, no "from X to Y" states.
	code, out, _ = runCLI(t, "", "verify", "--log", "--log-level", "1", "../../testdata/buggy/buggy.o")
	if code != 1 || !strings.Contains(out, "R0 invalid mem access 'map_value_or_null'\nprocessed ") || strings.Contains(out, "Live regs") {
		t.Errorf("--log-level 1: exit %d, output:\n%s", code, out)
	}
	if code, _, errOut := runCLI(t, "", "verify", "--log", "--log-level", "3", "../../examples/counter/counter.o"); code == 0 || !strings.Contains(errOut, "--log-level is 3") {
		t.Errorf("--log-level 3: exit %d, stderr %q", code, errOut)
	}
}

// TestVerifyCmd_target: --target decides the helpers programs may call.
// testdata/target's xfrm calls bpf_skb_get_xfrm_state, which Linux offers
// tc programs and waggle's runtime does not implement; unprivileged calls
// bpf_jiffies64, which Linux offers only with CAP_BPF.
func TestVerifyCmd_target(t *testing.T) {
	const obj = "../../testdata/target/target.o"
	code, out, errOut := runCLI(t, "", "verify", obj)
	if code != 1 || !strings.Contains(out, "xfrm (tc): rejected") || !strings.Contains(out, "program of this type cannot use helper bpf_skb_get_xfrm_state#66") ||
		!strings.Contains(out, "target user") || !strings.Contains(out, "hint:") {
		t.Errorf("default target: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if code2, out2, _ := runCLI(t, "", "verify", "--target", "user", obj); code2 != code || out2 != out {
		t.Errorf("--target user: exit %d, %q; the default: exit %d, %q", code2, out2, code, out)
	}
	code, out, errOut = runCLI(t, "", "verify", "--target", "linux", obj)
	if code != 0 || strings.Count(out, ": accepted") != 3 {
		t.Errorf("--target linux: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = runCLI(t, "", "verify", "--target", "linux", "--unprivileged", "--program", "unprivileged", "--json", obj)
	var line map[string]any
	if err := json.Unmarshal([]byte(out), &line); err != nil {
		t.Fatalf("--json: %v: %q (stderr %q)", err, out, errOut)
	}
	if code != 1 || line["verdict"] != "rejected" || line["program"] != "unprivileged" || line["insn"] == nil || line["line"] == nil ||
		!strings.Contains(line["error"].(string), "bpf_jiffies64#118") || !strings.Contains(line["error"].(string), "CAP_BPF") {
		t.Errorf("--target linux --unprivileged: exit %d, %v", code, line)
	}
	for _, bad := range []string{"foo", "", "Linux"} {
		code, _, errOut := runCLI(t, "", "verify", "--target", bad, obj)
		if code == 0 || !strings.Contains(errOut, "--target") || !strings.Contains(errOut, "user, linux, host") {
			t.Errorf("--target %q: exit %d, stderr %q", bad, code, errOut)
		}
	}
}
