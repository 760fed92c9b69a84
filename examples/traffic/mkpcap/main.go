// Command mkpcap writes the examples' packet capture: 1,000 Ethernet frames
// from a fixed seed, so the file is the same on every run. -n writes more
// (or fewer) of the same mix, for measuring runs over large captures.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

func main() {
	n := flag.Int("n", 1000, "number of frames")
	flag.Parse()
	if flag.NArg() != 1 || *n < 0 {
		fmt.Fprintln(os.Stderr, "usage: mkpcap [-n FRAMES] OUT.pcap")
		os.Exit(2)
	}
	if err := write(flag.Arg(0), *n); err != nil {
		fmt.Fprintln(os.Stderr, "mkpcap:", err)
		os.Exit(1)
	}
}

func write(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		return err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		frame, err := packet(rng, i)
		if err != nil {
			return err
		}
		ci := gopacket.CaptureInfo{Timestamp: start.Add(time.Duration(i) * time.Millisecond), CaptureLength: len(frame), Length: len(frame)}
		if err := w.WritePacket(ci, frame); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	return f.Close()
}

var (
	srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	dstMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
)

func packet(rng *rand.Rand, i int) ([]byte, error) {
	eth := &layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: layers.EthernetTypeIPv4}
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	buf := gopacket.NewSerializeBuffer()
	switch {
	case i%50 == 7:
		eth.EthernetType = layers.EthernetTypeARP
		arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
			Operation: layers.ARPRequest, SourceHwAddress: srcMAC, SourceProtAddress: []byte{10, 0, 0, 1},
			DstHwAddress: make([]byte, 6), DstProtAddress: []byte{10, 0, 0, 254}}
		return serialize(buf, opts, eth, arp)
	case i%50 == 13:
		eth.EthernetType = layers.EthernetTypeIPv6
		ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
			SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")}
		udp := &layers.UDP{SrcPort: 40000, DstPort: 53}
		udp.SetNetworkLayerForChecksum(ip6)
		return serialize(buf, opts, eth, ip6, udp, gopacket.Payload("ipv6"))
	}
	src := net.IPv4(10, 0, 0, byte(1+rng.IntN(16)))
	if rng.IntN(3) == 0 {
		src = net.IPv4(192, 168, 1, byte(1+rng.IntN(8)))
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: byte(32 + rng.IntN(32)), Id: uint16(i), SrcIP: src.To4(), DstIP: net.IPv4(10, 0, 0, 254).To4()}
	payload := make([]byte, rng.IntN(200))
	for k := range payload {
		payload[k] = byte('a' + rng.IntN(26))
	}
	switch r := rng.IntN(10); {
	case r < 5:
		ip.Protocol = layers.IPProtocolTCP
		tcp := &layers.TCP{SrcPort: layers.TCPPort(30000 + rng.IntN(1000)), DstPort: []layers.TCPPort{80, 443, 22, 8080}[rng.IntN(4)], Seq: rng.Uint32(), ACK: true, PSH: true, Window: 512}
		tcp.SetNetworkLayerForChecksum(ip)
		return serialize(buf, opts, eth, ip, tcp, gopacket.Payload(payload))
	case r < 9:
		ip.Protocol = layers.IPProtocolUDP
		udp := &layers.UDP{SrcPort: layers.UDPPort(40000 + rng.IntN(1000)), DstPort: []layers.UDPPort{53, 53, 5353, 9999}[rng.IntN(4)]}
		udp.SetNetworkLayerForChecksum(ip)
		if rng.IntN(5) == 0 && len(payload) > 10 {
			copy(payload[rng.IntN(len(payload)-6):], "WAGGLE")
		}
		return serialize(buf, opts, eth, ip, udp, gopacket.Payload(payload))
	default:
		ip.Protocol = layers.IPProtocolICMPv4
		icmp := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 7, Seq: uint16(i)}
		return serialize(buf, opts, eth, ip, icmp, gopacket.Payload(payload[:min(len(payload), 56)]))
	}
}

// serialize writes the layers into buf and returns the frame.
func serialize(buf gopacket.SerializeBuffer, opts gopacket.SerializeOptions, ls ...gopacket.SerializableLayer) ([]byte, error) {
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
