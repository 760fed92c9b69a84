package progtype_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestNewRun_inputs checks the input rules of BPF_PROG_TEST_RUN.
func TestNewRun_inputs(t *testing.T) {
	xdpCtx := func(vals ...uint32) []byte {
		b := make([]byte, 24)
		for i, v := range vals {
			binary.LittleEndian.PutUint32(b[4*i:], v)
		}
		return b
	}
	skbCtx := func(off int, v uint32) []byte {
		b := make([]byte, 192)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	pkt := ipv4UDP()
	n := uint32(len(pkt))
	for _, tc := range []struct {
		name string
		typ  progtype.Type
		in   progtype.Input
		err  error // nil: accepted
	}{
		{"xdp", progtype.XDP, progtype.Input{Data: pkt}, nil},
		{"xdp_short", progtype.XDP, progtype.Input{Data: pkt[:13]}, maps.EINVAL},
		{"xdp_flags", progtype.XDP, progtype.Input{Data: pkt, Flags: progtype.FlagXDPLiveFrames}, maps.EINVAL},
		{"xdp_frags", progtype.XDP, progtype.Input{Data: make([]byte, 3521)}, progtype.ErrUnsupported},
		{"xdp_largest", progtype.XDP, progtype.Input{Data: make([]byte, 3520)}, nil},
		{"xdp_ctx_meta_field", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(0, n, 4)}, maps.EINVAL},
		{"xdp_ctx_end_past_data", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(0, n+1)}, maps.EINVAL},
		{"xdp_ctx_data_past_end", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(20, 10)}, maps.EINVAL},
		{"xdp_ctx_meta_unaligned", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(2, n)}, maps.EINVAL},
		{"xdp_ctx_meta_too_big", progtype.XDP, progtype.Input{Data: make([]byte, 300), Context: xdpCtx(220, 300)}, maps.EINVAL},
		{"xdp_ctx_rxq_without_dev", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(0, n, 0, 0, 1)}, maps.EINVAL},
		{"xdp_ctx_egress", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(0, n, 0, 0, 0, 1)}, maps.EINVAL},
		{"xdp_ctx_frags", progtype.XDP, progtype.Input{Data: pkt, Context: xdpCtx(0, 30)}, progtype.ErrUnsupported},
		{"xdp_ctx_long_zero", progtype.XDP, progtype.Input{Data: pkt, Context: append(xdpCtx(0, n), 0, 0)}, nil},
		{"xdp_ctx_long", progtype.XDP, progtype.Input{Data: pkt, Context: append(xdpCtx(0, n), 0, 1)}, maps.E2BIG},
		{"skb", progtype.SchedCLS, progtype.Input{Data: pkt}, nil},
		{"skb_short", progtype.SchedCLS, progtype.Input{Data: pkt[:13]}, maps.EINVAL},
		{"skb_long", progtype.SchedCLS, progtype.Input{Data: make([]byte, 3713)}, maps.EINVAL},
		{"skb_ip_short", progtype.SchedCLS, progtype.Input{Data: pkt[:30]}, maps.EINVAL},
		{"skb_flags", progtype.SchedCLS, progtype.Input{Data: pkt, Flags: 1}, maps.EINVAL},
		{"skb_ctx_len", progtype.SchedCLS, progtype.Input{Data: pkt, Context: skbCtx(0, 1)}, maps.EINVAL},
		{"skb_ctx_mark", progtype.SchedCLS, progtype.Input{Data: pkt, Context: skbCtx(8, 1)}, nil},
		{"skb_ctx_wire_short", progtype.SchedCLS, progtype.Input{Data: pkt, Context: skbCtx(160, 10)}, maps.EINVAL},
		{"skb_ctx_gso_segs", progtype.SchedCLS, progtype.Input{Data: pkt, Context: skbCtx(164, 70000)}, maps.EINVAL},
		{"skb_ctx_tc_index", progtype.SchedCLS, progtype.Input{Data: pkt, Context: skbCtx(44, 1)}, maps.EINVAL},
		{"trace_data", progtype.RawTracepoint, progtype.Input{Data: pkt}, maps.EINVAL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mustKind(t, tc.typ).NewRun(tc.in)
			switch {
			case tc.err == nil && err != nil:
				t.Errorf("refused: %v", err)
			case tc.err != nil && !errors.Is(err, tc.err):
				t.Errorf("error %v, want %v", err, tc.err)
			}
		})
	}
}

// TestRun_Reset reuses a run for another packet without leftovers.
func TestRun_Reset(t *testing.T) {
	k := mustKind(t, progtype.SchedCLS)
	prog := mustParse(t, `
		r6 = r1
		r2 = 100
		r3 = 0
		call 38
		r2 = 20
		r3 = 0
		r1 = r6
		call 43
		r0 = *(u32 *)(r6 + 0)
		exit`)
	p, err := k.Rewrite(prog)
	if err != nil {
		t.Fatal(err)
	}
	ip, err := checked.Load(p.Insns, engine.Options{Helpers: helperTable(k), ContextVariants: p.Variants, ContextFaults: p.Faults})
	if err != nil {
		t.Fatal(err)
	}
	run, err := p.NewRun(progtype.Input{Data: ipv6TCP()})
	if err != nil {
		t.Fatal(err)
	}
	var outs [][]byte
	for _, data := range [][]byte{ipv6TCP(), ipv4UDP(), ipv4UDP()} {
		if err := run.Reset(progtype.Input{Data: data}); err != nil {
			t.Fatal(err)
		}
		r0, err := interpExec(ip)(run)
		if err != nil {
			t.Fatal(err)
		}
		out, err := run.Finish(r0)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != 120 || len(out.Data) != 120 {
			t.Fatalf("retval %d, %d bytes", out.Retval, len(out.Data))
		}
		outs = append(outs, out.Data)
	}
	fresh, err := runProg(t, checked, k, prog, progtype.Input{Data: ipv4UDP()}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(outs[1], fresh.Data) || !bytes.Equal(outs[2], fresh.Data) {
		t.Errorf("a reused run differs from a fresh one:\n%x\n%x\n%x", outs[1], outs[2], fresh.Data)
	}
}

// TestRedirectMapXDP redirects through a devmap, a cpumap and a missing key.
func TestRedirectMapXDP(t *testing.T) {
	dev, err := maps.New(maps.Spec{Name: "dev", Type: maps.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	key, val := make([]byte, 4), make([]byte, 4)
	binary.LittleEndian.PutUint32(key, 1)
	binary.LittleEndian.PutUint32(val, 7)
	if err := dev.Update(key, val, 0); err != nil {
		t.Fatal(err)
	}
	reg := maps.NewSet(dev)
	k := mustKind(t, progtype.XDP)
	for _, tc := range []struct {
		key, flags string
		want       uint32
		ifindex    uint32
	}{
		{"1", "0", progtype.XDPRedirect, 7},
		{"2", "0", progtype.XDPAborted, 0},
		{"2", "2", progtype.XDPPass, 0},
		{"0x100000001", "0", progtype.XDPRedirect, 7}, // the key is a u32
		{"2", "8", progtype.XDPRedirect, 0},           // BPF_F_BROADCAST
		{"1", "0x20", progtype.XDPAborted, 0},         // unknown flag
	} {
		prog := mustParse(t, "r1 = "+mapRef(dev)+" ll\nr2 = "+tc.key+" ll\nr3 = "+tc.flags+"\ncall 51\nexit")
		p, err := k.Rewrite(prog)
		if err != nil {
			t.Fatal(err)
		}
		ip, err := checked.Load(p.Insns, engine.Options{Helpers: helperTable(k), ContextVariants: p.Variants, ContextFaults: p.Faults})
		if err != nil {
			t.Fatal(err)
		}
		run, err := p.NewRun(progtype.Input{Data: ipv4UDP()})
		if err != nil {
			t.Fatal(err)
		}
		r0, err := ip.Engine().NewMachine().Run(ip, &engine.Args{Regs: [5]uint64{run.Ctx()}, State: &helpers.State{Hook: run, Maps: reg}})
		if err != nil {
			t.Fatal(err)
		}
		out, err := run.Finish(r0)
		if err != nil {
			t.Fatal(err)
		}
		if out.Retval != tc.want {
			t.Errorf("key %s flags %s: retval %d, want %d", tc.key, tc.flags, out.Retval, tc.want)
		}
		if tc.want == progtype.XDPRedirect {
			if out.Redirect == nil || out.Redirect.Map != dev || out.Redirect.Ifindex != tc.ifindex {
				t.Errorf("key %s flags %s: redirect %+v", tc.key, tc.flags, out.Redirect)
			}
		} else if out.Redirect != nil {
			t.Errorf("key %s flags %s: redirect %+v after a failed lookup", tc.key, tc.flags, out.Redirect)
		}
	}
}

func mapRef(m maps.Map) string {
	return "0x" + hex64(m.Handle())
}

func hex64(v uint64) string {
	const digits = "0123456789abcdef"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = digits[v&0xf]
		v >>= 4
	}
	return string(b)
}

// TestCsumDiff checks bpf_csum_diff's arithmetic against RFC 1071 sums.
func TestCsumDiff(t *testing.T) {
	// A header whose checksum field is zero; its sum, folded and
	// inverted, is the checksum.
	hdr := []byte{0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0, 0, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7}
	sum := progtype.ChecksumDiff(nil, hdr, 0)
	if got := ^sum; got != 0x61b8 && got != 0xb861 {
		t.Errorf("checksum %#04x, want 0xb861 (in memory order)", got)
	}
	// Replacing 4 bytes: csum_diff(old, new) added to the old sum is the
	// new sum.
	old, nw := hdr[16:20], []byte{10, 0, 0, 1}
	d := progtype.ChecksumDiff(old, nw, uint32(sum))
	hdr2 := append(append([]byte(nil), hdr[:16]...), nw...)
	if want := progtype.ChecksumDiff(nil, hdr2, 0); d != want && ^d != ^want {
		t.Errorf("incremental sum %#x, want %#x", d, want)
	}
	if got := progtype.ChecksumDiff(nil, nil, 0x12345678); got != 0x68ac {
		t.Errorf("a seed alone folds to %#x, want 0x68ac", got)
	}
}

// ipv6TCP is an Ethernet + IPv6 + TCP packet.
func ipv6TCP() []byte {
	p := []byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x86, 0xdd,
		0x60, 0, 0, 0, 0, 20, 6, 64}
	for i := 0; i < 16; i++ {
		p = append(p, 0x20, byte(i))[:len(p)+1]
	}
	for i := 0; i < 16; i++ {
		p = append(p, byte(0x30+i))
	}
	p = append(p, 0x1f, 0x90, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0)
	return p
}

type testPacket struct {
	name string
	data []byte
}

// testPackets covers the Ethernet parsing of the socket buffer set-up:
// protocols, VLAN tags, destination kinds.
func testPackets() []testPacket {
	udp := ipv4UDP()
	bcast := append([]byte(nil), udp...)
	copy(bcast, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	mcast := append([]byte(nil), udp...)
	copy(mcast, []byte{0x01, 0x00, 0x5e, 0, 0, 1})
	other := append([]byte(nil), udp...)
	copy(other, []byte{0x02, 0, 0, 0, 0, 9})
	vlan := append(append(append([]byte(nil), udp[:12]...), 0x81, 0x00, 0x00, 0x2a), udp[12:]...)
	qinq := append(append(append([]byte(nil), udp[:12]...), 0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x2a), udp[12:]...)
	arp := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...)
	llc := append([]byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x30}, make([]byte, 48)...)
	ipx := append([]byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x30, 0xff, 0xff}, make([]byte, 46)...)
	return []testPacket{
		{"ipv4_udp", udp}, {"ipv6_tcp", ipv6TCP()}, {"broadcast", bcast}, {"multicast", mcast},
		{"otherhost", other}, {"vlan", vlan}, {"qinq", qinq}, {"arp", arp}, {"llc", llc}, {"ipx", ipx},
	}
}
