package progtype

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/waggle-bpf/waggle/internal/mem"
)

// TestResetXDPData requires that the fast reset of an XDP run for a new
// packet (resetXDPData, what ResetRunData does between the packets of a
// batch) leaves the run exactly as a new run on that packet: the same
// frame bytes (the headroom and tail a previous packet and its program's
// adjust_head, adjust_meta and adjust_tail exposed and dirtied cleared),
// the same pointers, shadow and bounds. Runs are dirtied as programs can:
// writes between the lowest data_meta and the highest data_end so far.
// Packets come with and without a ctx_in (metadata, an interface).
func TestResetXDPData(t *testing.T) {
	k, err := Lookup(XDP)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	packet := func() []byte {
		n := ethHLen + rng.IntN(200)
		if rng.IntN(8) == 0 {
			n = ethHLen + rng.IntN(xdpHardEnd-XDPPacketHeadroom-ethHLen+1)
		}
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(rng.Uint32())
		}
		return p
	}
	// Inputs come with or without a ctx_in: metadata of a few lengths
	// before the packet (xdp_md.data), an ingress interface or not. The
	// style changes now and then, which the fast reset must refuse.
	type style struct {
		ctx     bool
		meta    int
		ingress uint32
	}
	cur := style{}
	input := func() Input {
		if rng.IntN(8) == 0 {
			cur = style{ctx: rng.IntN(2) == 0, meta: 4 * rng.IntN(9), ingress: uint32(rng.IntN(2) * 2)}
		}
		p := packet()
		if !cur.ctx {
			return Input{Data: p}
		}
		data := append(make([]byte, cur.meta), p...)
		for i := range cur.meta {
			data[i] = byte(rng.Uint32())
		}
		ctx := make([]byte, xdpSize)
		le.PutUint32(ctx[xdpData:], uint32(cur.meta))
		le.PutUint32(ctx[xdpDataEnd:], uint32(len(data)))
		le.PutUint32(ctx[xdpIngressIfindex:], cur.ingress)
		return Input{Data: data, Context: ctx}
	}
	r, err := k.NewRun(Input{Data: packet()})
	if err != nil {
		t.Fatal(err)
	}
	fast, fastCtx := 0, 0
	for i := range 20000 {
		x := r.xdp
		// What a program and its helpers may do: move the pointers
		// within the frame, then write anywhere they covered.
		for range rng.IntN(3) {
			meta := xdpFrameStruct + rng.IntN(XDPPacketHeadroom-xdpFrameStruct)
			data := meta + 4*rng.IntN(min(xdpMaxMeta/4, (XDPPacketHeadroom-meta)/4)+1)
			end := data + ethHLen + rng.IntN(xdpHardEnd-data-ethHLen+1)
			x.meta, x.data, x.end = meta, data, end
			r.syncXDP()
		}
		if x.lo < x.hi {
			for range rng.IntN(16) {
				x.buf[x.lo+rng.IntN(x.hi-x.lo)] = byte(rng.Uint32() | 1)
			}
		}
		if rng.IntN(16) == 0 {
			r.rd, r.hasRd = Redirect{Ifindex: 3}, true // what bpf_redirect leaves
		}
		in := input()
		took := r.resetXDPData(in.Data, in.Context)
		if !took {
			r.in.Data, r.in.Context = in.Data, in.Context
			if err := r.reset(); err != nil {
				t.Fatalf("step %d: full reset: %v", i, err)
			}
		} else {
			fast++
			if in.Context != nil {
				fastCtx++
			}
		}
		want, err := k.NewRun(in)
		if err != nil {
			t.Fatal(err)
		}
		wx := want.xdp
		if !bytes.Equal(x.ctxIn, wx.ctxIn) {
			t.Fatalf("step %d (fast %v): ctx_in %x, a new run's %x", i, took, x.ctxIn, wx.ctxIn)
		}
		if !bytes.Equal(x.buf, wx.buf) {
			for j := range x.buf {
				if x.buf[j] != wx.buf[j] {
					t.Fatalf("step %d (fast %v): frame byte %d is %#x, a new run has %#x", i, took, j, x.buf[j], wx.buf[j])
				}
			}
		}
		base, wbase := mem.Addr(x.buf), mem.Addr(wx.buf)
		rel := func(b [2]uint64, base uint64) [2]uint64 { return [2]uint64{b[0] - base, b[1] - base} }
		if x.meta != wx.meta || x.data != wx.data || x.end != wx.end || x.lo != wx.lo || x.hi != wx.hi ||
			rel(x.bounds, base) != rel(wx.bounds, wbase) || rel(x.metaBounds, base) != rel(wx.metaBounds, wbase) {
			t.Fatalf("step %d (fast %v): frame %+v, a new run's %+v", i, took, *x, *wx)
		}
		for _, off := range []int{rtXDPData, rtXDPDataEnd, rtXDPDataMeta} {
			if le.Uint64(r.shadow[off:])-base != le.Uint64(want.shadow[off:])-wbase {
				t.Fatalf("step %d: shadow pointer at %d differs", i, off)
			}
		}
		if !bytes.Equal(r.shadow[rtXDPIngress:], want.shadow[rtXDPIngress:]) || r.hasRd {
			t.Fatalf("step %d: shadow %x, a new run's %x; redirect left %v", i, r.shadow, want.shadow, r.hasRd)
		}
	}
	if fast < 10000 || fastCtx < 3000 {
		t.Fatalf("the fast reset applied %d times of 20000, %d of them with a ctx_in", fast, fastCtx)
	}
}

// TestXDPRuntimeOffsets requires that the constant offsets of the xdp_md
// shadow are where its layout places the fields.
func TestXDPRuntimeOffsets(t *testing.T) {
	for _, f := range []struct{ uapi, rt int }{
		{xdpData, rtXDPData}, {xdpDataEnd, rtXDPDataEnd}, {xdpDataMeta, rtXDPDataMeta},
		{xdpIngressIfindex, rtXDPIngress}, {xdpRxQueueIndex, rtXDPRxQueue}, {xdpEgressIfindex, rtXDPEgress},
	} {
		if got := xdpLayout.Field(f.uapi).Runtime; got != f.rt {
			t.Errorf("xdp_md field at %d: the layout places it at %d, the constant says %d", f.uapi, got, f.rt)
		}
	}
	if xdpLayout.RuntimeSize < rtXDPSize {
		t.Errorf("the shadow is %d bytes, the constants need %d", xdpLayout.RuntimeSize, rtXDPSize)
	}
}
