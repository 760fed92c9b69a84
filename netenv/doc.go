// Package netenv owns the host's network as eBPF helpers see it: a model
// of one network namespace (interfaces, addresses, routes, policy rules,
// neighbours, sockets) and of the tunnel metadata of a packet, with the
// lookups Linux's helpers make in it.
//
// # Where a host comes from
//
// A Config is the host as data. It is written in Go, read from a JSON or
// YAML file (Parse, Load), or read from a live namespace through netlink
// (ReadNamespace, ReadHost). New checks it and builds a Host, completing
// what Linux derives: the loopback device, the connected, local and
// broadcast routes of every address of an interface that is up, socket
// cookies. Empty returns the empty host, with nothing but its loopback
// device: every helper asking it about a route, neighbour or socket gets
// what Linux answers on a host without one.
//
//	interfaces:
//	  - {index: 2, name: eth0, mac: "02:00:00:00:00:02", addrs: [10.0.0.1/24], forwarding: true}
//	routes:
//	  - {dst: 0.0.0.0/0, via: 10.0.0.254}
//	neighbours:
//	  - {dev: eth0, ip: 10.0.0.254, mac: "02:00:00:00:00:fe"}
//	sockets:
//	  - {proto: tcp, local: "0.0.0.0:80"}
//
// # Lookups
//
// LookupRoute is Linux's FIB lookup (policy rules, then the longest
// matching prefix of a table, with IPv4's TOS and IPv6's metric and device
// preferences), MTU and PrefSrc and SourceAddr6 what bpf_fib_lookup
// derives from a route, Neighbour the neighbour table, LookupSocket the
// TCP and UDP socket tables. Package progtype builds the helpers on them
// (bpf_fib_lookup, bpf_check_mtu, bpf_sk_lookup_tcp, ...); the tests
// compare those helpers with Linux in a namespace set up the same way.
//
// # What the model leaves out
//
// Multipath routes (the first nexthop is used), path MTU exceptions,
// lightweight tunnels other than their presence, VRFs, goto rules and
// rules on ports or UIDs, other namespaces (a socket lookup with a
// namespace id finds nothing), request sockets (connections being
// accepted), SO_REUSEPORT groups and IPV6_V6ONLY as netlink reports it
// (ReadNamespace takes sockets as dual-stack).
package netenv
