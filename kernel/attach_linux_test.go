package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/cgroupv2"
	"github.com/waggle-bpf/waggle/internal/ktest"
)

// The slots of testdata/attach/hooks.c's counts.
const (
	slotTCXIngress = iota
	slotTCXEgress
	slotTracepoint
	slotRawTP
	slotUprobe
	slotUretprobe
	slotPerfEvent
	slotCgroupSKB
	slotCgroupSock
)

const hooksObj = "testdata/attach/hooks.o"

// mustAttach attaches a program of the object at path, skipping the test
// when the kernel lacks the hook (the error names the probe), and
// detaches it when the test ends.
func mustAttach(tb testing.TB, path, prog string, h Hook) *Attached {
	tb.Helper()
	mustSupported(tb)
	a, err := AttachFile(path, AttachOptions{Program: prog, Hook: h})
	if errors.Is(err, ErrNotSupported) {
		tb.Skipf("attach %s: %v", prog, err)
	}
	if err != nil {
		tb.Fatalf("attach %s: %+v", prog, err)
	}
	tb.Cleanup(func() { a.Close() })
	return a
}

// count returns hooks.c's counts[slot].
func count(tb testing.TB, a *Attached, slot uint32) uint64 {
	tb.Helper()
	var v uint64
	if err := a.Collection.Maps["counts"].Lookup(slot, &v); err != nil {
		tb.Fatal(err)
	}
	return v
}

// waitFor polls cond until it holds, and fails the test if it has not
// after 10 seconds: the kernel runs the programs on its own time (a
// packet crosses a veth in softirq context).
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			tb.Fatalf("waited 10s for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// setPID makes hooks.c's tracing programs count this process.
func setPID(tb testing.TB, a *Attached) {
	tb.Helper()
	if err := a.Collection.Maps["config"].Put(uint32(0), uint32(os.Getpid())); err != nil {
		tb.Fatal(err)
	}
}

// send writes frames on fd.
func send(tb testing.TB, fd int, frames ...[]byte) {
	tb.Helper()
	for _, f := range frames {
		if err := unix.Send(fd, f, 0); err != nil {
			tb.Fatal(err)
		}
	}
}

// sourceCount returns the counter example's packets from 10.9.0.1 (its
// per-CPU values summed).
func sourceCount(tb testing.TB, m *ebpf.Map) uint64 {
	tb.Helper()
	var per []struct{ Packets, Bytes uint64 }
	err := m.Lookup([4]byte{10, 9, 0, 1}, &per)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return 0
	}
	if err != nil {
		tb.Fatal(err)
	}
	var n uint64
	for _, c := range per {
		n += c.Packets
	}
	return n
}

// TestAttach_xdp attaches the counter example to one end of a veth pair,
// in each mode veth has, and sends IPv4 frames from the other end: the
// example counts every one by its source address, and nothing once
// detached.
func TestAttach_xdp(t *testing.T) {
	for _, mode := range []XDPMode{XDPGeneric, XDPDriver} {
		t.Run(mode.String(), func(t *testing.T) {
			mustSupported(t)
			v := ktest.NewVeth(t)
			a := mustAttach(t, "../examples/counter/counter.o", "", Hook{Kind: HookXDP, Interface: v.Host, XDPMode: mode})
			if len(a.Links()) != 1 {
				t.Fatalf("%d links", len(a.Links()))
			}
			sender := v.SenderAtPeer(t)
			const n = 10
			for range n {
				send(t, sender, ktest.IPv4Frame(17))
			}
			sources := a.Collection.Maps["sources"]
			waitFor(t, "the counter to count 10 frames", func() bool { return sourceCount(t, sources) >= n })
			if got := sourceCount(t, sources); got != n {
				t.Fatalf("counted %d frames from 10.9.0.1, sent %d", got, n)
			}
			// Detached, the program counts nothing more: the map is the
			// collection's, which lives on.
			if err := a.Attachment.Close(); err != nil {
				t.Fatal(err)
			}
			// The frames reach the host's stack, unseen: a packet socket
			// there says when they have arrived.
			listener := ktest.Listen(t, v.Host)
			send(t, sender, ktest.IPv4Frame(253), ktest.IPv4Frame(253))
			ktest.Await(t, listener, 2, func(f []byte) bool { return len(f) > 23 && f[23] == 253 })
			if got := sourceCount(t, sources); got != n {
				t.Fatalf("counted %d after detaching, want %d", got, n)
			}
		})
	}
}

// TestAttach_tcx attaches hooks.c's tcx programs to both directions of a
// veth end, through TCX and through the clsact fallback (forced with
// TCLegacy): frames arriving from the peer run the ingress program, frames
// sent out the egress one.
func TestAttach_tcx(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		name := "tcx"
		if legacy {
			name = "clsact"
		}
		t.Run(name, func(t *testing.T) {
			mustSupported(t)
			v := ktest.NewVeth(t)
			in := mustAttach(t, hooksObj, "tcx_ingress", Hook{Kind: HookTCX, Interface: v.Host, TCLegacy: legacy})
			out := mustAttach(t, hooksObj, "tcx_egress", Hook{Kind: HookTCX, Interface: v.Host, TCLegacy: legacy})
			if in.Hook.Direction != Ingress || out.Hook.Direction != Egress {
				t.Fatalf("directions from the sections: %v, %v", in.Hook.Direction, out.Hook.Direction)
			}
			if in.Hook.TCLegacy != legacy {
				t.Fatalf("TCLegacy %v, want %v", in.Hook.TCLegacy, legacy)
			}
			if legacy {
				if got := tcFilters(t, v.Host); got != 2 {
					t.Fatalf("%d bpf filters under clsact, want 2", got)
				}
			} else if len(in.Links()) != 1 || len(out.Links()) != 1 {
				t.Fatalf("links: %d, %d", len(in.Links()), len(out.Links()))
			}
			const n = 10
			sender := v.SenderAtPeer(t)
			base := count(t, in, slotTCXIngress)
			for range n {
				send(t, sender, ktest.IPv4Frame(17))
			}
			waitFor(t, "10 frames at ingress", func() bool { return count(t, in, slotTCXIngress) >= base+n })
			hostSock := ktest.Listen(t, v.Host)
			base = count(t, out, slotTCXEgress)
			for range n {
				send(t, hostSock, ktest.IPv4Frame(17))
			}
			waitFor(t, "10 frames at egress", func() bool { return count(t, out, slotTCXEgress) >= base+n })
			in.Close()
			out.Close()
			if legacy {
				if got := tcFilters(t, v.Host); got != 0 {
					t.Fatalf("%d bpf filters left under clsact after Close", got)
				}
			}
		})
	}
}

// tcFilters counts the bpf filters of an interface, both directions.
func tcFilters(t *testing.T, ifname string) int {
	t.Helper()
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, parent := range []uint32{netlink.HANDLE_MIN_INGRESS, netlink.HANDLE_MIN_EGRESS} {
		fs, err := netlink.FilterList(l, parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if _, ok := f.(*netlink.BpfFilter); ok {
				n++
			}
		}
	}
	return n
}

// TestAttach_tracepoint: hooks.c's program on syscalls/sys_enter_openat
// counts this process's openat calls, and none once detached.
func TestAttach_tracepoint(t *testing.T) {
	mustSupported(t)
	ktest.Tracefs(t)
	a := mustAttach(t, hooksObj, "tp_openat", Hook{})
	if a.Hook.Kind != HookTracepoint || a.Hook.Group != "syscalls" || a.Hook.Name != "sys_enter_openat" {
		t.Fatalf("hook from the section: %+v", a.Hook)
	}
	setPID(t, a)
	const n = 20
	for range n {
		f, err := os.Open("/dev/null")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	if got := count(t, a, slotTracepoint); got < n {
		t.Fatalf("counted %d openat calls, made %d", got, n)
	}
	a.Attachment.Close()
	before := count(t, a, slotTracepoint)
	for range n {
		f, _ := os.Open("/dev/null")
		f.Close()
	}
	if got := count(t, a, slotTracepoint); got != before {
		t.Fatalf("counted %d openat calls after detaching", got-before)
	}
}

// TestAttach_rawTracepoint: the raw tracepoint sys_enter counts this
// process's system calls.
func TestAttach_rawTracepoint(t *testing.T) {
	a := mustAttach(t, hooksObj, "raw_sys_enter", Hook{})
	setPID(t, a)
	const n = 20
	for range n {
		unix.Getppid()
	}
	if got := count(t, a, slotRawTP); got < n {
		t.Fatalf("counted %d system calls, made at least %d", got, n)
	}
}

// buildTarget compiles testdata/attach/target.c with the host's C
// compiler, or skips the test.
func buildTarget(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "target")
	var errs []string
	for _, cc := range []string{"cc", "clang-19", "clang", "gcc"} {
		if _, err := exec.LookPath(cc); err != nil {
			continue
		}
		b, err := exec.Command(cc, "-O1", "-o", out, "testdata/attach/target.c").CombinedOutput()
		if err == nil {
			return out
		}
		errs = append(errs, fmt.Sprintf("%s: %v: %s", cc, err, b))
	}
	t.Skipf("no C compiler builds testdata/attach/target.c: %s", strings.Join(errs, "; "))
	return ""
}

// TestAttach_uprobe: a uprobe and a uretprobe on a function of a binary
// the test builds count its calls exactly; one limited to another pid
// counts none.
func TestAttach_uprobe(t *testing.T) {
	mustSupported(t)
	bin := buildTarget(t)
	entry := mustAttach(t, hooksObj, "uprobe_hit", Hook{Kind: HookUprobe, Binary: bin, Symbol: "waggle_target_hit"})
	ret := mustAttach(t, hooksObj, "uretprobe_hit", Hook{Kind: HookUretprobe, Binary: bin, Symbol: "waggle_target_hit"})
	const n = 7
	if out, err := exec.Command(bin, "calls", fmt.Sprint(n)).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", bin, err, out)
	}
	if got := count(t, entry, slotUprobe); got != n {
		t.Errorf("uprobe counted %d calls, want %d", got, n)
	}
	if got := count(t, ret, slotUretprobe); got != n {
		t.Errorf("uretprobe counted %d returns, want %d", got, n)
	}
	entry.Close()
	ret.Close()
	// Limited to this test's pid, which never calls it.
	other := mustAttach(t, hooksObj, "uprobe_hit", Hook{Kind: HookUprobe, Binary: bin, Symbol: "waggle_target_hit", PID: os.Getpid()})
	if out, err := exec.Command(bin, "calls", "3").CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", bin, err, out)
	}
	if got := count(t, other, slotUprobe); got != 0 {
		t.Errorf("a uprobe for pid %d counted %d calls of another process", os.Getpid(), got)
	}
	// A symbol the binary lacks is an error naming it.
	_, err := AttachFile(hooksObj, AttachOptions{Program: "uprobe_hit", Hook: Hook{Kind: HookUprobe, Binary: bin, Symbol: "no_such_function"}})
	if err == nil || !strings.Contains(err.Error(), "no_such_function") {
		t.Errorf("uprobe on a missing symbol: %v", err)
	}
}

// TestAttach_perfEvent: the CPU clock sampled at 1000 Hz on every CPU
// runs the program while this test keeps a CPU busy.
func TestAttach_perfEvent(t *testing.T) {
	a := mustAttach(t, hooksObj, "perf_sample", Hook{Kind: HookPerfEvent, Frequency: 1000})
	cpus, err := onlineCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Links()) != len(cpus) {
		t.Fatalf("%d links for %d CPUs", len(a.Links()), len(cpus))
	}
	x := 0
	waitFor(t, "a sample", func() bool {
		for i := range 1 << 20 {
			x += i
		}
		return count(t, a, slotPerfEvent) > 0
	})
	_ = x
}

// TestAttach_cgroup: in a cgroup of its own, a process's socket and the
// datagram it sends run the cgroup/sock_create and cgroup_skb/egress
// programs.
func TestAttach_cgroup(t *testing.T) {
	mustSupported(t)
	mnt, err := cgroupv2.Mount()
	if err != nil {
		t.Skipf("cgroup v2: %v", err)
	}
	bin := buildTarget(t)
	cg := filepath.Join(mnt, fmt.Sprintf("waggle-attach-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("make a cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(cg) })
	sock := mustAttach(t, hooksObj, "cgroup_sock", Hook{Kind: HookCgroup, CgroupPath: cg})
	skb := mustAttach(t, hooksObj, "cgroup_egress", Hook{Kind: HookCgroup, CgroupPath: cg})
	if sock.Hook.CgroupAttach != "sock_create" || skb.Hook.CgroupAttach != "egress" {
		t.Fatalf("hooks from the sections: %+v, %+v", sock.Hook, skb.Hook)
	}
	dir, err := os.Open(cg)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	cmd := exec.Command(bin, "udp")
	cmd.SysProcAttr = &unix.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s udp: %v: %s", bin, err, out)
	}
	if got := count(t, sock, slotCgroupSock); got != 1 {
		t.Errorf("cgroup/sock_create counted %d sockets, want 1", got)
	}
	if got := count(t, skb, slotCgroupSKB); got < 1 {
		t.Errorf("cgroup_skb/egress counted %d packets, want at least 1", got)
	}
}

// TestAttach_socket: the sockfilter example, attached to a packet socket
// on a veth end, lets through the TCP segments to port 80 and 443 that
// arrive there and nothing else.
func TestAttach_socket(t *testing.T) {
	mustSupported(t)
	v := ktest.NewVeth(t)
	a := mustAttach(t, "../examples/sockfilter/filter.o", "", Hook{Kind: HookSocket, Interface: v.Host})
	fd := a.Socket()
	if fd < 0 {
		t.Fatal("no socket")
	}
	tv := unix.NsecToTimeval((300 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	sender := v.SenderAtPeer(t)
	send(t, sender, ktest.TCPFrame(22), ktest.TCPFrame(80), ktest.IPv4Frame(1), ktest.TCPFrame(443), ktest.TCPFrame(8080))
	var ports []uint16
	buf := make([]byte, 2048)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n < 14+20+4 {
			t.Fatalf("a %d-byte frame passed", n)
		}
		ports = append(ports, binary.BigEndian.Uint16(buf[14+20+2:]))
	}
	if !slices.Equal(ports, []uint16{80, 443}) {
		t.Fatalf("the filter passed frames to ports %v, want [80 443]", ports)
	}
	if _, err := a.Pin(filepath.Join(t.TempDir(), "x")); err == nil || !strings.Contains(err.Error(), "socket") {
		t.Fatalf("pinning a socket filter: %v", err)
	}
}

// TestAttach_absentHooks: kprobes, fentry, fexit and LSM attach where the
// kernel has them; where it lacks one (this kernel has no kprobe PMU and
// refuses fentry and LSM programs), AttachFile fails, before loading,
// with the error of the probe that says so.
func TestAttach_absentHooks(t *testing.T) {
	mustSupported(t)
	for _, tc := range []struct {
		obj, prog string
		names     []string // what the error names when the hook is absent
	}{
		{"testdata/attach/kprobe.o", "kprobe_openat", []string{"kprobes", "kprobe PMU", "/sys/bus/event_source/devices/kprobe"}},
		{"testdata/attach/fentry.o", "fentry_openat", []string{"fentry", "Tracing programs", "features.HaveProgramType"}},
		{"testdata/attach/fentry.o", "fexit_openat", []string{"fexit", "Tracing programs", "features.HaveProgramType"}},
		{"testdata/attach/lsm.o", "lsm_file_open", []string{"lsm"}},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(tc.obj)
			if err != nil {
				t.Fatal(err)
			}
			h, err := ParseSection(spec.Programs[tc.prog].SectionName)
			if err != nil {
				t.Fatal(err)
			}
			probe := HookSupported(h)
			a, err := AttachFile(tc.obj, AttachOptions{Program: tc.prog})
			if probe == nil {
				if err != nil {
					t.Fatalf("the kernel has %v, yet: %+v", h, err)
				}
				a.Close()
				t.Logf("%v attached", h)
				return
			}
			if !errors.Is(probe, ErrNotSupported) {
				t.Fatalf("probe: %v, want ErrNotSupported", probe)
			}
			if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), probe.Error()) {
				t.Fatalf("attach: %v; want the probe's error %q", err, probe)
			}
			for _, s := range tc.names {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("the error does not name %q: %v", s, err)
				}
			}
			t.Logf("absent: %v", err)
		})
	}
}

// linkIDs returns the ids of every bpf link in the kernel.
func linkIDs(t *testing.T) []link.ID {
	t.Helper()
	var ids []link.ID
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		ids = append(ids, it.ID)
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestAttached_pin: the counter example pinned on a veth keeps counting
// after the process has let go of it, its map read through its pin;
// Detach removes the link, every pin and the directory.
func TestAttached_pin(t *testing.T) {
	mustSupported(t)
	v := ktest.NewVeth(t)
	fs := ktest.BPFFS(t)
	dir := filepath.Join(fs, "counter")
	a := mustAttach(t, "../examples/counter/counter.o", "", Hook{Kind: HookXDP, Interface: v.Host})
	info, err := a.Links()[0].Info()
	if err != nil {
		t.Fatal(err)
	}
	id := info.ID
	pinned, err := a.Pin(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"link", "prog", "maps/sources"}
	if len(pinned) != len(want) {
		t.Fatalf("pinned %v, want %v", pinned, want)
	}
	for i, p := range pinned {
		if p != filepath.Join(dir, want[i]) {
			t.Fatalf("pinned %v, want %v under %s", pinned, want, dir)
		}
	}
	// A second attachment cannot take the same directory.
	if _, err := a.Pin(dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("pinning into a used directory: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(linkIDs(t), id) {
		t.Fatalf("link %d gone after Close, though pinned", id)
	}
	m, err := ebpf.LoadPinnedMap(filepath.Join(dir, "maps", "sources"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	send(t, v.SenderAtPeer(t), ktest.IPv4Frame(6), ktest.IPv4Frame(6), ktest.IPv4Frame(6))
	waitFor(t, "the pinned program to count 3 frames", func() bool { return sourceCount(t, m) >= 3 })

	removed, err := Detach(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 3 {
		t.Errorf("removed %v", removed)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s after Detach: %v", dir, err)
	}
	if slices.Contains(linkIDs(t), id) {
		t.Fatalf("link %d still there after Detach", id)
	}
}

// TestAttached_pinPerCPUAndClsact: perf_event's links are pinned one per
// CPU, and a clsact filter as its program under a name that says where it
// is; Detach removes them all, the filter and the qdisc it made.
func TestAttached_pinPerCPUAndClsact(t *testing.T) {
	mustSupported(t)
	fs := ktest.BPFFS(t)
	before, _ := os.ReadDir(fs) // bpffs's own: maps.debug, progs.debug
	pe := mustAttach(t, hooksObj, "perf_sample", Hook{Kind: HookPerfEvent, Frequency: 99})
	if _, err := pe.Pin(filepath.Join(fs, "perf")); err != nil {
		t.Fatal(err)
	}
	cpus, _ := onlineCPUs()
	links, _ := filepath.Glob(filepath.Join(fs, "perf", "link_cpu*"))
	if len(links) != len(cpus) {
		t.Fatalf("%d link pins for %d CPUs", len(links), len(cpus))
	}
	pe.Close()

	v := ktest.NewVeth(t)
	tc := mustAttach(t, hooksObj, "tcx_egress", Hook{Kind: HookTCX, Interface: v.Host, TCLegacy: true})
	if _, err := tc.Pin(filepath.Join(fs, "tc")); err != nil {
		t.Fatal(err)
	}
	tc.Close()
	if got := tcFilters(t, v.Host); got != 1 {
		t.Fatalf("%d filters after Close, though pinned", got)
	}
	for _, d := range []string{"perf", "tc"} {
		if _, err := Detach(filepath.Join(fs, d)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tcFilters(t, v.Host); got != 0 {
		t.Fatalf("%d filters after Detach", got)
	}
	l, _ := netlink.LinkByName(v.Host)
	qs, _ := netlink.QdiscList(l)
	for _, q := range qs {
		if q.Type() == "clsact" {
			t.Fatal("the clsact qdisc made for the filter is still there")
		}
	}
	if ents, _ := os.ReadDir(fs); len(ents) != len(before) {
		t.Fatalf("left in the bpffs: %v", ents)
	}
}

// TestDetach_foreign: a directory holding what waggle attach does not make
// is refused, and left as it was.
func TestDetach_foreign(t *testing.T) {
	mustSupported(t)
	fs := ktest.BPFFS(t)
	dir := filepath.Join(fs, "other")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prog", "somebodys_map"} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if err := m.Pin(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Detach(dir); err == nil || !strings.Contains(err.Error(), "somebodys_map") {
		t.Fatalf("Detach of a foreign directory: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("Detach touched a foreign directory: %v", ents)
	}
	// Nor is a directory without a link, even one holding only what Pin
	// makes besides it.
	if err := os.Remove(filepath.Join(dir, "somebodys_map")); err != nil {
		t.Fatal(err)
	}
	if _, err := Detach(dir); err == nil || !strings.Contains(err.Error(), "no link") {
		t.Fatalf("Detach of a directory without a link: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "prog")); err != nil {
		t.Fatalf("Detach touched a directory without a link: %v", err)
	}
}

func Test_parseCPUList(t *testing.T) {
	for s, want := range map[string][]int{"0": {0}, "0-3": {0, 1, 2, 3}, "0,2-3,7": {0, 2, 3, 7}} {
		if got, err := parseCPUList(s); err != nil || !slices.Equal(got, want) {
			t.Errorf("parseCPUList(%q) = %v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "a", "3-1", "0-999999999"} {
		if _, err := parseCPUList(s); err == nil {
			t.Errorf("parseCPUList(%q) succeeded", s)
		}
	}
}
