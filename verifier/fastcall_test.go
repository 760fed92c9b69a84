package verifier_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestVerify_fastcall checks the bpf_fastcall accounting against
// verifier_bpf_fastcall.c's cumulative_stack_depth: the entry uses all
// 512 bytes, the callee spills r1 around bpf_get_smp_processor_id, and
// Linux drops that pair and its 8 bytes, so the chain fits. When anything
// else touches the pattern's slot, the pair stays and the chain does not.
func TestVerify_fastcall(t *testing.T) {
	const entry = `
		r1 = 42
		*(u64 *)(r10 - 512) = r1
		call pc+2
		r0 = 0
		exit
`
	for _, tc := range []struct {
		name, callee string
		want         string // "" accepted
		depth        []int
		nops         []int
	}{
		{name: "pattern", callee: `
			*(u64 *)(r10 - 8) = r1
			call 8
			r1 = *(u64 *)(r10 - 8)
			exit`, depth: []int{512, 0}, nops: []int{5, 7}},
		{name: "slot used elsewhere", callee: `
			*(u64 *)(r10 - 8) = r1
			call 8
			r1 = *(u64 *)(r10 - 8)
			r2 = *(u64 *)(r10 - 8)
			exit`, want: "combined stack size of 2 calls is 528"},
		{name: "register the helper clobbers", callee: `
			r0 = 1
			*(u64 *)(r10 - 8) = r0
			call 8
			r0 = *(u64 *)(r10 - 8)
			exit`, want: "combined stack size of 2 calls is 528"},
		{name: "not the lowest slot", callee: `
			r2 = 1
			*(u64 *)(r10 - 16) = r2
			*(u64 *)(r10 - 8) = r1
			call 8
			r1 = *(u64 *)(r10 - 8)
			exit`, want: "combined stack size of 2 calls is 528"},
		{name: "helper with arguments", callee: `
			*(u64 *)(r10 - 8) = r1
			call 7
			r1 = *(u64 *)(r10 - 8)
			exit`, want: "combined stack size of 2 calls is 528"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log strings.Builder
			p := program(t, progtype.XDP, entry+tc.callee)
			res, err := verifier.Verify(context.Background(), p, &verifier.Options{Log: &log, LogLevel: 6})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q\n%s", err, tc.want, log.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			if !slices.Equal(res.StackDepth, tc.depth) || !slices.Equal(res.FastcallNops, tc.nops) {
				t.Errorf("stack depth %v, nops %v; want %v, %v", res.StackDepth, res.FastcallNops, tc.depth, tc.nops)
			}
			if !strings.Contains(log.String(), "stack depth 512+0\n") {
				t.Errorf("the log lacks the stack depths:\n%s", log.String())
			}
		})
	}
}
