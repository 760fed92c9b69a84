//go:build linux

package progtype_test

import (
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/progtype"
)

// Linux's negative offsets of the legacy packet loads
// (include/uapi/linux/filter.h).
const (
	skfNetOff = -0x100000
	skfLLOff  = -0x200000
)

// TestKernel_ldAbsNegative runs legacy packet loads (LD_ABS, LD_IND) at
// SKF_LL_OFF (the MAC header) and SKF_NET_OFF (the network header) offsets,
// and past them, in socket filters (whose data starts at the network
// header) and tc programs (at the MAC header), on every test packet, in
// Linux and in waggle: bpf_skb_load_helper_* with its negative-offset
// rules, loads that fail ending the program with 0, and loads after a
// helper moved the headers.
func TestKernel_ldAbsNegative(t *testing.T) {
	mustKernel(t)
	ll, net := func(k int) int { return skfLLOff + k }, func(k int) int { return skfNetOff + k }
	cases := []struct {
		name string
		body string
	}{
		{"headers", fmt.Sprintf(`
			r0 = *(u16 *)skb[%d]
			r7 = r0
			r0 = *(u32 *)skb[%d]
			r7 ^= r0
			r0 = *(u8 *)skb[%d]
			r7 <<= 8
			r7 ^= r0
			r0 = *(u32 *)skb[%d]
			r7 ^= r0
			r0 = *(u16 *)skb[0]
			r7 ^= r0
			r0 = r7`, ll(12), ll(0), net(9), net(12))},
		{"indirect", fmt.Sprintf(`
			r8 = %d
			r0 = *(u32 *)skb[r8 + 16]
			r7 = r0
			r8 = %d
			r0 = *(u16 *)skb[r8 + 6]
			r7 ^= r0
			r8 = -1
			r0 = *(u8 *)skb[r8 + 1]
			r7 ^= r0
			r0 = r7`, net(0), ll(0))},
		{"end of the packet", fmt.Sprintf(`
			r0 = *(u8 *)skb[%d]
			r7 = r0
			r0 = *(u8 *)skb[%d]
			r7 ^= r0
			r0 = r7`, net(20), ll(33))},
		{"below SKF_LL_OFF fails", fmt.Sprintf("r0 = *(u8 *)skb[%d]\nr0 = 7", ll(-1))},
		{"SKF_NET_OFF - 1 fails", fmt.Sprintf("r0 = *(u8 *)skb[%d]\nr0 = 7", net(-1))},
		{"past the end fails", fmt.Sprintf("r0 = *(u16 *)skb[%d]\nr0 = 7", ll(5000))},
		{"SKF_AD_OFF fails", "r0 = *(u32 *)skb[-0x1000]\nr0 = 7"},
	}
	runs := 0
	for _, typ := range []progtype.Type{progtype.SocketFilter, progtype.SchedCLS} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("%s/%s", typ, c.name), func(t *testing.T) {
				prog := mustParse(t, "r6 = r1\n"+c.body+"\nexit")
				kp := mustKernelLoad(t, prog, typ)
				defer kp.Close()
				k := mustKind(t, typ)
				for _, in := range skbInputs() {
					runs++
					diffRun(t, k, prog, kp, in.name, in.in)
				}
			})
		}
	}
	// After bpf_skb_change_head (tc) the MAC header and the data start 8
	// bytes earlier: the loads follow.
	t.Run("after change_head", func(t *testing.T) {
		prog := mustParse(t, fmt.Sprintf(`
			r6 = r1
			r2 = 8
			r3 = 0
			call 43
			r0 = *(u16 *)skb[%d]
			r7 = r0
			r0 = *(u16 *)skb[%d]
			r7 <<= 16
			r7 ^= r0
			r0 = *(u16 *)skb[20]
			r7 ^= r0
			r0 = r7
			exit`, ll(20), net(2)))
		kp := mustKernelLoad(t, prog, progtype.SchedCLS)
		defer kp.Close()
		for _, in := range skbInputs() {
			runs++
			diffRun(t, mustKind(t, progtype.SchedCLS), prog, kp, in.name, in.in)
		}
	})
	t.Logf("%d runs compared", runs)
}
