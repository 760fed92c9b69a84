package bench

import (
	"encoding/binary"
	"net/netip"
)

// The packets and blocklist the suite's packet programs (testdata/extra.c)
// run on, built here so that waggle and the kernel get the same bytes.

// Ethernet types and IP protocols, as <linux/if_ether.h> and <linux/in.h>
// number them.
const (
	ethIPv4   = 0x0800 // ETH_P_IP
	ethIPv6   = 0x86dd // ETH_P_IPV6
	ethVLAN   = 0x8100 // ETH_P_8021Q
	protoTCP  = 6      // IPPROTO_TCP
	protoUDP  = 17     // IPPROTO_UDP
	xdpDrop   = 1      // XDP_DROP
	xdpPass   = 2      // XDP_PASS
	firewallN = 16     // rules in the suite's blocklist
)

// frame is an Ethernet frame under construction.
type frame []byte

// ether starts a frame: destination and source MAC, then, with vlan
// nonzero, an 802.1Q tag, then the ethertype.
func ether(vlan uint16, ethertype uint16) frame {
	f := frame{0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0x02}
	if vlan != 0 {
		f = binary.BigEndian.AppendUint16(f, ethVLAN)
		f = binary.BigEndian.AppendUint16(f, vlan)
	}
	return binary.BigEndian.AppendUint16(f, ethertype)
}

// ipv4 appends an IPv4 header (no options) for a payload of n bytes, its
// header checksum set.
func (f frame) ipv4(src, dst netip.Addr, proto uint8, n int) frame {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+n))
	h[8] = 64 // TTL
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], ^internetSum(h))
	return append(f, h...)
}

// ipv6 appends an IPv6 header for a payload of n bytes.
func (f frame) ipv6(src, dst netip.Addr, next uint8, n int) frame {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(n))
	h[6] = next
	h[7] = 64 // hop limit
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(f, h...)
}

// tcp appends a SYN's TCP header (no options).
func (f frame) tcp(sport, dport uint16) frame {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	h[13] = 0x02 // SYN
	binary.BigEndian.PutUint16(h[14:], 64240)
	return append(f, h...)
}

// udp appends a UDP header for a payload of n bytes.
func (f frame) udp(sport, dport uint16, n int) frame {
	h := make([]byte, 8)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint16(h[4:], uint16(8+n))
	return append(f, h...)
}

// payload appends n bytes of a repeating pattern.
func (f frame) payload(n int) frame {
	for i := range n {
		f = append(f, byte(i*7+3))
	}
	return f
}

// internetSum is the ones' complement sum of b in 16-bit big-endian
// words (RFC 1071), folded.
func internetSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

var (
	fwSrc4 = netip.MustParseAddr("198.51.100.7")
	fwDst4 = netip.MustParseAddr("203.0.113.1")
	fwSrc6 = netip.MustParseAddr("2001:db8::99")
	fwDst6 = netip.MustParseAddr("2001:db8:1::1")
)

// firewallV4Packet is a TCP SYN to port 443 from fwSrc4, in VLAN 100:
// the blocklist has a rule for fwSrc4 and port 443, so xdp_firewall drops
// it.
func firewallV4Packet() []byte {
	return ether(100, ethIPv4).ipv4(fwSrc4, fwDst4, protoTCP, 20+26).tcp(40000, 443).payload(26)
}

// firewallV6Packet is a DNS query over UDP from fwSrc6, which no rule
// names: xdp_firewall looks it up, misses and passes it.
func firewallV6Packet() []byte {
	return ether(0, ethIPv6).ipv6(fwSrc6, fwDst6, protoUDP, 8+32).udp(5353, 53, 32).payload(32)
}

// checksumPacket is a 1500-byte IPv4 UDP frame.
func checksumPacket() []byte {
	const n = 1500 - 14 - 20 - 8
	return ether(0, ethIPv4).ipv4(fwSrc4, fwDst4, protoUDP, 8+n).udp(40000, 9, n).payload(n)
}

// firewallRules are the blocklist's entries (struct src_key to struct
// rule): firewallN rules, IPv4 and IPv6, one of them blocking fwSrc4's
// TCP to port 443.
func firewallRules() []MapEntry {
	var es []MapEntry
	for i := range firewallN {
		key := make([]byte, 20) // struct src_key
		rule := make([]byte, 8) // struct rule
		binary.LittleEndian.PutUint32(rule[0:], uint32(i))
		switch {
		case i == 3:
			key[0] = 4
			a := fwSrc4.As4()
			copy(key[4:], a[:])
			binary.LittleEndian.PutUint16(rule[4:], 443)
			rule[6] = protoTCP
		case i%2 == 0:
			key[0] = 4
			copy(key[4:], []byte{192, 0, 2, byte(i)})
		default:
			key[0] = 6
			a := netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}).As16()
			copy(key[4:], a[:])
			rule[6] = protoUDP
		}
		es = append(es, MapEntry{Map: "blocklist", Key: key, Value: rule})
	}
	return es
}
