package progtype_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/progtype"
)

// ipv4UDP is an Ethernet + IPv4 + UDP packet with a valid IP checksum.
func ipv4UDP() []byte {
	p := []byte{
		0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00, // eth: dst 0 (host), src, IPv4
		0x45, 0, 0, 32, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, // ip: len 32, DF, ttl 64, UDP
		10, 0, 0, 1, 10, 0, 0, 2,
		0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, // udp 12345 -> 53, len 12, no checksum
		'p', 'i', 'n', 'g',
	}
	var sum uint32
	for i := 14; i < 34; i += 2 {
		sum += uint32(p[i])<<8 | uint32(p[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	binary.BigEndian.PutUint16(p[24:], ^uint16(sum))
	return p
}

func TestRun_xdpSmoke(t *testing.T) {
	k := mustKind(t, progtype.XDP)
	prog := mustParse(t, `
		r2 = *(u32 *)(r1 + 0)
		r3 = *(u32 *)(r1 + 4)
		r0 = r3
		r0 -= r2
		r4 = *(u32 *)(r1 + 12)
		r0 <<= 8
		r0 |= r4
		exit`)
	for _, mode := range engines.All() {
		out, err := runProg(t, mode, k, prog, progtype.Input{Data: ipv4UDP()}, 1)
		if err != nil {
			t.Fatal(err)
		}
		if want := uint32(len(ipv4UDP())<<8 | 1); out.Retval != want {
			t.Errorf("%s: retval %#x, want %#x", mode, out.Retval, want)
		}
		if !bytes.Equal(out.Data, ipv4UDP()) {
			t.Errorf("%s: data out %x", mode, out.Data)
		}
	}
}

// TestRun_resetAllocs requires that resetting a used Run and finishing it
// allocate nothing, whatever parts of the output are asked for (with no
// effects to copy), for the types that take packets and those that take a
// context: what lets a caller run a program over many inputs without
// allocating.
func TestRun_resetAllocs(t *testing.T) {
	xdpMD := make([]byte, 24)
	binary.LittleEndian.PutUint32(xdpMD[4:], uint32(len(ipv4UDP())))
	for _, tc := range []struct {
		name   string
		typ    progtype.Type
		in     progtype.Input
		attach progtype.AttachType
	}{
		{"xdp", progtype.XDP, progtype.Input{Data: ipv4UDP()}, 0},
		{"xdp ctx_in", progtype.XDP, progtype.Input{Data: ipv4UDP(), Context: xdpMD}, 0},
		{"tc", progtype.SchedCLS, progtype.Input{Data: ipv4UDP()}, 0},
		{"tc ctx_in", progtype.SchedCLS, progtype.Input{Data: ipv4UDP(), Context: make([]byte, 184)}, 0},
		{"socket filter", progtype.SocketFilter, progtype.Input{Data: ipv4UDP()}, 0},
		{"flow dissector", progtype.FlowDissector, progtype.Input{Data: ipv4UDP()}, 0},
		{"kprobe", progtype.Kprobe, progtype.Input{Context: make([]byte, 64)}, 0},
		{"cgroup sock", progtype.CgroupSock, progtype.Input{}, 0},
		{"cgroup sock_addr", progtype.CgroupSockAddr, progtype.Input{}, progtype.AttachCgroupInet4Connect},
		{"sock_ops", progtype.SockOps, progtype.Input{}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := progtype.LookupAttach(tc.typ, tc.attach)
			if err != nil {
				t.Fatal(err)
			}
			r, err := k.NewRun(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			for _, parts := range []progtype.OutputParts{0, progtype.OutputData, progtype.OutputContext, progtype.OutputAll} {
				var out progtype.Output
				n := testing.AllocsPerRun(50, func() {
					if err := r.Reset(tc.in); err != nil {
						t.Fatal(err)
					}
					if err := r.FinishInto(0, &out, parts); err != nil {
						t.Fatal(err)
					}
				})
				if n != 0 {
					t.Errorf("parts %#x: %v allocations per reset and finish, want 0", parts, n)
				}
				if parts&progtype.OutputData != 0 && len(tc.in.Data) > 0 && len(out.Data) == 0 {
					t.Errorf("parts %#x: no Data", parts)
				}
			}
		})
	}
}
