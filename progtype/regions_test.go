package progtype_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
)

// xdpCtxIn is an xdp_md for ctx_in whose packet starts after meta bytes of
// metadata and ends at n bytes of data_in.
func xdpCtxIn(meta, n int) []byte {
	ctx := make([]byte, 24)
	binary.LittleEndian.PutUint32(ctx[0:], uint32(meta))
	binary.LittleEndian.PutUint32(ctx[4:], uint32(n))
	return ctx
}

// TestRegions_Edges: a checked run reaches the packet exactly from data to
// data_end, XDP's metadata exactly from data_meta to data, as the helpers
// that move them leave them, through repeated runs too: the last byte in
// bounds is fine, one past faults. Programs read without bounds checks, so
// the packet's real edges are what stops them.
func TestRegions_Edges(t *testing.T) {
	const n = 64 // bytes of data_in
	// The context fields: xdp_md's data, data_end, data_meta and
	// __sk_buff's data, data_end.
	const (
		xdpData, xdpEnd, xdpMeta = "*(u32 *)(r1 + 0)", "*(u32 *)(r1 + 4)", "*(u32 *)(r1 + 8)"
		skbData, skbEnd          = "*(u32 *)(r1 + 76)", "*(u32 *)(r1 + 80)"
	)
	for _, tc := range []struct {
		name   string
		typ    progtype.Type
		meta   int // XDP metadata bytes before the packet (ctx_in's data)
		repeat int
		src    string
		fault  string // part of the fault's message, "" for a clean run
	}{
		{name: "xdp: the last byte", typ: progtype.XDP, src: `
			r2 = ` + xdpData + `
			r0 = *(u8 *)(r2 + 63)
			exit`},
		{name: "xdp: one past data_end", typ: progtype.XDP, fault: "outside the packet (data to data_end)", src: `
			r2 = ` + xdpData + `
			r0 = *(u8 *)(r2 + 64)
			exit`},
		{name: "xdp: 8 bytes running past data_end", typ: progtype.XDP, fault: "past the end of the packet", src: `
			r2 = ` + xdpData + `
			r0 = *(u64 *)(r2 + 57)
			exit`},
		{name: "xdp: one before data", typ: progtype.XDP, fault: "outside", src: `
			r2 = ` + xdpData + `
			r0 = *(u8 *)(r2 - 1)
			exit`},
		{name: "xdp: a write of the last byte", typ: progtype.XDP, src: `
			r2 = ` + xdpData + `
			*(u8 *)(r2 + 63) = 1
			r0 = 2
			exit`},
		{name: "xdp: a write one past data_end", typ: progtype.XDP, fault: "outside the packet", src: `
			r2 = ` + xdpData + `
			*(u8 *)(r2 + 64) = 1
			r0 = 2
			exit`},
		{name: "xdp: a read to data_end, from data_end", typ: progtype.XDP, src: `
			r2 = ` + xdpEnd + `
			r0 = *(u64 *)(r2 - 8)
			exit`},
		{name: "xdp metadata: the first byte", typ: progtype.XDP, meta: 8, src: `
			r2 = ` + xdpMeta + `
			r0 = *(u8 *)(r2 + 0)
			exit`},
		{name: "xdp metadata: one before data_meta", typ: progtype.XDP, meta: 8, fault: "outside", src: `
			r2 = ` + xdpMeta + `
			r0 = *(u8 *)(r2 - 1)
			exit`},
		{name: "xdp metadata: running from the metadata into the packet", typ: progtype.XDP, meta: 8, fault: "past the end of the packet's metadata", src: `
			r2 = ` + xdpMeta + `
			r0 = *(u16 *)(r2 + 7)
			exit`},
		{name: "xdp: a stale pointer to what adjust_head dropped", typ: progtype.XDP, fault: "outside", src: `
			r7 = ` + xdpData + `
			r2 = 4
			call 44
			r0 = *(u8 *)(r7 + 3)
			exit`},
		{name: "xdp: a stale pointer past what adjust_head dropped", typ: progtype.XDP, src: `
			r7 = ` + xdpData + `
			r2 = 4
			call 44
			r0 = *(u8 *)(r7 + 4)
			exit`},
		{name: "xdp: the first byte adjust_head added", typ: progtype.XDP, src: `
			r6 = r1
			r2 = -4
			call 44
			r2 = *(u32 *)(r6 + 0)
			r0 = *(u8 *)(r2 + 0)
			r0 = *(u8 *)(r2 + 67)
			exit`},
		{name: "xdp: one before the bytes adjust_head added", typ: progtype.XDP, fault: "outside", src: `
			r6 = r1
			r2 = -4
			call 44
			r2 = *(u32 *)(r6 + 0)
			r0 = *(u8 *)(r2 - 1)
			exit`},
		{name: "xdp: adjust_head moves the metadata along", typ: progtype.XDP, meta: 4, src: `
			r6 = r1
			r2 = -8
			call 44
			r2 = *(u32 *)(r6 + 8)
			r0 = *(u32 *)(r2 + 0)
			exit`},
		{name: "xdp: what adjust_tail dropped", typ: progtype.XDP, fault: "outside", src: `
			r7 = ` + xdpData + `
			r2 = -4
			call 65
			r0 = *(u8 *)(r7 + 60)
			exit`},
		{name: "xdp: the last byte adjust_tail left", typ: progtype.XDP, src: `
			r7 = ` + xdpData + `
			r2 = -4
			call 65
			r0 = *(u8 *)(r7 + 59)
			exit`},
		{name: "xdp: the last byte adjust_tail added", typ: progtype.XDP, src: `
			r7 = ` + xdpData + `
			r2 = 4
			call 65
			r0 = *(u8 *)(r7 + 67)
			exit`},
		{name: "xdp: one past what adjust_tail added", typ: progtype.XDP, fault: "outside", src: `
			r7 = ` + xdpData + `
			r2 = 4
			call 65
			r0 = *(u8 *)(r7 + 68)
			exit`},
		{name: "xdp: the second run sees the first run's adjust_head", typ: progtype.XDP, repeat: 2, fault: "outside", src: `
			r7 = ` + xdpData + `
			r0 = *(u8 *)(r7 + 63)
			r2 = 1
			call 44
			r0 = 2
			exit`},
		{name: "tc: the last byte", typ: progtype.SchedCLS, src: `
			r2 = ` + skbData + `
			r0 = *(u8 *)(r2 + 63)
			exit`},
		{name: "tc: one past data_end", typ: progtype.SchedCLS, fault: "outside the packet (data to data_end)", src: `
			r2 = ` + skbData + `
			r0 = *(u8 *)(r2 + 64)
			exit`},
		{name: "tc: one before data", typ: progtype.SchedCLS, fault: "outside", src: `
			r2 = ` + skbData + `
			r0 = *(u8 *)(r2 - 1)
			exit`},
		{name: "tc: a write to data_end", typ: progtype.SchedCLS, src: `
			r2 = ` + skbEnd + `
			*(u32 *)(r2 - 4) = 1
			r0 = 0
			exit`},
		{name: "tc: what skb_change_tail dropped", typ: progtype.SchedCLS, fault: "outside", src: `
			r7 = ` + skbData + `
			r2 = 60
			r3 = 0
			call 38
			r0 = *(u8 *)(r7 + 60)
			exit`},
		{name: "tc: the last byte skb_change_tail added", typ: progtype.SchedCLS, src: `
			r6 = r1
			r2 = 70
			r3 = 0
			call 38
			r2 = *(u32 *)(r6 + 76)
			r0 = *(u8 *)(r2 + 69)
			exit`},
		{name: "tc: one past what skb_change_tail added", typ: progtype.SchedCLS, fault: "outside", src: `
			r6 = r1
			r2 = 70
			r3 = 0
			call 38
			r2 = *(u32 *)(r6 + 76)
			r0 = *(u8 *)(r2 + 70)
			exit`},
		{name: "tc: the first byte skb_change_head added", typ: progtype.SchedCLS, src: `
			r6 = r1
			r2 = 4
			r3 = 0
			call 43
			r2 = *(u32 *)(r6 + 76)
			r0 = *(u8 *)(r2 + 0)
			r0 = *(u8 *)(r2 + 67)
			exit`},
		{name: "tc: one before what skb_change_head added", typ: progtype.SchedCLS, fault: "outside", src: `
			r6 = r1
			r2 = 4
			r3 = 0
			call 43
			r2 = *(u32 *)(r6 + 76)
			r0 = *(u8 *)(r2 - 1)
			exit`},
		{name: "cgroup_skb: the last byte, from the network header", typ: progtype.CgroupSKB, src: `
			r2 = ` + skbData + `
			r0 = *(u8 *)(r2 + 49)
			exit`},
		{name: "cgroup_skb: one past data_end", typ: progtype.CgroupSKB, fault: "outside", src: `
			r2 = ` + skbData + `
			r0 = *(u8 *)(r2 + 50)
			exit`},
		{name: "cgroup_skb: a write", typ: progtype.CgroupSKB, fault: "read-only", src: `
			r2 = ` + skbData + `
			*(u8 *)(r2 + 0) = 1
			r0 = 1
			exit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKind(t, tc.typ)
			// An IPv4 header after the Ethernet header, for the socket
			// buffer types' checks.
			data := make([]byte, n)
			data[12], data[13], data[14] = 0x08, 0x00, 0x45
			in := progtype.Input{Data: data}
			if tc.meta > 0 {
				in.Data = append(make([]byte, tc.meta), data...)
				in.Context = xdpCtxIn(tc.meta, len(in.Data))
			}
			_, err := runProg(t, checked, k, mustParse(t, tc.src), in, tc.repeat)
			switch {
			case tc.fault == "" && err != nil:
				t.Fatalf("%v, want a clean run", err)
			case tc.fault != "" && (!errors.Is(err, engine.ErrMemory) || !strings.Contains(err.Error(), tc.fault)):
				t.Fatalf("%v, want a memory fault saying %q", err, tc.fault)
			case err != nil:
				t.Log(err)
			}
		})
	}
}

// TestRegions_Kernel: Linux's verifier rejects a program that reads one
// byte past what its bounds check proved, and the checked interpreter
// faults it on a packet that ends there; the program that stays inside is
// accepted by the kernel and runs clean in both, with the same result.
func TestRegions_Kernel(t *testing.T) {
	// check is a program that proves bytes of the packet (from ptr, a
	// context field, to end) before it reads size bytes at off of it.
	check := func(ptr, end string, bytes, size, off int) string {
		return fmt.Sprintf(`
			r2 = %s
			r3 = %s
			r4 = r2
			r4 += %d
			r0 = 0
			if r4 > r3 goto +2
			r0 = *(u%d *)(r2 + %d)
			r0 &= 1
			exit`, ptr, end, bytes, size*8, off)
	}
	const (
		xdpData, xdpEnd, xdpMeta = "*(u32 *)(r1 + 0)", "*(u32 *)(r1 + 4)", "*(u32 *)(r1 + 8)"
		skbData, skbEnd          = "*(u32 *)(r1 + 76)", "*(u32 *)(r1 + 80)"
	)
	for _, tc := range []struct {
		name string
		typ  progtype.Type
		src  string
		meta int // XDP metadata bytes
		n    int // bytes of packet, 14 if 0
		ok   bool
		kmsg string // part of the kernel's rejection
	}{
		{name: "xdp: the last checked byte", typ: progtype.XDP, ok: true, src: check(xdpData, xdpEnd, 14, 1, 13)},
		{name: "xdp: one byte past the check", typ: progtype.XDP, kmsg: "outside of the packet", src: check(xdpData, xdpEnd, 14, 1, 14)},
		{name: "xdp: a word running past the check", typ: progtype.XDP, kmsg: "outside of the packet", src: check(xdpData, xdpEnd, 14, 4, 12)},
		{name: "tc: the last checked byte", typ: progtype.SchedCLS, ok: true, src: check(skbData, skbEnd, 14, 1, 13)},
		{name: "tc: one byte past the check", typ: progtype.SchedCLS, kmsg: "outside of the packet", src: check(skbData, skbEnd, 14, 1, 14)},
		{name: "xdp metadata: the last checked byte", typ: progtype.XDP, meta: 4, ok: true, src: check(xdpMeta, xdpData, 4, 1, 3)},
		{name: "xdp metadata: a word running past the check", typ: progtype.XDP, meta: 4, kmsg: "outside of the packet", src: check(xdpMeta, xdpData, 4, 4, 1)},
		{name: "xdp: a stale pointer after adjust_head", typ: progtype.XDP, n: 18, kmsg: "invalid mem access", src: `
			r7 = *(u32 *)(r1 + 0)
			r8 = *(u32 *)(r1 + 4)
			r2 = r7
			r2 += 14
			r0 = 0
			if r2 > r8 goto +4
			r2 = 4
			call 44
			r0 = *(u8 *)(r7 + 0)
			r0 &= 1
			exit`},
		{name: "xdp: fresh pointers after adjust_head", typ: progtype.XDP, n: 18, ok: true, src: `
			r6 = r1
			r2 = 4
			call 44
			r7 = *(u32 *)(r6 + 0)
			r8 = *(u32 *)(r6 + 4)
			r2 = r7
			r2 += 10
			r0 = 0
			if r2 > r8 goto +2
			r0 = *(u8 *)(r7 + 9)
			r0 &= 1
			exit`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := mustKind(t, tc.typ)
			prog := mustParse(t, tc.src)
			// The packet ends where the check ends: 14 bytes (an Ethernet
			// header), after the metadata.
			n := tc.n
			if n == 0 {
				n = 14
			}
			data := make([]byte, tc.meta+n)
			data[tc.meta+12], data[tc.meta+13] = 0x86, 0xdd // not IP: no header checks
			for i := range data {
				data[i] |= byte(i) | 1
			}
			in := progtype.Input{Data: data}
			if tc.meta > 0 {
				in.Context = xdpCtxIn(tc.meta, len(data))
			}
			out, err := runProg(t, checked, k, prog, in, 1)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("checked run: %v, want a clean run", err)
			case !tc.ok && !errors.Is(err, engine.ErrMemory):
				t.Fatalf("checked run: %v, want a memory fault", err)
			case err != nil:
				t.Logf("checked run: %v", err)
			}
			if kernel.Supported() != nil {
				return
			}
			if err := kernel.HelpersSupported(kernel.ProgType(tc.typ), prog); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
			kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(tc.typ)})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("the kernel rejects it: %v", err)
			case !tc.ok && err == nil:
				kp.Close()
				t.Fatal("the kernel accepts it")
			case !tc.ok && !strings.Contains(err.Error(), tc.kmsg):
				t.Fatalf("the kernel rejects it for another reason: %v", err)
			case !tc.ok:
				return
			}
			defer kp.Close()
			res, err := kp.Run(&kernel.RunOptions{Data: data, Context: in.Context})
			if err != nil {
				t.Fatal(err)
			}
			if res.Retval != out.Retval {
				t.Errorf("the kernel returned %d, waggle %d", res.Retval, out.Retval)
			}
		})
	}
}
