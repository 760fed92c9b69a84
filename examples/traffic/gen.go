// Package traffic holds the bundled packet capture the examples run on,
// traffic.pcap, and the program that writes it (go generate): a fixed,
// reproducible mix of IPv4 TCP, UDP (DNS, and payloads carrying the marker
// the loop example looks for) and ICMP from 24 sources, with some IPv6 and
// ARP frames.
package traffic

//go:generate go run ./mkpcap traffic.pcap
