package waggle

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// VerdictName names a program's return value as its program type defines
// it: XDP_DROP, TC_ACT_SHOT, "accept 60 bytes" for a socket filter, the
// number otherwise.
func (p *Program) VerdictName(ret uint32) string {
	switch p.typ {
	case ebpf.XDP:
		if int(ret) < len(xdpActions) {
			return xdpActions[ret]
		}
	case ebpf.SchedCLS, ebpf.SchedACT:
		if name, ok := tcActions[int32(ret)]; ok {
			return name
		}
	case ebpf.SocketFilter:
		if ret == 0 {
			return "drop"
		}
		return fmt.Sprintf("accept %d bytes", ret)
	case ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr:
		if ret&1 == 1 {
			return "allow"
		}
		return "deny"
	}
	return fmt.Sprint(int32(ret))
}

// Forwards reports whether the packet goes on after the program returned
// ret: XDP_PASS and XDP_TX (sent back out, modified), TC_ACT_OK and
// TC_ACT_UNSPEC, a socket filter's nonzero return (the packet cut to that
// length, see Truncate), cgroup_skb's allow.
func (p *Program) Forwards(ret uint32) bool {
	switch p.typ {
	case ebpf.XDP:
		return ret == 2 || ret == 3
	case ebpf.SchedCLS, ebpf.SchedACT:
		return int32(ret) == 0 || int32(ret) == -1 || int32(ret) == 3
	case ebpf.SocketFilter:
		return ret != 0
	case ebpf.CGroupSKB, ebpf.CGroupSock, ebpf.CGroupSockAddr:
		return ret&1 == 1
	}
	return true
}

// Truncate returns the part of packet a socket filter that returned ret
// keeps (all of it for other types).
func (p *Program) Truncate(ret uint32, packet []byte) []byte {
	if p.typ == ebpf.SocketFilter && int(ret) < len(packet) {
		return packet[:ret]
	}
	return packet
}

var xdpActions = []string{"XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"}

var tcActions = map[int32]string{
	-1: "TC_ACT_UNSPEC", 0: "TC_ACT_OK", 1: "TC_ACT_RECLASSIFY", 2: "TC_ACT_SHOT",
	3: "TC_ACT_PIPE", 4: "TC_ACT_STOLEN", 5: "TC_ACT_QUEUED", 6: "TC_ACT_REPEAT", 7: "TC_ACT_REDIRECT",
}
