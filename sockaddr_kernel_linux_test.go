//go:build linux

package waggle_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/netenv"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/netenv/sock.c -o testdata/netenv/sock.o

const sockObject = "testdata/netenv/sock.o"

// TestNetenvHelperProcess is not a test: it is the process
// TestCgroupSock_kernel starts inside a cgroup, which makes the socket
// call NETENV_HELPER names inside the namespace NETENV_NETNS and prints
// the errno.
func TestNetenvHelperProcess(t *testing.T) {
	op := os.Getenv("NETENV_HELPER")
	if op == "" {
		t.Skip("only run as TestCgroupSock_kernel's helper process")
	}
	runtime.LockOSThread()
	h, err := netns.GetFromPath(os.Getenv("NETENV_NETNS"))
	if err == nil {
		err = netns.Set(h)
	}
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	f := strings.Fields(op)
	ap := netip.MustParseAddrPort(f[1])
	fam, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()})
	if ap.Addr().Is4() {
		fam, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	typ := unix.SOCK_STREAM
	if f[0] == "sendto" {
		typ = unix.SOCK_DGRAM
	}
	fd, err := unix.Socket(fam, typ, 0)
	if err == nil {
		switch f[0] {
		case "connect":
			err = unix.Connect(fd, sa)
		case "sendto":
			err = unix.Sendto(fd, []byte("x"), 0, sa)
		case "bind":
			err = unix.Bind(fd, sa)
		}
	}
	var errno syscall.Errno
	errors.As(err, &errno)
	fmt.Println("errno", int(errno))
	os.Exit(0)
}

// cgroup2 returns where the cgroup v2 hierarchy is mounted.
func cgroup2(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/mounts")
	if err != nil {
		t.Skip(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fs := strings.Fields(s.Text()); len(fs) > 2 && fs[2] == "cgroup2" {
			return fs[1]
		}
	}
	t.Skip("no cgroup v2 hierarchy is mounted")
	return ""
}

// TestCgroupSock_kernel attaches cgroup/connect4, connect6, sendmsg4 and
// post_bind4 programs to a cgroup, makes a process in it connect, send
// and bind inside a namespace, and runs the same programs in waggle on the
// context that hook passes, with the namespace read through netlink: what
// the programs see (the address, the socket's family, type, protocol and
// state, the namespace cookie), their verdict and the rewritten address
// must agree.
func TestCgroupSock_kernel(t *testing.T) {
	cfg := sockHost()
	n := newTestNetns(t, cfg)
	var err error
	n.do(t, func() { err = openNetnsSockets(t, n.path) })
	if err != nil {
		t.Fatal(err)
	}
	kc := kernelCollection(t, sockObject, "connect4", "connect6", "sendmsg4", "post_bind4")
	cg := filepath.Join(cgroup2(t), fmt.Sprintf("netenv-%d-%d", os.Getpid(), netnsSeq.Add(1)))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("creating a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	for prog, at := range map[string]ebpf.AttachType{
		"connect4": ebpf.AttachCGroupInet4Connect, "connect6": ebpf.AttachCGroupInet6Connect,
		"sendmsg4": ebpf.AttachCGroupUDP4Sendmsg, "post_bind4": ebpf.AttachCGroupInet4PostBind,
	} {
		l, err := link.AttachCgroup(link.CgroupOptions{Path: cg, Attach: at, Program: kc.Programs[prog]})
		if err != nil {
			t.Skipf("attaching %s: %v", prog, err)
		}
		t.Cleanup(func() { l.Close() })
	}
	coll, err := waggle.LoadCollection(sockObject, &waggle.CollectionOptions{CPUs: 1, Net: n.read(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()

	for _, c := range []struct {
		name, op, prog string
		allow          bool
		rewrite        string // the address to rewrite to, if any
		want           int    // the errno the socket call ends with
	}{
		{"connect allowed", "connect 10.0.0.1:8080", "connect4", true, "", 0},
		{"connect rejected", "connect 10.0.0.1:8080", "connect4", false, "", int(unix.EPERM)},
		{"connect rewritten", "connect 8.8.8.8:1", "connect4", true, "10.0.0.1:8080", 0},
		{"connect not rewritten", "connect 8.8.8.8:1", "connect4", true, "", int(unix.ENETUNREACH)},
		{"connect6", "connect [2001:db8::1]:8082", "connect6", true, "", 0},
		{"connect6 port rewritten", "connect [2001:db8::1]:9", "connect6", true, "[::]:8081", 0},
		{"sendmsg", "sendto 10.0.0.1:5353", "sendmsg4", true, "", 0},
		{"sendmsg rejected", "sendto 10.0.0.1:5353", "sendmsg4", false, "", int(unix.EPERM)},
		{"sendmsg rewritten", "sendto 10.0.0.2:7", "sendmsg4", true, "10.0.0.1:5353", 0},
		{"post bind", "bind 10.0.0.1:6000", "post_bind4", true, "", 0},
		{"post bind rejected", "bind 10.0.0.1:6001", "post_bind4", false, "", int(unix.EPERM)},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := []uint64{0, 0, 0}
			if c.allow {
				conf[0] = 1
			}
			if c.rewrite != "" {
				rw := netip.MustParseAddrPort(c.rewrite)
				if rw.Addr().Is4() {
					conf[1] = uint64(binary.LittleEndian.Uint32(rw.Addr().AsSlice()))
				}
				conf[2] = uint64(rw.Port())
			}
			for i, v := range conf {
				if err := kc.Maps["cfg"].Put(uint32(i), v); err != nil {
					t.Fatal(err)
				}
				if err := coll.Maps["cfg"].Put(uint32(i), v); err != nil {
					t.Fatal(err)
				}
			}
			for i := uint32(0); i < 32; i++ {
				kc.Maps["seen"].Put(i, uint64(0))
				coll.Maps["seen"].Put(i, uint64(0))
			}
			if got := runInCgroup(t, cg, n, c.op); got != c.want {
				t.Fatalf("%s in the cgroup: errno %d, want %d", c.op, got, c.want)
			}
			ret, ctxOut := runSockProgram(t, coll, c.prog, c.op)
			if (ret == 1) != c.allow {
				t.Errorf("waggle returned %d, Linux %v", ret, c.allow)
			}
			// The slots the program under test writes; sendmsg's
			// socket has an ephemeral port (autobind) by then.
			lo, hi := uint32(0), uint32(20)
			if c.prog == "post_bind4" {
				lo, hi = 20, 32
			}
			for i := lo; i < hi; i++ {
				if i == 10 && c.prog == "sendmsg4" {
					continue
				}
				var k, w uint64
				kc.Maps["seen"].Lookup(i, &k)
				coll.Maps["seen"].Lookup(i, &w)
				if k != w {
					t.Errorf("seen[%d]: waggle %#x, Linux %#x", i, w, k)
				}
			}
			if c.rewrite != "" {
				rw := netip.MustParseAddrPort(c.rewrite)
				if port := binary.BigEndian.Uint16(ctxOut[24:]); port != rw.Port() {
					t.Errorf("rewritten port %d, want %d", port, rw.Port())
				}
				if rw.Addr().Is4() && netip.AddrFrom4([4]byte(ctxOut[4:8])) != rw.Addr() {
					t.Errorf("rewritten address %x, want %s", ctxOut[4:8], rw.Addr())
				}
			}
		})
	}
}

// runInCgroup runs the helper process in cgroup cg and namespace n and
// returns the errno its socket call ended with.
func runInCgroup(t *testing.T, cg string, n *testNetns, op string) int {
	t.Helper()
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^TestNetenvHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "NETENV_HELPER="+op, "NETENV_NETNS="+n.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper process: %v: %s", err, out)
	}
	var errno int
	if _, err := fmt.Sscanf(string(out), "errno %d", &errno); err != nil {
		t.Fatalf("helper process said %q", out)
	}
	return errno
}

// runSockProgram runs a socket program in waggle on the context its hook
// passes for op, and returns the verdict and the context after the run.
func runSockProgram(t *testing.T, coll *waggle.Collection, prog, op string) (uint32, []byte) {
	t.Helper()
	f := strings.Fields(op)
	ap := netip.MustParseAddrPort(f[1])
	le := binary.LittleEndian
	var ctx []byte
	var sock *netenv.Socket
	family, typ, proto := uint32(unix.AF_INET), uint32(unix.SOCK_STREAM), uint32(unix.IPPROTO_TCP)
	if ap.Addr().Is6() {
		family = unix.AF_INET6
	}
	if f[0] == "sendto" {
		typ, proto = unix.SOCK_DGRAM, unix.IPPROTO_UDP
	}
	if f[0] == "bind" {
		// post_bind: the context is the bound socket.
		sock = &netenv.Socket{Cookie: 1, Proto: "tcp", Local: ap, State: netenv.SockClose}
	} else {
		ctx = make([]byte, 72)
		le.PutUint32(ctx[0:], family)
		if ap.Addr().Is4() {
			copy(ctx[4:], ap.Addr().AsSlice())
		} else {
			copy(ctx[8:], ap.Addr().AsSlice())
		}
		binary.BigEndian.PutUint16(ctx[24:], ap.Port())
		le.PutUint32(ctx[28:], family)
		le.PutUint32(ctx[32:], typ)
		le.PutUint32(ctx[36:], proto)
	}
	out := make([]byte, 72)
	ret, err := coll.Programs[prog].Run(&waggle.RunOptions{Context: ctx, ContextOut: out, Socket: sock})
	if err != nil {
		t.Fatal(err)
	}
	return ret, out
}
