//go:build linux

// Package ktest sets up what tests against the running kernel need and
// removes it when they end: a veth pair whose peer sits in a network
// namespace of its own, a private bpffs, tracefs. Each helper skips the
// test (with the reason) when it cannot, for lack of root or of a tool.
package ktest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var seq atomic.Int64

// Veth is a veth pair: Host in this process's network namespace, Peer in
// the namespace NS (a name under /run/netns, as ip-netns(8) makes them).
type Veth struct {
	Host, Peer, NS string
}

// NewVeth creates a network namespace and a veth pair between it and this
// namespace, both ends up, and removes them when the test ends. It skips
// the test without root or ip(8).
func NewVeth(tb testing.TB) *Veth {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2's ip")
	}
	n := seq.Add(1)
	v := &Veth{
		NS:   fmt.Sprintf("wgl%d-%d", os.Getpid(), n),
		Host: fmt.Sprintf("wgh%d.%d", os.Getpid()%100000, n),
		Peer: fmt.Sprintf("wgp%d.%d", os.Getpid()%100000, n),
	}
	Run(tb, "ip", "netns", "add", v.NS)
	tb.Cleanup(func() { exec.Command("ip", "netns", "del", v.NS).Run() })
	Run(tb, "ip", "link", "add", v.Host, "type", "veth", "peer", "name", v.Peer)
	tb.Cleanup(func() { exec.Command("ip", "link", "del", v.Host).Run() })
	Run(tb, "ip", "link", "set", v.Peer, "netns", v.NS)
	Run(tb, "ip", "link", "set", v.Host, "up")
	Run(tb, "ip", "netns", "exec", v.NS, "ip", "link", "set", v.Peer, "up")
	return v
}

// Run runs a command and fails the test if it fails.
func Run(tb testing.TB, name string, args ...string) {
	tb.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// SenderAtPeer returns an AF_PACKET socket bound to the peer: what is
// sent on it arrives at Host. It is closed when the test ends.
func (v *Veth) SenderAtPeer(tb testing.TB) int {
	tb.Helper()
	fd, err := SocketIn(v.NS, v.Peer)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd
}

// SocketIn opens an AF_PACKET socket bound to ifname inside network
// namespace ns: a socket belongs to the namespace it was created in.
func SocketIn(ns, ifname string) (int, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	self, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(self)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		return -1, err
	}
	defer unix.Setns(self, unix.CLONE_NEWNET)
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Ifindex: ifc.Index}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// IPv4Frame returns a minimal Ethernet/IPv4 frame of the given protocol,
// from 10.9.0.1 to 10.9.0.2, 64 bytes long.
func IPv4Frame(proto byte) []byte {
	f := make([]byte, 64)
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 9, 0x08, 0x00})
	ip := f[14:]
	ip[0], ip[3], ip[8], ip[9] = 0x45, 50, 64, proto
	copy(ip[12:], []byte{10, 9, 0, 1, 10, 9, 0, 2})
	return f
}

// TCPFrame returns IPv4Frame(6) with the TCP destination port set.
func TCPFrame(dport uint16) []byte {
	f := IPv4Frame(6)
	f[14+20+2], f[14+20+3] = byte(dport>>8), byte(dport)
	return f
}

// BPFFS mounts a private bpffs in a temporary directory and returns it;
// it is unmounted when the test ends. It skips the test when the mount
// fails (no root).
func BPFFS(tb testing.TB) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "bpffs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		tb.Skipf("mount a bpffs at %s: %v", dir, err)
	}
	tb.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Tracefs makes sure tracefs is mounted, for tracepoints: where it is not,
// it mounts it at /sys/kernel/tracing, where Linux distributions mount it
// at boot, and leaves it there (other processes may come to use it, and
// cilium/ebpf remembers where it found it). It skips the test when it
// cannot.
func Tracefs(tb testing.TB) {
	tb.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		tb.Skip(err)
	}
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, " - tracefs ") {
			return
		}
	}
	const dir = "/sys/kernel/tracing"
	if err := unix.Mount("tracefs", dir, "tracefs", 0, ""); err != nil {
		tb.Skipf("tracefs is not mounted, and mounting it at %s failed: %v", dir, err)
	}
	tb.Logf("mounted tracefs at %s (it stays mounted)", dir)
}

// Listen returns an AF_PACKET socket in this process's network namespace
// bound to ifname, receiving every frame that arrives there (and able to
// send). It is closed when the test ends.
func Listen(tb testing.TB, ifname string) int {
	tb.Helper()
	ifc, err := net.InterfaceByName(ifname)
	if err != nil {
		tb.Fatal(err)
	}
	all := int(htons(unix.ETH_P_ALL))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, all)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifc.Index}); err != nil {
		tb.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		tb.Fatal(err)
	}
	return fd
}

// Await reads frames arriving on fd (from Listen) until n of them
// satisfy match, and fails the test if that takes more than 10 seconds.
func Await(tb testing.TB, fd, n int, match func([]byte) bool) {
	tb.Helper()
	buf := make([]byte, 65536)
	deadline := time.Now().Add(10 * time.Second)
	for n > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 10s for %d more frames", n)
		}
		k, from, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			tb.Fatal(err)
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		if match(buf[:k]) {
			n--
		}
	}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// XDPToolsObjects finds the BPF objects Debian's xdp-tools and libxdp1
// install (GPL: read where the package put them, never copied into the
// repository). It skips the test when they are absent.
func XDPToolsObjects(tb testing.TB) []string {
	tb.Helper()
	for _, pattern := range []string{"/usr/lib/*/bpf/*.o", "/usr/lib/bpf/*.o", "/usr/local/lib/bpf/*.o"} {
		var found []string
		m, _ := filepath.Glob(pattern)
		for _, p := range m {
			base := filepath.Base(p)
			if strings.HasPrefix(base, "xdpfilt_") || strings.HasPrefix(base, "xdpdump_") || strings.HasPrefix(base, "xdp-dispatcher") || strings.HasPrefix(base, "xsk_def_xdp_prog") {
				found = append(found, p)
			}
		}
		if len(found) > 0 {
			return found
		}
	}
	tb.Skip("xdp-tools' BPF objects are not installed (apt-get install xdp-tools)")
	return nil
}
