package netenv_test

import (
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/netenv"
)

const hostYAML = `
netns_cookie: 4242
interfaces:
  - {index: 2, name: eth0, mac: "02:00:00:00:00:02", addrs: [10.0.0.1/24, "2001:db8::1/64"], forwarding: true, forwarding6: true}
  - {index: 3, name: eth1, mtu: 9000, addrs: [10.1.0.1/24], forwarding: true}
  - {index: 4, name: eth2, down: true, addrs: [10.2.0.1/24]}
routes:
  - {dst: 0.0.0.0/0, via: 10.0.0.254}
  - {dst: 192.168.0.0/16, via: 10.1.0.254, metric: 10}
  - {dst: 192.168.0.0/16, via: 10.0.0.253, metric: 20}
  - {dst: 192.168.1.0/24, via: 10.1.0.254, tos: 0x10}
  - {dst: 172.16.0.0/12, type: blackhole}
  - {dst: 172.16.1.0/24, type: throw}
  - {dst: 172.16.1.0/24, via: 10.1.0.254, table: 100}
  - {dst: 10.9.0.0/16, via: 10.2.0.254, dev: eth2}
  - {dst: "2001:db8:1::/48", via: "2001:db8::fe", metric: 1024}
  - {dst: "2001:db8:2::/48", dev: eth0, metric: 100}
  - {dst: "2001:db8:2::/48", dev: eth1, metric: 100}
rules:
  - {priority: 0, table: 255}
  - {priority: 10, fwmark: 7, table: 100}
  - {priority: 32766, table: 254}
  - {priority: 32767, table: 253}
  - {priority: 32767, family: inet6, table: 100}
neighbours:
  - {dev: eth0, ip: 10.0.0.254, mac: "02:00:00:00:00:fe"}
  - {dev: eth1, ip: 10.1.0.254, state: failed}
sockets:
  - {proto: tcp, local: "0.0.0.0:80"}
  - {proto: tcp, local: "10.0.0.1:80"}
  - {proto: tcp, local: "[::]:443"}
  - {proto: tcp, local: "[::]:444", v6only: true}
  - {proto: tcp, local: "10.0.0.1:80", remote: "10.0.0.9:5555"}
  - {proto: udp, local: "0.0.0.0:53"}
  - {proto: udp, local: "0.0.0.0:53", remote: "10.0.0.9:53"}
  - {proto: udp, local: "0.0.0.0:53", dev: eth1}
`

func mustHost(t *testing.T, text string) *netenv.Host {
	t.Helper()
	c, err := netenv.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	h, err := netenv.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestParse_jsonAndYAML(t *testing.T) {
	y, err := netenv.Parse([]byte(hostYAML))
	if err != nil {
		t.Fatal(err)
	}
	js, err := y.Marshal(true)
	if err != nil {
		t.Fatal(err)
	}
	j, err := netenv.Parse(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(y, j) {
		t.Fatalf("the YAML and its JSON differ:\n%+v\n%+v", y, j)
	}
	for _, bad := range []string{
		"interfaces: [{index: 2, name: eth0, adrs: [10.0.0.1/24]}]", // misspelt key
		"interfaces: [{index: 2, name: eth0, addrs: [10.0.0.300/24]}]",
		"routes: [{dst: 10.0.0.0}]",
		"neighbours: [{dev: eth0, ip: 10.0.0.1, mac: zz}]",
		"interfaces: {}",
		"\t:",
	} {
		if _, err := netenv.Parse([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestHost_config(t *testing.T) {
	h := mustHost(t, hostYAML)
	if h.NetnsCookie() != 4242 || h.InitNetnsCookie() != 1 {
		t.Fatalf("cookies %d %d", h.NetnsCookie(), h.InitNetnsCookie())
	}
	lo, ok := h.Interface(1)
	if !ok || lo.Name != "lo" || lo.Kind != netenv.KindLoopback || lo.MTU != 65536 || len(lo.Addrs) != 2 {
		t.Fatalf("the loopback device: %+v", lo)
	}
	eth1, _ := h.InterfaceByName("eth1")
	if eth1.MAC.String() != "02:00:00:00:00:03" || eth1.HeaderLen() != 14 {
		t.Fatalf("eth1 %+v", eth1)
	}
	// The host as data builds the same host.
	h2, err := netenv.New(h.Config())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(h.Config(), h2.Config()) {
		t.Fatal("New(h.Config()) differs from h")
	}
	seen := map[uint64]bool{}
	for _, s := range h.Sockets() {
		if s.Cookie == 0 || seen[s.Cookie] {
			t.Fatalf("socket cookie %d", s.Cookie)
		}
		seen[s.Cookie] = true
	}
}

func TestNew_errors(t *testing.T) {
	for _, c := range []struct{ name, yaml, want string }{
		{"index", "interfaces: [{index: 0, name: a}]", "positive"},
		{"twice", "interfaces: [{index: 2, name: a}, {index: 2, name: b}]", "used twice"},
		{"name twice", "interfaces: [{index: 2, name: a}, {index: 3, name: a}]", "used twice"},
		{"long name", "interfaces: [{index: 2, name: abcdefghijklmnopq}]", "bytes"},
		{"kind", "interfaces: [{index: 2, name: a, kind: bridge}]", "kind"},
		{"mac", "interfaces: [{index: 2, name: a, mac: \"02:00:00:00:00:00:00:01\"}]", "6 bytes"},
		{"route dev", "routes: [{dst: 10.0.0.0/8, dev: nope}]", "no interface"},
		{"route nothing", "routes: [{dst: 10.0.0.0/8}]", "device or a gateway"},
		{"gateway", "routes: [{dst: 10.0.0.0/8, via: 192.0.2.1}]", "not on a connected network"},
		{"link-local gateway", "routes: [{dst: \"::/0\", via: \"fe80::1\"}]", "needs a device"},
		{"type", "routes: [{dst: 10.0.0.0/8, type: wormhole, dev: lo}]", "type"},
		{"family", "routes: [{dst: \"2001:db8::/32\", via: 10.0.0.1, dev: lo}]", "another family"},
		{"rule action", "rules: [{priority: 1, action: goto}]", "action"},
		{"rule table", "rules: [{priority: 1}]", "table"},
		{"neigh state", "neighbours: [{dev: lo, ip: 10.0.0.1, mac: \"02:00:00:00:00:01\", state: sleepy}]", "state"},
		{"neigh mac", "neighbours: [{dev: lo, ip: 10.0.0.1}]", "MAC"},
		{"neigh twice", "neighbours: [{dev: lo, ip: 10.0.0.1, state: failed}, {dev: lo, ip: 10.0.0.1, state: failed}]", "second entry"},
		{"proto", "sockets: [{proto: sctp, local: \"0.0.0.0:1\"}]", "proto"},
		{"cookie", "sockets: [{proto: tcp, local: \"0.0.0.0:1\", cookie: 5}, {proto: tcp, local: \"0.0.0.0:2\", cookie: 5}]", "twice"},
		{"udp state", "sockets: [{proto: udp, local: \"0.0.0.0:1\", state: listen}]", "UDP"},
		{"congestion name", "congestion_controls: [reno, \"\"]", "congestion control"},
		{"congestion long name", "congestion_controls: [abcdefghijklmnop]", "congestion control"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := netenv.Parse([]byte(c.yaml))
			if err != nil {
				t.Fatal(err)
			}
			_, err = netenv.New(cfg)
			if !errors.Is(err, netenv.ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an ErrConfig naming %q", err, c.want)
			}
		})
	}
}

func TestHost_lookupRoute(t *testing.T) {
	h := mustHost(t, hostYAML)
	a := netip.MustParseAddr
	for _, c := range []struct {
		name string
		q    netenv.RouteQuery
		typ  netenv.RouteType
		via  string
		dev  int
	}{
		{"default", netenv.RouteQuery{Dst: a("8.8.8.8"), IIf: 2}, netenv.RouteUnicast, "10.0.0.254", 2},
		{"connected", netenv.RouteQuery{Dst: a("10.1.0.7"), IIf: 2}, netenv.RouteUnicast, "", 3},
		{"local", netenv.RouteQuery{Dst: a("10.0.0.1"), IIf: 2}, netenv.RouteLocal, "", 2},
		{"broadcast", netenv.RouteQuery{Dst: a("10.0.0.255"), IIf: 2}, netenv.RouteBroadcast, "", 2},
		{"lower metric", netenv.RouteQuery{Dst: a("192.168.5.5"), IIf: 2}, netenv.RouteUnicast, "10.1.0.254", 3},
		{"tos", netenv.RouteQuery{Dst: a("192.168.1.5"), IIf: 2, TOS: 0x10}, netenv.RouteUnicast, "10.1.0.254", 3},
		{"tos ecn bits", netenv.RouteQuery{Dst: a("192.168.1.5"), IIf: 2, TOS: 0x13}, netenv.RouteUnicast, "10.1.0.254", 3},
		{"output device", netenv.RouteQuery{Dst: a("192.168.5.5"), IIf: 1, OIf: 2}, netenv.RouteUnicast, "10.0.0.253", 2},
		{"output no route", netenv.RouteQuery{Dst: a("10.1.0.7"), IIf: 1, OIf: 2}, netenv.RouteUnicast, "10.0.0.254", 2},
		{"blackhole", netenv.RouteQuery{Dst: a("172.17.0.1"), IIf: 2}, netenv.RouteBlackhole, "", 0},
		{"throw to the next rule", netenv.RouteQuery{Dst: a("172.16.1.1"), IIf: 2}, "", "", 0}, // not on to 172.16.0.0/12 or the default
		{"mark rule", netenv.RouteQuery{Dst: a("172.16.1.1"), IIf: 2, Mark: 7}, netenv.RouteUnicast, "10.1.0.254", 3},
		{"direct table", netenv.RouteQuery{Dst: a("172.16.1.1"), Table: 100}, netenv.RouteUnicast, "10.1.0.254", 3},
		{"down device", netenv.RouteQuery{Dst: a("10.9.0.1"), IIf: 2}, netenv.RouteUnicast, "10.0.0.254", 2},
		{"v6 gateway", netenv.RouteQuery{Dst: a("2001:db8:1::1"), IIf: 2}, netenv.RouteUnicast, "2001:db8::fe", 2},
		{"v6 prefers the device", netenv.RouteQuery{Dst: a("2001:db8:2::1"), IIf: 3, OIf: 3}, netenv.RouteUnicast, "", 3},
		{"v6 first otherwise", netenv.RouteQuery{Dst: a("2001:db8:2::1"), IIf: 1, OIf: 4}, netenv.RouteUnicast, "", 2},
		{"v6 no route", netenv.RouteQuery{Dst: a("2001:db9::1"), IIf: 2}, "", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.LookupRoute(c.q)
			via := ""
			if r.Route.Via.IsValid() {
				via = r.Route.Via.String()
			}
			if r.Type != c.typ || via != c.via || r.Dev != c.dev {
				t.Fatalf("got %s via %q dev %d, want %s via %q dev %d", r.Type, via, r.Dev, c.typ, c.via, c.dev)
			}
		})
	}
	if r := h.LookupRoute(netenv.RouteQuery{Dst: a("10.0.0.1"), Table: 77}); !r.NoTable {
		t.Fatal("a table that does not exist was found")
	}
	if r := h.LookupRoute(netenv.RouteQuery{Dst: a("192.168.5.5"), IIf: 2}); h.MTU(r) != 9000 || h.PrefSrc(r).String() != "10.1.0.1" {
		t.Fatalf("MTU %d, source %s", h.MTU(r), h.PrefSrc(r))
	}
	if r := h.LookupRoute(netenv.RouteQuery{Dst: a("2001:db8:1::1"), IIf: 2}); true {
		if src, ok := h.SourceAddr6(r, a("2001:db8:1::1")); !ok || src != a("2001:db8::1") {
			t.Fatalf("IPv6 source %s, %v", src, ok)
		}
	}
	if n, ok := h.Neighbour(3, a("10.1.0.254")); !ok || n.State.Valid() {
		t.Fatalf("the failed neighbour: %+v, %v", n, ok)
	}
}

func TestHost_lookupSocket(t *testing.T) {
	h := mustHost(t, hostYAML)
	ap := netip.MustParseAddrPort
	for _, c := range []struct {
		name  string
		q     netenv.SocketQuery
		local string
		found bool
	}{
		{"exact listener", netenv.SocketQuery{Proto: "tcp", Src: ap("10.0.0.5:1"), Dst: ap("10.0.0.1:80")}, "10.0.0.1:80", true},
		{"wildcard listener", netenv.SocketQuery{Proto: "tcp", Src: ap("10.0.0.5:1"), Dst: ap("10.1.0.1:80")}, "0.0.0.0:80", true},
		{"established", netenv.SocketQuery{Proto: "tcp", Src: ap("10.0.0.9:5555"), Dst: ap("10.0.0.1:80")}, "10.0.0.1:80", true},
		{"dual stack", netenv.SocketQuery{Proto: "tcp", Src: ap("10.0.0.5:1"), Dst: ap("10.0.0.1:443")}, "[::]:443", true},
		{"v6 only", netenv.SocketQuery{Proto: "tcp", Src: ap("10.0.0.5:1"), Dst: ap("10.0.0.1:444")}, "", false},
		{"v6 only from v6", netenv.SocketQuery{Proto: "tcp", Src: ap("[2001:db8::5]:1"), Dst: ap("[2001:db8::1]:444")}, "[::]:444", true},
		{"udp unconnected", netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.5:53"), Dst: ap("10.0.0.1:53")}, "0.0.0.0:53", true},
		{"udp connected wins", netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.9:53"), Dst: ap("10.0.0.1:53")}, "0.0.0.0:53", true},
		{"udp bound device wins", netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.5:53"), Dst: ap("10.0.0.1:53"), Dev: 3}, "0.0.0.0:53", true},
		{"no socket", netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.5:53"), Dst: ap("10.0.0.1:54")}, "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			i := h.LookupSocket(c.q)
			if (i >= 0) != c.found || c.found && h.Socket(i).Local.String() != c.local {
				t.Fatalf("found %d", i)
			}
		})
	}
	if i := h.LookupSocket(netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.9:53"), Dst: ap("10.0.0.1:53")}); !h.Socket(i).Remote.IsValid() {
		t.Fatal("the connected UDP socket did not win")
	}
	if i := h.LookupSocket(netenv.SocketQuery{Proto: "udp", Src: ap("10.0.0.5:53"), Dst: ap("10.0.0.1:53"), Dev: 3}); h.Socket(i).Dev != "eth1" {
		t.Fatal("the socket bound to the device did not win")
	}
}

// FuzzParse: any input gives a host or an error, never a panic.
func FuzzParse(f *testing.F) {
	f.Add([]byte(hostYAML))
	f.Add([]byte(`{"interfaces": [{"index": 1, "name": "lo", "down": true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := netenv.Parse(data)
		if err != nil {
			return
		}
		h, err := netenv.New(c)
		if err != nil {
			return
		}
		h.LookupRoute(netenv.RouteQuery{Dst: netip.MustParseAddr("10.0.0.1")})
		h.LookupSocket(netenv.SocketQuery{Proto: "tcp", Src: netip.MustParseAddrPort("10.0.0.2:1"), Dst: netip.MustParseAddrPort("10.0.0.1:80")})
	})
}

// TestHost_socketState checks what a host keeps of its sockets' options
// and its congestion controls: copies, so that neither the Config nor the
// caller of Sockets changes the host.
func TestHost_socketState(t *testing.T) {
	key := netenv.SockOpt{Level: 1, Name: 7}
	cfg := &netenv.Config{
		Sockets:            []netenv.Socket{{Proto: "tcp", Local: netip.MustParseAddrPort("0.0.0.0:80"), Congestion: "reno", Options: map[netenv.SockOpt]int32{key: 9000}}},
		CongestionControls: []string{"cubic", "bbr"},
	}
	h, err := netenv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Sockets[0].Options[key] = 1
	h.Sockets()[0].Options[key] = 2
	h.Config().Sockets[0].Options[key] = 3
	if s := h.Socket(0); s.Options[key] != 9000 || s.Congestion != "reno" {
		t.Errorf("socket options %v, congestion %q", s.Options, s.Congestion)
	}
	if !h.HasCongestionControl("bbr") || h.HasCongestionControl("reno") {
		t.Errorf("congestion controls: bbr %v, reno %v", h.HasCongestionControl("bbr"), h.HasCongestionControl("reno"))
	}
	if e := netenv.Empty(); !e.HasCongestionControl("reno") || !e.HasCongestionControl("cubic") || e.HasCongestionControl("bbr") {
		t.Errorf("the empty host's congestion controls are not reno and cubic")
	}
}
