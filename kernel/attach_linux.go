package kernel

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Attachment is a program attached to a hook: one bpf link for most hooks,
// one per online CPU for HookPerfEvent, a tc filter under a clsact qdisc
// for HookTCX on kernels without TCX (or with Hook.TCLegacy), and a packet
// socket for HookSocket. Close detaches what is not pinned; Pin (Attached.Pin)
// makes it outlive the process.
type Attachment struct {
	// Hook is where the program is attached, as Attach completed it
	// (TCLegacy is set when the fallback to clsact was taken).
	Hook Hook

	links []link.Link
	// cpus are the CPUs of the perf_event links, in the order of links.
	cpus []int
	// sock is HookSocket's packet socket, -1 otherwise.
	sock int
	// tc is the filter of HookTCX's clsact fallback, nil otherwise.
	tc *tcFilter
}

// Links returns the bpf links the attachment holds: one, or one per CPU
// for perf_event; none for socket filters and clsact filters.
func (a *Attachment) Links() []link.Link { return a.links }

// Socket returns the packet socket a socket filter is attached to, or -1.
// The Attachment owns it: Close closes it.
func (a *Attachment) Socket() int { return a.sock }

// Close detaches everything that is not pinned: the links (a pinned link
// stays, held by bpffs), the socket, and a clsact filter unless pinned.
func (a *Attachment) Close() error {
	var errs []error
	for _, l := range a.links {
		errs = append(errs, l.Close())
	}
	a.links = nil
	if a.sock >= 0 {
		errs = append(errs, unix.Close(a.sock))
		a.sock = -1
	}
	if a.tc != nil && !a.tc.pinned {
		errs = append(errs, a.tc.delete())
	}
	a.tc = nil
	return errors.Join(errs...)
}

// Attach attaches prog to the hook h describes, after checking that the
// kernel offers it (HookSupported): a hook the kernel lacks fails with an
// error wrapping ErrNotSupported that names the probe, never with a
// weaker hook in its place. The one fallback is TCX's: on a kernel
// without TCX, a tc filter under a clsact qdisc (what tc(8) attaches),
// reported in the Attachment's Hook.TCLegacy.
func Attach(prog *ebpf.Program, h Hook) (*Attachment, error) {
	if err := h.Check(); err != nil {
		return nil, err
	}
	if want, _ := h.ProgramType(); want != ebpf.UnspecifiedProgram && prog.Type() != want {
		return nil, fmt.Errorf("%v: the program is of type %v; the hook takes %v programs", h, prog.Type(), want)
	}
	if h.Kind == HookTCX && !h.TCLegacy {
		if err := probeTCX(); errors.Is(err, ErrNotSupported) {
			h.TCLegacy = true
		}
	}
	if err := HookSupported(h); err != nil {
		return nil, err
	}
	a := &Attachment{Hook: h, sock: -1}
	l, err := a.attach(prog)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("attach to %v: %w", h, err)
	}
	if l != nil {
		a.links = append(a.links, l)
	}
	return a, nil
}

func (a *Attachment) attach(prog *ebpf.Program) (link.Link, error) {
	h := a.Hook
	switch h.Kind {
	case HookXDP:
		ifc, err := net.InterfaceByName(h.Interface)
		if err != nil {
			return nil, err
		}
		flags := map[XDPMode]link.XDPAttachFlags{XDPGeneric: link.XDPGenericMode, XDPDriver: link.XDPDriverMode, XDPOffload: link.XDPOffloadMode}[h.XDPMode]
		l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifc.Index, Flags: flags})
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.EBUSY) {
			err = fmt.Errorf("%w (%s has an XDP program already: ip link show %s; waggle detach the one waggle pinned)", err, h.Interface, h.Interface)
		}
		return l, err
	case HookTCX:
		ifc, err := net.InterfaceByName(h.Interface)
		if err != nil {
			return nil, err
		}
		if h.TCLegacy {
			a.tc, err = attachClsact(prog, ifc.Index, h.Direction)
			return nil, err
		}
		_, at := h.ProgramType()
		return link.AttachTCX(link.TCXOptions{Program: prog, Interface: ifc.Index, Attach: at})
	case HookTracepoint:
		return link.Tracepoint(h.Group, h.Name, prog, nil)
	case HookRawTracepoint:
		return link.AttachRawTracepoint(link.RawTracepointOptions{Name: h.Name, Program: prog})
	case HookUprobe, HookUretprobe:
		ex, err := link.OpenExecutable(h.Binary)
		if err != nil {
			return nil, err
		}
		opts := &link.UprobeOptions{PID: h.PID, Offset: h.Offset}
		if h.Symbol == "" {
			opts.Address, opts.Offset = h.Offset, 0
		}
		if h.Kind == HookUretprobe {
			return ex.Uretprobe(h.Symbol, prog, opts)
		}
		return ex.Uprobe(h.Symbol, prog, opts)
	case HookKprobe:
		return link.Kprobe(h.Symbol, prog, &link.KprobeOptions{Offset: h.Offset})
	case HookKretprobe:
		return link.Kretprobe(h.Symbol, prog, nil)
	case HookFentry, HookFexit, HookLSM:
		if h.Kind == HookLSM {
			return link.AttachLSM(link.LSMOptions{Program: prog})
		}
		return link.AttachTracing(link.TracingOptions{Program: prog})
	case HookPerfEvent:
		return nil, a.attachPerfEvents(prog)
	case HookCgroup:
		at, _, err := CgroupHook(h.CgroupAttach)
		if err != nil {
			return nil, err
		}
		return link.AttachCgroup(link.CgroupOptions{Path: h.CgroupPath, Attach: at, Program: prog})
	case HookSocket:
		return nil, a.attachSocket(prog)
	}
	return nil, fmt.Errorf("unknown hook kind %v", h.Kind)
}

// attachPerfEvents opens a CPU-clock perf event sampling at the hook's
// frequency on every online CPU and links prog to each.
func (a *Attachment) attachPerfEvents(prog *ebpf.Program) error {
	cpus, err := onlineCPUs()
	if err != nil {
		return err
	}
	for _, cpu := range cpus {
		attr := &unix.PerfEventAttr{
			Type:   unix.PERF_TYPE_SOFTWARE,
			Config: unix.PERF_COUNT_SW_CPU_CLOCK,
			Size:   unix.PERF_ATTR_SIZE_VER0,
			Sample: a.Hook.Frequency,
			Bits:   unix.PerfBitFreq,
		}
		fd, err := unix.PerfEventOpen(attr, -1, cpu, -1, unix.PERF_FLAG_FD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("perf_event_open cpu-clock on CPU %d: %w", cpu, err)
		}
		l, err := link.AttachRawLink(link.RawLinkOptions{Target: fd, Program: prog, Attach: ebpf.AttachPerfEvent})
		// The link holds the event now (or nothing does).
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("link to the perf event on CPU %d: %w", cpu, err)
		}
		a.links = append(a.links, l)
		a.cpus = append(a.cpus, cpu)
	}
	return nil
}

// attachSocket opens a packet socket bound to the hook's interface and
// attaches prog to it with SO_ATTACH_BPF: the socket then receives what
// the filter passes (as many bytes of each packet as it returns).
func (a *Attachment) attachSocket(prog *ebpf.Program) error {
	ifc, err := net.InterfaceByName(a.Hook.Interface)
	if err != nil {
		return err
	}
	proto := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return fmt.Errorf("packet socket (needs CAP_NET_RAW): %w", err)
	}
	a.sock = fd
	// Filter first, bind second: nothing reaches the socket unfiltered.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_BPF, prog.FD()); err != nil {
		return fmt.Errorf("SO_ATTACH_BPF: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		return fmt.Errorf("bind to %s: %w", a.Hook.Interface, err)
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// onlineCPUs reads /sys/devices/system/cpu/online ("0-3,5").
func onlineCPUs() ([]int, error) {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return nil, err
	}
	return parseCPUList(strings.TrimSpace(string(b)))
}

func parseCPUList(s string) ([]int, error) {
	var cpus []int
	for _, r := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(r, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return nil, fmt.Errorf("CPU list %q: %w", s, err)
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a || b-a > 1<<16 {
				return nil, fmt.Errorf("CPU list %q: bad range %q", s, r)
			}
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// tcFilter is a bpf filter in direct-action mode under an interface's
// clsact qdisc: TCX's fallback.
type tcFilter struct {
	ifindex   int
	dir       Direction
	prio      uint16
	handle    uint32
	progID    ebpf.ProgramID
	addedQdsc bool // the qdisc was created for it
	pinned    bool // its program is pinned with the filter's name: Detach removes it
}

func (f *tcFilter) parent() uint32 {
	if f.dir == Egress {
		return netlink.HANDLE_MIN_EGRESS
	}
	return netlink.HANDLE_MIN_INGRESS
}

// attachClsact adds a clsact qdisc to the interface if it has none, and
// a bpf filter running prog (direct action) at the first free priority.
func attachClsact(prog *ebpf.Program, ifindex int, dir Direction) (*tcFilter, error) {
	lnk, err := netlink.LinkByIndex(ifindex)
	if err != nil {
		return nil, fmt.Errorf("clsact: interface %d: %w", ifindex, err)
	}
	f := &tcFilter{ifindex: ifindex, dir: dir, handle: 1}
	info, err := prog.Info()
	if err != nil {
		return nil, fmt.Errorf("clsact: program info: %w", err)
	}
	id, _ := info.ID()
	f.progID = id
	qdisc := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	switch err := netlink.QdiscAdd(qdisc); {
	case err == nil:
		f.addedQdsc = true
	case errors.Is(err, unix.EEXIST):
	default:
		return nil, fmt.Errorf("add a clsact qdisc to %s: %w", lnk.Attrs().Name, err)
	}
	existing, err := netlink.FilterList(lnk, f.parent())
	if err != nil {
		f.delete()
		return nil, fmt.Errorf("list the tc filters of %s: %w", lnk.Attrs().Name, err)
	}
	used := map[uint16]bool{}
	for _, e := range existing {
		used[e.Attrs().Priority] = true
	}
	for f.prio = 1; used[f.prio]; f.prio++ {
	}
	filter := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: ifindex, Parent: f.parent(), Handle: f.handle, Protocol: unix.ETH_P_ALL, Priority: f.prio},
		Fd:          prog.FD(), Name: "waggle", DirectAction: true,
	}
	if err := netlink.FilterAdd(filter); err != nil {
		f.delete()
		return nil, fmt.Errorf("add a bpf filter to %s %v: %w", lnk.Attrs().Name, dir, err)
	}
	return f, nil
}

// delete removes the filter, if it still runs the program it was made
// for, and the qdisc if it was made for the filter and holds nothing else.
func (f *tcFilter) delete() error {
	lnk, err := netlink.LinkByIndex(f.ifindex)
	if err != nil {
		return nil // the interface is gone, and its filters with it
	}
	filters, err := netlink.FilterList(lnk, f.parent())
	if err != nil {
		return fmt.Errorf("list the tc filters of %s: %w", lnk.Attrs().Name, err)
	}
	var errs []error
	for _, e := range filters {
		bf, ok := e.(*netlink.BpfFilter)
		if ok && bf.Priority == f.prio && bf.Handle == f.handle && ebpf.ProgramID(bf.Id) == f.progID {
			if err := netlink.FilterDel(bf); err != nil {
				errs = append(errs, fmt.Errorf("delete the tc filter of %s: %w", lnk.Attrs().Name, err))
			}
		}
	}
	if f.addedQdsc {
		in, _ := netlink.FilterList(lnk, netlink.HANDLE_MIN_INGRESS)
		eg, _ := netlink.FilterList(lnk, netlink.HANDLE_MIN_EGRESS)
		if len(in)+len(eg) == 0 {
			qdisc := &netlink.GenericQdisc{
				QdiscAttrs: netlink.QdiscAttrs{LinkIndex: f.ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
				QdiscType:  "clsact",
			}
			if err := netlink.QdiscDel(qdisc); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EINVAL) {
				errs = append(errs, fmt.Errorf("delete the clsact qdisc of %s: %w", lnk.Attrs().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// pinName is the name the filter's program is pinned under: it holds
// what Detach needs to find the filter again.
func (f *tcFilter) pinName() string {
	q := ""
	if f.addedQdsc {
		q = "_qdisc"
	}
	return fmt.Sprintf("tc_%d_%v_%d_%d%s", f.ifindex, f.dir, f.prio, f.handle, q)
}

// parseTCPin reads a pinName back.
func parseTCPin(name string) (*tcFilter, bool) {
	parts := strings.Split(name, "_")
	if len(parts) < 5 || len(parts) > 6 || parts[0] != "tc" || len(parts) == 6 && parts[5] != "qdisc" {
		return nil, false
	}
	ifindex, err1 := strconv.Atoi(parts[1])
	dir, err2 := ParseDirection(parts[2])
	prio, err3 := strconv.ParseUint(parts[3], 10, 16)
	handle, err4 := strconv.ParseUint(parts[4], 10, 32)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return nil, false
	}
	return &tcFilter{ifindex: ifindex, dir: dir, prio: uint16(prio), handle: uint32(handle), addedQdsc: len(parts) == 6}, true
}
