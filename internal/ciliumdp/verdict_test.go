package ciliumdp

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/kernel"
)

// TestParseStats reads the statistics of Linux 6.18's log at level 4, of
// an accepted program and of a refused one.
func TestParseStats(t *testing.T) {
	for _, tc := range []struct {
		log  string
		want KernelLoad
	}{
		{"processed 326861 insns (limit 1000000) max_states_per_insn 12 total_states 17272 peak_states 974 mark_read 151\nverification time 239533 usec\nstack depth 168+0\n",
			KernelLoad{Processed: 326861, MaxStatesPerInsn: 12, TotalStates: 17272, PeakStates: 974, VerifyTime: 239533 * time.Microsecond}},
		{"R1 invalid mem access 'scalar'\nverification time 5 usec\nstack depth 0\nprocessed 2 insns (limit 1000000) max_states_per_insn 0 total_states 0 peak_states 0 mark_read 0\n",
			KernelLoad{Processed: 2, VerifyTime: 5 * time.Microsecond}},
		{"", KernelLoad{}},
		{"processed many insns\nverification time x usec", KernelLoad{}},
	} {
		got := KernelLoad{Log: tc.log}
		parseStats(&got)
		tc.want.Log = tc.log
		if got != tc.want {
			t.Errorf("parseStats(%q):\n got %+v\nwant %+v", tc.log, got, tc.want)
		}
	}
}

// TestReason groups refusals: the verifier's last message without what
// differs between programs.
func TestReason(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&kernel.VerifierError{Errno: syscall.EACCES, Log: "0: (b7) r0 = 0\n12: (61) r2 = *(u32 *)(r1 +76): R1 invalid mem access off=76 size=4\nprocessed 13 insns (limit 1000000)\n"},
			"R invalid mem access off=N size=N"},
		{fmt.Errorf("program x: %w", &kernel.VerifierError{Errno: syscall.EINVAL, Log: "program of this type cannot use helper bpf_xdp_adjust_meta#54\nverification time 3 usec\n"}),
			"program of this type cannot use helper bpf_xdp_adjust_meta#54"},
		{errors.New("maps: map m: HashOfMaps requires InnerMap\nmore"), "maps: map m: HashOfMaps requires InnerMap"},
	} {
		if got := Reason(tc.err); got != tc.want {
			t.Errorf("Reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// TestCompare counts agreements, splits the disagreements by side and
// sums both sides' costs.
func TestCompare(t *testing.T) {
	prog := func(name string, accepted bool, cpu time.Duration) Program {
		return Program{Object: "bpf_xdp.7", Name: name, Checked: true, Kernel: Verdict{Accepted: accepted, Processed: 100, CPU: cpu}}
	}
	progs := []Program{
		prog("a", true, time.Millisecond),
		prog("b", true, 2*time.Millisecond),
		prog("c", false, time.Millisecond),
		prog("d", false, time.Millisecond),
		{Object: "bpf_xdp.7", Name: "unchecked"},
	}
	// The verifier under test: rejects b, accepts c, costs 3x on a.
	verify := func(p Program) Verdict {
		v := Verdict{Accepted: p.Kernel.Accepted, Processed: 50, CPU: p.Kernel.CPU}
		switch p.Name {
		case "a":
			v.CPU = 3 * time.Millisecond
		case "b", "c":
			v.Accepted = !v.Accepted
		case "unchecked":
			t.Error("verify called on a program without a kernel verdict")
		}
		if !v.Accepted {
			v.Error = "no"
		}
		return v
	}
	r := Compare(progs, verify)
	if r.Programs != 4 || r.Agree != 2 || len(r.Accepts) != 1 || r.Accepts[0].Program.Name != "c" || len(r.Rejects) != 1 || r.Rejects[0].Program.Name != "b" {
		t.Errorf("report %+v", r)
	}
	if r.Kernel.Processed != 400 || r.Verifier.Processed != 200 || r.Kernel.Accepted != 2 || r.Verifier.Accepted != 2 {
		t.Errorf("totals kernel %+v, verifier %+v", r.Kernel, r.Verifier)
	}
	if r.Kernel.CPU != 5*time.Millisecond || r.Verifier.CPU != 7*time.Millisecond {
		t.Errorf("CPU kernel %v, verifier %v", r.Kernel.CPU, r.Verifier.CPU)
	}
	if r.Ratio != 3 || r.Slowest.Name != "a" || r.Agreement() != 0.5 {
		t.Errorf("ratio %v on %s, agreement %v", r.Ratio, r.Slowest.Name, r.Agreement())
	}
	s := r.String()
	for _, want := range []string{"4 programs, 2 agree (50.00%)", "bpf_xdp.7/b: kernel accepts, verifier rejects: no", "bpf_xdp.7/c: kernel rejects: , verifier accepts", "at most 3.00x (bpf_xdp.7/a)"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() lacks %q:\n%s", want, s)
		}
	}
}
