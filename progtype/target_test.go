package progtype_test

import (
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/progtype"
)

// targetPair is one (program type, helper) pair and whether each target
// offers the helper to the type. TestTargetLinux_source checks linux
// against Linux 6.12's get_func_proto functions.
type targetPair struct {
	typ    progtype.Type
	attach progtype.AttachType
	helper string
	// user is waggle's runtime; linux upstream Linux for a privileged
	// program, unpriv for an unprivileged one.
	user, linux, unpriv bool
}

var targetPairs = []targetPair{
	// xdp_func_proto has bpf_xdp_adjust_meta, which waggle implements.
	{typ: progtype.XDP, helper: "xdp_adjust_meta", user: true, linux: true, unpriv: true},
	{typ: progtype.SchedCLS, helper: "xdp_adjust_meta"},
	{typ: progtype.XDP, helper: "skb_store_bytes"},
	// tc_cls_act_func_proto (CONFIG_XFRM): not in waggle's runtime.
	{typ: progtype.SchedCLS, helper: "skb_get_xfrm_state", linux: true, unpriv: true},
	{typ: progtype.XDP, helper: "skb_get_xfrm_state"},
	// sk_filter_func_proto has no packet writes.
	{typ: progtype.SocketFilter, helper: "skb_store_bytes"},
	{typ: progtype.SocketFilter, helper: "skb_load_bytes", user: true, linux: true, unpriv: true},
	{typ: progtype.SocketFilter, helper: "map_lookup_elem", user: true, linux: true, unpriv: true},
	// bpf_base_func_proto's CAP_BPF part.
	{typ: progtype.SocketFilter, helper: "loop", user: true, linux: true},
	{typ: progtype.XDP, helper: "timer_init", linux: true},
	// ... its CAP_PERFMON part.
	{typ: progtype.SocketFilter, helper: "probe_read_kernel", user: true, linux: true},
	// bpf_sk_base_func_proto's casts need CAP_PERFMON.
	{typ: progtype.SocketFilter, helper: "skc_to_tcp_sock", linux: true},
	// cg_skb_func_proto: socket storage without a capability.
	{typ: progtype.CgroupSKB, helper: "sk_storage_get", linux: true, unpriv: true},
	{typ: progtype.CgroupSKB, helper: "sk_fullsock", user: true, linux: true, unpriv: true},
	{typ: progtype.SocketFilter, helper: "sk_fullsock"},
	// lwt_in has bpf_lwt_push_encap, lwt_out not.
	{typ: progtype.LWTIn, helper: "lwt_push_encap", linux: true, unpriv: true},
	{typ: progtype.LWTOut, helper: "lwt_push_encap"},
	// kprobe_prog_func_proto (CONFIG_BPF_KPROBE_OVERRIDE).
	{typ: progtype.Kprobe, helper: "override_return", linux: true, unpriv: true},
	{typ: progtype.Tracepoint, helper: "override_return"},
	{typ: progtype.PerfEvent, helper: "read_branch_records", linux: true, unpriv: true},
	// sock_addr_func_proto: bpf_bind only at connect.
	{typ: progtype.CgroupSockAddr, attach: progtype.AttachCgroupInet4Connect, helper: "bind", linux: true, unpriv: true},
	{typ: progtype.CgroupSockAddr, attach: progtype.AttachCgroupUDP4Sendmsg, helper: "bind"},
}

func helperID(t *testing.T, name string) int32 {
	t.Helper()
	for id := int32(1); id < 256; id++ {
		if helpers.Name(id) == name {
			return id
		}
	}
	t.Fatalf("no helper %q", name)
	return 0
}

// TestTargetHelpers checks, pair by pair, which helpers targets user and
// linux offer a program type, privileged and not, and that each refusal
// says why.
func TestTargetHelpers(t *testing.T) {
	for _, tc := range targetPairs {
		kind, err := progtype.LookupAttach(tc.typ, tc.attach)
		if err != nil {
			t.Fatal(err)
		}
		id := helperID(t, tc.helper)
		for _, c := range []struct {
			target progtype.Target
			unpriv bool
			want   bool
		}{
			{progtype.TargetUser, false, tc.user},
			{progtype.TargetLinux, false, tc.linux},
			{progtype.TargetLinux, true, tc.unpriv},
		} {
			hs, err := kind.TargetHelpers(c.target, c.unpriv, []int32{id})
			if err != nil {
				t.Fatalf("%v %v: %v", kind, c.target, err)
			}
			_, got := hs[id]
			why, hint := kind.HelperUnavailable(c.target, c.unpriv, id)
			if got != c.want || (why == "") != c.want || (hint == "") != c.want {
				t.Errorf("%v, bpf_%s, target %v, unprivileged %v: offered %v, want %v (why %q, hint %q)", kind, tc.helper, c.target, c.unpriv, got, c.want, why, hint)
			}
			if !c.want && c.target != progtype.TargetUser && tc.linux && !strings.Contains(why, "CAP_") {
				t.Errorf("%v, bpf_%s: refused unprivileged for %q, not a capability", kind, tc.helper, why)
			}
		}
	}
}

// TestTargetHelpers_linuxCoversUser checks that every type's target linux
// has a prototype for every helper Allowed accepts and holds target user.
func TestTargetHelpers_linuxCoversUser(t *testing.T) {
	for _, ty := range []progtype.Type{progtype.XDP, progtype.SocketFilter, progtype.SchedCLS, progtype.CgroupSKB,
		progtype.LWTIn, progtype.LWTXmit, progtype.LWTSeg6Local, progtype.CgroupSock, progtype.SockOps,
		progtype.FlowDissector, progtype.SkLookup, progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.PerfEvent} {
		kind, err := progtype.Lookup(ty)
		if err != nil {
			t.Fatal(err)
		}
		user, _ := kind.TargetHelpers(progtype.TargetUser, false, nil)
		linux, _ := kind.TargetHelpers(progtype.TargetLinux, false, nil)
		for _, id := range kind.AllowedHelpers() {
			if _, ok := linux[id]; !ok {
				t.Errorf("%v: no prototype of bpf_%s for target linux", kind, helpers.Name(id))
			}
		}
		for id := range user {
			if _, ok := linux[id]; !ok {
				t.Errorf("%v: bpf_%s is in target user, not in target linux", kind, helpers.Name(id))
			}
		}
		if len(linux) != len(kind.AllowedHelpers()) || len(user) >= len(linux) {
			t.Errorf("%v: %d helpers for user, %d for linux, %d allowed", kind, len(user), len(linux), len(kind.AllowedHelpers()))
		}
	}
}

func TestParseTarget(t *testing.T) {
	for _, name := range progtype.TargetNames() {
		tgt, err := progtype.ParseTarget(name)
		if err != nil || tgt.String() != name {
			t.Errorf("%q: %v, %v", name, tgt, err)
		}
	}
	if tgt, _ := progtype.ParseTarget("user"); tgt != progtype.TargetUser || progtype.Target(0) != progtype.TargetUser {
		t.Error("user is not the zero Target")
	}
	for _, bad := range []string{"", "foo", "Linux", "host "} {
		_, err := progtype.ParseTarget(bad)
		if err == nil || !strings.Contains(err.Error(), "user, linux, host") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestTargetHelpers_hook(t *testing.T) {
	type ctx struct{ A, B uint64 }
	h, err := progtype.NewHook[ctx]("target_hook")
	if err != nil {
		t.Fatal(err)
	}
	hook := h.Kind()
	for _, tgt := range []progtype.Target{progtype.TargetLinux, progtype.TargetHost} {
		if _, err := hook.TargetHelpers(tgt, false, nil); err == nil || !strings.Contains(err.Error(), "user hook") {
			t.Errorf("%v: %v", tgt, err)
		}
	}
	if _, err := hook.TargetHelpers(progtype.TargetUser, false, nil); err != nil {
		t.Error(err)
	}
}
