//go:build linux

package netenv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// ReadNamespace reads the network of a namespace through netlink (links,
// addresses, routes of every table, rules, neighbours, TCP and UDP
// sockets) and the forwarding sysctls. path names the namespace as a
// file (/run/netns/NAME, /proc/PID/ns/net); "" reads the namespace of
// the calling process. Reading another namespace needs CAP_SYS_ADMIN.
//
// What netlink does not report is left at its default: sockets are taken
// as dual-stack (not IPV6_V6ONLY) and without mark or priority. Request
// sockets (a connection being accepted) are left out.
func ReadNamespace(path string) (*Config, error) {
	type result struct {
		c   *Config
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// The thread enters the namespace and is never used again:
		// returning without UnlockOSThread makes the runtime end it.
		runtime.LockOSThread()
		if path != "" {
			ns, err := netns.GetFromPath(path)
			if err != nil {
				ch <- result{err: fmt.Errorf("netenv: namespace %s: %w", path, err)}
				return
			}
			defer ns.Close()
			if err := netns.Set(ns); err != nil {
				ch <- result{err: fmt.Errorf("netenv: entering namespace %s: %w", path, err)}
				return
			}
		} else {
			// Read the process's namespace even if this thread was
			// started in another one.
			self, err := netns.GetFromPath(fmt.Sprintf("/proc/%d/ns/net", os.Getpid()))
			if err == nil {
				defer self.Close()
				_ = netns.Set(self)
			}
		}
		c, err := readCurrent()
		ch <- result{c, err}
	}()
	r := <-ch
	if r.err == nil {
		r.c.InitNetnsCookie = initNetnsCookie()
	}
	return r.c, r.err
}

// ReadHost reads the calling process's namespace (ReadNamespace("")) and
// builds its Host.
func ReadHost() (*Host, error) {
	c, err := ReadNamespace("")
	if err != nil {
		return nil, err
	}
	return New(c)
}

// readCurrent reads the namespace the calling thread is in.
func readCurrent() (*Config, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netenv: netlink: %w", err)
	}
	defer h.Close()
	c := &Config{}
	c.NetnsCookie, err = netnsCookie()
	if err != nil {
		return nil, err
	}
	links, err := h.LinkList()
	if err != nil {
		return nil, fmt.Errorf("netenv: listing links: %w", err)
	}
	names := map[int]string{}
	for _, l := range links {
		a := l.Attrs()
		names[a.Index] = a.Name
	}
	for _, l := range links {
		f, err := readLink(h, l)
		if err != nil {
			return nil, err
		}
		c.Interfaces = append(c.Interfaces, f)
	}
	if c.Routes, err = readRoutes(h, names); err != nil {
		return nil, err
	}
	if c.Rules, err = readRules(h); err != nil {
		return nil, err
	}
	if c.Neighbours, err = readNeighbours(h, names); err != nil {
		return nil, err
	}
	if c.Sockets, err = readSockets(h, names); err != nil {
		return nil, err
	}
	c.CongestionControls = readCongestionControls()
	return c, nil
}

// readCongestionControls reads the TCP congestion controls the kernel has;
// nil (reno and cubic) if they cannot be read.
func readCongestionControls() []string {
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_available_congestion_control")
	if err != nil {
		return nil
	}
	var cc []string
	for _, n := range strings.Fields(string(b)) {
		if len(n) <= maxNameLen {
			cc = append(cc, n)
		}
	}
	return cc
}

// initNetnsCookie returns the cookie of process 1's namespace, the
// initial one unless the process runs in a container, or else of the
// process's own; 0 if it cannot be read (New then takes 1).
func initNetnsCookie() uint64 {
	ch := make(chan uint64, 1)
	go func() {
		// A thread of its own, never unlocked: it may end up in
		// process 1's namespace.
		runtime.LockOSThread()
		if ns, err := netns.GetFromPath("/proc/1/ns/net"); err == nil {
			err = netns.Set(ns)
			ns.Close()
			if err != nil {
				ch <- 0
				return
			}
		}
		c, _ := netnsCookie()
		ch <- c
	}()
	return <-ch
}

// netnsCookie returns the cookie of the thread's namespace
// (SO_NETNS_COOKIE, Linux 5.14).
func netnsCookie() (uint64, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("netenv: socket for SO_NETNS_COOKIE: %w", err)
	}
	defer unix.Close(fd)
	v, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return 0, fmt.Errorf("netenv: SO_NETNS_COOKIE: %w", err)
	}
	return v, nil
}

func readLink(h *netlink.Handle, l netlink.Link) (Interface, error) {
	a := l.Attrs()
	f := Interface{Index: a.Index, Name: a.Name, MTU: a.MTU, Down: a.Flags&net.FlagUp == 0}
	switch {
	case a.EncapType == "loopback":
		f.Kind = KindLoopback
	case a.EncapType != "ether":
		f.Kind = KindL3
	case l.Type() == "veth":
		f.Kind, f.Peer = KindVeth, a.ParentIndex
	case l.Type() == "netkit":
		f.Kind, f.Peer = KindNetkit, a.ParentIndex
	default:
		f.Kind = KindEther
	}
	f.MAC = HardwareAddr(slices.Clone(a.HardwareAddr))
	if f.Kind == KindL3 {
		f.MAC = nil
	}
	addrs, err := h.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return f, fmt.Errorf("netenv: addresses of %s: %w", a.Name, err)
	}
	for _, ad := range addrs {
		if p, ok := prefixOf(ad.IPNet); ok {
			f.Addrs = append(f.Addrs, p)
		}
	}
	f.Forwarding = sysctlOn("ipv4", a.Name)
	f.Forwarding6 = sysctlOn("ipv6", a.Name)
	return f, nil
}

// sysctlOn reads net.<family>.conf.<dev>.forwarding of the thread's
// namespace; a device without the setting does not forward.
func sysctlOn(family, dev string) bool {
	b, err := os.ReadFile(filepath.Join("/proc/sys/net", family, "conf", dev, "forwarding"))
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	if bits == 32 {
		a = a.Unmap()
	}
	return netip.PrefixFrom(a, ones), true
}

func addrOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

var routeTypes = map[int]RouteType{
	unix.RTN_UNICAST: RouteUnicast, unix.RTN_LOCAL: RouteLocal, unix.RTN_BROADCAST: RouteBroadcast,
	unix.RTN_ANYCAST: RouteAnycast, unix.RTN_MULTICAST: RouteMulticast, unix.RTN_BLACKHOLE: RouteBlackhole,
	unix.RTN_UNREACHABLE: RouteUnreachable, unix.RTN_PROHIBIT: RouteProhibit, unix.RTN_THROW: RouteThrow,
	unix.RTN_NAT: RouteNAT,
}

func readRoutes(h *netlink.Handle, names map[int]string) ([]Route, error) {
	var out []Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("netenv: listing routes: %w", err)
		}
		for _, r := range rs {
			if r.Flags&unix.RTM_F_CLONED != 0 {
				continue // a cached exception, not a route
			}
			t, ok := routeTypes[r.Type]
			if !ok {
				continue
			}
			rt := Route{Type: t, Table: uint32(r.Table), Metric: uint32(r.Priority), TOS: uint8(r.Tos),
				MTU: uint32(r.MTU), MTULock: r.MTULock, Encap: r.Encap != nil}
			if p, ok := prefixOf(r.Dst); ok {
				rt.Dst = p
			} else if fam == netlink.FAMILY_V4 {
				rt.Dst = netip.MustParsePrefix("0.0.0.0/0")
			} else {
				rt.Dst = netip.MustParsePrefix("::/0")
			}
			link, gw := r.LinkIndex, r.Gw
			if len(r.MultiPath) > 0 {
				link, gw = r.MultiPath[0].LinkIndex, r.MultiPath[0].Gw
			}
			if v, ok := r.Via.(*netlink.Via); ok && gw == nil {
				gw = v.Addr
			}
			rt.Via = addrOf(gw)
			rt.Src = addrOf(r.Src)
			rt.Dev = names[link]
			if rt.Type == RouteBlackhole || rt.Type == RouteUnreachable || rt.Type == RouteProhibit || rt.Type == RouteThrow {
				rt.Dev, rt.Via = "", netip.Addr{}
			}
			out = append(out, rt)
		}
	}
	return out, nil
}

// ruleActions maps FR_ACT_* to actions; goto rules are not modelled.
var ruleActions = map[uint8]RuleAction{
	unix.FR_ACT_TO_TBL: RuleLookup, unix.FR_ACT_NOP: RuleNop, unix.FR_ACT_BLACKHOLE: RuleBlackhole,
	unix.FR_ACT_UNREACHABLE: RuleUnreachable, unix.FR_ACT_PROHIBIT: RuleProhibit,
}

func readRules(h *netlink.Handle) ([]Rule, error) {
	var out []Rule
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.RuleList(fam)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			return nil, fmt.Errorf("netenv: listing rules: %w", err)
		}
		acts, err := ruleActionList(fam)
		if err != nil {
			return nil, err
		}
		if len(acts) != len(rs) {
			return nil, fmt.Errorf("netenv: the rules changed while they were read")
		}
		for i, r := range rs {
			act, ok := ruleActions[acts[i]]
			if !ok {
				continue
			}
			rule := Rule{Priority: uint32(r.Priority), Family: "inet", Action: act, Table: uint32(r.Table),
				Mark: r.Mark, TOS: uint8(r.Tos), IPProto: uint8(r.IPProto), IIf: r.IifName, OIf: r.OifName, Invert: r.Invert}
			if fam == netlink.FAMILY_V6 {
				rule.Family = "inet6"
			}
			if r.Mask != nil {
				rule.Mask = *r.Mask
			}
			if p, ok := prefixOf(r.Src); ok {
				rule.Src = p
			}
			if p, ok := prefixOf(r.Dst); ok {
				rule.Dst = p
			}
			out = append(out, rule)
		}
	}
	if isDefaultRules(out) {
		return nil, nil
	}
	return out, nil
}

// ruleActionList returns the action of each rule of a family, in dump
// order: struct fib_rule_hdr's action byte, which netlink.RuleList does
// not report.
func ruleActionList(fam int) ([]uint8, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETRULE, unix.NLM_F_DUMP)
	req.AddData(nl.NewRtMsg())
	req.Data[0].(*nl.RtMsg).Family = uint8(fam)
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWRULE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("netenv: listing rules: %w", err)
	}
	acts := make([]uint8, len(msgs))
	for i, m := range msgs {
		if len(m) < 12 {
			return nil, fmt.Errorf("netenv: a rule message of %d bytes", len(m))
		}
		acts[i] = m[7] // fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action
	}
	return acts, nil
}

// isDefaultRules reports whether rules read from a namespace are Linux's
// defaults.
func isDefaultRules(rs []Rule) bool {
	var want []Rule
	for fam, def := range defaultRules {
		for _, r := range def {
			r.Family = []string{"inet", "inet6"}[fam]
			want = append(want, r)
		}
	}
	return slices.Equal(rs, want)
}

var neighStates = []struct {
	nud   int
	state NeighState
}{
	{unix.NUD_PERMANENT, NeighPermanent}, {unix.NUD_NOARP, NeighNoARP}, {unix.NUD_REACHABLE, NeighReachable},
	{unix.NUD_STALE, NeighStale}, {unix.NUD_DELAY, NeighDelay}, {unix.NUD_PROBE, NeighProbe},
	{unix.NUD_INCOMPLETE, NeighIncomplete}, {unix.NUD_FAILED, NeighFailed},
}

func readNeighbours(h *netlink.Handle, names map[int]string) ([]Neighbour, error) {
	ns, err := h.NeighList(0, netlink.FAMILY_ALL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, fmt.Errorf("netenv: listing neighbours: %w", err)
	}
	var out []Neighbour
	for _, n := range ns {
		if n.Flags&netlink.NTF_PROXY != 0 || (n.Family != unix.AF_INET && n.Family != unix.AF_INET6) {
			continue
		}
		e := Neighbour{Dev: names[n.LinkIndex], IP: addrOf(n.IP), MAC: HardwareAddr(slices.Clone(n.HardwareAddr))}
		for _, s := range neighStates {
			if n.State&s.nud != 0 {
				e.State = s.state
				break
			}
		}
		if e.State == "" || e.Dev == "" || !e.IP.IsValid() {
			continue // NUD_NONE: an entry being created
		}
		if e.State.Valid() && len(e.MAC) == 0 && e.State != NeighNoARP {
			e.State = NeighNoARP
		}
		out = append(out, e)
	}
	return out, nil
}

func readSockets(h *netlink.Handle, names map[int]string) ([]Socket, error) {
	var out []Socket
	for _, proto := range []string{"tcp", "udp"} {
		for _, fam := range []uint8{unix.AF_INET, unix.AF_INET6} {
			var ss []*netlink.Socket
			var err error
			if proto == "tcp" {
				ss, err = h.SocketDiagTCP(fam)
			} else {
				ss, err = h.SocketDiagUDP(fam)
			}
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return nil, fmt.Errorf("netenv: listing %s sockets: %w", proto, err)
			}
			for _, s := range ss {
				if int(s.State) >= len(sockStates) || s.State == 0 {
					continue // TCP_NEW_SYN_RECV: a request socket
				}
				state := sockStates[s.State]
				if proto == "tcp" && state == SockClose {
					continue // not in any table
				}
				local, remote := addrOf(s.ID.Source), addrOf(s.ID.Destination)
				if fam == unix.AF_INET6 {
					local, remote = as16(s.ID.Source), as16(s.ID.Destination)
				}
				sk := Socket{Proto: proto, State: state, UID: s.UID,
					Cookie: uint64(s.ID.Cookie[0]) | uint64(s.ID.Cookie[1])<<32,
					Local:  netip.AddrPortFrom(local, s.ID.SourcePort), Dev: names[int(s.ID.Interface)]}
				if remote.IsValid() && (!remote.IsUnspecified() || s.ID.DestinationPort != 0) {
					sk.Remote = netip.AddrPortFrom(remote, s.ID.DestinationPort)
				}
				if proto == "udp" && state != SockEstablished {
					sk.State = SockClose
				}
				out = append(out, sk)
			}
		}
	}
	return out, nil
}

// as16 reads an IPv6 socket's address, keeping IPv4-mapped addresses
// mapped.
func as16(ip net.IP) netip.Addr {
	if len(ip) != net.IPv6len {
		return addrOf(ip)
	}
	return netip.AddrFrom16([16]byte(ip))
}
