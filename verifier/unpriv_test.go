package verifier_test

import (
	"context"
	"strings"
	"testing"

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
