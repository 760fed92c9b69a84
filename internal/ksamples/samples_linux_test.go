//go:build linux

package ksamples_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/internal/ksamples"
	"github.com/waggle-bpf/waggle/internal/mapdump"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/netenv"
	"github.com/waggle-bpf/waggle/progtype"
)

// The kernel's own samples (samples/bpf of Debian's linux-source-6.12),
// built at test time into a cache: every object the kernel loads must load
// in waggle, and every program both can test-run must give the same
// results on the same input.

// sampleTypes are the program types of the samples' untyped sections, as
// the tools that load them decide: tc attaches tcbpf1's redirect programs,
// tc_l2_redirect's and test_cgrp2_tc's filter, ip route attaches
// lwt_len_hist's len_hist as an lwt xmit program.
var sampleTypes = map[string]map[string]ebpf.ProgramType{
	"tcbpf1_kern.o": {
		"redirect_xmit": ebpf.SchedCLS, "redirect_recv": ebpf.SchedCLS,
		"clone_redirect_xmit": ebpf.SchedCLS, "clone_redirect_recv": ebpf.SchedCLS,
	},
	"tc_l2_redirect_kern.o": {
		"l2_to_iptun_ingress_forward": ebpf.SchedCLS, "l2_to_iptun_ingress_redirect": ebpf.SchedCLS,
		"l2_to_ip6tun_ingress_redirect": ebpf.SchedCLS, "drop_non_tun_vip": ebpf.SchedCLS,
	},
	"test_cgrp2_tc.bpf.o": {"filter": ebpf.SchedCLS},
	"lwt_len_hist.bpf.o":  {"len_hist": ebpf.LWTXmit},
}

// sampleGaps are the objects the kernel loads and waggle does not yet, with
// what stops them and whose work removes the gap. An entry whose object
// loads fails the test, so the list shrinks as the gaps close.
var sampleGaps = map[string]struct{ reason, owner string }{}

// sampleTestRun are the program types BPF_PROG_TEST_RUN runs.
var sampleTestRun = map[ebpf.ProgramType]bool{
	ebpf.XDP: true, ebpf.SchedCLS: true, ebpf.SchedACT: true, ebpf.SocketFilter: true,
	ebpf.CGroupSKB: true, ebpf.LWTIn: true, ebpf.LWTOut: true, ebpf.LWTXmit: true,
	ebpf.RawTracepoint: true, ebpf.FlowDissector: true, ebpf.SkLookup: true,
}

// sampleCache is where the samples are built: the user's cache folder.
func sampleCache(t *testing.T) string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "waggle", "ksamples")
}

// TestKernelSamples builds the kernel's samples/bpf and loads every object
// in the kernel (through cilium/ebpf) and in waggle, then runs every
// program both can test-run on the bundled capture's first frames (or a
// zero context) in both and compares return values, packets and maps.
func TestKernelSamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the kernel's samples/bpf: not in -short")
	}
	src, err := ksamples.Find()
	if err != nil {
		t.Skipf("kernel samples: %v", err)
	}
	if src.BTF == "" {
		t.Log("kernel samples: no bpftool or /sys/kernel/btf/vmlinux: the *.bpf.c samples are left out")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	start := time.Now()
	res, err := ksamples.Build(ctx, src, sampleCache(t), 0, t.Logf)
	if err != nil {
		t.Fatalf("kernel samples: build: %v", err)
	}
	t.Logf("kernel samples: %d of %d programs built in %s (cached %v, %v)", len(res.Objects), res.Sources, res.Dir, res.Cached, time.Since(start).Round(time.Millisecond))
	for f, msg := range res.Failed {
		t.Logf("kernel samples: %s did not compile: %s", f, firstLine(msg))
	}
	if len(res.Objects) == 0 {
		t.Fatal("kernel samples: no object built")
	}
	kernelErr := kernel.Supported()
	var pinDir string
	if kernelErr == nil {
		pinDir, err = os.MkdirTemp("/sys/fs/bpf", "progtypes-samples-")
		if err != nil {
			pinDir = ""
			t.Logf("kernel samples: no pinning directory on bpffs (%v): objects with pinned maps will not load in the kernel", err)
		} else {
			t.Cleanup(func() { os.RemoveAll(pinDir) })
		}
	}
	frames := readPcap(t, "../../examples/traffic/traffic.pcap")[:48]
	var host *netenv.Host
	if kernelErr == nil {
		if host, err = netenv.ReadHost(); err != nil {
			t.Fatalf("reading the test's namespace: %v", err)
		}
	}
	var st sampleStats
	st.built = len(res.Objects)
	for _, obj := range res.Objects {
		name := filepath.Base(obj)
		t.Run(name, func(t *testing.T) {
			// The kernel runs each test on the CPU the syscall lands
			// on, and some samples key maps by
			// bpf_get_smp_processor_id: run on CPU 0, as waggle's
			// runs do. The thread stays locked, so it ends with the
			// subtest rather than going back to the scheduler pinned.
			runtime.LockOSThread()
			var cpu0 unix.CPUSet
			cpu0.Set(0)
			if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
				t.Skipf("pin to CPU 0: %v", err)
			}
			st.object(t, obj, name, kernelErr, pinDir, frames, host)
		})
	}
	t.Logf("kernel samples: %d objects built; the kernel loads %d, waggle %d, both %d; %d programs test-run in both, %d runs, %d agree; %d programs not compared",
		st.built, st.kernel, st.waggle, st.both, st.programs, st.runs, st.agree, st.skipped)
	if kernelErr != nil {
		t.Skipf("kernel samples: loaded in waggle only: %v", kernelErr)
	}
}

type sampleStats struct {
	built, kernel, waggle, both    int
	programs, runs, agree, skipped int
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// loadSampleKernel loads an object into the kernel as its loader would:
// the types of untyped sections set, pinned maps under pinDir.
func loadSampleKernel(path, name, pinDir string) (*ebpf.Collection, error) {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return nil, err
	}
	for pname, ps := range spec.Programs {
		if typ, ok := sampleTypes[name][ps.SectionName]; ok {
			ps.Type = typ
		} else if typ, ok := sampleTypes[name][pname]; ok {
			ps.Type = typ
		}
	}
	return ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Maps: ebpf.MapOptions{PinPath: pinDir}})
}

// loadSampleWaggle loads an object into waggle as loadSampleKernel loads
// it into the kernel: every program prepared, the first that cannot be
// failing the object, as the kernel's loader fails it.
func loadSampleWaggle(path, name string, opts *waggle.CollectionOptions) (*waggle.Collection, error) {
	o := waggle.CollectionOptions{}
	if opts != nil {
		o = *opts
	}
	o.CPUs, o.ProgramTypes = 2, sampleTypes[name]
	c, err := waggle.LoadCollection(path, &o)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(c.Programs))
	for n := range c.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := c.Programs[n].Prepare(); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

func (st *sampleStats) object(t *testing.T, path, name string, kernelErr error, pinDir string, frames [][]byte, host *netenv.Host) {
	// The kernel's test runs see the namespace of the test (its routes
	// for bpf_fib_lookup, its devices for bpf_clone_redirect); waggle's
	// runs see it too, read through netlink.
	wc, werr := loadSampleWaggle(path, name, &waggle.CollectionOptions{Net: host})
	if werr == nil {
		defer wc.Close()
		st.waggle++
	}
	if kernelErr != nil {
		t.Logf("waggle: %v", errString(werr))
		return
	}
	kc, kerr := loadSampleKernel(path, name, pinDir)
	if kerr == nil {
		defer kc.Close()
		st.kernel++
	}
	t.Logf("kernel: %s; waggle: %s", errString(kerr), errString(werr))
	gap, known := sampleGaps[name]
	switch {
	case kerr == nil && werr != nil && known && strings.Contains(werr.Error(), gap.reason):
		t.Logf("known gap (%s): %s", gap.owner, gap.reason)
		return
	case kerr == nil && werr != nil:
		t.Errorf("the kernel loads %s, waggle does not: %v", name, werr)
		return
	case known && werr == nil:
		t.Errorf("%s loads in waggle now: remove it from sampleGaps", name)
	}
	if kerr != nil || werr != nil {
		return
	}
	st.both++
	names := make([]string, 0, len(kc.Programs))
	for n := range kc.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	ran := false
	for _, pn := range names {
		kp, wp := kc.Programs[pn], wc.Programs[pn]
		if wp == nil {
			t.Errorf("program %s: in the kernel's collection, not in waggle's", pn)
			continue
		}
		typ := kp.Type()
		if !sampleTestRun[typ] {
			st.skipped++
			continue
		}
		ps, err := ebpf.LoadCollectionSpec(path)
		if err == nil {
			if s := ps.Programs[pn]; s != nil {
				s.Type = typ
				if err := kernel.ProgramSpecSupported(s); err != nil {
					t.Logf("program %s: not compared: %v", pn, err)
					st.skipped++
					continue
				}
			}
		}
		st.programs++
		ran = true
		runs, agree := compareSampleRuns(t, pn, typ, kp, wp, frames, usesCgroupStorage(wc))
		st.runs += runs
		st.agree += agree
	}
	if ran {
		compareSampleMaps(t, wc, kc)
	}
}

func errString(err error) string {
	if err == nil {
		return "loads"
	}
	return firstLine(err.Error())
}

// usesCgroupStorage reports whether the collection has cgroup storage: the
// kernel's test run gives each run a fresh storage where waggle keeps the
// attachment's, so only a first run compares.
func usesCgroupStorage(wc *waggle.Collection) bool {
	for _, m := range wc.Maps {
		if m.Type() == ebpf.CGroupStorage || m.Type() == ebpf.PerCPUCGroupStorage {
			return true
		}
	}
	return false
}

// compareSampleRuns runs one program on the inputs of its type in both
// engines.
func compareSampleRuns(t *testing.T, name string, typ ebpf.ProgramType, kp *ebpf.Program, wp *waggle.Program, frames [][]byte, once bool) (runs, agree int) {
	type input struct {
		data, ctx []byte
	}
	var inputs []input
	switch typ {
	case ebpf.RawTracepoint:
		inputs = []input{{ctx: make([]byte, 96)}}
	default:
		for _, f := range frames {
			inputs = append(inputs, input{data: f})
		}
	}
	if once {
		inputs = inputs[:1]
	}
	for i, in := range inputs {
		runs++
		kopts := &ebpf.RunOptions{Data: in.data, Context: in.ctx}
		wopts := &waggle.RunOptions{Data: in.data, Context: in.ctx}
		if in.data != nil {
			kopts.DataOut = make([]byte, len(in.data)+512)
			wopts.DataOut = make([]byte, len(in.data)+512)
		}
		kret, kerr := kp.Run(kopts)
		wret, werr := wp.Run(wopts)
		switch {
		case kerr != nil || werr != nil:
			if (kerr == nil) != (werr == nil) || errnoOf(kerr) != errnoOf(werr) {
				t.Errorf("program %s input %d: kernel %v, waggle %v", name, i, kerr, werr)
				continue
			}
		case kret != wret:
			t.Errorf("program %s input %d: retval kernel %d, waggle %d", name, i, kret, wret)
			continue
		case !bytes.Equal(kopts.DataOut, wopts.DataOut):
			t.Errorf("program %s input %d: packet out differs at byte %d:\nkernel %x\nwaggle %x", name, i, firstDiff(kopts.DataOut, wopts.DataOut), kopts.DataOut, wopts.DataOut)
			continue
		}
		agree++
	}
	t.Logf("program %s (%s): %d runs, %d agree", name, typ, runs, agree)
	return runs, agree
}

// errnoOf returns the errno an error carries (the kernel's or waggle's),
// 0 for none and -1 for an error without one.
func errnoOf(err error) int {
	if err == nil {
		return 0
	}
	var ke unix.Errno
	if errors.As(err, &ke) {
		return int(ke)
	}
	var we maps.Errno
	if errors.As(err, &we) {
		return int(we)
	}
	return -1
}

// compareSampleMaps compares the maps whose contents are bytes in both
// worlds.
func compareSampleMaps(t *testing.T, wc *waggle.Collection, kc *ebpf.Collection) {
	for name, wm := range wc.Maps {
		km := kc.Maps[name]
		if km == nil {
			continue
		}
		switch wm.Type() {
		case ebpf.ProgramArray, ebpf.RingBuf, ebpf.PerfEventArray, ebpf.Queue, ebpf.Stack, ebpf.BloomFilter,
			ebpf.ArrayOfMaps, ebpf.HashOfMaps, ebpf.CGroupStorage, ebpf.PerCPUCGroupStorage, ebpf.CGroupArray,
			ebpf.StackTrace, ebpf.DevMap, ebpf.DevMapHash, ebpf.CPUMap, ebpf.XSKMap:
			continue
		}
		if strings.HasSuffix(name, ".rodata") || strings.Contains(name, ".kconfig") {
			continue
		}
		mine := mapdump.Waggle(wm)
		theirs, err := mapdump.Kernel(km)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(mine) != fmt.Sprint(theirs) {
			t.Errorf("map %s differs:\nwaggle %v\nkernel %v", name, mine, theirs)
		}
	}
}

// readPcap returns the frames of a capture.
func readPcap(tb testing.TB, path string) [][]byte {
	tb.Helper()
	frames, err := capture.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return frames
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// samples builds (or finds) the samples, skipping without the source or
// the tools.
func samples(t *testing.T) *ksamples.Result {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the kernel's samples/bpf: not in -short")
	}
	src, err := ksamples.Find()
	if err != nil {
		t.Skipf("kernel samples: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	res, err := ksamples.Build(ctx, src, sampleCache(t), 0, t.Logf)
	if err != nil {
		t.Fatalf("kernel samples: build: %v", err)
	}
	return res
}

// sampleObject loads one sample in waggle.
func sampleObject(t *testing.T, res *ksamples.Result, name string, opts *waggle.CollectionOptions) *waggle.Collection {
	t.Helper()
	path := filepath.Join(res.Dir, name)
	if _, err := os.Stat(path); err != nil {
		t.Skipf("%s was not built: %s", name, firstLine(res.Failed[strings.TrimSuffix(name, ".o")+".c"]))
	}
	if opts == nil {
		opts = &waggle.CollectionOptions{}
	}
	opts.CPUs = 2
	c, err := waggle.LoadCollection(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// sockOps builds the context of a sock_ops callback on a full IPv6 TCP
// socket between two hosts of one data center, local port lport.
func sockOps(op, lport uint32, fields map[int]uint32) []byte {
	b := make([]byte, progtype.SockOpsSize)
	le := binary.LittleEndian
	le.PutUint32(b[0:], op)
	le.PutUint32(b[20:], 10)
	copy(b[32:], []byte{0xfd, 0, 0, 1, 0x12, 0x34, 0x50, 0, 0, 0, 0, 0, 0, 0, 0, 2})
	copy(b[48:], []byte{0xfd, 0, 0, 1, 0x12, 0x34, 0x5f, 0xff, 0, 0, 0, 0, 0, 0, 0, 1})
	binary.BigEndian.PutUint16(b[66:], 443)
	le.PutUint32(b[68:], lport)
	le.PutUint32(b[72:], 1)
	le.PutUint32(b[76:], 10)
	le.PutUint32(b[88:], 1)
	le.PutUint32(b[112:], 1448)
	for off, v := range fields {
		le.PutUint32(b[off:], v)
	}
	return b
}

// TestSamples_sockOps runs the sock_ops samples on the callbacks they
// handle and checks what Linux would do with their answers: the reply, the
// socket options they set, the TCP state they change.
func TestSamples_sockOps(t *testing.T) {
	res := samples(t)
	type want struct {
		reply int32
		check func(t *testing.T, s *netenv.Socket, ctx []byte)
	}
	var fields map[int]uint32
	run := func(t *testing.T, c *waggle.Collection, prog string, op, port uint32, sock *netenv.Socket, w want) {
		t.Helper()
		ctx := sockOps(op, port, fields)
		out := make([]byte, len(ctx))
		ret, err := c.Programs[prog].Run(&waggle.RunOptions{Context: ctx, ContextOut: out, Socket: sock})
		if err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
		if ret != 1 {
			t.Errorf("op %d: retval %d, want 1", op, ret)
		}
		if r := int32(binary.LittleEndian.Uint32(out[4:])); r != w.reply {
			t.Errorf("op %d port %d: reply %d, want %d", op, port, r, w.reply)
		}
		if w.check != nil {
			w.check(t, sock, out)
		}
	}
	opt := func(s *netenv.Socket, level, name int32) int32 {
		return s.Options[netenv.SockOpt{Level: level, Name: name}]
	}
	t.Run("tcp_bufs", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_bufs_kern.o", nil)
		run(t, c, "bpf_bufs", 2, 80, &netenv.Socket{}, want{reply: -1})
		run(t, c, "bpf_bufs", 2, 55601, &netenv.Socket{}, want{reply: 40})
		run(t, c, "bpf_bufs", 3, 55601, &netenv.Socket{}, want{reply: 0, check: func(t *testing.T, s *netenv.Socket, _ []byte) {
			// 1500000 is clamped to net.core.wmem_max and doubled.
			if opt(s, progtype.SolSocket, progtype.SoSndBuf) != 425984 || opt(s, progtype.SolSocket, progtype.SoRcvBuf) != 425984 {
				t.Errorf("buffers %v", s.Options)
			}
		}})
	})
	t.Run("tcp_cong", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_cong_kern.o", nil)
		run(t, c, "bpf_cong", 6, 55601, &netenv.Socket{}, want{reply: 1})
		run(t, c, "bpf_cong", 4, 55601, &netenv.Socket{}, want{reply: -2}) // no dctcp: ENOENT
		host, err := netenv.New(&netenv.Config{CongestionControls: []string{"reno", "cubic", "dctcp"}})
		if err != nil {
			t.Fatal(err)
		}
		c = sampleObject(t, res, "tcp_cong_kern.o", &waggle.CollectionOptions{Net: host})
		run(t, c, "bpf_cong", 4, 55601, &netenv.Socket{}, want{reply: 0, check: func(t *testing.T, s *netenv.Socket, _ []byte) {
			if s.Congestion != "dctcp" {
				t.Errorf("congestion %q", s.Congestion)
			}
		}})
	})
	t.Run("tcp_iw", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_iw_kern.o", nil)
		run(t, c, "bpf_iw", 4, 55601, &netenv.Socket{}, want{reply: 0, check: func(t *testing.T, s *netenv.Socket, ctx []byte) {
			if cwnd := binary.LittleEndian.Uint32(ctx[76:]); cwnd != 40 {
				t.Errorf("snd_cwnd %d, want 40 (TCP_BPF_IW)", cwnd)
			}
		}})
		// Once data went out, the initial window is settled.
		fields = map[int]uint32{152: 5}
		run(t, c, "bpf_iw", 4, 55601, &netenv.Socket{}, want{reply: -22})
		fields = nil
	})
	t.Run("tcp_clamp", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_clamp_kern.o", nil)
		run(t, c, "bpf_clamp", 4, 55601, &netenv.Socket{}, want{reply: 0, check: func(t *testing.T, s *netenv.Socket, ctx []byte) {
			if clamp := opt(s, progtype.SolTCP, progtype.TCPBPFSndCwndClp); clamp != 100 || binary.LittleEndian.Uint32(ctx[96:]) != 100 {
				t.Errorf("clamp %d, ssthresh %d", clamp, binary.LittleEndian.Uint32(ctx[96:]))
			}
		}})
	})
	t.Run("tcp_synrto", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_synrto_kern.o", nil)
		run(t, c, "bpf_synrto", 1, 55601, &netenv.Socket{}, want{reply: 10})
	})
	t.Run("tcp_rwnd", func(t *testing.T) {
		c := sampleObject(t, res, "tcp_rwnd_kern.o", nil)
		run(t, c, "bpf_rwnd", 2, 55601, &netenv.Socket{}, want{reply: -1}) // same data center
		fields = map[int]uint32{52: 0x99}
		run(t, c, "bpf_rwnd", 2, 55601, &netenv.Socket{}, want{reply: 40})
		fields = nil
	})
}

// TestSamples_sockFlags runs sock_flags' cgroup/sock programs on the
// sockets they block and let through, with their trace output.
func TestSamples_sockFlags(t *testing.T) {
	res := samples(t)
	var trace bytes.Buffer
	c := sampleObject(t, res, "sock_flags.bpf.o", &waggle.CollectionOptions{Trace: &trace})
	sock := func(family, typ, proto uint32) []byte {
		b := make([]byte, progtype.BpfSockSize)
		binary.LittleEndian.PutUint32(b[4:], family)
		binary.LittleEndian.PutUint32(b[8:], typ)
		binary.LittleEndian.PutUint32(b[12:], proto)
		binary.LittleEndian.PutUint32(b[76:], 0xffffffff)
		return b
	}
	task := &progtype.Task{UID: 1000, GID: 100}
	for _, tc := range []struct {
		prog string
		ctx  []byte
		want uint32
	}{
		{"bpf_prog1", sock(10, 2, 58), 0}, // ping6's socket
		{"bpf_prog1", sock(10, 1, 6), 1},
		{"bpf_prog2", sock(2, 2, 1), 0}, // ping's socket
		{"bpf_prog2", sock(2, 2, 17), 1},
	} {
		ret, err := c.Programs[tc.prog].Run(&waggle.RunOptions{Context: tc.ctx, Task: task})
		if err != nil {
			t.Fatal(err)
		}
		if ret != tc.want {
			t.Errorf("%s on %x: %d, want %d", tc.prog, tc.ctx[4:16], ret, tc.want)
		}
	}
	for _, line := range []string{"socket: family 10 type 2 protocol 58", "socket: uid 1000 gid 100", "socket: family 2 type 2 protocol 1"} {
		if !strings.Contains(trace.String(), line) {
			t.Errorf("trace lacks %q:\n%s", line, trace.String())
		}
	}
}

// sampleRunGaps are samples waggle loads and cannot run, and why. An
// object that refers to another's maps (xdp_router_ipv4.bpf.o, whose maps
// are xdp_sample.bpf.o's, joined by bpftool gen object) is refused by the
// kernel and by waggle alike, so it is not among them.
var sampleRunGaps = map[string]string{}

// TestSamples_run runs every program of every sample waggle loads once on
// an input of its type (the capture's first frame, a zero context, a
// socket) with a current task: whatever the program does, a run ends with
// a result, as in Linux.
func TestSamples_run(t *testing.T) {
	res := samples(t)
	frame := readPcap(t, "../../examples/traffic/traffic.pcap")[0]
	sock := make([]byte, progtype.BpfSockSize)
	binary.LittleEndian.PutUint32(sock[4:], 2)
	binary.LittleEndian.PutUint32(sock[8:], 1)
	binary.LittleEndian.PutUint32(sock[12:], 6)
	binary.LittleEndian.PutUint32(sock[76:], 0xffffffff)
	task := &progtype.Task{PID: 42, TGID: 42, UID: 1000, GID: 1000, Comm: "waggle"}
	ran, objects := 0, 0
	for _, obj := range res.Objects {
		name := filepath.Base(obj)
		c, err := loadSampleWaggle(obj, name, &waggle.CollectionOptions{Trace: io.Discard})
		if err != nil {
			continue
		}
		objects++
		for pn, p := range c.Programs {
			opts := &waggle.RunOptions{Task: task}
			switch progtype.Type(p.Type()) {
			case progtype.XDP, progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB,
				progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit, progtype.LWTSeg6Local, progtype.FlowDissector:
				opts.Data = frame
			case progtype.Kprobe:
				opts.Context = make([]byte, progtype.PtRegsSize)
			case progtype.Tracepoint:
				opts.Context = make([]byte, 256)
			case progtype.RawTracepoint:
				opts.Context = make([]byte, 8*progtype.RawTracepointArgs)
			case progtype.PerfEvent:
				opts.Context = make([]byte, progtype.PerfEventDataSize)
				opts.PerfValue = &progtype.PerfEventValue{Counter: 1000, Enabled: 10, Running: 10}
			case progtype.SockOps:
				opts.Context = sockOps(4, 55601, nil)
			case progtype.CgroupSock:
				opts.Context = sock
			default:
				t.Errorf("%s: program %s: no input for %s", name, pn, p.Type())
				continue
			}
			if _, err := p.Run(opts); err != nil {
				if why, ok := sampleRunGaps[name]; ok {
					t.Logf("%s: program %s: known: %s: %v", name, pn, why, firstLine(err.Error()))
					continue
				}
				t.Errorf("%s: program %s (%s): %v", name, pn, p.Type(), err)
			}
			ran++
		}
		c.Close()
	}
	t.Logf("%d programs of %d objects ran", ran, objects)
}
