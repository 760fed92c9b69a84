package waggle_test

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestRunOptions_output checks what a run reports of the network besides
// its packet, which BPF_PROG_TEST_RUN cannot show: the redirect target of
// each redirect helper, the clones bpf_clone_redirect sent, the tunnel
// metadata set, and the socket bpf_sk_assign chose at tc ingress.
func TestRunOptions_output(t *testing.T) {
	h, err := netenv.New(sockHost())
	if err != nil {
		t.Fatal(err)
	}
	coll, err := waggle.LoadCollection(netObject, &waggle.CollectionOptions{CPUs: 1, Net: h})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	redirect := func(op, ifindex uint32, flags uint64, nh string) netCase {
		return netCase{prog: "tc_redirect", req: redirectReq(op, ifindex, flags, nh)}
	}
	for _, c := range []struct {
		name string
		c    netCase
		want progtype.Redirect
	}{
		{"redirect", redirect(0, 10, 1, ""), progtype.Redirect{Ifindex: 10, Flags: 1}},
		{"neigh", redirect(1, 11, 0, ""), progtype.Redirect{Ifindex: 11, Neigh: true}},
		{"neigh nexthop", redirect(2, 10, 0, "10.0.0.2"), progtype.Redirect{Ifindex: 10, Neigh: true, Nexthop: netip.MustParseAddr("10.0.0.2")}},
		{"peer", redirect(4, 10, 0, ""), progtype.Redirect{Ifindex: 10, Peer: true, PeerIfindex: 11}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runWaggleNet(t, coll, c.c, waggle.RunOptions{})
			if r.ret != progtype.TCActRedirect || r.res.Redirect == nil || *r.res.Redirect != c.want {
				t.Fatalf("returned %d with %+v, want TC_ACT_REDIRECT with %+v", r.ret, r.res.Redirect, c.want)
			}
		})
	}
	t.Run("clones", func(t *testing.T) {
		c := redirect(5, 10, 0, "")
		r := runWaggleNet(t, coll, c, waggle.RunOptions{})
		if len(r.res.Clones) != 1 || r.res.Clones[0].Ifindex != 10 || !bytes.Equal(r.res.Clones[0].Data, frame(c.req, 0)) {
			t.Fatalf("clones %+v", r.res.Clones)
		}
		r = runWaggleNet(t, coll, redirect(5, 13, 0, ""), waggle.RunOptions{})
		if len(r.res.Clones) != 0 {
			t.Fatalf("a clone to a device that is down was sent: %+v", r.res.Clones)
		}
	})
	t.Run("tunnel", func(t *testing.T) {
		var tc tunnelCase
		for _, c := range tunnelCases() {
			if c.name == "options" {
				tc = c
			}
		}
		r := runWaggleNet(t, coll, netCase{prog: "tc_tunnel", req: tc.req()}, waggle.RunOptions{})
		tun := r.res.Tunnel
		if tun == nil || !tun.TX || tun.Dst != netip.MustParseAddr("192.0.2.1") || len(tun.Options) != 8 ||
			tun.Flags&netenv.TunnelKey == 0 || tun.Flags&netenv.TunnelOptionsPresent == 0 {
			t.Fatalf("tunnel %+v", tun)
		}
		// Metadata the packet arrived with is what bpf_skb_get_tunnel_key
		// reads when the program sets none.
		in := &netenv.Tunnel{ID: 77, Src: netip.MustParseAddr("198.51.100.1"), Dst: netip.MustParseAddr("198.51.100.2"), TTL: 5}
		get := tunnelCase{getSize: 44}
		r = runWaggleNet(t, coll, netCase{prog: "tc_tunnel", req: get.req()}, waggle.RunOptions{Tunnel: in})
		key := r.out[14+tunOut:]
		if rc := int32(le.Uint32(r.out[14+tunRCGet:])); rc != 0 || le.Uint32(key) != 77 || key[21] != 5 ||
			le.Uint32(key[4:]) != 0xc6336401 || le.Uint32(key[28:]) != 0xc6336402 {
			t.Fatalf("get_tunnel_key returned %d and %x", rc, key[:44])
		}
		if r.res.Tunnel == nil || r.res.Tunnel.ID != 77 || r.res.Tunnel.TX {
			t.Fatalf("tunnel after the run %+v", r.res.Tunnel)
		}
	})
	t.Run("assign", func(t *testing.T) {
		req := skReq(0, "10.0.0.9:1234", "10.0.0.1:8080", 1<<64-1, 0, 1)
		r := runWaggleNet(t, coll, netCase{prog: "tc_sk", req: req}, waggle.RunOptions{Ingress: true})
		if rc := int32(le.Uint32(r.out[14+skRCAssign:])); rc != 0 || r.res.Assigned == nil || r.res.Assigned.Local != netip.MustParseAddrPort("10.0.0.1:8080") {
			t.Fatalf("sk_assign at ingress returned %d, assigned %+v", rc, r.res.Assigned)
		}
		r = runWaggleNet(t, coll, netCase{prog: "tc_sk", req: req}, waggle.RunOptions{})
		if rc := int32(le.Uint32(r.out[14+skRCAssign:])); rc != -95 || r.res.Assigned != nil {
			t.Fatalf("sk_assign outside ingress returned %d, assigned %+v", rc, r.res.Assigned)
		}
	})
	t.Run("cookie", func(t *testing.T) {
		r := runWaggleNet(t, coll, netCase{prog: "tc_cookie", req: make([]byte, 16)}, waggle.RunOptions{})
		if c := le.Uint64(r.out[14:]); c != progtype.TestRunSocketCookie {
			t.Fatalf("cookie %d", c)
		}
		s := &netenv.Socket{Cookie: 99, UID: 1000}
		r = runWaggleNet(t, coll, netCase{prog: "tc_cookie", req: make([]byte, 16)}, waggle.RunOptions{Socket: s})
		if c, u := le.Uint64(r.out[14:]), le.Uint32(r.out[22:]); c != 99 || u != 1000 {
			t.Fatalf("cookie %d uid %d", c, u)
		}
	})
}
