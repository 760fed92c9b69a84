//go:build linux

package waggle_test

import (
	"bytes"
	"encoding/binary"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/perf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/tracing/tracing.c -o testdata/tracing/tracing.o

// TestTracing_kernel runs a raw tracepoint program that calls the task and
// memory helpers, in Linux from this thread (pinned to CPU 0) and in waggle
// with this thread as its task and the same user memory, and requires the
// same results: pid/tgid, uid/gid, comm, CPU, probe_read_user of a buffer
// and of an unmapped address, probe_read_user_str, trace_printk's length.
func TestTracing_kernel(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu0 unix.CPUSet
	cpu0.Set(0)
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Skipf("pin to CPU 0: %v", err)
	}
	user := []byte("HEADwaggle-string\x00tail-bytes-here")
	args := make([]byte, 8)
	binary.NativeEndian.PutUint64(args, waggleAddr(user))

	comm, err := os.ReadFile("/proc/thread-self/comm")
	if err != nil {
		t.Fatal(err)
	}
	task := &progtype.Task{
		PID: uint32(unix.Gettid()), TGID: uint32(unix.Getpid()),
		UID: uint32(unix.Getuid()), GID: uint32(unix.Getgid()),
		Comm: strings.TrimSpace(string(comm)),
	}
	coll, err := waggle.LoadCollection("testdata/tracing/tracing.o", &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	ret, err := coll.Programs["task"].Run(&waggle.RunOptions{Context: args, Task: task, Memory: []progtype.Region{{Data: user}}})
	if err != nil || ret != 0 {
		t.Fatalf("waggle: %d, %v", ret, err)
	}
	mine, err := coll.Maps["results"].LookupBytes(uint32(0))
	if err != nil {
		t.Fatal(err)
	}
	kc := kernelCollection(t, "testdata/tracing/tracing.o", "task")
	kret, err := kc.Programs["task"].Run(&ebpf.RunOptions{Context: args})
	runtime.KeepAlive(user)
	if err != nil || kret != 0 {
		t.Fatalf("kernel: %d, %v", kret, err)
	}
	var theirs []byte
	if err := kc.Maps["results"].Lookup(uint32(0), &theirs); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(mine, theirs) {
		t.Fatalf("results differ:\nwaggle % x\nkernel % x", mine, theirs)
	}
	t.Logf("pid/tgid %#x, comm %q: agree", binary.NativeEndian.Uint64(mine), task.Comm)
}

// waggleAddr is the address a program sees for b[0] in both engines: this
// process's memory.
func waggleAddr(b []byte) uint64 { return mem.Addr(b) }

// TestPerfEvents_kernel emits a perf sample from an XDP program on CPU 0 in
// both engines, each with a reader installed, and compares the samples.
func TestPerfEvents_kernel(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu0 unix.CPUSet
	cpu0.Set(0)
	if err := unix.SchedSetaffinity(0, &cpu0); err != nil {
		t.Skipf("pin to CPU 0: %v", err)
	}
	coll, err := waggle.LoadCollection("testdata/tracing/tracing.o", &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	rd, err := maps.NewPerfReader(coll.Maps["samples"].Underlying(), 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	packet := make([]byte, 60)
	for i := range packet {
		packet[i] = byte(i)
	}
	ret, err := coll.Programs["perf_out"].Run(&waggle.RunOptions{Data: packet})
	if err != nil || ret != 2 {
		t.Fatalf("waggle: %d, %v", ret, err)
	}
	var mine []maps.PerfRecord
	for range 2 {
		rd.SetDeadline(time.Now().Add(time.Second))
		rec, err := rd.Read()
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, rec)
	}
	kc := kernelCollection(t, "testdata/tracing/tracing.o", "perf_out")
	krd, err := perf.NewReader(kc.Maps["samples"], 4096)
	if err != nil {
		t.Fatal(err)
	}
	defer krd.Close()
	kret, err := kc.Programs["perf_out"].Run(&ebpf.RunOptions{Data: packet})
	if err != nil || kret != ret {
		t.Fatalf("kernel: %d, %v; waggle %d", kret, err, ret)
	}
	for i := range 2 {
		krd.SetDeadline(time.Now().Add(time.Second))
		theirs, err := krd.Read()
		if err != nil {
			t.Fatal(err)
		}
		if mine[i].CPU != theirs.CPU || !bytes.Equal(mine[i].RawSample, theirs.RawSample) {
			t.Fatalf("sample %d: waggle CPU %d % x, kernel CPU %d % x", i, mine[i].CPU, mine[i].RawSample, theirs.CPU, theirs.RawSample)
		}
		t.Logf("CPU %d sample % x: agree", mine[i].CPU, mine[i].RawSample)
	}
}
