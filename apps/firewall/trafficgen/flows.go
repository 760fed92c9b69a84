package trafficgen

import (
	"math/rand/v2"
	"net/netip"
	"strconv"
	"time"

	"github.com/google/gopacket/layers"
)

// maxTCPFlowPackets bounds the packets of one legitimate TCP flow: three
// for the handshake, at most three exchanges of one request, nine response
// segments and five acknowledgements, and three to close.
const maxTCPFlowPackets = 3 + 3*(1+9+5) + 3

// Ephemeral ports are drawn from Linux's default range, which holds no port
// gopacket decodes as an application protocol.
func ephemeral(r *rand.Rand) uint16 { return uint16(32768 + r.IntN(61000-32768)) }

// chooseHosts picks the scenario's addresses.
func (g *Generator) chooseHosts(r *rand.Rand) {
	s := &g.s
	used := map[netip.Addr]bool{s.Victim4: true, s.Victim6: true}
	g.known = used
	h := &g.hosts
	h.Clients4 = make([]netip.Addr, s.Clients)
	h.Clients6 = make([]netip.Addr, s.Clients)
	for i := range h.Clients4 {
		h.Clients4[i] = publicIPv4(r, used)
		used[h.Clients4[i]] = true
		// Each IPv6 client in its own /64 of 2001:db8::/32.
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		for k := 4; k < 16; k++ {
			b[k] = byte(r.Uint32())
		}
		h.Clients6[i] = netip.AddrFrom16(b)
	}
	for range 2 {
		a := publicIPv4(r, used)
		used[a] = true
		h.Resolvers = append(h.Resolvers, a)
	}
	h.Resolvers = append(h.Resolvers, netip.MustParseAddr("2001:db8:53::53"))
	for range 4 {
		a := publicIPv4(r, used)
		used[a] = true
		h.NTPServers = append(h.NTPServers, a)
	}
	h.Scanner = publicIPv4(r, used)
	used[h.Scanner] = true
	h.Reflectors = make([]netip.Addr, s.Reflectors)
	for i := range h.Reflectors {
		h.Reflectors[i] = publicIPv4(r, used)
		used[h.Reflectors[i]] = true
	}
}

// publicIPv4 returns a random unicast address outside the private,
// loopback, link-local, shared, benchmark and documentation ranges and not
// in avoid.
func publicIPv4(r *rand.Rand, avoid map[netip.Addr]bool) netip.Addr {
	for {
		v := r.Uint32()
		a, b, c := byte(v>>24), byte(v>>16), byte(v>>8)
		switch {
		case a == 0, a == 10, a == 127, a >= 224,
			a == 100 && b&0xc0 == 64, a == 169 && b == 254, a == 172 && b&0xf0 == 16,
			a == 192 && b == 168, a == 192 && b == 0, a == 198 && b&0xfe == 18,
			a == 198 && b == 51 && c == 100, a == 203 && b == 0 && c == 113:
			continue
		}
		addr := netip.AddrFrom4([4]byte{a, b, c, byte(v)})
		if !avoid[addr] {
			return addr
		}
	}
}

// spoofed returns a random source for a flood: IPv4 as publicIPv4, avoiding
// the legitimate hosts; IPv6 in 2000::/3 outside 2001:db8::/32.
func (g *Generator) spoofed(r *rand.Rand, v6 bool) netip.Addr {
	if !v6 {
		for {
			a := publicIPv4(r, nil)
			if !g.isKnown(a) {
				return a
			}
		}
	}
	for {
		var b [16]byte
		for k := range b {
			b[k] = byte(r.Uint32())
		}
		b[0] = 0x20 | b[0]&0x1f
		if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 {
			continue
		}
		return netip.AddrFrom16(b)
	}
}

// isKnown reports whether a is the victim or one of the scenario's IPv4
// hosts, which spoofed sources avoid.
func (g *Generator) isKnown(a netip.Addr) bool { return g.known[a] }

// duration returns a uniform duration in [lo, hi).
func duration(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

// tcpFlow queues a TCP connection from a client to the victim's port, as
// the victim sees it: the client's packets arrive a round trip after the
// victim's packets they answer.
//
//	client            victim
//	  SYN  ------------>
//	       <------------ SYN-ACK   (after the server's turnaround)
//	  ACK  ------------>           (a round trip later)
//	  request -------->
//	       <------------ response segments, paced
//	  ACK every second segment -->
//	  ... 1 to 3 exchanges ...
//	  FIN  ------------>
//	       <------------ FIN-ACK
//	  ACK  ------------>
func (g *Generator) tcpFlow(r *rand.Rand, at time.Duration, v6 bool, port uint16, kind string) {
	ci := r.IntN(len(g.hosts.Clients4))
	client, victim := g.hosts.Clients4[ci], g.s.Victim4
	if v6 {
		client, victim = g.hosts.Clients6[ci], g.s.Victim6
	}
	tls := port == 443
	rtt := duration(r, 5*time.Millisecond, 80*time.Millisecond)
	turn := duration(r, 20*time.Microsecond, 200*time.Microsecond)
	sport := ephemeral(r)
	cseq, sseq := r.Uint32(), r.Uint32()
	ttl := uint8(40 + r.IntN(24))
	label := Label{Class: Legit, Kind: kind}
	in := func(t time.Duration, flags uint8, payload []byte, mss uint16) {
		p := &pkt{at: t, label: label, src: client, dst: victim, proto: layers.IPProtocolTCP, sport: sport, dport: port,
			flags: flags, tseq: cseq, tack: sseq, win: 64240, mss: mss, ttl: ttl, ipid: uint16(r.Uint32()), payload: payload}
		g.push(p)
		cseq += uint32(len(payload))
		if flags&(tcpSYN|tcpFIN) != 0 {
			cseq++
		}
	}
	out := func(t time.Duration, flags uint8, payload []byte, mss uint16) {
		l := label
		l.Dir = Out
		p := &pkt{at: t, label: l, src: victim, dst: client, proto: layers.IPProtocolTCP, sport: port, dport: sport,
			flags: flags, tseq: sseq, tack: cseq, win: 65160, mss: mss, ttl: 64, ipid: uint16(r.Uint32()), payload: payload}
		g.push(p)
		sseq += uint32(len(payload))
		if flags&(tcpSYN|tcpFIN) != 0 {
			sseq++
		}
	}
	t := at
	in(t, tcpSYN, nil, 1460)
	// The SYN-ACK acknowledges the SYN; the client's ACK acknowledges the
	// SYN-ACK, so each side's numbers move before the other answers.
	out(t+turn, tcpSYN|tcpACK, nil, 1460)
	t += turn + rtt
	in(t, tcpACK, nil, 0)
	for e := range 1 + r.IntN(3) {
		recType := byte(23)
		reqLen, respLen := 80+r.IntN(500), 200+r.IntN(12000)
		if tls && e == 0 {
			recType, reqLen, respLen = 22, 517, 2500+r.IntN(2000)
		}
		t += duration(r, 100*time.Microsecond, 30*time.Millisecond)
		in(t, tcpPSH|tcpACK, appData(r, reqLen, tls, recType), 0)
		t += turn
		var segs int
		for respLen > 0 {
			n := min(respLen, 1448)
			respLen -= n
			if respLen > 0 && respLen < 6 { // a TLS record needs a header
				n, respLen = n+respLen, 0
			}
			out(t, tcpACK|tcpPSH, appData(r, n, tls, recType), 0)
			segs++
			if segs%2 == 0 || respLen == 0 {
				in(t+rtt, tcpACK, nil, 0)
			}
			t += 12 * time.Microsecond // 1448 bytes at 1 Gb/s
		}
		t += rtt
	}
	t += duration(r, time.Millisecond, 50*time.Millisecond)
	in(t, tcpFIN|tcpACK, nil, 0)
	out(t+turn, tcpFIN|tcpACK, nil, 0)
	in(t+turn+rtt, tcpACK, nil, 0)
}

// appData returns n bytes of application data: for TLS, one record of type
// recType filling the segment (so gopacket decodes it); otherwise random
// bytes.
func appData(r *rand.Rand, n int, tls bool, recType byte) []byte {
	b := make([]byte, n)
	fill(r, b)
	if tls {
		b[0], b[1], b[2] = recType, 3, 3
		b[3], b[4] = byte((n-5)>>8), byte(n-5)
		if recType == 22 && n >= 9 { // handshake: type and 24-bit length of what follows
			b[5] = 1
			l := n - 9
			b[6], b[7], b[8] = byte(l>>16), byte(l>>8), byte(l)
		}
	}
	return b
}

// fill fills b with random bytes.
func fill(r *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := r.Uint64()
		for k := i; k < len(b) && k < i+8; k++ {
			b[k] = byte(v)
			v >>= 8
		}
	}
}

// dnsQuery queues one of the victim's DNS queries and its answer.
func (g *Generator) dnsQuery(r *rand.Rand, at time.Duration) {
	res := g.hosts.Resolvers[r.IntN(len(g.hosts.Resolvers))]
	victim := g.s.Victim4
	if res.Is6() {
		victim = g.s.Victim6
	}
	sport, id := ephemeral(r), uint16(r.Uint32())
	name := []byte("host" + itoa(r.IntN(5000)) + ".example.com")
	qtype := layers.DNSTypeA
	if res.Is6() {
		qtype = layers.DNSTypeAAAA
	}
	q := &layers.DNS{ID: id, RD: true, QDCount: 1, Questions: []layers.DNSQuestion{{Name: name, Type: qtype, Class: layers.DNSClassIN}}}
	ans := &layers.DNS{ID: id, QR: true, RD: true, RA: true, QDCount: 1, Questions: q.Questions}
	for range 1 + r.IntN(4) {
		rr := layers.DNSResourceRecord{Name: name, Type: qtype, Class: layers.DNSClassIN, TTL: uint32(60 + r.IntN(3600))}
		ip := make([]byte, 4)
		if qtype == layers.DNSTypeAAAA {
			ip = make([]byte, 16)
		}
		fill(r, ip)
		rr.IP = ip
		ans.Answers = append(ans.Answers, rr)
	}
	ans.ANCount = uint16(len(ans.Answers))
	rtt := duration(r, time.Millisecond, 30*time.Millisecond)
	label := Label{Class: Legit, Kind: "dns"}
	out := label
	out.Dir = Out
	g.push(&pkt{at: at, label: out, src: victim, dst: res, proto: layers.IPProtocolUDP, sport: sport, dport: 53, ttl: 64, ipid: uint16(r.Uint32()), dns: q})
	g.push(&pkt{at: at + rtt, label: label, src: res, dst: victim, proto: layers.IPProtocolUDP, sport: 53, dport: sport, ttl: uint8(50 + r.IntN(10)), ipid: uint16(r.Uint32()), dns: ans})
}

// ntpPoll queues one of the victim's NTP polls (mode 3) and its answer
// (mode 4), 48 bytes each.
func (g *Generator) ntpPoll(r *rand.Rand, at time.Duration) {
	srv := g.hosts.NTPServers[r.IntN(len(g.hosts.NTPServers))]
	q, a := make([]byte, 48), make([]byte, 48)
	fill(r, q[40:])
	q[0] = 0x23 // LI 0, version 4, mode 3 (client)
	fill(r, a[4:])
	a[0], a[1], a[2], a[3] = 0x24, 2, 6, 0xe9 // mode 4 (server), stratum 2
	copy(a[24:32], q[40:48])                  // origin timestamp = the client's transmit timestamp
	rtt := duration(r, time.Millisecond, 40*time.Millisecond)
	label := Label{Class: Legit, Kind: "ntp"}
	out := label
	out.Dir = Out
	g.push(&pkt{at: at, label: out, src: g.s.Victim4, dst: srv, proto: layers.IPProtocolUDP, sport: 123, dport: 123, ttl: 64, ipid: uint16(r.Uint32()), payload: q})
	g.push(&pkt{at: at + rtt, label: label, src: srv, dst: g.s.Victim4, proto: layers.IPProtocolUDP, sport: 123, dport: 123, ttl: uint8(50 + r.IntN(10)), ipid: uint16(r.Uint32()), payload: a})
}

// synFlood queues one SYN from a spoofed source to port 80 or 443.
func (g *Generator) synFlood(r *rand.Rand, at time.Duration, v6 bool) {
	kind, dst := "ipv4", g.s.Victim4
	if v6 {
		kind, dst = "ipv6", g.s.Victim6
	}
	var mss uint16
	if r.IntN(2) == 0 {
		mss = 1460
	}
	g.push(&pkt{at: at, label: Label{Class: SYNFlood, Kind: kind}, src: g.spoofed(r, v6), dst: dst, proto: layers.IPProtocolTCP,
		sport: uint16(1024 + r.IntN(64512)), dport: []uint16{80, 443}[r.IntN(2)], flags: tcpSYN, tseq: r.Uint32(),
		win: []uint16{1024, 5840, 29200, 64240, 65535}[r.IntN(5)], mss: mss, ttl: uint8(32 + r.IntN(224)), ipid: uint16(r.Uint32())})
}

// ampKind names the service a reflector abuses on port p.
func ampKind(p uint16) (string, bool) {
	switch p {
	case 53:
		return "dns", true
	case 123:
		return "ntp", true
	case 1900:
		return "ssdp", true
	case 11211:
		return "memcached", true
	}
	return "", false
}

// amplified queues one reflected response to the victim.
func (g *Generator) amplified(r *rand.Rand, at time.Duration) {
	i := r.IntN(len(g.hosts.Reflectors))
	port := g.s.AmpPorts[i%len(g.s.AmpPorts)]
	kind, _ := ampKind(port)
	max := g.s.AmpPayload
	p := &pkt{at: at, label: Label{Class: Amplification, Kind: kind}, src: g.hosts.Reflectors[i], dst: g.s.Victim4,
		proto: layers.IPProtocolUDP, sport: port, dport: ephemeral(r), ttl: uint8(40 + r.IntN(200)), ipid: uint16(r.Uint32())}
	switch port {
	case 53: // an ANY answer stuffed with TXT strings
		p.dns = ampDNS(r, max*3/4+r.IntN(max/4+1))
	case 123: // a monlist (mode 7) response: 8-byte header, six 72-byte entries
		b := make([]byte, min(440, max))
		fill(r, b)
		b[0], b[1], b[2], b[3] = 0xd7, 0, 3, 42
		p.payload = b
	case 1900:
		p.payload = ssdpResponse(r, min(max, 250+r.IntN(100)))
	case 11211:
		p.payload = memcachedValue(r, max/2+r.IntN(max/2+1))
	}
	g.push(p)
}

// ampDNS returns a DNS answer of about size bytes: one TXT record of many
// strings.
func ampDNS(r *rand.Rand, size int) *layers.DNS {
	name := []byte("x" + itoa(r.IntN(100000)) + ".example.org")
	d := &layers.DNS{ID: uint16(r.Uint32()), QR: true, RD: true, RA: true, QDCount: 1, ANCount: 1,
		Questions: []layers.DNSQuestion{{Name: name, Type: layers.DNSTypeTXT, Class: layers.DNSClassIN}}}
	fixed := 12 + (len(name) + 2 + 4) + (len(name) + 2 + 10)
	left := max(size-fixed, 2)
	var txts [][]byte
	for left > 1 {
		n := min(left-1, 255)
		b := make([]byte, n)
		fill(r, b)
		for k := range b {
			b[k] = 'a' + b[k]%26
		}
		txts = append(txts, b)
		left -= n + 1
	}
	d.Answers = []layers.DNSResourceRecord{{Name: name, Type: layers.DNSTypeTXT, Class: layers.DNSClassIN, TTL: 3600, TXTs: txts}}
	return d
}

func ssdpResponse(r *rand.Rand, size int) []byte {
	b := []byte("HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\nST: upnp:rootdevice\r\nUSN: uuid:" + itoa(r.IntN(1<<30)) +
		"::upnp:rootdevice\r\nSERVER: Linux/2.6 UPnP/1.0 miniupnpd/1.0\r\nLOCATION: http://192.168.1.1:1900/rootDesc.xml\r\nEXT:\r\n")
	for len(b) < size-2 {
		b = append(b, 'X')
	}
	return append(b, "\r\n"...)
}

func memcachedValue(r *rand.Rand, size int) []byte {
	b := []byte("\x00\x01\x00\x00\x00\x01\x00\x00VALUE k 0 ") // the UDP frame header, then the value
	body := max(size-len(b)-16, 1)
	b = append(b, itoa(body)+"\r\n"...)
	v := make([]byte, body)
	fill(r, v)
	b = append(b, v...)
	return append(b, "\r\nEND\r\n"...)
}

// scanProbe queues the scanner's next SYN.
func (g *Generator) scanProbe(r *rand.Rand, at time.Duration) {
	port := g.scan[g.scanAt%len(g.scan)]
	g.scanAt++
	g.push(&pkt{at: at, label: Label{Class: PortScan, Kind: "syn"}, src: g.hosts.Scanner, dst: g.s.Victim4, proto: layers.IPProtocolTCP,
		sport: g.scanSrc, dport: port, flags: tcpSYN, tseq: r.Uint32(), win: 1024, mss: 1460, ttl: 48, ipid: uint16(r.Uint32())})
}

// fragmented queues a UDP datagram from a random source in two fragments,
// IPv4 or IPv6.
func (g *Generator) fragmented(r *rand.Rand, at time.Duration) {
	v6 := r.IntN(2) == 1
	src, dst, fam, first := g.spoofed(r, v6), g.s.Victim4, "ipv4", 1480
	if v6 {
		dst, fam, first = g.s.Victim6, "ipv6", 1448
	}
	rest := 100 + r.IntN(900)
	data := make([]byte, first+rest)
	fill(r, data)
	// The UDP header of the whole datagram, checksum left zero (IPv4) or
	// arbitrary: nobody reassembles these.
	sport, dport := ephemeral(r), ephemeral(r)
	data[0], data[1], data[2], data[3] = byte(sport>>8), byte(sport), byte(dport>>8), byte(dport)
	data[4], data[5] = byte(len(data)>>8), byte(len(data))
	id := r.Uint32()
	ttl := uint8(40 + r.IntN(200))
	g.push(&pkt{at: at, label: Label{Class: Fragment, Kind: fam + "-first"}, src: src, dst: dst, proto: layers.IPProtocolUDP,
		ttl: ttl, ipid: uint16(id), fragID: id, fragMore: true, fragOff: 0, payload: data[:first], raw: true})
	g.push(&pkt{at: at + duration(r, time.Microsecond, 200*time.Microsecond), label: Label{Class: Fragment, Kind: fam + "-later"}, src: src, dst: dst,
		proto: layers.IPProtocolUDP, ttl: ttl, ipid: uint16(id), fragID: id, fragOff: uint16(first / 8), payload: data[first:], raw: true})
}

// malformed queues one packet with a broken header.
func (g *Generator) malformed(r *rand.Rand, at time.Duration) {
	kind := g.s.MalformedKinds[r.IntN(len(g.s.MalformedKinds))]
	mi := malformedIndex(kind)
	v6 := kind == "ip6-len"
	dst := g.s.Victim4
	if v6 {
		dst = g.s.Victim6
	}
	p := &pkt{at: at, label: Label{Class: Malformed, Kind: kind}, src: g.spoofed(r, v6), dst: dst, proto: layers.IPProtocolTCP,
		sport: ephemeral(r), dport: []uint16{22, 80, 443}[r.IntN(3)], flags: tcpSYN, tseq: r.Uint32(), win: 1024,
		ttl: uint8(32 + r.IntN(200)), ipid: uint16(r.Uint32()), malform: mi + 1, extra: 64 + r.IntN(400)}
	switch kind {
	case "syn-fin":
		p.flags = tcpSYN | tcpFIN
	case "ip6-len":
		p.proto, p.dport = layers.IPProtocolUDP, ephemeral(r)
		p.payload = make([]byte, 32+r.IntN(200))
		fill(r, p.payload)
	}
	g.push(p)
}

func itoa(n int) string { return strconv.Itoa(n) }
