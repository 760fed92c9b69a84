//go:build linux

package waggle_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/vlanclone/vlanclone.c -o testdata/vlanclone/vlanclone.o

const vlanCloneObject = "testdata/vlanclone/vlanclone.o"

// vlanCloneFrames are the frames vlan_clone runs on: untagged IPv4 and
// IPv6, and IPv4 with an 802.1Q tag of its own.
func vlanCloneFrames() map[string][]byte {
	udp := ipv4UDPFrame()
	tagged := append(append(append([]byte(nil), udp[:12]...), 0x81, 0x00, 0x00, 0x2a), udp[12:]...)
	v6 := append([]byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x86, 0xdd, 0x60, 0, 0, 0, 0, 8, 17, 64}, make([]byte, 40)...)
	return map[string][]byte{"ipv4": udp, "tagged": tagged, "ipv6": v6}
}

func ipv4UDPFrame() []byte {
	f := []byte{0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 30, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 198, 51, 100, 2,
		0x30, 0x39, 0, 53, 0, 10, 0, 0, 'h', 'i'}
	return f
}

// TestCloneRedirect_vlan checks that the copies bpf_clone_redirect sends
// carry the packet's accelerated VLAN tag (Clone.VlanProto, VlanTCI):
// each copy of vlan_clone, which pushes two tags and pops them, is the
// frame Linux sends out of a veth device, as an AF_PACKET socket on it
// sees it (the tag in the auxiliary data put back in the frame). Open
// vSwitch's push_vlan and output actions do this.
func TestCloneRedirect_vlan(t *testing.T) {
	frames := vlanCloneFrames()
	want := map[string][]progtype.Clone{}
	for name, f := range frames {
		// Without the kernel: the tags each copy must carry.
		coll, err := waggle.LoadCollection(vlanCloneObject, &waggle.CollectionOptions{CPUs: 1})
		if err != nil {
			t.Fatal(err)
		}
		var out progtype.Output
		if _, err := coll.Programs["vlan_clone"].Run(&waggle.RunOptions{Data: f, Context: cbContext(1, 0), Output: &out}); err != nil {
			t.Fatal(err)
		}
		coll.Close()
		var tags []string
		for _, c := range out.Clones {
			tags = append(tags, fmt.Sprintf("%04x/%04x", c.VlanProto, c.VlanTCI))
		}
		// The second pop of a frame tagged in itself moves that tag up.
		wantTags := "[0000/0000 8100/2064 88a8/0007 8100/2064 0000/0000]"
		if name == "tagged" {
			wantTags = "[0000/0000 8100/2064 88a8/0007 8100/2064 8100/002a]"
		}
		if got := fmt.Sprint(tags); got != wantTags {
			t.Errorf("%s: tags %s, want %s", name, got, wantTags)
		}
		want[name] = out.Clones
	}

	kc := kernelCollection(t, vlanCloneObject, "vlan_clone")
	ns := newAnonNetns(t)
	ns.probeCloneRedirect(t)
	host, err := netenv.New(mustReadNamespace(t, ns.path))
	if err != nil {
		t.Fatal(err)
	}
	coll, err := waggle.LoadCollection(vlanCloneObject, &waggle.CollectionOptions{CPUs: 1, Net: host})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	for name, f := range frames {
		t.Run(name, func(t *testing.T) {
			ctx := cbContext(uint32(ns.ifindex), 0)
			var got [][]byte
			ns.do(func() {
				ns.drain()
				if _, err := kc.Programs["vlan_clone"].Run(&ebpf.RunOptions{Data: f, Context: ctx}); err != nil {
					t.Errorf("kernel: %v", err)
				}
				got = ns.drainWait(len(want[name]))
			})
			var out progtype.Output
			if _, err := coll.Programs["vlan_clone"].Run(&waggle.RunOptions{Data: f, Context: ctx, Output: &out}); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(out.Clones) {
				t.Fatalf("linux sent %d copies, waggle %d", len(got), len(out.Clones))
			}
			for i, c := range out.Clones {
				if c.Ifindex != uint32(ns.ifindex) || !bytes.Equal(c.Frame(), got[i]) {
					t.Errorf("copy %d:\nlinux  %x\nwaggle %x (to %d)", i, got[i], c.Frame(), c.Ifindex)
				}
			}
		})
	}
}

// probeCloneRedirect skips the test where this kernel build does not
// show an AF_PACKET socket on the device the copy bpf_clone_redirect
// sends from BPF_PROG_TEST_RUN: a tc program of one clone_redirect call,
// whose return value is the program's.
func (n *anonNetns) probeCloneRedirect(t *testing.T) {
	t.Helper()
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:    ebpf.SchedCLS,
		License: "GPL",
		Instructions: casm.Instructions{
			casm.Mov.Imm(casm.R2, int32(n.ifindex)),
			casm.Mov.Imm(casm.R3, 0),
			casm.FnCloneRedirect.Call(),
			casm.Return(),
		},
	})
	if err != nil {
		t.Skipf("kernel comparison: a tc program calling bpf_clone_redirect does not load: %v", err)
	}
	defer prog.Close()
	var ret uint32
	var frames [][]byte
	n.do(func() {
		n.drain()
		ret, err = prog.Run(&ebpf.RunOptions{Data: ipv4UDPFrame(), Context: cbContext(0, 0)})
		frames = n.drainWait(1)
	})
	switch {
	case err != nil:
		t.Skipf("kernel comparison: BPF_PROG_TEST_RUN of bpf_clone_redirect: %v", err)
	case int32(ret) != 0:
		t.Skipf("kernel comparison: bpf_clone_redirect in BPF_PROG_TEST_RUN returns %d on this kernel", int32(ret))
	case len(frames) != 1:
		t.Skipf("kernel comparison: bpf_clone_redirect returned 0 but an AF_PACKET socket on the device saw %d copies, not 1, on this kernel", len(frames))
	}
}

// cbContext is a __sk_buff with cb[0] and cb[1] set.
func cbContext(cb0, cb1 uint32) []byte {
	c := make([]byte, 192)
	binary.LittleEndian.PutUint32(c[48:], cb0)
	binary.LittleEndian.PutUint32(c[52:], cb1)
	return c
}

func mustReadNamespace(t *testing.T, path string) *netenv.Config {
	t.Helper()
	c, err := netenv.ReadNamespace(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// anonNetns is an unnamed network namespace held by one thread, with a
// veth pair up (IPv6 off, so nothing else is sent) and an AF_PACKET
// socket on its first device that reports the accelerated VLAN tag.
type anonNetns struct {
	work    chan func()
	path    string
	ifindex int
	sock    int
}

func newAnonNetns(t *testing.T) *anonNetns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	n := &anonNetns{work: make(chan func())}
	ready := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := n.setUp()
		ready <- err
		if err != nil {
			return
		}
		for f := range n.work {
			f()
		}
		unix.Close(n.sock)
	}()
	if err := <-ready; err != nil {
		t.Skipf("network namespace: %v", err)
	}
	t.Cleanup(func() { close(n.work) })
	return n
}

func (n *anonNetns) setUp() error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return err
	}
	n.path = fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
	for _, f := range []string{"all", "default"} {
		if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+f+"/disable_ipv6", []byte("1"), 0); err != nil {
			return err
		}
	}
	if err := netlink.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "ovsa"}, PeerName: "ovsb"}); err != nil {
		return err
	}
	for _, name := range []string{"lo", "ovsa", "ovsb"} {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if name == "ovsa" {
			n.ifindex = l.Attrs().Index
		}
	}
	const all = unix.ETH_P_ALL<<8&0xff00 | unix.ETH_P_ALL>>8 // htons
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, all)
	if err != nil {
		return err
	}
	n.sock = fd
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_AUXDATA, 1); err != nil {
		return err
	}
	return unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: all, Ifindex: n.ifindex})
}

// do runs f on the namespace's thread.
func (n *anonNetns) do(f func()) {
	done := make(chan struct{})
	n.work <- func() { defer close(done); f() }
	<-done
}

// drainWait drains until it has at least n frames or 200 ms have passed.
func (n *anonNetns) drainWait(want int) [][]byte {
	frames := n.drain()
	for deadline := time.Now().Add(200 * time.Millisecond); len(frames) < want && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
		frames = append(frames, n.drain()...)
	}
	return frames
}

// drain returns the frames sent out of the device since the last drain,
// each with its accelerated VLAN tag after the MAC addresses.
func (n *anonNetns) drain() [][]byte {
	var frames [][]byte
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		size, oobn, _, from, err := unix.Recvmsg(n.sock, buf, oob, 0)
		if err != nil {
			return frames
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); !ok || ll.Pkttype != unix.PACKET_OUTGOING {
			continue
		}
		f := append([]byte(nil), buf[:size]...)
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			// struct tpacket_auxdata: tp_status at 0, tp_vlan_tci at
			// 16, tp_vlan_tpid at 18, in host order.
			if m.Header.Level != unix.SOL_PACKET || m.Header.Type != unix.PACKET_AUXDATA || len(m.Data) < 20 {
				continue
			}
			status := binary.NativeEndian.Uint32(m.Data)
			if status&unix.TP_STATUS_VLAN_VALID != 0 && len(f) >= 12 {
				tpid := uint16(0x8100)
				if status&unix.TP_STATUS_VLAN_TPID_VALID != 0 {
					tpid = binary.NativeEndian.Uint16(m.Data[18:])
				}
				tci := binary.NativeEndian.Uint16(m.Data[16:])
				tag := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tpid), tci)
				f = append(f[:12:12], append(tag, f[12:]...)...)
			}
		}
		frames = append(frames, f)
	}
}
