package kernel

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
)

// HookKind is the kind of place in the kernel a program is attached to.
type HookKind uint8

// The hooks Attach knows. Each takes programs of one type (Hook.ProgramType).
const (
	HookNone          HookKind = iota
	HookXDP                    // an interface's XDP hook: Interface, XDPMode
	HookTCX                    // an interface's tc hook: Interface, Direction (TCX, or a clsact qdisc)
	HookTracepoint             // a tracepoint: Group, Name
	HookRawTracepoint          // a raw tracepoint: Name
	HookUprobe                 // a function's entry in a binary: Binary, Symbol, Offset, PID
	HookUretprobe              // a function's return in a binary: as HookUprobe
	HookPerfEvent              // the CPU clock sampled at Frequency Hz, on every CPU
	HookCgroup                 // a cgroup: CgroupPath, AttachType
	HookSocket                 // a socket filter (SO_ATTACH_BPF) on a packet socket bound to Interface
	HookKprobe                 // a kernel function's entry: Symbol, Offset
	HookKretprobe              // a kernel function's return: Symbol
	HookFentry                 // a kernel function's entry through a BPF trampoline: Name
	HookFexit                  // a kernel function's return through a BPF trampoline: Name
	HookLSM                    // an LSM hook: Name
)

var hookNames = [...]string{
	HookNone: "none", HookXDP: "xdp", HookTCX: "tcx", HookTracepoint: "tracepoint",
	HookRawTracepoint: "raw_tp", HookUprobe: "uprobe", HookUretprobe: "uretprobe",
	HookPerfEvent: "perf_event", HookCgroup: "cgroup", HookSocket: "socket",
	HookKprobe: "kprobe", HookKretprobe: "kretprobe", HookFentry: "fentry", HookFexit: "fexit",
	HookLSM: "lsm",
}

func (k HookKind) String() string {
	if int(k) < len(hookNames) {
		return hookNames[k]
	}
	return fmt.Sprintf("HookKind(%d)", uint8(k))
}

// XDPMode is how an XDP program is attached to an interface
// (XDP_FLAGS_*_MODE in include/uapi/linux/if_link.h).
type XDPMode uint8

// XDP modes. XDPAuto lets the kernel pick: the driver's hook if it has
// one, the generic one otherwise.
const (
	XDPAuto    XDPMode = iota
	XDPGeneric         // XDP_FLAGS_SKB_MODE: in the stack, after the skb is built; every device has it
	XDPDriver          // XDP_FLAGS_DRV_MODE: in the driver, before an skb exists
	XDPOffload         // XDP_FLAGS_HW_MODE: on the NIC
)

func (m XDPMode) String() string {
	switch m {
	case XDPAuto:
		return "auto"
	case XDPGeneric:
		return "generic"
	case XDPDriver:
		return "driver"
	case XDPOffload:
		return "offload"
	}
	return fmt.Sprintf("XDPMode(%d)", uint8(m))
}

// ParseXDPMode returns the mode a name (auto, generic, driver, offload;
// skb, native and hw as ip-link(8) spells them) means.
func ParseXDPMode(s string) (XDPMode, error) {
	switch s {
	case "", "auto":
		return XDPAuto, nil
	case "generic", "skb":
		return XDPGeneric, nil
	case "driver", "native", "drv":
		return XDPDriver, nil
	case "offload", "hw":
		return XDPOffload, nil
	}
	return 0, fmt.Errorf("XDP mode %q: want generic, driver or offload", s)
}

// Direction is the direction of the traffic a tc or cgroup_skb program
// sees.
type Direction uint8

// Directions. DirectionNone is "not given".
const (
	DirectionNone Direction = iota
	Ingress
	Egress
)

func (d Direction) String() string {
	switch d {
	case Ingress:
		return "ingress"
	case Egress:
		return "egress"
	}
	return "none"
}

// ParseDirection returns the direction "ingress" or "egress" names.
func ParseDirection(s string) (Direction, error) {
	switch s {
	case "ingress":
		return Ingress, nil
	case "egress":
		return Egress, nil
	}
	return DirectionNone, fmt.Errorf("direction %q: want ingress or egress", s)
}

// Hook says where a program is attached. Which fields matter depends on
// Kind; the others are zero. ParseSection reads one from a program's ELF
// section name (libbpf's conventions); the fields a section name cannot
// hold (an interface, a cgroup, a frequency) come from the caller.
type Hook struct {
	Kind HookKind
	// Interface is the network interface of HookXDP, HookTCX and
	// HookSocket.
	Interface string
	// XDPMode is HookXDP's mode.
	XDPMode XDPMode
	// Direction is HookTCX's.
	Direction Direction
	// TCLegacy makes HookTCX attach through a clsact qdisc and a tc filter
	// even where the kernel has TCX (Linux 6.6+); kernels without TCX get
	// this anyway.
	TCLegacy bool
	// Group and Name name a tracepoint (HookTracepoint: "syscalls",
	// "sys_enter_openat"); Name alone names a raw tracepoint, the kernel
	// function of HookFentry and HookFexit, or the LSM hook.
	Group, Name string
	// Binary, Symbol and Offset place a uprobe: the function Symbol of the
	// executable or library Binary, plus Offset bytes; with no Symbol,
	// Offset is the probe's offset in the file. Symbol and Offset also
	// place a kprobe. PID limits a uprobe to one process (0: all).
	Binary, Symbol string
	Offset         uint64
	PID            int
	// Frequency is HookPerfEvent's sampling frequency in Hz.
	Frequency uint64
	// CgroupPath is the cgroup v2 directory of HookCgroup; CgroupAttach
	// names which of the cgroup's hooks, as libbpf's section names do
	// ("ingress", "egress", "sock_create", ...: CgroupHook).
	CgroupPath, CgroupAttach string
}

// ErrSection is returned (wrapped) by ParseSection for a section name
// that names no hook Attach knows.
var ErrSection = errors.New("section names no hook")

// cgroupHooks are the hooks of a cgroup by the names libbpf gives them
// in section names: "cgroup_skb/ingress" is "ingress", "cgroup/connect4"
// is "connect4".
var cgroupHooks = map[string]struct {
	typ    ebpf.ProgramType
	attach ebpf.AttachType
}{
	"ingress":      {ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress},
	"egress":       {ebpf.CGroupSKB, ebpf.AttachCGroupInetEgress},
	"sock_create":  {ebpf.CGroupSock, ebpf.AttachCGroupInetSockCreate},
	"sock_release": {ebpf.CGroupSock, ebpf.AttachCgroupInetSockRelease},
	"post_bind4":   {ebpf.CGroupSock, ebpf.AttachCGroupInet4PostBind},
	"post_bind6":   {ebpf.CGroupSock, ebpf.AttachCGroupInet6PostBind},
	"bind4":        {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Bind},
	"bind6":        {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet6Bind},
	"connect4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect},
	"connect6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupInet6Connect},
	"sendmsg4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP4Sendmsg},
	"sendmsg6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP6Sendmsg},
	"recvmsg4":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP4Recvmsg},
	"recvmsg6":     {ebpf.CGroupSockAddr, ebpf.AttachCGroupUDP6Recvmsg},
	"getpeername4": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet4GetPeername},
	"getpeername6": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet6GetPeername},
	"getsockname4": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet4GetSockname},
	"getsockname6": {ebpf.CGroupSockAddr, ebpf.AttachCgroupInet6GetSockname},
	"dev":          {ebpf.CGroupDevice, ebpf.AttachCGroupDevice},
	"sysctl":       {ebpf.CGroupSysctl, ebpf.AttachCGroupSysctl},
	"getsockopt":   {ebpf.CGroupSockopt, ebpf.AttachCGroupGetsockopt},
	"setsockopt":   {ebpf.CGroupSockopt, ebpf.AttachCGroupSetsockopt},
	"sock_ops":     {ebpf.SockOps, ebpf.AttachCGroupSockOps},
}

// CgroupHook returns the attach type of the cgroup hook a name means (a
// name libbpf's section names give it: "ingress", "sock_create",
// "connect4", ...) and the type of the programs it takes.
func CgroupHook(name string) (ebpf.AttachType, ebpf.ProgramType, error) {
	c, ok := cgroupHooks[name]
	if !ok {
		names := make([]string, 0, len(cgroupHooks))
		for n := range cgroupHooks {
			names = append(names, n)
		}
		sort.Strings(names)
		return 0, 0, fmt.Errorf("cgroup hook %q: want one of %s", name, strings.Join(names, ", "))
	}
	return c.attach, c.typ, nil
}

// ParseSection returns the hook a program's ELF section name names, by
// libbpf's conventions: "xdp", "tcx/ingress", "tcx/egress", "tc/ingress",
// "tc/egress", "tc" and "classifier" (no direction), "tracepoint/G/N" and
// "tp/G/N", "raw_tracepoint/N" and "raw_tp/N", "uprobe/BIN:SYM[+OFF]" and
// "uretprobe/..." (BIN may be empty: "uprobe" alone), "perf_event",
// "cgroup_skb/ingress|egress", "cgroup/sock_create" and the other cgroup
// hooks, "socket", "kprobe/SYM[+OFF]", "kretprobe/SYM", "fentry/F",
// "fexit/F" and "lsm/HOOK". Sleepable variants (".s") and XDP's ".frags"
// name the same hooks.
//
// The hook is as complete as the name makes it: an interface, a cgroup or
// a frequency are never in one, and Hook.Check says what is missing.
func ParseSection(section string) (Hook, error) {
	kind, rest, _ := strings.Cut(section, "/")
	hasRest := strings.Contains(section, "/")
	kind = strings.TrimSuffix(strings.TrimSuffix(kind, ".s"), ".frags")
	bad := func(format string, args ...any) (Hook, error) {
		return Hook{}, fmt.Errorf("section %q: %w: %s", section, ErrSection, fmt.Sprintf(format, args...))
	}
	switch kind {
	case "xdp":
		if hasRest {
			return bad("XDP programs for %s run from a map, not on an interface", rest)
		}
		return Hook{Kind: HookXDP}, nil
	case "tcx", "tc", "classifier":
		h := Hook{Kind: HookTCX}
		if hasRest {
			d, err := ParseDirection(rest)
			if err != nil {
				return bad("%v", err)
			}
			h.Direction = d
		}
		return h, nil
	case "tracepoint", "tp":
		g, n, ok := strings.Cut(rest, "/")
		if !ok || g == "" || n == "" || strings.Contains(n, "/") {
			return bad("want %s/GROUP/NAME", kind)
		}
		return Hook{Kind: HookTracepoint, Group: g, Name: n}, nil
	case "raw_tracepoint", "raw_tp", "raw_tracepoint.w", "raw_tp.w":
		if rest == "" {
			return bad("want %s/NAME", kind)
		}
		return Hook{Kind: HookRawTracepoint, Name: rest}, nil
	case "uprobe", "uretprobe":
		h := Hook{Kind: HookUprobe}
		if kind == "uretprobe" {
			h.Kind = HookUretprobe
		}
		if rest == "" {
			return h, nil
		}
		bin, sym, err := ParseUprobeTarget(rest)
		if err != nil {
			return bad("%v", err)
		}
		h.Binary = bin
		h.Symbol, h.Offset = sym.Symbol, sym.Offset
		return h, nil
	case "perf_event":
		return Hook{Kind: HookPerfEvent}, nil
	case "socket":
		return Hook{Kind: HookSocket}, nil
	case "kprobe", "kretprobe":
		h := Hook{Kind: HookKprobe}
		if kind == "kretprobe" {
			h.Kind = HookKretprobe
		}
		if rest == "" {
			return h, nil
		}
		sym, err := parseSymbolOffset(rest)
		if err != nil {
			return bad("%v", err)
		}
		if h.Kind == HookKretprobe && sym.Offset != 0 {
			return bad("a kretprobe takes no offset")
		}
		h.Symbol, h.Offset = sym.Symbol, sym.Offset
		return h, nil
	case "fentry", "fexit", "lsm":
		if rest == "" {
			return bad("want %s/NAME", kind)
		}
		k := map[string]HookKind{"fentry": HookFentry, "fexit": HookFexit, "lsm": HookLSM}[kind]
		return Hook{Kind: k, Name: rest}, nil
	case "cgroup_skb", "cgroup", "sockops":
		name := rest
		switch {
		case kind == "sockops" && !hasRest:
			name = "sock_ops"
		case kind == "cgroup" && rest == "sock":
			name = "sock_create"
		case kind == "cgroup" && rest == "skb":
			return Hook{Kind: HookCgroup}, nil // ingress or egress: the caller says
		case kind == "cgroup_skb" && rest != "ingress" && rest != "egress":
			return bad("want cgroup_skb/ingress or cgroup_skb/egress")
		}
		if _, _, err := CgroupHook(name); err != nil {
			return bad("%v", err)
		}
		return Hook{Kind: HookCgroup, CgroupAttach: name}, nil
	}
	return bad("libbpf's names are xdp, tcx/ingress, tcx/egress, tc, tracepoint/G/N, raw_tp/N, uprobe/BIN:SYM, uretprobe/BIN:SYM, perf_event, cgroup_skb/ingress, cgroup/sock_create, socket, kprobe/SYM, fentry/F, fexit/F, lsm/HOOK")
}

// UprobeSymbol is where in a binary a uprobe goes: a function plus an
// offset, or (no Symbol) an offset in the file.
type UprobeSymbol struct {
	Symbol string
	Offset uint64
}

// ParseUprobeTarget splits libbpf's "BIN:SYM[+OFF]" or "BIN:OFF" (a
// number: an offset in the file) into the binary and the place in it.
func ParseUprobeTarget(s string) (string, UprobeSymbol, error) {
	i := strings.LastIndex(s, ":")
	if i <= 0 || i == len(s)-1 {
		return "", UprobeSymbol{}, fmt.Errorf("uprobe target %q: want BINARY:SYMBOL[+OFFSET] or BINARY:OFFSET", s)
	}
	sym, err := parseSymbolOffset(s[i+1:])
	if err != nil {
		return "", UprobeSymbol{}, err
	}
	return s[:i], sym, nil
}

// parseSymbolOffset parses "SYM", "SYM+OFF" or "OFF".
func parseSymbolOffset(s string) (UprobeSymbol, error) {
	if off, err := strconv.ParseUint(s, 0, 64); err == nil {
		return UprobeSymbol{Offset: off}, nil
	}
	sym, offs, ok := strings.Cut(s, "+")
	if sym == "" {
		return UprobeSymbol{}, fmt.Errorf("%q: want SYMBOL[+OFFSET]", s)
	}
	u := UprobeSymbol{Symbol: sym}
	if ok {
		off, err := strconv.ParseUint(offs, 0, 64)
		if err != nil {
			return UprobeSymbol{}, fmt.Errorf("%q: offset %q is not a number", s, offs)
		}
		u.Offset = off
	}
	return u, nil
}

// ProgramType returns the type of the programs h takes, and the expected
// attach type they must be loaded with (ebpf.AttachNone where the kernel
// does not ask for one).
func (h Hook) ProgramType() (ebpf.ProgramType, ebpf.AttachType) {
	switch h.Kind {
	case HookXDP:
		return ebpf.XDP, ebpf.AttachNone
	case HookTCX:
		if h.Direction == Egress {
			return ebpf.SchedCLS, ebpf.AttachTCXEgress
		}
		return ebpf.SchedCLS, ebpf.AttachTCXIngress
	case HookTracepoint:
		return ebpf.TracePoint, ebpf.AttachNone
	case HookRawTracepoint:
		return ebpf.RawTracepoint, ebpf.AttachNone
	case HookUprobe, HookUretprobe, HookKprobe, HookKretprobe:
		return ebpf.Kprobe, ebpf.AttachNone
	case HookPerfEvent:
		return ebpf.PerfEvent, ebpf.AttachNone
	case HookSocket:
		return ebpf.SocketFilter, ebpf.AttachNone
	case HookFentry:
		return ebpf.Tracing, ebpf.AttachTraceFEntry
	case HookFexit:
		return ebpf.Tracing, ebpf.AttachTraceFExit
	case HookLSM:
		return ebpf.LSM, ebpf.AttachLSMMac
	case HookCgroup:
		if c, ok := cgroupHooks[h.CgroupAttach]; ok {
			return c.typ, c.attach
		}
	}
	return ebpf.UnspecifiedProgram, ebpf.AttachNone
}

// Merge returns h with the fields it leaves unset taken from def, when
// both are hooks of the same kind: flags name the hook, and the section
// name fills in what they leave out (a direction, a tracepoint).
func (h Hook) Merge(def Hook) Hook {
	if h.Kind == HookNone {
		return def
	}
	if def.Kind != h.Kind {
		return h
	}
	if h.Direction == DirectionNone {
		h.Direction = def.Direction
	}
	if h.Group == "" && h.Name == "" {
		h.Group, h.Name = def.Group, def.Name
	}
	if h.Binary == "" {
		h.Binary = def.Binary
	}
	if h.Symbol == "" && h.Offset == 0 {
		h.Symbol, h.Offset = def.Symbol, def.Offset
	}
	if h.CgroupAttach == "" {
		h.CgroupAttach = def.CgroupAttach
	}
	return h
}

// Check reports what h lacks to be attached, naming the flag-like field
// to give.
func (h Hook) Check() error {
	missing := func(what string) error { return fmt.Errorf("%v hook: %s", h.Kind, what) }
	switch h.Kind {
	case HookNone:
		return errors.New("no hook: the section name names none, and none was given")
	case HookXDP:
		if h.Interface == "" {
			return missing("give the interface")
		}
	case HookTCX:
		if h.Interface == "" {
			return missing("give the interface")
		}
		if h.Direction == DirectionNone {
			return missing("give the direction (ingress or egress)")
		}
	case HookSocket:
		if h.Interface == "" {
			return missing("give the interface whose packets the socket reads")
		}
	case HookTracepoint:
		if h.Group == "" || h.Name == "" {
			return missing("give the tracepoint as GROUP/NAME")
		}
	case HookRawTracepoint, HookFentry, HookFexit, HookLSM:
		if h.Name == "" {
			return missing("give the name of what to attach to")
		}
	case HookUprobe, HookUretprobe:
		if h.Binary == "" {
			return missing("give the binary and the symbol (BINARY:SYMBOL[+OFFSET])")
		}
		if h.Symbol == "" && h.Offset == 0 {
			return missing("give the symbol or the offset in " + h.Binary)
		}
	case HookKprobe, HookKretprobe:
		if h.Symbol == "" {
			return missing("give the kernel function")
		}
	case HookPerfEvent:
		if h.Frequency == 0 {
			return missing("give the sampling frequency in Hz")
		}
	case HookCgroup:
		if h.CgroupPath == "" {
			return missing("give the cgroup's directory")
		}
		if h.CgroupAttach == "" {
			return missing("give the cgroup hook (ingress, egress, sock_create, ...)")
		}
		if _, _, err := CgroupHook(h.CgroupAttach); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown hook kind %v", h.Kind)
	}
	return nil
}

// String describes h as the CLI's flags would.
func (h Hook) String() string {
	switch h.Kind {
	case HookXDP:
		return fmt.Sprintf("xdp on %s (%v)", h.Interface, h.XDPMode)
	case HookTCX:
		s := fmt.Sprintf("tcx %v on %s", h.Direction, h.Interface)
		if h.TCLegacy {
			s = fmt.Sprintf("tc %v on %s (clsact)", h.Direction, h.Interface)
		}
		return s
	case HookTracepoint:
		return "tracepoint " + h.Group + "/" + h.Name
	case HookRawTracepoint, HookFentry, HookFexit, HookLSM:
		return h.Kind.String() + " " + h.Name
	case HookUprobe, HookUretprobe:
		s := h.Kind.String() + " " + h.Binary + ":" + symOff(h.Symbol, h.Offset)
		if h.PID != 0 {
			s += fmt.Sprintf(" (pid %d)", h.PID)
		}
		return s
	case HookKprobe, HookKretprobe:
		return h.Kind.String() + " " + symOff(h.Symbol, h.Offset)
	case HookPerfEvent:
		return fmt.Sprintf("perf_event cpu-clock at %d Hz", h.Frequency)
	case HookCgroup:
		return fmt.Sprintf("cgroup %s %s", h.CgroupPath, h.CgroupAttach)
	case HookSocket:
		return "socket filter on a packet socket of " + h.Interface
	}
	return h.Kind.String()
}

func symOff(sym string, off uint64) string {
	switch {
	case sym == "":
		return fmt.Sprintf("%#x", off)
	case off == 0:
		return sym
	}
	return fmt.Sprintf("%s+%#x", sym, off)
}
