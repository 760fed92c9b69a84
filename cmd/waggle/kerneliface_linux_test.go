//go:build linux

package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// TestRun_ifaceKernel: --engine kernel --iface attaches the tail-call
// dispatcher to a veth for real while TCP and ICMP frames arrive from the
// peer, and reports the verdicts the kernel's runs returned, counted in
// the object (kernel.CountVerdicts), in the summary a user-space live run
// prints; then nothing of it is left attached.
func TestRun_ifaceKernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	v := ktest.NewVeth(t)
	sender := v.SenderAtPeer(t)
	type result struct {
		code           int
		stdout, stderr string
	}
	done := make(chan result, 1)
	go func() {
		code, stdout, stderr := runCLI(t, "", "run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--engine", "kernel",
			"--iface", v.Host, "--packets", "20", "--duration", "20s", "--json")
		done <- result{code, stdout, stderr}
	}()
	var res result
	for sent := 0; ; {
		select {
		case res = <-done:
		case <-time.After(20 * time.Millisecond):
			if sent < 200 {
				for _, f := range [][]byte{ktest.IPv4Frame(6), ktest.IPv4Frame(1)} {
					if err := unix.Send(sender, f, 0); err != nil {
						t.Fatal(err)
					}
				}
				sent++
			}
			continue
		}
		break
	}
	if res.code != 0 {
		t.Fatalf("status %d: %s", res.code, res.stderr)
	}
	var sum packetSummary
	if err := json.Unmarshal([]byte(res.stdout), &sum); err != nil {
		t.Fatalf("%v: %s", err, res.stdout)
	}
	total := 0
	for _, n := range sum.Verdicts {
		total += n
	}
	if sum.Engine != "kernel" || sum.Program != "xdp_dispatch" || sum.Packets < 20 || total != sum.Packets ||
		sum.Verdicts["XDP_DROP"] == 0 || sum.Verdicts["XDP_PASS"] == 0 {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("live in the kernel on %s: %+v", v.Host, sum)
	l, err := netlink.LinkByName(v.Host)
	if err != nil {
		t.Fatal(err)
	}
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		t.Fatalf("an XDP program (id %d) is left on %s", x.ProgId, v.Host)
	}
}
