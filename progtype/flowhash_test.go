package progtype_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/progtype"
)

// flowFrame builds frames for the flow hash tests.
type flowFrame struct {
	name string
	data []byte
}

func eth(typ uint16, tags ...[2]uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1}
	for _, t := range tags {
		b = binary.BigEndian.AppendUint16(b, t[0])
		b = binary.BigEndian.AppendUint16(b, t[1])
	}
	return binary.BigEndian.AppendUint16(b, typ)
}

func ip4(proto byte, src, dst byte, frag uint16, payload []byte) []byte {
	h := []byte{0x45, 0, 0, 0, 0, 1, byte(frag >> 8), byte(frag), 64, proto, 0, 0, 10, 0, 0, src, 10, 0, 0, dst}
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	return append(h, payload...)
}

func ip6(next byte, label uint32, src, dst byte, payload []byte) []byte {
	h := make([]byte, 40)
	binary.BigEndian.PutUint32(h, 6<<28|label)
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6], h[7] = next, 64
	h[8], h[9], h[23] = 0x20, 0x01, src
	h[24], h[25], h[39] = 0x20, 0x01, dst
	return append(h, payload...)
}

func l4(sport, dport uint16) []byte {
	b := binary.BigEndian.AppendUint16(nil, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	return append(b, make([]byte, 16)...)
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// flowFrames are frames whose flows skb_get_hash tells apart, or not:
// both directions, ports swapped alone, fragments, flow labels, VLAN ids
// and priorities, the inner tag of QinQ, GRE keys, encapsulations, the
// protocols the dissector stops at, truncated headers.
func flowFrames() []flowFrame {
	tcp := l4(1000, 80)
	gre := func(flags uint16, proto uint16, key uint32) []byte {
		b := binary.BigEndian.AppendUint16(nil, flags)
		b = binary.BigEndian.AppendUint16(b, proto)
		if flags&0x2000 != 0 {
			b = binary.BigEndian.AppendUint32(b, key)
		}
		return b
	}
	fs := []flowFrame{
		{"tcp", cat(eth(0x0800), ip4(6, 1, 2, 0, tcp))},
		{"tcp reply", cat(eth(0x0800), ip4(6, 2, 1, 0, l4(80, 1000)))},
		{"tcp ports swapped", cat(eth(0x0800), ip4(6, 1, 2, 0, l4(80, 1000)))},
		{"tcp other port", cat(eth(0x0800), ip4(6, 1, 2, 0, l4(1001, 80)))},
		{"udp", cat(eth(0x0800), ip4(17, 1, 2, 0, tcp))},
		{"sctp", cat(eth(0x0800), ip4(132, 1, 2, 0, tcp))},
		{"esp spi 1", cat(eth(0x0800), ip4(50, 1, 2, 0, l4(0, 1)))},
		{"esp spi 2", cat(eth(0x0800), ip4(50, 1, 2, 0, l4(0, 2)))},
		{"ah spi", cat(eth(0x0800), ip4(51, 1, 2, 0, cat(l4(0, 0)[:4], l4(0, 7))))},
		{"icmp id 1", cat(eth(0x0800), ip4(1, 1, 2, 0, []byte{8, 0, 0, 0, 0, 1, 0, 1}))},
		{"icmp id 2", cat(eth(0x0800), ip4(1, 1, 2, 0, []byte{8, 0, 0, 0, 0, 2, 0, 1}))},
		{"first fragment", cat(eth(0x0800), ip4(6, 1, 2, 0x2000, tcp))},
		{"later fragment", cat(eth(0x0800), ip4(6, 1, 2, 0x0010, l4(7, 7)))},
		{"ihl 4", func() []byte { b := cat(eth(0x0800), ip4(6, 1, 2, 0, tcp)); b[14] = 0x44; return b }()},
		{"ip options", func() []byte {
			h := ip4(6, 1, 2, 0, nil)
			h[0] = 0x46
			return cat(eth(0x0800), h, []byte{1, 1, 1, 0}, tcp)
		}()},
		{"ipv6 tcp", cat(eth(0x86dd), ip6(6, 0, 1, 2, tcp))},
		{"ipv6 tcp reply", cat(eth(0x86dd), ip6(6, 0, 2, 1, l4(80, 1000)))},
		{"ipv6 label", cat(eth(0x86dd), ip6(6, 0x12345, 1, 2, tcp))},
		{"ipv6 label other port", cat(eth(0x86dd), ip6(6, 0x12345, 1, 2, l4(5, 6)))},
		{"ipv6 hop-by-hop udp", cat(eth(0x86dd), ip6(0, 0, 1, 2, cat([]byte{17, 0, 1, 4, 0, 0, 0, 0}, tcp)))},
		{"ipv6 fragment", cat(eth(0x86dd), ip6(44, 0, 1, 2, cat([]byte{6, 0, 0, 1, 0, 0, 0, 1}, tcp)))},
		{"ipv6 in ipv4", cat(eth(0x0800), ip4(41, 1, 2, 0, ip6(17, 0, 3, 4, tcp)))},
		{"ipip", cat(eth(0x0800), ip4(4, 1, 2, 0, ip4(6, 3, 4, 0, tcp)))},
		{"gre", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(0, 0x0800, 0), ip4(6, 3, 4, 0, tcp))))},
		{"gre key 1", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(0x2000, 0x0800, 1), ip4(6, 3, 4, 0, tcp))))},
		{"gre key 2", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(0x2000, 0x0800, 2), ip4(6, 3, 4, 0, tcp))))},
		{"gre teb", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(0, 0x6558, 0), eth(0x0800), ip4(6, 3, 4, 0, tcp))))},
		{"gre version 2", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(2, 0x0800, 0), ip4(6, 3, 4, 0, tcp))))},
		{"gre routing", cat(eth(0x0800), ip4(47, 1, 2, 0, cat(gre(0x4000, 0x0800, 0), ip4(6, 3, 4, 0, tcp))))},
		{"vlan 100", cat(eth(0x0800, [2]uint16{0x8100, 100}), ip4(6, 1, 2, 0, tcp))},
		{"vlan 100 dei", cat(eth(0x0800, [2]uint16{0x8100, 0x1000 | 100}), ip4(6, 1, 2, 0, tcp))},
		{"vlan 100 prio 3", cat(eth(0x0800, [2]uint16{0x8100, 0x6000 | 100}), ip4(6, 1, 2, 0, tcp))},
		{"vlan 200", cat(eth(0x0800, [2]uint16{0x8100, 200}), ip4(6, 1, 2, 0, tcp))},
		{"qinq inner 20", cat(eth(0x0800, [2]uint16{0x88a8, 10}, [2]uint16{0x8100, 20}), ip4(6, 1, 2, 0, tcp))},
		{"qinq inner 30", cat(eth(0x0800, [2]uint16{0x88a8, 10}, [2]uint16{0x8100, 30}), ip4(6, 1, 2, 0, tcp))},
		{"three tags", cat(eth(0x0800, [2]uint16{0x88a8, 10}, [2]uint16{0x8100, 20}, [2]uint16{0x8100, 30}), ip4(6, 1, 2, 0, tcp))},
		{"vlan cut", cat(eth(0x8100), []byte{0, 100})},
		{"arp request", cat(eth(0x0806), []byte{0, 1, 8, 0, 6, 4, 0, 1}, make([]byte, 20))},
		{"arp reply", cat(eth(0x0806), []byte{0, 1, 8, 0, 6, 4, 0, 2}, make([]byte, 20))},
		{"rarp", cat(eth(0x8035), make([]byte, 28))},
		{"mpls label 1", cat(eth(0x8847), []byte{0, 0, 0x11, 64}, ip4(6, 1, 2, 0, tcp))},
		{"mpls label 2", cat(eth(0x8847), []byte{0, 0, 0x21, 64}, ip4(6, 1, 2, 0, tcp))},
		{"pppoe ipv4", cat(eth(0x8864), []byte{0x11, 0, 0, 1, 0, 42, 0, 0x21}, ip4(6, 1, 2, 0, tcp))},
		{"pppoe lcp", cat(eth(0x8864), []byte{0x11, 0, 0, 1, 0, 8, 0xc0, 0x21}, make([]byte, 8))},
		{"pppoe bad", cat(eth(0x8864), []byte{0x12, 0, 0, 1, 0, 8, 0, 0x21}, make([]byte, 28))},
		{"tipc", cat(eth(0x88ca), make([]byte, 12), []byte{1, 2, 3, 4})},
		{"hsr", cat(eth(0x892f), []byte{0, 0, 0, 1, 0x08, 0x00}, ip4(17, 1, 2, 0, tcp))},
		{"fcoe", cat(eth(0x8906), make([]byte, 40))},
		{"ptp", cat(eth(0x88f7), make([]byte, 40))},
		{"unknown", cat(eth(0x88b5), make([]byte, 40))},
		{"802.3", cat(eth(0x0030), make([]byte, 48))},
		{"ipv4 cut in tcp", cat(eth(0x0800), ip4(6, 1, 2, 0, []byte{0x03}))},
		{"ipv6 cut in tcp", cat(eth(0x86dd), ip6(6, 0, 1, 2, []byte{0x03}))},
	}
	return fs
}

// flowHashPrograms return bpf_get_hash_recalc: of the packet, and after
// bpf_skb_vlan_push gave it an accelerated tag (VLAN 100, priority 1).
var flowHashPrograms = []struct{ name, src string }{
	{"hash", `
		call 34
		exit`},
	{"push+hash", `
		r6 = r1
		r2 = 0x81
		r3 = 0x2064
		call 18
		r1 = r6
		call 34
		exit`},
}

// samePartition reports frames that hash alike in one and not in the
// other.
func samePartition(names []string, a, b []uint32) []string {
	var bad []string
	for i := range a {
		for j := i + 1; j < len(a); j++ {
			if (a[i] == a[j]) != (b[i] == b[j]) {
				bad = append(bad, fmt.Sprintf("%s and %s: equal %v, %v", names[i], names[j], a[i] == a[j], b[i] == b[j]))
			}
		}
	}
	return bad
}

// TestGetHashRecalc_flows checks the flow keys behind bpf_get_hash_recalc
// without the kernel: which frames Linux's dissector gives the same keys.
func TestGetHashRecalc_flows(t *testing.T) {
	k := mustKind(t, progtype.SchedCLS)
	prog := mustParse(t, flowHashPrograms[0].src)
	hash := map[string]uint32{}
	for _, f := range flowFrames() {
		out, err := runProg(t, checked, k, prog, progtype.Input{Data: f.data}, 0)
		if err != nil {
			continue
		}
		hash[f.name] = out.Retval
	}
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"tcp", "tcp reply", true},
		{"tcp", "tcp ports swapped", true}, // addresses and ports are sorted apart
		{"tcp", "tcp other port", false},
		{"tcp", "udp", false},
		{"esp spi 1", "esp spi 2", false},
		{"icmp id 1", "icmp id 2", true},
		{"first fragment", "later fragment", true},
		{"first fragment", "tcp", false},
		{"ipv6 tcp", "ipv6 tcp reply", true},
		{"ipv6 label", "ipv6 label other port", true},
		{"ipv6 label", "ipv6 tcp", false},
		{"gre key 1", "gre key 2", false},
		{"gre", "ipip", true},
		{"vlan 100", "vlan 100 dei", true},
		{"vlan 100", "vlan 100 prio 3", false},
		{"vlan 100", "vlan 200", false},
		{"vlan 100", "tcp", false},
		{"qinq inner 20", "qinq inner 30", true},
		{"arp request", "arp reply", true},
		{"arp request", "rarp", false},
		{"mpls label 1", "mpls label 2", true},
		{"pppoe ipv4", "tcp", true},
		{"hsr", "udp", true},
	} {
		ha, oka := hash[tc.a]
		hb, okb := hash[tc.b]
		if !oka || !okb {
			t.Errorf("%s or %s did not run", tc.a, tc.b)
			continue
		}
		if (ha == hb) != tc.same {
			t.Errorf("%s %#x and %s %#x: same %v, want %v", tc.a, ha, tc.b, hb, ha == hb, tc.same)
		}
	}
}
