package waggle_test

import (
	"bytes"
	"encoding/binary"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/pidns/pidns.c -o testdata/pidns/pidns.o

// TestNsCurrentPidTgid runs bpf_get_ns_current_pid_tgid in waggle, with
// this thread as the task in this process's pid namespace, and in Linux
// from this thread: this namespace gives the thread's pid and tgid,
// another namespace, a 33-bit device and a 12-byte buffer give EINVAL with
// the buffer zeroed; both sides must write the same bytes.
func TestNsCurrentPidTgid(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var st unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/pid", &st); err != nil {
		t.Skipf("pid namespace: %v", err)
	}
	ns := make([]byte, 16)
	binary.NativeEndian.PutUint64(ns, st.Dev)
	binary.NativeEndian.PutUint64(ns[8:], st.Ino)
	tid, pid := uint32(unix.Gettid()), uint32(unix.Getpid())

	coll, err := waggle.LoadCollection("testdata/pidns/pidns.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if err := coll.Maps["config"].Update(uint32(0), ns, 0); err != nil {
		t.Fatal(err)
	}
	task := &progtype.Task{PID: tid, TGID: pid, PIDNamespace: progtype.Namespace{Dev: st.Dev, Ino: st.Ino}}
	if ret, err := coll.Programs["pidns"].Run(&waggle.RunOptions{Task: task}); err != nil || ret != 0 {
		t.Fatalf("waggle: %d, %v", ret, err)
	}
	const answers = 4
	mine := make([][]byte, answers)
	for i := range mine {
		if mine[i], err = coll.Maps["results"].LookupBytes(uint32(i)); err != nil {
			t.Fatal(err)
		}
	}
	if ret := int64(binary.NativeEndian.Uint64(mine[0])); ret != 0 ||
		binary.NativeEndian.Uint32(mine[0][8:]) != tid || binary.NativeEndian.Uint32(mine[0][12:]) != pid {
		t.Errorf("this namespace: % x, want 0, pid %d, tgid %d", mine[0][:16], tid, pid)
	}
	for i, what := range []string{"", "another namespace", "a 33-bit device", "a 12-byte buffer"} {
		if i == 0 {
			continue
		}
		buf := mine[i][8:16]
		if i == 3 {
			buf = mine[i][16:28]
		}
		if ret := int64(binary.NativeEndian.Uint64(mine[i])); ret != -22 || !bytes.Equal(buf, make([]byte, len(buf))) {
			t.Errorf("%s: returned %d with % x, want -22 and zeros", what, ret, buf)
		}
	}

	kc := kernelCollection(t, "testdata/pidns/pidns.o", "pidns")
	if err := kc.Maps["config"].Update(uint32(0), ns, 0); err != nil {
		t.Fatal(err)
	}
	if ret, err := kc.Programs["pidns"].Run(&ebpf.RunOptions{}); err != nil || ret != 0 {
		t.Fatalf("kernel: %d, %v", ret, err)
	}
	for i := range answers {
		var theirs []byte
		if err := kc.Maps["results"].Lookup(uint32(i), &theirs); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(mine[i], theirs) {
			t.Errorf("answer %d:\nwaggle % x\nkernel % x", i, mine[i], theirs)
		}
	}
}
