package progtype_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestKind_Convert checks, per type and field, which accesses are allowed
// and what each becomes in the runtime layout.
func TestKind_Convert(t *testing.T) {
	for _, tc := range []struct {
		typ    progtype.Type
		attach progtype.AttachType
		insn   string
		want   string // the rewritten instruction, or the error's text
	}{
		// xdp_md: pointers widen to 8 bytes, the rest stays 4.
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 0)", want: "r2 = *(u64 *)(r1 + 0x0)"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 4)", want: "r2 = *(u64 *)(r1 + 0x8)"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 8)", want: "r2 = *(u64 *)(r1 + 0x10)"},
		{typ: progtype.XDP, insn: "w2 = *(u32 *)(r1 + 12)", want: "r2 = *(u32 *)(r1 + 0x18)"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 16)", want: "r2 = *(u32 *)(r1 + 0x1c)"},
		{typ: progtype.XDP, insn: "r2 = *(s32 *)(r1 + 16)", want: "r2 = *(s32 *)(r1 + 0x1c)"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 20)", want: "instruction 0: read of xdp_md.egress_ifindex: only programs attached to a devmap (BPF_XDP_DEVMAP) may read egress_ifindex"},
		{typ: progtype.XDP, attach: progtype.AttachXDPDevMap, insn: "r2 = *(u32 *)(r1 + 20)", want: "r2 = *(u32 *)(r1 + 0x20)"},
		{typ: progtype.XDP, insn: "r2 = *(u16 *)(r1 + 12)", want: "instruction 0: read of xdp_md.ingress_ifindex: a 2-byte load; xdp_md fields are read with 4-byte loads"},
		{typ: progtype.XDP, insn: "r2 = *(u64 *)(r1 + 0)", want: "an 8-byte load; xdp_md fields are read with 4-byte loads"},
		{typ: progtype.XDP, insn: "r2 = *(s32 *)(r1 + 0)", want: "pointer fields may not be loaded sign-extending"},
		{typ: progtype.XDP, insn: "*(u32 *)(r1 + 12) = r2", want: "instruction 0: write to xdp_md.ingress_ifindex: xdp_md is read-only"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 24)", want: "offset 24 is outside xdp_md (24 bytes)"},
		{typ: progtype.XDP, insn: "r2 = *(u32 *)(r1 + 2)", want: "misaligned"},

		// __sk_buff for tc.
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 0)", want: "r2 = *(u32 *)(r1 + 0x30)"},
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 0) = r2", want: "instruction 0: write to __sk_buff.len: the field is read-only"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 76)", want: "r2 = *(u64 *)(r1 + 0x0)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 80)", want: "r2 = *(u64 *)(r1 + 0x8)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 140)", want: "r2 = *(u64 *)(r1 + 0x10)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u16 *)(r1 + 76)", want: "pointer fields are read whole"},
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 8) = r2", want: "*(u32 *)(r1 + 0xa8) = r2"},
		{typ: progtype.SchedCLS, insn: "*(u16 *)(r1 + 8) = r2", want: "a 2-byte store; the field is written with 4-byte stores"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u8 *)(r1 + 9)", want: "r2 = *(u8 *)(r1 + 0xa9)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u64 *)(r1 + 8)", want: "an 8-byte load of a 4-byte field"},
		// tc_index, tc_classid and queue_mapping are u16 in sk_buff.
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 44) = r2", want: "*(u16 *)(r1 + 0xb4) = r2"},
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 72) = 7", want: "*(u16 *)(r1 + 0xb8) = 0x7"},
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 12) = 3", want: "*(u16 *)(r1 + 0xb0) = 0x3"},
		{typ: progtype.SchedCLS, insn: "*(u32 *)(r1 + 12) = 0xffff", want: "goto +0x0"},
		// A narrow load of the upper bytes of a u16 member gives the
		// whole member, as the kernel's unmasked load does.
		{typ: progtype.SchedCLS, insn: "r2 = *(u16 *)(r1 + 18)", want: "r2 = *(u16 *)(r1 + 0x38)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u8 *)(r1 + 17)", want: "r2 = *(u8 *)(r1 + 0x39)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u8 *)(r1 + 7)", want: "r2 = *(u8 *)(r1 + 0x34)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u64 *)(r1 + 48)", want: "r2 = *(u64 *)(r1 + 0xbc)"},
		{typ: progtype.SchedCLS, insn: "*(u8 *)(r1 + 67) = r2", want: "*(u8 *)(r1 + 0xcf) = r2"},
		{typ: progtype.SchedCLS, insn: "*(u64 *)(r1 + 64) = r2", want: "runs past cb[4]"},
		{typ: progtype.SchedCLS, insn: "*(u64 *)(r1 + 152) = r2", want: "*(u64 *)(r1 + 0xa0) = r2"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 152)", want: "tstamp is accessed with 8-byte loads and stores"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u64 *)(r1 + 184)", want: "r2 = *(u64 *)(r1 + 0x28)"},
		{typ: progtype.SchedCLS, insn: "*(u64 *)(r1 + 184) = r2", want: "read-only"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u8 *)(r1 + 180)", want: "r2 = *(u8 *)(r1 + 0x98)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u16 *)(r1 + 180)", want: "tstamp_type is read with 1-byte loads"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u8 *)(r1 + 181)", want: "padding"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 88)", want: "tc programs may not access the socket fields"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u64 *)(r1 + 144)", want: "flow_keys is only for flow dissector programs"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u64 *)(r1 + 168)", want: "r2 = *(u64 *)(r1 + 0x20)"},
		{typ: progtype.SchedCLS, insn: "r2 = *(u32 *)(r1 + 168)", want: "sk is read with an 8-byte load"},
		{typ: progtype.SchedCLS, insn: "*(u64 *)(r1 + 168) = r2", want: "read-only"},

		// lwt: data at the network header, mark, priority and cb writable.
		{typ: progtype.LWTXmit, insn: "r2 = *(u32 *)(r1 + 76)", want: "r2 = *(u64 *)(r1 + 0x0)"},
		{typ: progtype.LWTIn, insn: "*(u32 *)(r1 + 8) = r2", want: "*(u32 *)(r1 + 0xa8) = r2"},
		{typ: progtype.LWTOut, insn: "*(u32 *)(r1 + 44) = r2", want: "lwt programs may write mark, priority and cb[0..4]"},
		{typ: progtype.LWTOut, insn: "r2 = *(u32 *)(r1 + 92)", want: "lwt programs may not access this field"},
		{typ: progtype.LWTSeg6Local, insn: "r2 = *(u32 *)(r1 + 72)", want: "lwt programs may not access this field"},

		// flow_dissector: data, data_end and flow_keys only.
		{typ: progtype.FlowDissector, insn: "r2 = *(u32 *)(r1 + 76)", want: "r2 = *(u64 *)(r1 + 0x0)"},
		{typ: progtype.FlowDissector, insn: "r2 = *(u32 *)(r1 + 80)", want: "r2 = *(u64 *)(r1 + 0x8)"},
		{typ: progtype.FlowDissector, insn: "r2 = *(u64 *)(r1 + 144)", want: "r2 = *(u64 *)(r1 + 0x18)"},
		{typ: progtype.FlowDissector, insn: "r2 = *(u32 *)(r1 + 0)", want: "flow dissectors may read only data, data_end and flow_keys"},
		{typ: progtype.FlowDissector, insn: "*(u32 *)(r1 + 48) = r2", want: "flow dissectors may not write"},
		{typ: progtype.FlowDissector, insn: "r2 = *(s32 *)(r1 + 76)", want: "not sign-extending"},

		// bpf_sock for cgroup_sock: the UAPI layout, rx_queue_mapping in
		// an 8-byte slot; what may be read depends on the attach type.
		{typ: progtype.CgroupSock, insn: "*(u32 *)(r1 + 16) = r2", want: "*(u32 *)(r1 + 0x10) = r2"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u16 *)(r1 + 4)", want: "r2 = *(u16 *)(r1 + 0x4)"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u32 *)(r1 + 76)", want: "r2 = *(u64 *)(r1 + 0x50)"},
		{typ: progtype.CgroupSock, insn: "r2 = *(s16 *)(r1 + 76)", want: "r2 = *(s16 *)(r1 + 0x50)"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u8 *)(r1 + 76)", want: "r2 = *(u8 *)(r1 + 0x50)"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u8 *)(r1 + 49)", want: "r2 = *(u8 *)(r1 + 0x31)"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u16 *)(r1 + 50)", want: "padding"},
		{typ: progtype.CgroupSock, insn: "*(u32 *)(r1 + 4) = r2", want: "the field is read-only"},
		{typ: progtype.CgroupSock, insn: "r2 = *(u32 *)(r1 + 24)", want: "only BPF_CGROUP_INET4_POST_BIND programs may read src_ip4"},
		{typ: progtype.CgroupSock, attach: progtype.AttachCgroupInet4PostBind, insn: "r2 = *(u32 *)(r1 + 24)", want: "r2 = *(u32 *)(r1 + 0x18)"},
		{typ: progtype.CgroupSock, attach: progtype.AttachCgroupInet4PostBind, insn: "r2 = *(u32 *)(r1 + 16)", want: "bound_dev_if, mark and priority"},

		// bpf_sock_ops: reply and sk_txhash are writable.
		{typ: progtype.SockOps, insn: "*(u32 *)(r1 + 4) = r2", want: "*(u32 *)(r1 + 0x4) = r2"},
		{typ: progtype.SockOps, insn: "*(u32 *)(r1 + 8) = r2", want: "the field is read-only"},
		{typ: progtype.SockOps, insn: "r2 = *(u64 *)(r1 + 184)", want: "r2 = *(u64 *)(r1 + 0xb8)"},
		{typ: progtype.SockOps, insn: "r2 = *(u16 *)(r1 + 0)", want: "read with 4-byte loads"},
		{typ: progtype.SockOps, insn: "r2 = *(u8 *)(r1 + 212)", want: "r2 = *(u8 *)(r1 + 0xd4)"},
		{typ: progtype.SockOps, insn: "r2 = *(u32 *)(r1 + 168)", want: "read with 8-byte loads"},

		// bpf_sk_lookup: read-only, narrow loads.
		{typ: progtype.SkLookup, insn: "r2 = *(u8 *)(r1 + 12)", want: "r2 = *(u8 *)(r1 + 0xc)"},
		{typ: progtype.SkLookup, insn: "r2 = *(u16 *)(r1 + 10)", want: "r2 = *(u16 *)(r1 + 0x8)"},
		{typ: progtype.SkLookup, insn: "r2 = *(u32 *)(r1 + 36)", want: "r2 = *(u32 *)(r1 + 0x24)"},
		{typ: progtype.SkLookup, insn: "r2 = *(u32 *)(r1 + 0)", want: "sk is read with an 8-byte load"},
		{typ: progtype.SkLookup, insn: "*(u32 *)(r1 + 8) = r2", want: "read-only"},

		// __sk_buff for socket filters: cb only is writable; no packet
		// pointers.
		{typ: progtype.SocketFilter, insn: "*(u32 *)(r1 + 52) = r2", want: "*(u32 *)(r1 + 0xc0) = r2"},
		{typ: progtype.SocketFilter, insn: "*(u32 *)(r1 + 8) = r2", want: "socket filters may write only cb[0..4]"},
		{typ: progtype.SocketFilter, insn: "r2 = *(u32 *)(r1 + 76)", want: "socket filters may not access this field"},
		{typ: progtype.SocketFilter, insn: "r2 = *(u32 *)(r1 + 72)", want: "socket filters may not access this field"},

		// __sk_buff for cgroup_skb: the socket's fields, no tc_classid.
		{typ: progtype.CgroupSKB, insn: "r2 = *(u32 *)(r1 + 92)", want: "r2 = *(u32 *)(r1 + 0x5c)"},
		{typ: progtype.CgroupSKB, insn: "r2 = *(u16 *)(r1 + 92)", want: "addresses are read with 4-byte loads"},
		{typ: progtype.CgroupSKB, insn: "r2 = *(u32 *)(r1 + 104)", want: "r2 = *(u32 *)(r1 + 0x68)"},
		{typ: progtype.CgroupSKB, insn: "*(u32 *)(r1 + 32) = r2", want: "*(u32 *)(r1 + 0xac) = r2"},
		{typ: progtype.CgroupSKB, insn: "*(u32 *)(r1 + 44) = r2", want: "cgroup_skb programs may write mark, priority, cb[0..4] and tstamp"},
		{typ: progtype.CgroupSKB, insn: "r2 = *(u32 *)(r1 + 140)", want: "cgroup_skb programs may not access this field"},

		// The tracing types read their context as it is.
		{typ: progtype.Kprobe, insn: "r2 = *(u64 *)(r1 + 112)", want: "r2 = *(u64 *)(r1 + 0x70)"},
		{typ: progtype.Kprobe, insn: "r2 = *(u8 *)(r1 + 113)", want: "r2 = *(u8 *)(r1 + 0x71)"},
		{typ: progtype.Kprobe, insn: "r2 = *(u64 *)(r1 + 164)", want: "an 8-byte access at offset 164 runs past the end of pt_regs (168 bytes)"},
		{typ: progtype.Kprobe, insn: "r2 = *(u64 *)(r1 + 4)", want: "misaligned"},
		{typ: progtype.Kprobe, insn: "*(u64 *)(r1 + 0) = r2", want: "instruction 0: write to pt_regs.r15: pt_regs is read-only"},
		{typ: progtype.Tracepoint, insn: "r2 = *(u32 *)(r1 + 8)", want: "r2 = *(u32 *)(r1 + 0x8)"},
		{typ: progtype.Tracepoint, insn: "r2 = *(u32 *)(r1 + 4)", want: "struct trace_entry) are not readable"},
		{typ: progtype.Tracepoint, insn: "r2 = *(u64 *)(r1 + 2048)", want: "outside tracepoint record"},
		{typ: progtype.RawTracepoint, insn: "r2 = *(u64 *)(r1 + 88)", want: "r2 = *(u64 *)(r1 + 0x58)"},
		{typ: progtype.RawTracepoint, insn: "r2 = *(u64 *)(r1 + 96)", want: "outside bpf_raw_tracepoint_args"},
		{typ: progtype.PerfEvent, insn: "r2 = *(u32 *)(r1 + 172)", want: "r2 = *(u32 *)(r1 + 0xac)"},
		{typ: progtype.PerfEvent, insn: "r2 = *(u32 *)(r1 + 128)", want: "registers are read with 8-byte loads"},
	} {
		t.Run(tc.typ.String()+"/"+tc.insn, func(t *testing.T) {
			k, err := progtype.LookupAttach(tc.typ, tc.attach)
			if err != nil {
				t.Fatal(err)
			}
			prog := append(mustParse(t, tc.insn), isa.Instruction{Op: isa.OpExit})
			p, err := k.Convert(prog, []int{0})
			if err != nil {
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %q, want %q", err, tc.want)
				}
				var ae *progtype.AccessError
				if !errors.As(err, &ae) || !errors.Is(err, progtype.ErrContextAccess) || ae.Insn != 0 {
					t.Errorf("error %#v is not an *AccessError for instruction 0", err)
				}
				return
			}
			if got := p.Insns[0].String(); got != tc.want {
				t.Errorf("rewritten to %q, want %q", got, tc.want)
			}
			if len(p.Insns) != len(prog) {
				t.Errorf("the rewrite changed the length: %d slots, was %d", len(p.Insns), len(prog))
			}
		})
	}
}

// TestKind_CheckAccess_layouts checks that every field of every layout
// lies inside its struct and that runtime fields do not overlap.
func TestKind_CheckAccess_layouts(t *testing.T) {
	for _, typ := range []progtype.Type{progtype.XDP, progtype.SchedCLS, progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.PerfEvent} {
		l := mustKind(t, typ).Context()
		used := make([]string, l.RuntimeSize)
		for _, f := range l.Fields {
			if f.Off < 0 || f.Off+f.Size > l.Size {
				t.Errorf("%s.%s at %d+%d lies outside the struct (%d bytes)", l.Name, f.Name, f.Off, f.Size, l.Size)
			}
			if f.Runtime < 0 {
				continue
			}
			for i := f.Runtime; i < f.Runtime+f.RuntimeSize(); i++ {
				if i >= l.RuntimeSize {
					t.Fatalf("%s.%s runs past the runtime layout", l.Name, f.Name)
				}
				if used[i] != "" {
					t.Errorf("%s: runtime byte %d is in %s and %s", l.Name, i, used[i], f.Name)
				}
				used[i] = f.Name
			}
		}
	}
}

func TestLookup(t *testing.T) {
	for _, typ := range []progtype.Type{progtype.XDP, progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT,
		progtype.CgroupSKB, progtype.Kprobe, progtype.Tracepoint, progtype.RawTracepoint, progtype.PerfEvent,
		progtype.CgroupSock, progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit, progtype.LWTSeg6Local,
		progtype.SockOps, progtype.FlowDissector, progtype.SkLookup} {
		k, err := progtype.Lookup(typ)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if k.Type() != typ || k.String() != typ.String() {
			t.Errorf("%s: Kind says %s (%s)", typ, k.Type(), k)
		}
	}
	for _, typ := range []progtype.Type{progtype.SkSKB, progtype.SkMsg, progtype.Tracing, 99} {
		if _, err := progtype.Lookup(typ); !errors.Is(err, progtype.ErrUnsupported) {
			t.Errorf("%s: error %v, want ErrUnsupported", typ, err)
		}
	}
	if _, err := progtype.Lookup(progtype.UserHook); err == nil {
		t.Error("Lookup(UserHook) succeeded")
	}
	if s := progtype.Type(99).String(); s != "Type(99)" {
		t.Errorf("Type(99).String() = %q", s)
	}
}

// TestKind_Allowed spot-checks the kernel's get_func_proto per type.
func TestKind_Allowed(t *testing.T) {
	for _, tc := range []struct {
		typ  progtype.Type
		id   int32
		want bool
	}{
		{progtype.XDP, 44, true},  // xdp_adjust_head
		{progtype.XDP, 9, false},  // skb_store_bytes
		{progtype.XDP, 51, true},  // redirect_map
		{progtype.XDP, 1, true},   // map_lookup_elem
		{progtype.XDP, 16, true},  // get_current_comm: every type's since Linux 6.16
		{progtype.XDP, 67, false}, // get_stack
		{progtype.SchedCLS, 9, true},
		{progtype.SchedCLS, 44, false},
		{progtype.SchedCLS, 18, true},      // skb_vlan_push
		{progtype.SocketFilter, 9, false},  // no skb_store_bytes
		{progtype.SocketFilter, 26, true},  // skb_load_bytes
		{progtype.CgroupSKB, 68, true},     // skb_load_bytes_relative
		{progtype.CgroupSKB, 23, false},    // redirect
		{progtype.Kprobe, 173, true},       // get_func_ip
		{progtype.Kprobe, 27, true},        // get_stackid
		{progtype.Kprobe, 16, true},        // get_current_comm
		{progtype.Tracepoint, 173, false},  // get_func_ip: fentry only
		{progtype.RawTracepoint, 67, true}, // get_stack
		{progtype.PerfEvent, 56, true},     // perf_prog_read_value
		{progtype.Kprobe, 44, false},
		{progtype.SchedCLS, 122, true},    // get_netns_cookie
		{progtype.LWTSeg6Local, 39, true}, // skb_pull_data
		{progtype.CgroupSKB, 187, false},  // set_retval: no errno from ingress
	} {
		if got := mustKind(t, tc.typ).Allowed(tc.id); got != tc.want {
			t.Errorf("%s: Allowed(%d) = %v, want %v", tc.typ, tc.id, got, tc.want)
		}
	}
	k := mustKind(t, progtype.SchedCLS)
	for _, d := range k.Helpers() {
		if !k.Allowed(d.ID) {
			t.Errorf("sched_cls offers helper %d (%s), which it does not allow", d.ID, d.Name)
		}
		if d.Func == nil || d.Name == "" {
			t.Errorf("helper %d has no implementation or name", d.ID)
		}
	}
	ids := k.AllowedHelpers()
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("AllowedHelpers not sorted: %v", ids)
		}
	}
}
