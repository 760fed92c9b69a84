//go:build linux

package waggle_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/cgroupv2"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD/= -fdebug-compilation-dir=. -c testdata/progtypes/progtypes.c -o testdata/progtypes/progtypes.o

const progtypesObj = "testdata/progtypes/progtypes.o"

// results returns the results array of both engines.
func results(t *testing.T, coll *waggle.Collection, kc *ebpf.Collection) (mine, theirs []int64) {
	t.Helper()
	for i := uint32(0); i < 16; i++ {
		var w, k uint64
		if err := coll.Maps["results"].Lookup(i, &w); err != nil {
			t.Fatal(err)
		}
		if err := kc.Maps["results"].Lookup(i, &k); err != nil {
			t.Fatal(err)
		}
		mine, theirs = append(mine, int64(w)), append(theirs, int64(k))
	}
	return mine, theirs
}

func sameResults(t *testing.T, what string, coll *waggle.Collection, kc *ebpf.Collection) {
	t.Helper()
	mine, theirs := results(t, coll, kc)
	if fmt.Sprint(mine) != fmt.Sprint(theirs) {
		t.Errorf("%s: results differ:\nwaggle %v\nkernel %v", what, mine, theirs)
	} else {
		t.Logf("%s: %v agree", what, mine[:8])
	}
}

// cgroupV2 returns the cgroup v2 mount point and this process's cgroup
// path in it, skipping without cgroup v2.
func cgroupV2(t *testing.T) (mnt, own string) {
	t.Helper()
	mnt, err := cgroupv2.Mount()
	if err != nil {
		t.Skipf("cgroup: %v", err)
	}
	if own, err = cgroupv2.Own(); err != nil {
		t.Skipf("cgroup: %v", err)
	}
	return mnt, own
}

// cgroupOf describes the cgroup at path below mnt as waggle's Cgroup:
// ids are the inode numbers of the directories.
func cgroupOf(t *testing.T, mnt, path string) *progtype.Cgroup {
	t.Helper()
	cg, err := cgroupv2.Cgroup(mnt, path)
	if err != nil {
		t.Fatal(err)
	}
	return cg
}

// TestCgroupHelpers_kernel fills a cgroup array with the root cgroup, this
// process's cgroup and a new sibling cgroup, and compares
// bpf_skb_under_cgroup and bpf_current_task_under_cgroup over every slot
// (and one past the end) with the kernel's, with the process where it is
// and moved into the new cgroup.
func TestCgroupHelpers_kernel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("cgroup arrays of the kernel and moving between cgroups need root")
	}
	mnt, own := cgroupV2(t)
	child := filepath.Join(own, fmt.Sprintf("progtypes-cg-%d", os.Getpid()))
	if err := os.Mkdir(filepath.Join(mnt, child), 0o755); err != nil {
		t.Skipf("cgroup: %v", err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(mnt, child)) })
	paths := []string{"/", own, child}
	coll, err := waggle.LoadCollection(progtypesObj, &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	kc := kernelCollection(t, progtypesObj, "skb_cgroup", "task_cgroup")
	for i, p := range paths {
		if err := coll.Maps["cgroups"].Update(uint32(i), cgroupOf(t, mnt, p), waggle.UpdateAny); err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Open(filepath.Join(mnt, p), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = kc.Maps["cgroups"].Put(uint32(i), uint32(fd))
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
	}
	run := func(t *testing.T, where string) {
		task := &progtype.Task{Cgroup: cgroupOf(t, mnt, where)}
		packet := ipv4Frame()
		for _, name := range []string{"skb_cgroup", "task_cgroup"} {
			opts := &waggle.RunOptions{Task: task}
			kopts := &ebpf.RunOptions{}
			if name == "skb_cgroup" {
				opts.Data, kopts.Data = packet, packet
			}
			if _, err := coll.Programs[name].Run(opts); err != nil {
				t.Fatal(err)
			}
			if _, err := kc.Programs[name].Run(kopts); err != nil {
				t.Fatal(err)
			}
			sameResults(t, name, coll, kc)
		}
	}
	t.Run("own", func(t *testing.T) { run(t, own) })
	t.Run("child", func(t *testing.T) {
		pid := []byte(fmt.Sprint(os.Getpid()))
		if err := os.WriteFile(filepath.Join(mnt, child, "cgroup.procs"), pid, 0); err != nil {
			t.Skipf("cgroup: %v", err)
		}
		defer func() {
			if err := os.WriteFile(filepath.Join(mnt, own, "cgroup.procs"), pid, 0); err != nil {
				t.Errorf("cgroup: move back: %v", err)
			}
		}()
		run(t, child)
	})
}

// ipv4Frame is a small UDP packet.
func ipv4Frame() []byte {
	p := []byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 32, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
		0x30, 0x39, 0x00, 0x35, 0, 12, 0, 0, 'p', 'i', 'n', 'g'}
	return p
}

// TestCgroupStorage_kernel runs a cgroup_skb program counting into a
// cgroup storage and a per-CPU one. The kernel's test run gives each run a
// new storage, waggle keeps the storage of the program's attachment, so
// the first run of each and a run repeated 3 times are compared.
func TestCgroupStorage_kernel(t *testing.T) {
	for _, repeat := range []uint32{1, 3} {
		t.Run(fmt.Sprint(repeat), func(t *testing.T) {
			coll, err := waggle.LoadCollection(progtypesObj, &waggle.CollectionOptions{CPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			kc := kernelCollection(t, progtypesObj, "count")
			packet := ipv4Frame()
			wret, err := coll.Programs["count"].Run(&waggle.RunOptions{Data: packet, Repeat: repeat})
			if err != nil {
				t.Fatal(err)
			}
			kret, err := kc.Programs["count"].Run(&ebpf.RunOptions{Data: packet, Repeat: repeat})
			if err != nil {
				t.Fatal(err)
			}
			if wret != kret {
				t.Errorf("retval waggle %d, kernel %d", wret, kret)
			}
			sameResults(t, "count", coll, kc)
			// The storage outlives the run in waggle, as an attached
			// program's does: the Go side sees it under the key
			// {root cgroup, BPF_CGROUP_INET_EGRESS}.
			key := binary.NativeEndian.AppendUint64(nil, progtype.RootCgroupID)
			key = binary.NativeEndian.AppendUint32(key, uint32(progtype.AttachCgroupInetEgress))
			key = append(key, 0, 0, 0, 0)
			var counts [2]uint64
			if err := coll.Maps["storage"].Lookup(key, &counts); err != nil {
				t.Fatal(err)
			}
			if counts[0] != uint64(repeat) || counts[1] != uint64(repeat)*uint64(len(packet)-14) {
				t.Errorf("storage after the run: %v", counts)
			}
		})
	}
}

// TestPerfCounters_kernel reads the perf event array slots of an XDP-less
// raw tracepoint program on CPU 0 with readers installed on every CPU's
// slot: the current CPU's output event, another CPU's, empty slots, bad
// flags and a bad size, and compares the errnos and values.
func TestPerfCounters_kernel(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu0 unix.CPUSet
	cpu0.Set(0)
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Skipf("pin to CPU 0: %v", err)
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil || cpus < 2 || cpus > 3 {
		t.Skipf("the comparison wants 2 or 3 possible CPUs, so slot 3 stays empty (have %d, %v)", cpus, err)
	}
	coll, err := waggle.LoadCollection(progtypesObj, &waggle.CollectionOptions{CPUs: cpus})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	rd, err := maps.NewPerfReader(coll.Maps["counters"].Underlying(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	kc := kernelCollection(t, progtypesObj, "perf_read")
	krd, err := perf.NewReader(kc.Maps["counters"], 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer krd.Close()
	args := make([]byte, 8)
	if _, err := coll.Programs["perf_read"].Run(&waggle.RunOptions{Context: args}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Programs["perf_read"].Run(&ebpf.RunOptions{Context: args, Flags: unix.BPF_F_TEST_RUN_ON_CPU, CPU: 0}); err != nil {
		t.Fatal(err)
	}
	sameResults(t, "perf_read", coll, kc)
	// A counter installed in a slot reads as what it counts.
	pc := coll.Maps["counters"].Underlying().(maps.PerfCounters)
	if err := pc.SetCounter(0, fixedCounter{1234, 10, 5}); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.Programs["perf_read"].Run(&waggle.RunOptions{Context: args}); err != nil {
		t.Fatal(err)
	}
	mine, _ := results(t, coll, kc)
	if mine[0] != 1234 || mine[6] != 0 || mine[7] != 1234 {
		t.Errorf("with a counter: %v", mine)
	}
}

type fixedCounter struct{ v, en, ru uint64 }

func (c fixedCounter) ReadCounter(cpu int) (uint64, uint64, uint64, maps.Errno) {
	return c.v, c.en, c.ru, 0
}

// TestProbeWriteUser_kernel writes into this process's memory from a raw
// tracepoint program run by this thread, in waggle (where the memory is
// lent writable) and, where this kernel offers the helper, in Linux, and
// compares the results and the bytes written; an address outside gives
// -EFAULT in both. In waggle memory not lent writable gives -EFAULT and a
// run without a task -EPERM.
func TestProbeWriteUser_kernel(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	coll, err := waggle.LoadCollection(progtypesObj, &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	args := func(b []byte) []byte {
		a := binary.NativeEndian.AppendUint64(nil, waggleAddr(b)+2)
		return binary.NativeEndian.AppendUint64(a, 0x10)
	}
	task := &progtype.Task{PID: uint32(unix.Gettid()), TGID: uint32(unix.Getpid())}
	mine := bytes.Repeat([]byte{'.'}, 24)
	if _, err := coll.Programs["write_user"].Run(&waggle.RunOptions{Context: args(mine), Task: task, Memory: []progtype.Region{{Data: mine, Writable: true}}}); err != nil {
		t.Fatal(err)
	}
	if want := "..written by bpf!\x00......"; string(mine) != want {
		t.Errorf("memory written %q, want %q", mine, want)
	}
	var got [3]int64
	for i := range got {
		if err := coll.Maps["results"].Lookup(uint32(i), &got[i]); err != nil {
			t.Fatal(err)
		}
	}
	if got != [3]int64{0, 0, -14} {
		t.Errorf("results %v, want 0, 0, -EFAULT", got)
	}
	ro := bytes.Repeat([]byte{'.'}, 24)
	for _, opts := range []*waggle.RunOptions{
		{Context: args(ro), Task: task, Memory: []progtype.Region{{Data: ro}}},
		{Context: args(ro), Memory: []progtype.Region{{Data: ro, Writable: true}}},
	} {
		if _, err := coll.Programs["write_user"].Run(opts); err != nil {
			t.Fatal(err)
		}
		var r0 int64
		if err := coll.Maps["results"].Lookup(uint32(0), &r0); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: -14, false: -1}[opts.Task != nil]; r0 != want || !bytes.Equal(ro, bytes.Repeat([]byte{'.'}, 24)) {
			t.Errorf("task %v: result %d (want %d), memory %q", opts.Task != nil, r0, want, ro)
		}
	}
	// The kernel, on the same program and this thread's memory.
	if _, err := coll.Programs["write_user"].Run(&waggle.RunOptions{Context: args(mine), Task: task, Memory: []progtype.Region{{Data: mine, Writable: true}}}); err != nil {
		t.Fatal(err)
	}
	kc := kernelCollection(t, progtypesObj, "write_user")
	theirs := bytes.Repeat([]byte{'.'}, 24)
	if _, err := kc.Programs["write_user"].Run(&ebpf.RunOptions{Context: args(theirs)}); err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(theirs)
	sameResults(t, "write_user", coll, kc)
	if !bytes.Equal(mine, theirs) {
		t.Errorf("memory written:\nwaggle %q\nkernel %q", mine, theirs)
	}
}
