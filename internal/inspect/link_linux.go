//go:build linux

package inspect

import (
	"fmt"
	"net"

	"github.com/cilium/ebpf/link"
)

// Links describes every link in the kernel, by id.
func Links() ([]Link, error) {
	var out []Link
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		info, err := it.Link.Info()
		if err != nil {
			return out, fmt.Errorf("link id %d: %w", it.ID, err)
		}
		out = append(out, DescribeLink(info))
	}
	if err := it.Err(); err != nil {
		return out, privileged(err)
	}
	return out, nil
}

// DescribeLink turns cilium/ebpf's link info into bpftool's fields.
func DescribeLink(info *link.Info) Link {
	l := Link{ID: uint32(info.ID), Type: LinkTypeName(uint32(info.Type)), ProgID: uint32(info.Program)}
	iface := func(ifindex uint32) {
		l.Ifindex = ifindex
		l.Target = fmt.Sprintf("ifindex %d", ifindex)
		if ifc, err := net.InterfaceByIndex(int(ifindex)); err == nil {
			l.Devname = ifc.Name
			l.Target += " (" + ifc.Name + ")"
		}
	}
	switch {
	case info.XDP() != nil:
		iface(info.XDP().Ifindex)
	case info.TCX() != nil:
		x := info.TCX()
		iface(x.Ifindex)
		l.AttachType = AttachTypeName(uint32(x.AttachType))
		l.Target += " " + l.AttachType
	case info.Netkit() != nil:
		x := info.Netkit()
		iface(x.Ifindex)
		l.AttachType = AttachTypeName(uint32(x.AttachType))
		l.Target += " " + l.AttachType
	case info.Cgroup() != nil:
		x := info.Cgroup()
		l.CgroupID, l.AttachType = x.CgroupId, AttachTypeName(uint32(x.AttachType))
		l.Target = fmt.Sprintf("cgroup %d %s", x.CgroupId, l.AttachType)
	case info.NetNs() != nil:
		x := info.NetNs()
		l.NetnsIno, l.AttachType = x.NetnsInode, AttachTypeName(uint32(x.AttachType))
		l.Target = fmt.Sprintf("netns %d %s", x.NetnsInode, l.AttachType)
	case info.Tracing() != nil:
		x := info.Tracing()
		l.AttachType, l.TargetObj, l.TargetBTF = AttachTypeName(uint32(x.AttachType)), x.TargetObjectId, uint32(x.TargetBtfId)
		l.Target = fmt.Sprintf("%s target_obj_id %d target_btf_id %d", l.AttachType, x.TargetObjectId, x.TargetBtfId)
	case info.RawTracepoint() != nil:
		l.TpName = info.RawTracepoint().Name
		l.Target = "raw_tracepoint " + l.TpName
	case info.Netfilter() != nil:
		x := info.Netfilter()
		l.Pf, l.Hook, l.Prio, l.Flags = uint32(x.ProtocolFamily), uint32(x.Hook), x.Priority, x.Flags
		l.Target = fmt.Sprintf("netfilter pf %d hook %d prio %d", l.Pf, l.Hook, l.Prio)
	case info.KprobeMulti() != nil:
		x := info.KprobeMulti()
		l.Count, l.Flags, l.Missed = x.Count, x.Flags, x.Missed
		l.Target = fmt.Sprintf("kprobe_multi %d functions", x.Count)
	case info.UprobeMulti() != nil:
		x := info.UprobeMulti()
		l.Count, l.Flags, l.Missed, l.File = x.Count, x.Flags, x.Missed, x.File
		l.Target = fmt.Sprintf("uprobe_multi %s (%d offsets)", x.File, x.Count)
	case info.PerfEvent() != nil:
		pe := info.PerfEvent()
		switch pe.Type {
		case link.PerfEventTracepoint:
			l.EventType = "tracepoint"
		case link.PerfEventUprobe:
			l.EventType = "uprobe"
		case link.PerfEventUretprobe:
			l.EventType = "uretprobe"
		case link.PerfEventKprobe:
			l.EventType = "kprobe"
		case link.PerfEventKretprobe:
			l.EventType = "kretprobe"
		case link.PerfEventEvent:
			l.EventType = "event"
		}
		switch {
		case pe.Tracepoint() != nil:
			l.TpName, l.Cookie = pe.Tracepoint().Tracepoint, pe.Tracepoint().Cookie
			l.Target = "tracepoint " + l.TpName
		case pe.Uprobe() != nil:
			u := pe.Uprobe()
			l.File, l.Offset, l.Cookie = u.File, uint64(u.Offset), u.Cookie
			l.Target = fmt.Sprintf("%s %s+%#x", l.EventType, u.File, u.Offset)
		case pe.Kprobe() != nil:
			k := pe.Kprobe()
			l.Func, l.Offset, l.Addr, l.Missed = k.Function, uint64(k.Offset), k.Address, k.Missed
			l.Target = fmt.Sprintf("%s %s+%#x", l.EventType, k.Function, k.Offset)
		case pe.Event() != nil:
			e := pe.Event()
			l.Config, l.EventKind, l.Cookie = e.Config, e.Type, e.Cookie
			l.Target = fmt.Sprintf("perf event type %d config %d", e.Type, e.Config)
		default:
			l.Target = l.EventType
		}
	}
	return l
}
