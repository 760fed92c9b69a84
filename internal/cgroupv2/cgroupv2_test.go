//go:build linux

package cgroupv2_test

import (
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/internal/cgroupv2"
)

func TestOwnCgroup(t *testing.T) {
	mnt, err := cgroupv2.Mount()
	if errors.Is(err, cgroupv2.ErrNone) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	own, err := cgroupv2.Own()
	if err != nil {
		t.Fatal(err)
	}
	cg, err := cgroupv2.Cgroup(mnt, own)
	if err != nil {
		t.Fatal(err)
	}
	root := cg
	for root.Parent != nil {
		root = root.Parent
	}
	// The root cgroup's id is 1 in Linux, as is its directory's inode.
	if root.ID != 1 {
		t.Errorf("root cgroup id %d, want 1", root.ID)
	}
	if own != "/" && cg.Parent == nil {
		t.Errorf("cgroup %s has no parent", own)
	}
	if _, err := cgroupv2.Cgroup(mnt, "/waggle-no-such-cgroup"); err == nil {
		t.Error("a cgroup that does not exist was described")
	}
}
