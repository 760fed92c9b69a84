package progtype

import "fmt"

// Type is a program type, numbered as Linux numbers them (enum
// bpf_prog_type in include/uapi/linux/bpf.h). It fixes the context a
// program receives, how its context accesses are rewritten, which helpers
// it may call and what a run returns.
type Type uint32

// Program types. The values are Linux's; UserHook is waggle's own and lies
// outside the range Linux uses.
const (
	Unspec          Type = 0  // BPF_PROG_TYPE_UNSPEC
	SocketFilter    Type = 1  // BPF_PROG_TYPE_SOCKET_FILTER: ctx is __sk_buff, data at the network header
	Kprobe          Type = 2  // BPF_PROG_TYPE_KPROBE (also uprobes): ctx is struct pt_regs
	SchedCLS        Type = 3  // BPF_PROG_TYPE_SCHED_CLS: tc classifier, ctx is __sk_buff, data at the MAC header
	SchedACT        Type = 4  // BPF_PROG_TYPE_SCHED_ACT: tc action, as SchedCLS
	Tracepoint      Type = 5  // BPF_PROG_TYPE_TRACEPOINT: ctx is the raw trace record
	XDP             Type = 6  // BPF_PROG_TYPE_XDP: ctx is xdp_md
	PerfEvent       Type = 7  // BPF_PROG_TYPE_PERF_EVENT: ctx is bpf_perf_event_data
	CgroupSKB       Type = 8  // BPF_PROG_TYPE_CGROUP_SKB: ctx is __sk_buff, data at the network header
	CgroupSock      Type = 9  // BPF_PROG_TYPE_CGROUP_SOCK: ctx is struct bpf_sock
	LWTIn           Type = 10 // BPF_PROG_TYPE_LWT_IN: ctx is __sk_buff, data at the network header
	LWTOut          Type = 11 // BPF_PROG_TYPE_LWT_OUT: as LWTIn
	LWTXmit         Type = 12 // BPF_PROG_TYPE_LWT_XMIT: as LWTIn, and may write the packet
	SockOps         Type = 13 // BPF_PROG_TYPE_SOCK_OPS: ctx is struct bpf_sock_ops
	SkSKB           Type = 14 // BPF_PROG_TYPE_SK_SKB
	CgroupDevice    Type = 15 // BPF_PROG_TYPE_CGROUP_DEVICE
	SkMsg           Type = 16 // BPF_PROG_TYPE_SK_MSG
	RawTracepoint   Type = 17 // BPF_PROG_TYPE_RAW_TRACEPOINT: ctx is u64 args[]
	CgroupSockAddr  Type = 18 // BPF_PROG_TYPE_CGROUP_SOCK_ADDR
	LWTSeg6Local    Type = 19 // BPF_PROG_TYPE_LWT_SEG6LOCAL: as LWTIn
	LircMode2       Type = 20 // BPF_PROG_TYPE_LIRC_MODE2
	SkReuseport     Type = 21 // BPF_PROG_TYPE_SK_REUSEPORT
	FlowDissector   Type = 22 // BPF_PROG_TYPE_FLOW_DISSECTOR: ctx is __sk_buff with flow_keys
	CgroupSysctl    Type = 23 // BPF_PROG_TYPE_CGROUP_SYSCTL
	RawTracepointW  Type = 24 // BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE
	CgroupSockopt   Type = 25 // BPF_PROG_TYPE_CGROUP_SOCKOPT
	Tracing         Type = 26 // BPF_PROG_TYPE_TRACING
	StructOps       Type = 27 // BPF_PROG_TYPE_STRUCT_OPS
	Ext             Type = 28 // BPF_PROG_TYPE_EXT
	LSM             Type = 29 // BPF_PROG_TYPE_LSM
	SkLookup        Type = 30 // BPF_PROG_TYPE_SK_LOOKUP: ctx is struct bpf_sk_lookup
	Syscall         Type = 31 // BPF_PROG_TYPE_SYSCALL
	Netfilter       Type = 32 // BPF_PROG_TYPE_NETFILTER
	UserHook        Type = 1 << 31
	maxLinuxType         = Netfilter
	userHookTypeTag      = "user_hook"
	unsupportedHint      = "waggle runs socket_filter, kprobe, sched_cls, sched_act, tracepoint, xdp, perf_event, cgroup_skb, cgroup_sock, lwt_in, lwt_out, lwt_xmit, lwt_seg6local, sock_ops, raw_tracepoint, cgroup_sock_addr, flow_dissector, sk_lookup and user hooks"
)

var typeNames = [...]string{
	"unspec", "socket_filter", "kprobe", "sched_cls", "sched_act", "tracepoint", "xdp",
	"perf_event", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out", "lwt_xmit", "sock_ops",
	"sk_skb", "cgroup_device", "sk_msg", "raw_tracepoint", "cgroup_sock_addr",
	"lwt_seg6local", "lirc_mode2", "sk_reuseport", "flow_dissector", "cgroup_sysctl",
	"raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm",
	"sk_lookup", "syscall", "netfilter",
}

// String returns the name bpftool uses ("xdp", "sched_cls").
func (t Type) String() string {
	if t <= maxLinuxType {
		return typeNames[t]
	}
	if t == UserHook {
		return userHookTypeTag
	}
	return fmt.Sprintf("Type(%d)", uint32(t))
}

// AttachType refines a program type (enum bpf_attach_type in
// include/uapi/linux/bpf.h, BPF_PROG_LOAD's expected_attach_type). Only the
// values that change what a program may do are named here.
type AttachType uint32

// Attach types that change context access or helpers.
const (
	AttachNone             AttachType = 0  // the default (also BPF_CGROUP_INET_INGRESS)
	AttachCgroupInetEgress AttachType = 1  // BPF_CGROUP_INET_EGRESS
	AttachCgroupSockOps    AttachType = 3  // BPF_CGROUP_SOCK_OPS
	AttachFlowDissector    AttachType = 17 // BPF_FLOW_DISSECTOR
	AttachXDPDevMap        AttachType = 33 // BPF_XDP_DEVMAP: xdp_md.egress_ifindex is readable
	AttachXDPCPUMap        AttachType = 35 // BPF_XDP_CPUMAP
	AttachSkLookup         AttachType = 36 // BPF_SK_LOOKUP: sk_lookup's only attach type
	AttachXDP              AttachType = 37 // BPF_XDP
	AttachKprobeMulti      AttachType = 42 // BPF_TRACE_KPROBE_MULTI
	AttachUprobeMulti      AttachType = 48 // BPF_TRACE_UPROBE_MULTI
)

// The attach types of the cgroup socket programs are in ctx_sock.go.
