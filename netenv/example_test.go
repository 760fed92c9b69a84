package netenv_test

import (
	"fmt"
	"net/netip"

	"github.com/waggle-bpf/waggle/netenv"
)

// A host declared in YAML: one interface, a default route through a
// gateway whose MAC the neighbour table knows, a listening socket.
func ExampleParse() {
	c, err := netenv.Parse([]byte(`
interfaces:
  - {index: 2, name: eth0, mac: "02:00:00:00:00:02", addrs: [10.0.0.1/24], forwarding: true}
routes:
  - {dst: 0.0.0.0/0, via: 10.0.0.254}
neighbours:
  - {dev: eth0, ip: 10.0.0.254, mac: "02:00:00:00:00:fe"}
sockets:
  - {proto: tcp, local: "0.0.0.0:80"}
`))
	if err != nil {
		panic(err)
	}
	h, err := netenv.New(c)
	if err != nil {
		panic(err)
	}
	r := h.LookupRoute(netenv.RouteQuery{Dst: netip.MustParseAddr("192.0.2.7"), IIf: 2})
	n, _ := h.Neighbour(r.Dev, r.Route.Via)
	fmt.Println(r.Type, "via", r.Route.Via, "dev", r.Dev, "mtu", h.MTU(r), "mac", n.MAC)
	i := h.LookupSocket(netenv.SocketQuery{Proto: "tcp",
		Src: netip.MustParseAddrPort("192.0.2.7:40000"), Dst: netip.MustParseAddrPort("10.0.0.1:80")})
	fmt.Println("socket", h.Socket(i).Local, h.Socket(i).State)
	// Output:
	// unicast via 10.0.0.254 dev 2 mtu 1500 mac 02:00:00:00:00:fe
	// socket 0.0.0.0:80 listen
}

// The empty host answers as Linux does without routes: no route, and
// only the loopback device.
func ExampleEmpty() {
	h := netenv.Empty()
	r := h.LookupRoute(netenv.RouteQuery{Dst: netip.MustParseAddr("192.0.2.7"), IIf: 1})
	lo, _ := h.Interface(1)
	fmt.Printf("route %q, %d interface: %s %v\n", r.Type, len(h.Interfaces()), lo.Name, lo.Addrs)
	// Output:
	// route "", 1 interface: lo [127.0.0.1/8 ::1/128]
}
