//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
)

// TestRun_iface runs the tail-call dispatcher live on one end of a veth
// pair while frames are sent from the other end, inside a network
// namespace; then the events example with --events, whose records are
// printed as the frames arrive. It needs root and iproute2, and skips
// without them.
func TestRun_iface(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	ns := fmt.Sprintf("cliio%d", os.Getpid())
	a, b := "cliioa"+ns[5:], "cliiob"+ns[5:]
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	run("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	run("link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { exec.Command("ip", "link", "del", a).Run() })
	run("link", "set", b, "netns", ns)
	run("link", "set", a, "up")
	run("netns", "exec", ns, "ip", "link", "set", b, "up")

	sender, err := ktest.SocketIn(ns, b)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sender)

	// live runs the CLI on a while 10 TCP and 10 ICMP frames are sent,
	// until the run has had its 20 packets.
	live := func(args ...string) (int, string, string) {
		type result struct {
			code           int
			stdout, stderr string
		}
		done := make(chan result, 1)
		go func() {
			code, stdout, stderr := runCLI(t, "", append([]string{"run"}, append(args, "--iface", a, "--packets", "20", "--duration", "20s", "--json")...)...)
			done <- result{code, stdout, stderr}
		}()
		frames := [][]byte{ktest.IPv4Frame(6), ktest.IPv4Frame(1)}
		sent := 0
		for {
			select {
			case res := <-done:
				return res.code, res.stdout, res.stderr
			case <-time.After(50 * time.Millisecond):
				if sent < 40 {
					for _, f := range frames {
						if err := unix.Send(sender, f, 0); err != nil {
							t.Fatal(err)
						}
					}
					sent++
				}
			}
		}
	}

	out := filepath.Join(t.TempDir(), "live.pcap")
	code, stdout, stderr := live("../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--out", out)
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	var sum packetSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if sum.Packets != 20 || sum.Verdicts["XDP_DROP"] == 0 || sum.Verdicts["XDP_PASS"] == 0 || sum.Written != sum.Verdicts["XDP_PASS"] {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("live on %s: %+v", a, sum)

	// Events, live: one record per IPv4 frame (the link's own IPv6 frames
	// give none), from 10.9.0.1 to 10.9.0.2, each printed with the packet
	// that emitted it.
	code, stdout, stderr = live("../../examples/events/events.o", "--events")
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	n, last := 0, 0
	for dec.More() {
		var ev event
		if err := dec.Decode(&ev); err != nil {
			t.Fatal(err)
		}
		if ev.Map == "" {
			break // the summary
		}
		n++
		if ev.Packet <= last || ev.Packet > 20 || !strings.HasPrefix(ev.Data, "0a0900010a090002") {
			t.Fatalf("event %d after packet %d: %+v", n, last, ev)
		}
		last = ev.Packet
	}
	if n < 10 {
		t.Fatalf("%d events for 20 packets of which most are IPv4:\n%s", n, stdout)
	}
	t.Logf("live on %s: %d events in 20 packets", a, n)

	// --timeout ends a run on a quiet interface (a veth whose peer is
	// down: nothing arrives there) that would wait for packets that never
	// come, with two workers too.
	quiet := "cliioq" + ns[5:]
	run("link", "add", quiet, "type", "veth", "peer", "name", "cliiop"+ns[5:])
	t.Cleanup(func() { exec.Command("ip", "link", "del", quiet).Run() })
	run("link", "set", quiet, "up")
	for _, workers := range []string{"1", "2"} {
		code, stdout, stderr = runCLI(t, "", "run", "../../examples/counter/counter.o", "--iface", quiet, "--packets", "1000000", "--timeout", "300ms", "--cpus", "2", "--workers", workers, "--json")
		sum = packetSummary{}
		if code != 1 || json.Unmarshal([]byte(stdout), &sum) != nil || !strings.Contains(sum.Stopped, "--timeout 300ms reached") {
			t.Fatalf("--workers %s: status %d, stdout %q, stderr %q", workers, code, stdout, stderr)
		}
	}
}
