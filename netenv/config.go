package netenv

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"

	"sigs.k8s.io/yaml"
)

// Config is a host's network as data: what a JSON or YAML file holds, what
// ReadNamespace returns and what New turns into a Host. Interfaces,
// neighbours, routes and sockets name their interface by name ("dev").
//
// Only what differs from Linux's defaults need be written: a missing
// loopback interface is added (up, 127.0.0.1/8 and ::1/128), missing MAC
// addresses are derived from the interface index, and the routes Linux
// adds for an interface's addresses (the connected and local routes) are
// added by New unless listed.
type Config struct {
	// NetnsCookie is the namespace's cookie, what bpf_get_netns_cookie
	// returns; 0 means 1, the cookie of Linux's initial namespace.
	NetnsCookie uint64 `json:"netns_cookie,omitempty"`
	// InitNetnsCookie is the cookie of the host's initial namespace,
	// what bpf_get_netns_cookie returns for a NULL context; 0 means 1.
	// Linux numbers namespaces as it creates them, so the initial one's
	// cookie depends on the boot (ReadNamespace reads it from the
	// namespace of process 1, or of the calling process).
	InitNetnsCookie uint64      `json:"init_netns_cookie,omitempty"`
	Interfaces      []Interface `json:"interfaces,omitempty"`
	Routes          []Route     `json:"routes,omitempty"`
	// Rules are the policy routing rules (ip rule); nil means Linux's
	// defaults: lookup local (priority 0), main (32766) and, for IPv4,
	// default (32767).
	Rules      []Rule      `json:"rules,omitempty"`
	Neighbours []Neighbour `json:"neighbours,omitempty"`
	Sockets    []Socket    `json:"sockets,omitempty"`
	// CongestionControls are the TCP congestion controls the host's
	// kernel has (net.ipv4.tcp_available_congestion_control), the ones
	// TCP_CONGESTION may select; none means reno and cubic, which every
	// Linux has.
	CongestionControls []string `json:"congestion_controls,omitempty"`
}

// Interface is a network device (ip link, ip addr).
type Interface struct {
	// Index is the ifindex, unique and positive.
	Index int `json:"index"`
	// Name is the device name, unique (at most 15 bytes, IFNAMSIZ).
	Name string `json:"name"`
	// Kind is what the device is: KindLoopback, KindEther (the default),
	// KindVeth, KindNetkit, or KindL3 for devices without a link-layer
	// header (ipip, wireguard, tun).
	Kind string `json:"kind,omitempty"`
	// MAC is the device address; empty means 02:00:00:00:hh:ll from the
	// index (00:00:00:00:00:00 for the loopback device).
	MAC HardwareAddr `json:"mac,omitempty"`
	// MTU is the device MTU; 0 means 1500 (65536 for the loopback).
	MTU int `json:"mtu,omitempty"`
	// Down says the device is administratively down. Linux removes the
	// routes through a device that goes down, and so does New.
	Down bool `json:"down,omitempty"`
	// Addrs are the device's addresses with their prefix length.
	Addrs []netip.Prefix `json:"addrs,omitempty"`
	// Forwarding and Forwarding6 are net.ipv4.conf.DEV.forwarding and
	// net.ipv6.conf.DEV.forwarding: bpf_fib_lookup answers
	// BPF_FIB_LKUP_RET_FWD_DISABLED for a device without them.
	Forwarding  bool `json:"forwarding,omitempty"`
	Forwarding6 bool `json:"forwarding6,omitempty"`
	// Peer is the ifindex of the other end of a veth or netkit pair, in
	// the namespace where it lives (bpf_redirect_peer's target); 0 if
	// none.
	Peer int `json:"peer,omitempty"`
}

// Interface kinds.
const (
	KindLoopback = "loopback"
	KindEther    = "ether"
	KindVeth     = "veth"
	KindNetkit   = "netkit"
	KindL3       = "l3"
)

// Route is one route (ip route). Routes through an interface that is down
// are ignored, as Linux removes them.
type Route struct {
	// Dst is the destination prefix: 0.0.0.0/0 or ::/0 for a default
	// route.
	Dst netip.Prefix `json:"dst"`
	// Table is the routing table; 0 means main (254), or local (255) for
	// the local, broadcast, anycast and nat types, as ip route chooses.
	Table uint32 `json:"table,omitempty"`
	// Type is RouteUnicast (the default), RouteLocal, RouteBroadcast,
	// RouteAnycast, RouteMulticast, RouteBlackhole, RouteUnreachable,
	// RouteProhibit, RouteThrow or RouteNAT.
	Type RouteType `json:"type,omitempty"`
	// Via is the gateway, if any; an IPv6 gateway may serve an IPv4 route
	// (RFC 5549).
	Via netip.Addr `json:"via,omitzero"`
	// Dev is the output interface; with a gateway it may be left out and
	// is then the interface of the connected route that reaches the
	// gateway, as Linux finds it.
	Dev string `json:"dev,omitempty"`
	// Src is the preferred source address (ip route ... src).
	Src netip.Addr `json:"src,omitzero"`
	// Metric is the route's priority: lower wins among routes of the
	// same prefix. (ip -6 route add gives IPv6 routes 1024 unless told
	// otherwise; here 0 is 0.)
	Metric uint32 `json:"metric,omitempty"`
	// MTU is the route's MTU metric. bpf_fib_lookup uses it only when it
	// is locked (ip route ... mtu lock N), as Linux does.
	MTU     uint32 `json:"mtu,omitempty"`
	MTULock bool   `json:"mtu_lock,omitempty"`
	// TOS selects IPv4 packets by TOS (ip route ... tos); 0 matches all.
	TOS uint8 `json:"tos,omitempty"`
	// Encap says the route has a lightweight tunnel encapsulation (ip
	// route ... encap), which bpf_fib_lookup does not handle.
	Encap bool `json:"encap,omitempty"`
}

// RouteType is a route's type (RTN_* in include/uapi/linux/rtnetlink.h).
type RouteType string

// Route types.
const (
	RouteUnicast     RouteType = "unicast"
	RouteLocal       RouteType = "local"
	RouteBroadcast   RouteType = "broadcast"
	RouteAnycast     RouteType = "anycast"
	RouteMulticast   RouteType = "multicast"
	RouteBlackhole   RouteType = "blackhole"
	RouteUnreachable RouteType = "unreachable"
	RouteProhibit    RouteType = "prohibit"
	RouteThrow       RouteType = "throw"
	RouteNAT         RouteType = "nat"
)

// Routing tables (RT_TABLE_* in include/uapi/linux/rtnetlink.h).
const (
	TableDefault uint32 = 253
	TableMain    uint32 = 254
	TableLocal   uint32 = 255
)

// Rule is a policy routing rule (ip rule). A rule matches a flow when
// every selector it sets matches; its action then decides.
type Rule struct {
	// Priority orders the rules, lowest first.
	Priority uint32 `json:"priority"`
	// Family restricts the rule to "inet" or "inet6"; empty means both.
	Family string `json:"family,omitempty"`
	// Action is RuleLookup (the default), RuleBlackhole,
	// RuleUnreachable, RuleProhibit or RuleNop.
	Action RuleAction `json:"action,omitempty"`
	// Table is the table a lookup rule consults.
	Table uint32 `json:"table,omitempty"`
	// Selectors.
	Src     netip.Prefix `json:"from,omitzero"`
	Dst     netip.Prefix `json:"to,omitzero"`
	IIf     string       `json:"iif,omitempty"`
	OIf     string       `json:"oif,omitempty"`
	Mark    uint32       `json:"fwmark,omitempty"`
	Mask    uint32       `json:"fwmask,omitempty"` // 0 means 0xffffffff when Mark is set
	TOS     uint8        `json:"tos,omitempty"`
	IPProto uint8        `json:"ipproto,omitempty"`
	// Invert makes the rule match the flows its selectors do not (ip
	// rule not ...).
	Invert bool `json:"not,omitempty"`
}

// RuleAction is what a matching rule does.
type RuleAction string

// Rule actions.
const (
	RuleLookup      RuleAction = "lookup"
	RuleBlackhole   RuleAction = "blackhole"
	RuleUnreachable RuleAction = "unreachable"
	RuleProhibit    RuleAction = "prohibit"
	RuleNop         RuleAction = "nop"
)

// Neighbour is an entry of the neighbour table (ip neigh): the link-layer
// address of an IP address on an interface.
type Neighbour struct {
	Dev string       `json:"dev"`
	IP  netip.Addr   `json:"ip"`
	MAC HardwareAddr `json:"mac,omitempty"`
	// State is the NUD state: NeighPermanent (the default),
	// NeighReachable, NeighStale, NeighDelay, NeighProbe, NeighNoARP,
	// NeighIncomplete or NeighFailed. bpf_fib_lookup uses only valid
	// entries (every state but incomplete and failed).
	State NeighState `json:"state,omitempty"`
}

// NeighState is a neighbour entry's state (NUD_* in
// include/uapi/linux/neighbour.h).
type NeighState string

// Neighbour states.
const (
	NeighPermanent  NeighState = "permanent"
	NeighReachable  NeighState = "reachable"
	NeighStale      NeighState = "stale"
	NeighDelay      NeighState = "delay"
	NeighProbe      NeighState = "probe"
	NeighNoARP      NeighState = "noarp"
	NeighIncomplete NeighState = "incomplete"
	NeighFailed     NeighState = "failed"
)

// Valid reports whether the state holds a usable address (NUD_VALID).
func (s NeighState) Valid() bool {
	switch s {
	case "", NeighPermanent, NeighReachable, NeighStale, NeighDelay, NeighProbe, NeighNoARP:
		return true
	}
	return false
}

// Socket is an open TCP or UDP socket: one of a host's, as the socket
// lookup helpers find it, or the socket a run is about (the one a packet
// belongs to, a cgroup hook or a sock_ops callback runs for). Local is the
// address it is bound to (the destination of packets it receives), Remote
// its peer for a connected socket. Its options are its fields (Dev, Mark,
// Priority, V6Only, Congestion) and Options.
type Socket struct {
	// Cookie identifies the socket (SO_COOKIE, bpf_get_socket_cookie);
	// 0 means New assigns one.
	Cookie uint64 `json:"cookie,omitempty"`
	// Proto is "tcp" or "udp".
	Proto string `json:"proto"`
	// State is the TCP state; empty means SockListen for a TCP socket
	// without a remote address and SockEstablished otherwise. For UDP,
	// a socket with a remote address is connected (established), one
	// without is not (SockClose).
	State SockState `json:"state,omitempty"`
	// Local is the bound address and port; an unspecified address
	// (0.0.0.0, ::) receives on every address.
	Local netip.AddrPort `json:"local"`
	// Remote is the connected peer, if any.
	Remote netip.AddrPort `json:"remote,omitzero"`
	// Dev is the device the socket is bound to (SO_BINDTODEVICE), if
	// any.
	Dev string `json:"dev,omitempty"`
	// V6Only says an IPv6 socket on :: does not receive IPv4
	// (IPV6_V6ONLY).
	V6Only bool `json:"v6only,omitempty"`
	// Mark, Priority and UID are SO_MARK, SO_PRIORITY and the owner.
	Mark     uint32 `json:"mark,omitempty"`
	Priority uint32 `json:"priority,omitempty"`
	UID      uint32 `json:"uid,omitempty"`
	// Congestion is a TCP socket's congestion control (TCP_CONGESTION);
	// empty means cubic, Linux's default.
	Congestion string `json:"congestion,omitempty"`
	// Options are the socket's other options that were set, by level and
	// name, with the value getsockopt returns (SO_SNDBUF, TCP_NODELAY,
	// IP_TOS, ...); an option not listed has a new socket's default.
	// bpf_setsockopt in sock_ops programs sets them (replacing the map,
	// never writing into one it was given). They are not part of a
	// host's file.
	Options map[SockOpt]int32 `json:"-"`
}

// SockOpt names a socket option: its level (SOL_SOCKET, SOL_TCP, ...) and
// name (SO_SNDBUF, TCP_NODELAY, ...).
type SockOpt struct{ Level, Name int32 }

// SockState is a socket's TCP state (include/net/tcp_states.h).
type SockState string

// Socket states. Their numbers (SockState.Number) are what struct
// bpf_sock's state field holds.
const (
	SockEstablished SockState = "established"
	SockSynSent     SockState = "syn_sent"
	SockSynRecv     SockState = "syn_recv"
	SockFinWait1    SockState = "fin_wait1"
	SockFinWait2    SockState = "fin_wait2"
	SockTimeWait    SockState = "time_wait"
	SockClose       SockState = "close"
	SockCloseWait   SockState = "close_wait"
	SockLastAck     SockState = "last_ack"
	SockListen      SockState = "listen"
	SockClosing     SockState = "closing"
)

var sockStates = []SockState{"", SockEstablished, SockSynSent, SockSynRecv, SockFinWait1,
	SockFinWait2, SockTimeWait, SockClose, SockCloseWait, SockLastAck, SockListen, SockClosing}

// Number returns the state's number (TCP_ESTABLISHED = 1, ...), 0 for an
// unknown state.
func (s SockState) Number() uint32 {
	for i, n := range sockStates {
		if i > 0 && n == s {
			return uint32(i)
		}
	}
	return 0
}

// HardwareAddr is a link-layer address, written as net.HardwareAddr
// prints it (02:00:00:00:00:01) in JSON and YAML.
type HardwareAddr []byte

// String returns the address as 02:00:00:00:00:01.
func (a HardwareAddr) String() string { return net.HardwareAddr(a).String() }

// MarshalText writes the address as 02:00:00:00:00:01.
func (a HardwareAddr) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText reads an address in any form net.ParseMAC accepts.
func (a *HardwareAddr) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*a = nil
		return nil
	}
	m, err := net.ParseMAC(string(b))
	if err != nil {
		return err
	}
	*a = HardwareAddr(m)
	return nil
}

// Parse reads a Config from JSON or YAML (YAML is read as JSON's
// superset, with the same field names). Unknown fields are errors, so a
// misspelt key does not go unnoticed.
func Parse(data []byte) (*Config, error) {
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, fmt.Errorf("netenv: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("netenv: %w", err)
	}
	return &c, nil
}

// Load reads a host from a JSON or YAML file and builds it with New.
func Load(path string) (*Host, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("netenv: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	h, err := New(c)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// Marshal writes c as YAML, or as indented JSON when asJSON is set.
func (c *Config) Marshal(asJSON bool) ([]byte, error) {
	js, err := json.MarshalIndent(c, "", "  ")
	if err != nil || asJSON {
		return js, err
	}
	return yaml.JSONToYAML(js)
}
