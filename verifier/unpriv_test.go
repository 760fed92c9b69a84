package verifier_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestVerify_tailCallMaps: an unprivileged tail call site must see one
// prog array on every path (verifier_runtime_jit.c, "tail_call within
// bounds, different maps"); a privileged one may see several.
func TestVerify_tailCallMaps(t *testing.T) {
	const src = `
		r6 = r1
		r2 = *(u32 *)(r1 + 0)
		if r2 == 0 goto +3
		r2 = map_idx(2) ll
		goto +2
		r2 = map_idx(3) ll
		r1 = r6
		r3 = 0
		call 12
		r0 = 0
		exit`
	for _, unpriv := range []bool{false, true} {
		p := program(t, progtype.SocketFilter, src)
		for _, name := range []string{"jmp1", "jmp2"} {
			p.Maps = append(p.Maps, verifier.Map{Spec: maps.Spec{Name: name, Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 4}, SpinLock: -1})
		}
		_, err := verifier.Verify(context.Background(), p, &verifier.Options{Unprivileged: unpriv})
		switch {
		case unpriv && (err == nil || !strings.Contains(err.Error(), "tail_call abusing map_ptr")):
			t.Errorf("unprivileged: %v, want tail_call abusing map_ptr", err)
		case !unpriv && err != nil:
			t.Errorf("privileged: %v", err)
		}
	}
}

// TestVerify_callbackStack: a bpf_loop callback runs on its caller's
// stack, so the two share the 512 bytes (check_max_stack_depth follows
// the callback's address as a call).
func TestVerify_callbackStack(t *testing.T) {
	for _, tc := range []struct {
		caller int
		want   string
	}{
		{caller: 256},
		{caller: 512, want: "combined stack size of 2 calls is 528"},
	} {
		src := fmt.Sprintf(`
			r1 = 0
			*(u64 *)(r10 - %d) = r1
			r1 = 1
			r2 = func(pc+6) ll
			r3 = 0
			r4 = 0
			call 181
			r0 = 0
			exit
			r1 = 0
			*(u64 *)(r10 - 16) = r1
			r0 = 0
			exit`, tc.caller)
		p := program(t, progtype.XDP, src)
		subprogAt(10, &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed})(p)
		_, err := verifier.Verify(context.Background(), p, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("caller stack %d: %v", tc.caller, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("caller stack %d: %v, want %q", tc.caller, err, tc.want)
		}
	}
}
