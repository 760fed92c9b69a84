package firewall

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// inNetns runs f on a thread in the network namespace ns (a name under
// /run/netns): the sockets f opens belong to it.
func inNetns(ns string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(self)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return err
	}
	defer unix.Setns(self, unix.CLONE_NEWNET)
	return f()
}

// TestApply_synCookiesEndToEnd attaches the firewall, with SYN cookies on
// and an attack mark of one packet a second, to a veth in a private
// network namespace whose stack runs with net.ipv4.tcp_syncookies=2, and
// connects to a listener there from the peer namespace. Under attack the
// first SYN to the port goes to the stack (which answers with its own
// cookie and from then on accepts cookies for two minutes); the next
// connection's SYN is answered from XDP with the kernel helpers' cookie,
// its ACK checks there and passes, and the listener's stack accepts it:
// the connection carries data both ways. The host's own sysctls are not
// touched.
func TestApply_synCookiesEndToEnd(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	have, err := haveCookieHelpers()
	if err != nil || !have {
		t.Skipf("no SYN cookie helpers in XDP here: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	srv, cli := fmt.Sprintf("wfs%d", os.Getpid()), fmt.Sprintf("wfc%d", os.Getpid())
	vs, vc := fmt.Sprintf("wfs%d", os.Getpid()%100000), fmt.Sprintf("wfc%d", os.Getpid()%100000)
	for _, ns := range []string{srv, cli} {
		ktest.Run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	ktest.Run(t, "ip", "link", "add", vs, "netns", srv, "type", "veth", "peer", "name", vc, "netns", cli)
	ktest.Run(t, "ip", "-n", srv, "addr", "add", "10.77.0.1/24", "dev", vs)
	ktest.Run(t, "ip", "-n", cli, "addr", "add", "10.77.0.2/24", "dev", vc)
	ktest.Run(t, "ip", "-n", srv, "link", "set", vs, "up")
	ktest.Run(t, "ip", "-n", cli, "link", "set", vc, "up")
	ktest.Run(t, "ip", "netns", "exec", srv, "sysctl", "-qw", "net.ipv4.tcp_syncookies=2")

	comp := mustCompile(t, `
options: {syn_cookies: on}
limits: {attack_pps: 1}
`)
	dir := ktest.BPFFS(t) + "/fw"
	var ln net.Listener
	err = inNetns(srv, func() error {
		res, err := Apply(comp, ApplyOptions{Interface: vs, Mode: kernel.XDPGeneric, PinDir: dir})
		if err != nil {
			return err
		}
		if res.SYNProtection != SYNCookiesOnly {
			return fmt.Errorf("SYN protection %q", res.SYNProtection)
		}
		ln, err = net.Listen("tcp4", "10.77.0.1:8080")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kernel.Detach(dir) })
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				b := make([]byte, 5)
				if _, err := io.ReadFull(c, b); err == nil {
					c.Write(append([]byte("re:"), b...))
				}
			}()
		}
	}()

	// connect dials from the client namespace and exchanges a message.
	connect := func(msg string) error {
		return inNetns(cli, func() error {
			c, err := net.DialTimeout("tcp4", "10.77.0.1:8080", 5*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write([]byte(msg)); err != nil {
				return err
			}
			b := make([]byte, 3+len(msg))
			if _, err := io.ReadFull(c, b); err != nil {
				return err
			}
			if string(b) != "re:"+msg {
				return fmt.Errorf("echo %q", b)
			}
			return nil
		})
	}
	// Over the mark: a few UDP packets in a second.
	if err := inNetns(cli, func() error {
		u, err := net.Dial("udp4", "10.77.0.1:9")
		if err != nil {
			return err
		}
		defer u.Close()
		for range 3 {
			u.Write([]byte("x"))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := connect("first"); err != nil {
		t.Fatalf("the first connection (its SYN to the stack): %v", err)
	}
	before, err := PinnedCounters(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := connect("again"); err != nil {
		t.Fatalf("the connection through the XDP cookie handshake: %v", err)
	}
	after, err := PinnedCounters(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("counters after the first connection %v, after the second %v", before, after)
	if n := after[RuleSYNCookie].Packets - before[RuleSYNCookie].Packets; n != 1 {
		t.Errorf("the second connection's SYNs answered from XDP: %d, want 1", n)
	}
	if n := after[RuleSYNCookieACK].Packets - before[RuleSYNCookieACK].Packets; n < 1 {
		t.Errorf("ACKs whose cookie checked: %d, want at least 1", n)
	}
}
