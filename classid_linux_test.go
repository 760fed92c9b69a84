package waggle_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/progtype"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/classid/classid.c -o testdata/classid/classid.o

const classidObject = "testdata/classid/classid.o"

// testClassid is the net_cls classid the test gives its thread: major 0x10,
// minor 1, as tc writes 10:1.
const testClassid = 0x00100001

// TestCgroupClassid runs bpf_get_cgroup_classid (the packet's and the
// base set's), bpf_skb_cgroup_classid and bpf_get_route_realm in waggle
// with a task of classid 10:1, and as root in Linux from this thread put
// in a net_cls cgroup of that classid (a cgroup v1 hierarchy the test
// mounts): the answers must be the same.
func TestCgroupClassid(t *testing.T) {
	run := func(coll *waggle.Collection, task *progtype.Task) [4]uint64 {
		t.Helper()
		var frame [64]byte
		frame[12], frame[13] = 0x08, 0x00
		if _, err := coll.Programs["tc_classid"].Run(&waggle.RunOptions{Data: frame[:], Task: task}); err != nil {
			t.Fatal(err)
		}
		if _, err := coll.Programs["task_classid"].Run(&waggle.RunOptions{Task: task}); err != nil {
			t.Fatal(err)
		}
		var out [4]uint64
		for i := range out {
			if err := coll.Maps["results"].Lookup(uint32(i), &out[i]); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	coll, err := waggle.LoadCollection(classidObject, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if got := run(coll, nil); got != [4]uint64{} {
		t.Errorf("without a task: %#x, want zeros", got)
	}
	mine := run(coll, &progtype.Task{Classid: testClassid})
	if want := [4]uint64{testClassid, testClassid, 0, testClassid}; mine != want {
		t.Errorf("task of classid %#x: %#x, want %#x", testClassid, mine, want)
	}

	kc := kernelCollection(t, classidObject, "tc_classid", "task_classid")
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := joinNetCls(t, testClassid); err != nil {
		t.Skipf("kernel comparison: net_cls cgroup: %v", err)
	}
	var frame [64]byte
	frame[12], frame[13] = 0x08, 0x00
	if _, err := kc.Programs["tc_classid"].Run(&ebpf.RunOptions{Data: frame[:]}); err != nil {
		t.Fatal(err)
	}
	if _, err := kc.Programs["task_classid"].Run(&ebpf.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	var theirs [4]uint64
	for i := range theirs {
		if err := kc.Maps["results"].Lookup(uint32(i), &theirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if theirs != mine {
		t.Errorf("get_cgroup_classid(skb), skb_cgroup_classid, get_route_realm, get_cgroup_classid():\nwaggle %#x\nkernel %#x", mine, theirs)
	}
}

// joinNetCls mounts a net_cls cgroup v1 hierarchy, makes a cgroup of the
// classid and moves the calling thread (locked to it) there, undoing it
// all when the test ends.
func joinNetCls(t *testing.T, classid uint32) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("waggle_netcls", dir, "cgroup", 0, "net_cls"); err != nil {
		return fmt.Errorf("mount: %w", err)
	}
	group := filepath.Join(dir, "waggle-test")
	tid := fmt.Sprint(unix.Gettid())
	t.Cleanup(func() {
		// Back to the hierarchy's root, so that the group can go.
		_ = os.WriteFile(filepath.Join(dir, "tasks"), []byte(tid), 0)
		_ = os.Remove(group)
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	})
	if err := os.Mkdir(group, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(group, "net_cls.classid"), []byte(fmt.Sprint(classid)), 0); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(group, "tasks"), []byte(tid), 0)
}
