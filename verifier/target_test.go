package verifier_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestVerify_target: with Program.Helpers nil, Options.Target decides the
// helpers. bpf_skb_get_xfrm_state (66) is Linux's for tc programs and not
// waggle's runtime's; bpf_loop (181) needs CAP_BPF; bpf_xdp_adjust_meta
// (54) is XDP's, not tc's.
func TestVerify_target(t *testing.T) {
	const xfrm = `r6 = r1
r1 = 0
*(u64 *)(r10 - 8) = r1
*(u64 *)(r10 - 16) = r1
*(u64 *)(r10 - 24) = r1
*(u64 *)(r10 - 32) = r1
r1 = r6
r2 = 0
r3 = r10
r3 += -32
r4 = 28
r5 = 0
call 66
r0 = 0
exit`
	const meta = "r2 = -4\ncall 54\nr0 = 0\nexit"
	const unknown = "call 9999\nr0 = 0\nexit"
	for _, tc := range []struct {
		name   string
		typ    progtype.Type
		src    string
		target progtype.Target
		unpriv bool
		want   string // "" for accepted, else substrings of the error, |-separated
	}{
		{"xfrm user", progtype.SchedCLS, xfrm, progtype.TargetUser, false, "program of this type cannot use helper bpf_skb_get_xfrm_state#66|target user"},
		{"xfrm linux", progtype.SchedCLS, xfrm, progtype.TargetLinux, false, ""},
		{"xfrm linux unprivileged", progtype.SchedCLS, xfrm, progtype.TargetLinux, true, ""},
		{"meta tc linux", progtype.SchedCLS, meta, progtype.TargetLinux, false, "program of this type cannot use helper bpf_xdp_adjust_meta#54|sched_cls programs may not call bpf_xdp_adjust_meta"},
		{"meta xdp linux", progtype.XDP, meta, progtype.TargetLinux, false, ""},
		{"meta xdp user", progtype.XDP, meta, progtype.TargetUser, false, ""},
		{"unknown", progtype.XDP, unknown, progtype.TargetLinux, false, "invalid func unknown#9999"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := program(t, tc.typ, tc.src)
			p.Helpers = nil
			_, err := verifier.Verify(context.Background(), p, &verifier.Options{Target: tc.target, Unprivileged: tc.unpriv})
			if p.Helpers != nil {
				t.Error("Verify changed the caller's Program")
			}
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ve *verifier.Error
			if !errors.As(err, &ve) {
				t.Fatalf("%v, want a *verifier.Error", err)
			}
			for _, want := range strings.Split(tc.want, "|") {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%v, want %q", err, want)
				}
			}
			if ve.Insn < 0 || ve.Hint == "" {
				t.Errorf("insn %d, hint %q", ve.Insn, ve.Hint)
			}
		})
	}
	// Program.Helpers, when set, stand whatever the target.
	p := program(t, progtype.SchedCLS, xfrm)
	p.Helpers = map[int32]helpers.Proto{}
	_, err := verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux})
	if err == nil || !strings.Contains(err.Error(), "verifier.Program.Helpers") {
		t.Errorf("empty Helpers, target linux: %v", err)
	}
}
