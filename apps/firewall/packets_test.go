package firewall

import (
	"net"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// pkt describes a test packet.
type pkt struct {
	src, dst     string
	proto        string // tcp, udp, icmp
	sport, dport uint16
	syn, ack     bool
	payload      int
	frag         bool // IPv4 MF set / IPv6 fragment header
}

// build serializes p as an Ethernet frame.
func build(tb testing.TB, p pkt) []byte {
	tb.Helper()
	src, dst := net.ParseIP(p.src), net.ParseIP(p.dst)
	if src == nil || dst == nil {
		tb.Fatalf("bad addresses %q %q", p.src, p.dst)
	}
	v4 := src.To4() != nil
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	var ipProto layers.IPProtocol
	switch p.proto {
	case "tcp":
		ipProto = layers.IPProtocolTCP
	case "udp":
		ipProto = layers.IPProtocolUDP
	default:
		ipProto = layers.IPProtocolICMPv4
		if !v4 {
			ipProto = layers.IPProtocolICMPv6
		}
	}
	if v4 {
		eth.EthernetType = layers.EthernetTypeIPv4
		ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: src.To4(), DstIP: dst.To4(), Protocol: ipProto}
		if p.frag {
			ip.Flags = layers.IPv4MoreFragments
		}
		ls = append(ls, eth, ip)
		nl = ip
	} else {
		eth.EthernetType = layers.EthernetTypeIPv6
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: ipProto}
		ls = append(ls, eth, ip)
		nl = ip
		if p.frag {
			ip.NextHeader = layers.IPProtocolIPv6Fragment
			// A fragment header: next header, reserved, offset 0 with M set, id 1.
			ls = append(ls, gopacket.Payload{byte(ipProto), 0, 0, 1, 0, 0, 0, 1})
		}
	}
	switch p.proto {
	case "tcp":
		t := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), SYN: p.syn, ACK: p.ack, Window: 1024}
		t.SetNetworkLayerForChecksum(nl)
		ls = append(ls, t)
	case "udp":
		u := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
		u.SetNetworkLayerForChecksum(nl)
		ls = append(ls, u)
	default:
		if v4 {
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0)})
		} else {
			ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}
			ic.SetNetworkLayerForChecksum(nl)
			ls = append(ls, ic)
		}
	}
	ls = append(ls, gopacket.Payload(make([]byte, p.payload)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}
