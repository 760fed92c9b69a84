package inspect

// Link is what `bpftool link show` says about a link: its id, type and
// program, and its attach target in the fields of its type (bpftool's
// JSON names).
type Link struct {
	ID     uint32 `json:"id"`
	Type   string `json:"type"`
	ProgID uint32 `json:"prog_id"`

	AttachType string `json:"attach_type,omitempty"` // tcx, cgroup, netns, tracing, netkit
	Ifindex    uint32 `json:"ifindex,omitempty"`     // xdp, tcx, netkit
	// Devname is the name of the interface with Ifindex in waggle's own
	// network namespace: a link in another namespace may name a different
	// interface with the same index, as bpftool's does.
	Devname   string `json:"devname,omitempty"`
	TpName    string `json:"tp_name,omitempty"` // raw_tracepoint, perf_event tracepoints
	CgroupID  uint64 `json:"cgroup_id,omitempty"`
	NetnsIno  uint32 `json:"netns_ino,omitempty"`
	TargetObj uint32 `json:"target_obj_id,omitempty"` // tracing
	TargetBTF uint32 `json:"target_btf_id,omitempty"` // tracing
	EventType string `json:"event_type,omitempty"`    // perf_event: tracepoint, uprobe, uretprobe, kprobe, kretprobe, event
	File      string `json:"file,omitempty"`          // uprobes
	Offset    uint64 `json:"offset,omitempty"`        // uprobes, kprobes
	Func      string `json:"func,omitempty"`          // kprobes
	Addr      uint64 `json:"addr,omitempty"`          // kprobes
	Missed    uint64 `json:"missed,omitempty"`        // kprobes
	Cookie    uint64 `json:"cookie,omitempty"`
	Config    uint64 `json:"config,omitempty"` // perf events
	EventKind uint32 `json:"event_kind,omitempty"`
	Count     uint32 `json:"count,omitempty"` // multi probes
	Pf        uint32 `json:"pf,omitempty"`    // netfilter
	Hook      uint32 `json:"hook,omitempty"`
	Prio      int32  `json:"prio,omitempty"`
	Flags     uint32 `json:"flags,omitempty"`
	// Target is the attach target in one phrase, for text output:
	// "ifindex 2 (veth0)", "tracepoint syscalls/sys_enter_openat".
	Target string `json:"-"`
}
