//go:build linux

package waggle_test

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/netenv"
)

// testNetns is a network namespace a test sets up as a netenv.Config
// describes it, with ip(8), and removes when it ends. Its name starts
// with "netenv-".
type testNetns struct {
	name, path string
}

var netnsSeq atomic.Int64

// newTestNetns creates a namespace laid out as cfg (interfaces, which must
// be veth pairs within the namespace or dummy devices, their addresses and
// forwarding, routes, rules that differ from the defaults, neighbours),
// or skips the test when it cannot.
func newTestNetns(t *testing.T, cfg *netenv.Config) *testNetns {
	t.Helper()
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel comparison: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("ip(8) is not installed")
	}
	n := &testNetns{name: fmt.Sprintf("netenv-%d-%d", os.Getpid(), netnsSeq.Add(1))}
	n.path = "/run/netns/" + n.name
	if out, err := exec.Command("ip", "netns", "add", n.name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	for _, c := range setupCommands(cfg) {
		args := append([]string{"-n", n.name}, c...)
		if c[0] == "sysctl" {
			args = append([]string{"netns", "exec", n.name}, c...)
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return n
}

// do runs f on a thread inside the namespace: BPF_PROG_TEST_RUN and
// sockets created there see the namespace's network.
func (n *testNetns) do(t *testing.T, f func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		finished := false
		defer func() {
			if !finished {
				errc <- fmt.Errorf("the function ended the goroutine (t.Fatal is for the test's own)")
			}
		}()
		// The thread is not unlocked, so the runtime ends it.
		runtime.LockOSThread()
		h, err := netns.GetFromPath(n.path)
		if err != nil {
			finished = true
			errc <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			finished = true
			errc <- err
			return
		}
		f()
		finished = true
		errc <- nil
	}()
	if err := <-errc; err != nil {
		t.Fatalf("entering %s: %v", n.name, err)
	}
}

// read returns the namespace as netenv reads it.
func (n *testNetns) read(t *testing.T) *netenv.Host {
	t.Helper()
	c, err := netenv.ReadNamespace(n.path)
	if err != nil {
		t.Fatal(err)
	}
	h, err := netenv.New(c)
	if err != nil {
		t.Fatalf("the host read from %s: %v", n.name, err)
	}
	return h
}

// setupCommands returns the ip(8) commands (and sysctl commands, run
// with ip netns exec) that lay a fresh namespace out as cfg.
func setupCommands(cfg *netenv.Config) [][]string {
	var cmds [][]string
	add := func(s string) { cmds = append(cmds, strings.Fields(s)) }
	byIndex := map[int]netenv.Interface{}
	for _, f := range cfg.Interfaces {
		byIndex[f.Index] = f
	}
	for _, f := range cfg.Interfaces {
		switch {
		case f.Kind == netenv.KindLoopback:
			continue
		case f.Kind == netenv.KindVeth && f.Peer > f.Index:
			add(fmt.Sprintf("link add %s index %d type veth peer name %s index %d", f.Name, f.Index, byIndex[f.Peer].Name, f.Peer))
		case f.Kind == netenv.KindEther:
			add(fmt.Sprintf("link add %s index %d type dummy", f.Name, f.Index))
		}
	}
	for _, f := range cfg.Interfaces {
		if f.Kind != netenv.KindLoopback {
			if len(f.MAC) > 0 {
				add(fmt.Sprintf("link set dev %s address %s", f.Name, f.MAC))
			}
			if f.MTU != 0 {
				add(fmt.Sprintf("link set dev %s mtu %d", f.Name, f.MTU))
			}
		}
		if !f.Down {
			add("link set dev " + f.Name + " up")
		}
		for _, a := range f.Addrs {
			if f.Kind == netenv.KindLoopback && (a.String() == "127.0.0.1/8" || a.String() == "::1/128") {
				continue // Linux gives the loopback device these as it comes up
			}
			if a.Addr().Is6() {
				add(fmt.Sprintf("-6 addr add %s dev %s nodad", a, f.Name))
			} else {
				add(fmt.Sprintf("addr add %s dev %s", a, f.Name))
			}
		}
		add(fmt.Sprintf("sysctl -qw net.ipv4.conf.%s.forwarding=%d", f.Name, b2i(f.Forwarding)))
		add(fmt.Sprintf("sysctl -qw net.ipv6.conf.%s.forwarding=%d", f.Name, b2i(f.Forwarding6)))
	}
	for _, r := range cfg.Routes {
		s := "route add"
		if r.Dst.Addr().Is6() {
			s = "-6 route add"
		}
		if r.Type != "" {
			s += " " + string(r.Type)
		}
		s += " " + r.Dst.String()
		if r.Via.IsValid() {
			if r.Via.Is6() && r.Dst.Addr().Is4() {
				s += " via inet6 " + r.Via.String()
			} else {
				s += " via " + r.Via.String()
			}
		}
		if r.Dev != "" {
			s += " dev " + r.Dev
		}
		if r.Table != 0 {
			s += fmt.Sprint(" table ", r.Table)
		}
		if r.Metric != 0 {
			s += fmt.Sprint(" metric ", r.Metric)
		}
		if r.Src.IsValid() {
			s += " src " + r.Src.String()
		}
		if r.TOS != 0 {
			s += fmt.Sprintf(" tos %#x", r.TOS)
		}
		if r.MTU != 0 {
			s += " mtu"
			if r.MTULock {
				s += " lock"
			}
			s += fmt.Sprint(" ", r.MTU)
		}
		add(s)
	}
	for _, r := range cfg.Rules {
		if r.Priority == 0 || r.Priority == 32766 || r.Priority == 32767 {
			continue // Linux's own
		}
		s := "rule add"
		if r.Family == "inet6" {
			s = "-6 rule add"
		}
		if r.Invert {
			s += " not"
		}
		s += fmt.Sprint(" priority ", r.Priority)
		if r.Src.IsValid() {
			s += " from " + r.Src.String()
		}
		if r.Dst.IsValid() {
			s += " to " + r.Dst.String()
		}
		if r.IIf != "" {
			s += " iif " + r.IIf
		}
		if r.OIf != "" {
			s += " oif " + r.OIf
		}
		if r.Mark != 0 {
			s += fmt.Sprintf(" fwmark %#x", r.Mark)
			if r.Mask != 0 {
				s += fmt.Sprintf("/%#x", r.Mask)
			}
		}
		switch r.Action {
		case "", netenv.RuleLookup:
			s += fmt.Sprint(" lookup ", r.Table)
		default:
			s += " " + string(r.Action)
		}
		add(s)
	}
	for _, e := range cfg.Neighbours {
		s := "neigh add " + e.IP.String()
		if len(e.MAC) > 0 {
			s += " lladdr " + e.MAC.String()
		}
		s += " dev " + e.Dev
		if e.State != "" {
			s += " nud " + string(e.State)
		}
		add(s)
	}
	return cmds
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
