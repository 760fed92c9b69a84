package netenv

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// ErrConfig is the class of every error New returns for a Config that
// does not describe a host Linux could have.
var ErrConfig = errors.New("invalid host")

// Host is a model of one network namespace, built by New from a Config:
// validated, completed with what Linux derives (the loopback device,
// connected and local routes, socket cookies) and indexed for the lookups
// helpers make. A Host is immutable and safe for concurrent use.
type Host struct {
	cfg        Config // normalised: every default filled in, derived routes added
	cookie     uint64
	initCookie uint64
	ifaces     []Interface // by index
	byIndex    map[int]int // ifindex -> position in ifaces
	byName     map[string]int
	routes     []route
	rules      [2][]Rule // IPv4, IPv6, sorted by priority
	custom4    bool      // IPv4 rules differ from the defaults: local and main are not merged
	tables     [2]map[uint32]bool
	neigh      map[neighKey]int // -> position in cfg.Neighbours
	sockets    []Socket
	congestion []string
}

// route is a route resolved against the interfaces.
type route struct {
	Route
	dev   int   // ifindex of the nexthop device, 0 if none
	scope uint8 // RT_SCOPE_*: universe (0), link (253), host (254)
	live  bool  // usable: not through a device that is down
}

type neighKey struct {
	dev int
	ip  netip.Addr
}

// Route scopes (RT_SCOPE_* in include/uapi/linux/rtnetlink.h).
const (
	scopeUniverse uint8 = 0
	scopeLink     uint8 = 253
	scopeHost     uint8 = 254
)

// loopbackIndex is the loopback device's ifindex in every namespace.
const loopbackIndex = 1

// maxNameLen is IFNAMSIZ - 1.
const maxNameLen = 15

// Empty returns the empty host: a namespace with only its loopback
// device (up, 127.0.0.1/8 and ::1/128, forwarding off), no routes but
// the loopback's own, no neighbours and no sockets. Helpers asking it
// about a route, neighbour or socket get what Linux answers on a host
// without one.
func Empty() *Host {
	h, err := New(&Config{})
	if err != nil {
		panic("BUG: the empty host is invalid: " + err.Error())
	}
	return h
}

// New checks c and builds the Host it describes. Errors wrap ErrConfig
// and name the part of c that is wrong. c is not modified or kept.
func New(c *Config) (*Host, error) {
	if c == nil {
		c = &Config{}
	}
	h := &Host{cookie: c.NetnsCookie, byIndex: map[int]int{}, byName: map[string]int{}, neigh: map[neighKey]int{}}
	if h.cookie == 0 {
		h.cookie = 1
	}
	h.cfg.NetnsCookie = h.cookie
	h.initCookie = c.InitNetnsCookie
	if h.initCookie == 0 {
		h.initCookie = 1
	}
	h.cfg.InitNetnsCookie = h.initCookie
	if err := h.addInterfaces(c.Interfaces); err != nil {
		return nil, err
	}
	if err := h.addRoutes(c.Routes); err != nil {
		return nil, err
	}
	if err := h.addRules(c.Rules); err != nil {
		return nil, err
	}
	if err := h.addNeighbours(c.Neighbours); err != nil {
		return nil, err
	}
	if err := h.addSockets(c.Sockets); err != nil {
		return nil, err
	}
	if err := h.addCongestion(c.CongestionControls); err != nil {
		return nil, err
	}
	return h, nil
}

// addCongestion records the congestion controls: names TCP_CONGESTION
// could take (1 to 15 bytes, TCP_CA_NAME_MAX - 1), reno and cubic by
// default.
func (h *Host) addCongestion(in []string) error {
	cc := slices.Clone(in)
	if len(cc) == 0 {
		cc = []string{"reno", "cubic"}
	}
	for _, n := range cc {
		if n == "" || len(n) > maxNameLen || strings.IndexByte(n, 0) >= 0 {
			return configErr("congestion control %q: a name has 1 to %d bytes and no NUL", n, maxNameLen)
		}
	}
	h.congestion = cc
	h.cfg.CongestionControls = cc
	return nil
}

// HasCongestionControl reports whether the host's kernel has the TCP
// congestion control name.
func (h *Host) HasCongestionControl(name string) bool { return slices.Contains(h.congestion, name) }

func configErr(format string, args ...any) error {
	return fmt.Errorf("netenv: "+format+": %w", append(args, ErrConfig)...)
}

func (h *Host) addInterfaces(in []Interface) error {
	ifs := slices.Clone(in)
	if !slices.ContainsFunc(ifs, func(i Interface) bool { return i.Index == loopbackIndex }) {
		ifs = append(ifs, Interface{Index: loopbackIndex, Name: "lo", Kind: KindLoopback})
	}
	sort.SliceStable(ifs, func(i, j int) bool { return ifs[i].Index < ifs[j].Index })
	for i := range ifs {
		f := &ifs[i]
		f.Addrs = slices.Clone(f.Addrs)
		f.MAC = slices.Clone(f.MAC)
		where := fmt.Sprintf("interface %d (%s)", f.Index, f.Name)
		switch {
		case f.Index <= 0:
			return configErr("%s: the index must be positive", where)
		case f.Name == "" || len(f.Name) > maxNameLen:
			return configErr("%s: a name has 1 to %d bytes", where, maxNameLen)
		case f.MTU < 0 || f.MTU > 1<<20:
			return configErr("%s: MTU %d out of range", where, f.MTU)
		case f.Peer < 0:
			return configErr("%s: peer index %d is negative", where, f.Peer)
		}
		if _, dup := h.byIndex[f.Index]; dup {
			return configErr("%s: index %d is used twice", where, f.Index)
		}
		if _, dup := h.byName[f.Name]; dup {
			return configErr("%s: name %q is used twice", where, f.Name)
		}
		if f.Kind == "" {
			f.Kind = KindEther
			if f.Index == loopbackIndex && f.Name == "lo" {
				f.Kind = KindLoopback
			}
		}
		switch f.Kind {
		case KindLoopback, KindEther, KindVeth, KindNetkit, KindL3:
		default:
			return configErr("%s: kind %q (want loopback, ether, veth, netkit or l3)", where, f.Kind)
		}
		if f.MTU == 0 {
			f.MTU = 1500
			if f.Kind == KindLoopback {
				f.MTU = 65536
			}
		}
		switch {
		case len(f.MAC) == 0 && f.Kind == KindLoopback:
			f.MAC = make(HardwareAddr, 6)
		case len(f.MAC) == 0 && f.Kind != KindL3:
			f.MAC = HardwareAddr{0x02, 0, 0, 0, byte(f.Index >> 8), byte(f.Index)}
		case len(f.MAC) != 0 && len(f.MAC) != 6 && f.Kind != KindL3:
			return configErr("%s: MAC %s is not 6 bytes", where, f.MAC)
		}
		if f.Kind == KindLoopback && !f.Down {
			if !slices.ContainsFunc(f.Addrs, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
				f.Addrs = append(f.Addrs, netip.MustParsePrefix("127.0.0.1/8"))
			}
			if !slices.ContainsFunc(f.Addrs, func(p netip.Prefix) bool { return p.Addr().Is6() }) {
				f.Addrs = append(f.Addrs, netip.MustParsePrefix("::1/128"))
			}
		}
		for _, a := range f.Addrs {
			if !a.IsValid() || a.Addr().Is4In6() || a.Addr().Zone() != "" {
				return configErr("%s: address %s is not an IPv4 or IPv6 prefix", where, a)
			}
		}
		h.byIndex[f.Index] = i
		h.byName[f.Name] = i
	}
	h.ifaces = ifs
	h.cfg.Interfaces = ifs
	return nil
}

// dev resolves an interface name of the config; "" is 0.
func (h *Host) dev(name, where string) (int, error) {
	if name == "" {
		return 0, nil
	}
	i, ok := h.byName[name]
	if !ok {
		return 0, configErr("%s: no interface %q", where, name)
	}
	return h.ifaces[i].Index, nil
}

// up reports whether the device with the given index exists and is up.
func (h *Host) up(ifindex int) bool {
	i, ok := h.byIndex[ifindex]
	return ok && !h.ifaces[i].Down
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return 4
	}
	return 6
}

func (h *Host) addRoutes(in []Route) error {
	h.tables = [2]map[uint32]bool{
		{TableLocal: true, TableMain: true, TableDefault: true},
		{TableLocal: true, TableMain: true},
	}
	// The user's routes without a device come after the connected
	// routes, which resolve their gateways.
	var explicit []route
	for n, r := range in {
		where := fmt.Sprintf("route %d (%s)", n, r.Dst)
		if !r.Dst.IsValid() || r.Dst.Addr().Is4In6() || r.Dst.Addr().Zone() != "" {
			return configErr("%s: the destination is not an IPv4 or IPv6 prefix", where)
		}
		r.Dst = r.Dst.Masked()
		if r.Type == "" {
			r.Type = RouteUnicast
		}
		switch r.Type {
		case RouteUnicast, RouteBlackhole, RouteUnreachable, RouteProhibit, RouteThrow, RouteMulticast:
			if r.Table == 0 {
				r.Table = TableMain
			}
		case RouteLocal, RouteBroadcast, RouteAnycast, RouteNAT:
			if r.Table == 0 {
				r.Table = TableLocal
			}
		default:
			return configErr("%s: type %q", where, r.Type)
		}
		fam := familyOf(r.Dst.Addr())
		if r.Via.IsValid() && (r.Via.Is4In6() || fam == 6 && r.Via.Is4()) {
			return configErr("%s: gateway %s of another family", where, r.Via)
		}
		if r.Src.IsValid() && familyOf(r.Src) != fam {
			return configErr("%s: source %s of another family", where, r.Src)
		}
		dev, err := h.dev(r.Dev, where)
		if err != nil {
			return err
		}
		if r.Via.IsLinkLocalUnicast() && dev == 0 {
			return configErr("%s: a link-local gateway needs a device", where)
		}
		if r.Type == RouteUnicast && dev == 0 && !r.Via.IsValid() {
			return configErr("%s: a unicast route needs a device or a gateway", where)
		}
		if (r.Type == RouteLocal || r.Type == RouteBroadcast || r.Type == RouteAnycast || r.Type == RouteMulticast) && dev == 0 {
			return configErr("%s: a %s route needs a device", where, r.Type)
		}
		explicit = append(explicit, route{Route: r, dev: dev})
	}
	derived := h.connectedRoutes()
	for _, d := range derived {
		if !slices.ContainsFunc(explicit, func(e route) bool { return sameRoute(e, d) }) {
			h.routes = append(h.routes, d)
		}
	}
	var viaOnly []route
	for _, r := range explicit {
		if r.dev == 0 && r.Via.IsValid() && r.Type == RouteUnicast {
			viaOnly = append(viaOnly, r)
		} else {
			h.routes = append(h.routes, r)
		}
	}
	for i := range viaOnly {
		r := &viaOnly[i]
		gw := h.connectedDev(r.Via)
		if gw == 0 {
			return configErr("route %s: gateway %s is not on a connected network (Linux: Nexthop has invalid gateway); name the device", r.Dst, r.Via)
		}
		r.dev = gw
		r.Dev = h.ifaces[h.byIndex[gw]].Name
		h.routes = append(h.routes, *r)
	}
	for i := range h.routes {
		r := &h.routes[i]
		switch {
		case r.Type == RouteLocal:
			r.scope = scopeHost
		case r.Type == RouteUnicast && !r.Via.IsValid(), r.Type == RouteBroadcast, r.Type == RouteAnycast, r.Type == RouteMulticast:
			r.scope = scopeLink
		}
		r.live = r.dev == 0 || h.up(r.dev)
		h.tables[familyOf(r.Dst.Addr())/6][r.Table] = true
		h.cfg.Routes = append(h.cfg.Routes, r.Route)
	}
	return nil
}

// sameRoute reports whether two routes are the same entry of a table
// (table, type, prefix, TOS, metric and device), as Linux refuses to add
// twice.
func sameRoute(a, b route) bool {
	return a.Table == b.Table && a.Type == b.Type && a.Dst == b.Dst && a.TOS == b.TOS &&
		a.Metric == b.Metric && (a.dev == b.dev || a.dev == 0 || b.dev == 0)
}

// connectedRoutes returns the routes Linux adds for the addresses of the
// interfaces that are up: fib_add_ifaddr for IPv4 (a local route for the
// address, a broadcast route, and the prefix route in main, or in local
// as a local route on the loopback device); addrconf for IPv6 (a local
// route, the prefix route with metric 256, and a subnet-router anycast
// route when the device forwards).
func (h *Host) connectedRoutes() []route {
	var out []route
	for _, f := range h.ifaces {
		if f.Down {
			continue
		}
		for n, p := range f.Addrs {
			a := p.Addr()
			if a.Is4() {
				secondary := slices.ContainsFunc(f.Addrs[:n], func(q netip.Prefix) bool {
					return q.Addr().Is4() && q.Bits() == p.Bits() && q.Masked() == p.Masked()
				})
				out = append(out, route{Route: Route{Dst: netip.PrefixFrom(a, 32), Table: TableLocal, Type: RouteLocal, Dev: f.Name, Src: a}, dev: f.Index})
				if p.Bits() < 31 {
					out = append(out, route{Route: Route{Dst: netip.PrefixFrom(broadcast4(p), 32), Table: TableLocal, Type: RouteBroadcast, Dev: f.Name, Src: a}, dev: f.Index})
				}
				if secondary || p.Bits() == 32 {
					continue
				}
				r := route{Route: Route{Dst: p.Masked(), Table: TableMain, Type: RouteUnicast, Dev: f.Name, Src: a}, dev: f.Index}
				if f.Kind == KindLoopback {
					r.Table, r.Type = TableLocal, RouteLocal
				}
				out = append(out, r)
				continue
			}
			out = append(out, route{Route: Route{Dst: netip.PrefixFrom(a, 128), Table: TableLocal, Type: RouteLocal, Dev: f.Name}, dev: f.Index})
			if p.Bits() < 128 {
				out = append(out, route{Route: Route{Dst: p.Masked(), Table: TableMain, Type: RouteUnicast, Dev: f.Name, Metric: 256}, dev: f.Index})
				if f.Forwarding6 && p.Bits() < 127 && !a.IsLinkLocalUnicast() {
					out = append(out, route{Route: Route{Dst: netip.PrefixFrom(p.Masked().Addr(), 128), Table: TableLocal, Type: RouteAnycast, Dev: f.Name}, dev: f.Index})
				}
			} else if f.Kind == KindLoopback {
				out = append(out, route{Route: Route{Dst: p, Table: TableMain, Type: RouteUnicast, Dev: f.Name, Metric: 256}, dev: f.Index})
			}
		}
	}
	return out
}

// broadcast4 returns the broadcast address of an IPv4 prefix.
func broadcast4(p netip.Prefix) netip.Addr {
	b := p.Addr().As4()
	for i := p.Bits(); i < 32; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	return netip.AddrFrom4(b)
}

// connectedDev returns the device of the live connected (gatewayless
// unicast) route of the main table that covers a, 0 if none.
func (h *Host) connectedDev(a netip.Addr) int {
	best, bits := 0, -1
	for _, r := range h.routes {
		if r.Type == RouteUnicast && !r.Via.IsValid() && r.Table == TableMain && r.dev != 0 &&
			h.up(r.dev) && r.Dst.Contains(a) && r.Dst.Bits() > bits {
			best, bits = r.dev, r.Dst.Bits()
		}
	}
	return best
}

// defaultRules are Linux's rules when none were added (fib4_rules_init,
// fib6_rules_net_init).
var defaultRules = [2][]Rule{
	{{Priority: 0, Action: RuleLookup, Table: TableLocal}, {Priority: 32766, Action: RuleLookup, Table: TableMain},
		{Priority: 32767, Action: RuleLookup, Table: TableDefault}},
	{{Priority: 0, Action: RuleLookup, Table: TableLocal}, {Priority: 32766, Action: RuleLookup, Table: TableMain}},
}

func (h *Host) addRules(in []Rule) error {
	if in == nil {
		h.rules = defaultRules
		return nil
	}
	for n, r := range in {
		where := fmt.Sprintf("rule %d (priority %d)", n, r.Priority)
		if r.Action == "" {
			r.Action = RuleLookup
		}
		switch r.Action {
		case RuleLookup:
			if r.Table == 0 {
				return configErr("%s: a lookup rule needs a table", where)
			}
		case RuleBlackhole, RuleUnreachable, RuleProhibit, RuleNop:
		default:
			return configErr("%s: action %q", where, r.Action)
		}
		if r.Mark != 0 && r.Mask == 0 {
			r.Mask = 0xffffffff
		}
		fams := []int{0, 1}
		switch r.Family {
		case "":
		case "inet":
			fams = []int{0}
		case "inet6":
			fams = []int{1}
		default:
			return configErr("%s: family %q (want inet or inet6)", where, r.Family)
		}
		for _, fam := range fams {
			for _, p := range []netip.Prefix{r.Src, r.Dst} {
				if p.IsValid() && familyOf(p.Addr())/6 != fam {
					if r.Family != "" {
						return configErr("%s: prefix %s of another family", where, p)
					}
					goto next
				}
			}
			h.rules[fam] = append(h.rules[fam], r)
		next:
		}
		h.cfg.Rules = append(h.cfg.Rules, r)
	}
	for fam := range h.rules {
		sort.SliceStable(h.rules[fam], func(i, j int) bool { return h.rules[fam][i].Priority < h.rules[fam][j].Priority })
	}
	h.custom4 = !slices.Equal(h.rules[0], defaultRules[0])
	return nil
}

func (h *Host) addNeighbours(in []Neighbour) error {
	for n, e := range in {
		where := fmt.Sprintf("neighbour %d (%s)", n, e.IP)
		dev, err := h.dev(e.Dev, where)
		if err != nil {
			return err
		}
		switch {
		case dev == 0:
			return configErr("%s: a neighbour needs a device", where)
		case !e.IP.IsValid() || e.IP.Is4In6():
			return configErr("%s: the address is not an IPv4 or IPv6 address", where)
		}
		if e.State == "" {
			e.State = NeighPermanent
		}
		switch e.State {
		case NeighPermanent, NeighReachable, NeighStale, NeighDelay, NeighProbe, NeighNoARP:
			if len(e.MAC) == 0 && e.State != NeighNoARP {
				return configErr("%s: a %s entry needs a MAC address", where, e.State)
			}
		case NeighIncomplete, NeighFailed:
		default:
			return configErr("%s: state %q", where, e.State)
		}
		e.MAC = slices.Clone(e.MAC)
		e.IP = e.IP.WithZone("")
		k := neighKey{dev, e.IP}
		if _, dup := h.neigh[k]; dup {
			return configErr("%s: a second entry for the address on %s", where, e.Dev)
		}
		h.neigh[k] = len(h.cfg.Neighbours)
		h.cfg.Neighbours = append(h.cfg.Neighbours, e)
	}
	return nil
}

func (h *Host) addSockets(in []Socket) error {
	used := map[uint64]bool{}
	for _, s := range in {
		if s.Cookie != 0 {
			if used[s.Cookie] {
				return configErr("socket cookie %d is used twice", s.Cookie)
			}
			used[s.Cookie] = true
		}
	}
	next := uint64(4096) // well above the cookies a namespace's first sockets take
	for n, s := range in {
		where := fmt.Sprintf("socket %d (%s %s)", n, s.Proto, s.Local)
		if _, err := h.dev(s.Dev, where); err != nil {
			return err
		}
		switch {
		case s.Proto != "tcp" && s.Proto != "udp":
			return configErr("%s: proto %q (want tcp or udp)", where, s.Proto)
		case !s.Local.IsValid():
			return configErr("%s: the local address is not an address and port", where)
		case s.Remote.IsValid() && familyOf(s.Remote.Addr().Unmap()) != familyOf(s.Local.Addr().Unmap()) && !s.Local.Addr().Is6():
			return configErr("%s: remote %s of another family", where, s.Remote)
		}
		if s.State == "" {
			switch {
			case s.Proto == "tcp" && !s.Remote.IsValid():
				s.State = SockListen
			case s.Remote.IsValid():
				s.State = SockEstablished
			default:
				s.State = SockClose
			}
		}
		if s.State.Number() == 0 {
			return configErr("%s: state %q", where, s.State)
		}
		if s.Proto == "udp" && s.State != SockEstablished && s.State != SockClose {
			return configErr("%s: a UDP socket is established (connected) or close", where)
		}
		s.Options = maps.Clone(s.Options)
		if s.Cookie == 0 {
			for used[next] {
				next++
			}
			s.Cookie = next
			used[next] = true
		}
		h.sockets = append(h.sockets, s)
	}
	h.cfg.Sockets = h.sockets
	return nil
}

// Config returns the host as data: the Config it was built from, with
// every default filled in and the derived routes listed. New(h.Config())
// builds the same host.
func (h *Host) Config() *Config {
	c := h.cfg
	c.Interfaces = slices.Clone(c.Interfaces)
	c.Routes = slices.Clone(c.Routes)
	c.Rules = slices.Clone(c.Rules)
	c.Neighbours = slices.Clone(c.Neighbours)
	c.Sockets = slices.Clone(c.Sockets)
	for i := range c.Sockets {
		c.Sockets[i].Options = maps.Clone(c.Sockets[i].Options)
	}
	c.CongestionControls = slices.Clone(c.CongestionControls)
	return &c
}

// NetnsCookie returns the namespace's cookie.
func (h *Host) NetnsCookie() uint64 { return h.cookie }

// InitNetnsCookie returns the cookie of the host's initial namespace.
func (h *Host) InitNetnsCookie() uint64 { return h.initCookie }

// Interfaces returns the interfaces, by index.
func (h *Host) Interfaces() []Interface { return slices.Clone(h.ifaces) }

// Interface returns the interface with the given index.
func (h *Host) Interface(ifindex int) (Interface, bool) {
	i, ok := h.byIndex[ifindex]
	if !ok {
		return Interface{}, false
	}
	return h.ifaces[i], true
}

// InterfaceByName returns the interface with the given name.
func (h *Host) InterfaceByName(name string) (Interface, bool) {
	i, ok := h.byName[name]
	if !ok {
		return Interface{}, false
	}
	return h.ifaces[i], true
}

// HeaderLen returns the device's link-layer header length
// (hard_header_len): 14 for Ethernet-like devices and the loopback, 0 for
// L3 devices.
func (f Interface) HeaderLen() int {
	if f.Kind == KindL3 {
		return 0
	}
	return 14
}

// Sockets returns the sockets, with their cookies.
func (h *Host) Sockets() []Socket {
	out := slices.Clone(h.sockets)
	for i := range out {
		out[i].Options = maps.Clone(out[i].Options)
	}
	return out
}
