package trafficgen

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// TCP flag bits, as in the TCP header's 13th byte.
const (
	tcpFIN = 1 << 0
	tcpSYN = 1 << 1
	tcpRST = 1 << 2
	tcpPSH = 1 << 3
	tcpACK = 1 << 4
)

// pkt is a packet waiting in a Generator, everything decided but the bytes.
type pkt struct {
	at    time.Duration
	seq   uint64
	label Label

	src, dst     netip.Addr
	proto        layers.IPProtocol
	sport, dport uint16
	ttl          uint8
	ipid         uint16

	// TCP
	flags      uint8
	tseq, tack uint32
	win, mss   uint16

	payload []byte
	dns     *layers.DNS // the payload, when it is DNS

	// Fragments: payload is the raw fragment, after the IP header (and the
	// IPv6 fragment header, which frame adds).
	raw      bool
	fragID   uint32
	fragOff  uint16 // in 8-byte units
	fragMore bool

	malform int // 1 + index in malformedKinds, or 0
	extra   int // bytes an "ip-len"/"ip6-len" length claims beyond the packet
}

var malformedKinds = []string{"ihl", "ip-len", "tcp-doff", "l4-trunc", "syn-fin", "ip6-len"}

// MalformedKinds returns the kinds of malformed packet a Scenario can hold:
//
//	ihl       IPv4 header length 4 (16 bytes, below the minimum of 20)
//	ip-len    IPv4 total length larger than the packet
//	tcp-doff  TCP data offset 3 (below the minimum of 5)
//	l4-trunc  the packet ends 10 bytes into the TCP header (IPv4 length says so)
//	syn-fin   TCP SYN and FIN together
//	ip6-len   IPv6 payload length larger than the packet
func MalformedKinds() []string { return append([]string(nil), malformedKinds...) }

func malformedIndex(kind string) int {
	for i, k := range malformedKinds {
		if k == kind {
			return i
		}
	}
	return -1
}

var (
	victimMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0x01}
	routerMAC = net.HardwareAddr{0x02, 0x00, 0x5e, 0x00, 0x00, 0xfe}
)

// frame serializes p into a new Ethernet frame.
func (g *Generator) frame(p *pkt) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: routerMAC, DstMAC: victimMAC, EthernetType: layers.EthernetTypeIPv4}
	if p.label.Dir == Out {
		eth.SrcMAC, eth.DstMAC = victimMAC, routerMAC
	}
	var net gopacket.NetworkLayer
	var ls []gopacket.SerializableLayer
	ls = append(ls, eth)
	if p.src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: p.ttl, Id: p.ipid, Protocol: p.proto,
			SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		if p.proto == layers.IPProtocolTCP || p.raw {
			ip.Flags = layers.IPv4DontFragment
		}
		if p.raw {
			ip.Flags = 0
			if p.fragMore {
				ip.Flags = layers.IPv4MoreFragments
			}
			ip.FragOffset = p.fragOff
		}
		net = ip
		ls = append(ls, ip)
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: p.ttl, NextHeader: p.proto, SrcIP: p.src.AsSlice(), DstIP: p.dst.AsSlice()}
		net = ip
		ls = append(ls, ip)
		if p.raw {
			ip.NextHeader = layers.IPProtocolIPv6Fragment
			var fh [8]byte
			fh[0] = byte(p.proto)
			off := p.fragOff << 3
			if p.fragMore {
				off |= 1
			}
			binary.BigEndian.PutUint16(fh[2:], off)
			binary.BigEndian.PutUint32(fh[4:], p.fragID)
			ls = append(ls, gopacket.Payload(append(fh[:], p.payload...)))
		}
	}
	if !p.raw {
		switch p.proto {
		case layers.IPProtocolTCP:
			tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: p.tseq, Window: p.win,
				FIN: p.flags&tcpFIN != 0, SYN: p.flags&tcpSYN != 0, RST: p.flags&tcpRST != 0, PSH: p.flags&tcpPSH != 0, ACK: p.flags&tcpACK != 0}
			if tcp.ACK {
				tcp.Ack = p.tack
			}
			if p.mss != 0 {
				tcp.Options = []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{byte(p.mss >> 8), byte(p.mss)}}}
			}
			if err := tcp.SetNetworkLayerForChecksum(net); err != nil {
				return nil, err
			}
			ls = append(ls, tcp)
		case layers.IPProtocolUDP:
			udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
			if err := udp.SetNetworkLayerForChecksum(net); err != nil {
				return nil, err
			}
			ls = append(ls, udp)
		default:
			return nil, fmt.Errorf("BUG: protocol %v", p.proto)
		}
		switch {
		case p.dns != nil:
			ls = append(ls, p.dns)
		case len(p.payload) > 0:
			ls = append(ls, gopacket.Payload(p.payload))
		}
	} else if p.src.Is4() {
		ls = append(ls, gopacket.Payload(p.payload))
	}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(g.buf, opts, ls...); err != nil {
		return nil, err
	}
	b := append([]byte(nil), g.buf.Bytes()...)
	if p.malform != 0 {
		b = mangle(b, malformedKinds[p.malform-1], p.extra)
	}
	return b, nil
}

const ethLen = 14

// mangle breaks the header kind names in frame b (an IPv4 TCP frame, or
// IPv6 UDP for ip6-len), keeping every other field consistent: the IPv4
// header checksum is recomputed, so the one defect is the named one.
func mangle(b []byte, kind string, extra int) []byte {
	ip := b[ethLen:]
	switch kind {
	case "ihl":
		ip[0] = 0x44
	case "ip-len":
		binary.BigEndian.PutUint16(ip[2:], uint16(len(ip)+extra))
	case "tcp-doff":
		ip[20+12] = 3<<4 | ip[20+12]&0x0f
		// The TCP checksum covers the offset: fix it by the difference.
		fixTCPChecksum(ip)
	case "l4-trunc":
		b = b[:ethLen+20+10]
		ip = b[ethLen:]
		binary.BigEndian.PutUint16(ip[2:], 30)
	case "syn-fin":
		return b // built with both flags
	case "ip6-len":
		binary.BigEndian.PutUint16(ip[4:], uint16(len(ip)-40+extra))
		return b
	}
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], checksum(ip[:20], 0))
	return b
}

// fixTCPChecksum recomputes the TCP checksum of an IPv4 packet with a
// 20-byte header.
func fixTCPChecksum(ip []byte) {
	tcp := ip[20:]
	tcp[16], tcp[17] = 0, 0
	var pseudo uint32
	for i := 12; i < 20; i += 2 {
		pseudo += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	pseudo += uint32(ip[9]) + uint32(len(tcp))
	binary.BigEndian.PutUint16(tcp[16:], checksum(tcp, pseudo))
}

// checksum is the Internet checksum (RFC 1071) of b, starting from sum.
func checksum(b []byte, sum uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}
