//go:build linux

// Package cgroupv2 reads the host's cgroup v2 hierarchy for tests that
// compare the cgroup helpers with Linux: where the hierarchy is mounted,
// which cgroup this process is in, and a cgroup as waggle's
// progtype.Cgroup, whose ids are the directories' inode numbers, as
// Linux's cgroup ids are.
package cgroupv2

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/progtype"
)

// ErrNone is returned when no cgroup v2 hierarchy is mounted.
var ErrNone = errors.New("no cgroup v2 hierarchy is mounted")

// Mount returns where the cgroup v2 hierarchy is mounted.
func Mount() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	mnt := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		for i, x := range fs {
			if x == "-" && i+1 < len(fs) && fs[i+1] == "cgroup2" && len(fs) > 4 && fs[3] == "/" {
				mnt = fs[4]
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	if mnt == "" {
		return "", ErrNone
	}
	return mnt, nil
}

// Own returns this process's cgroup, as a path in the hierarchy ("/" for
// the root).
func Own() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p, nil
		}
	}
	return "", fmt.Errorf("/proc/self/cgroup names no cgroup v2 (%w)", ErrNone)
}

// Cgroup describes the cgroup at path below the mount point mnt, with its
// ancestors up to the root.
func Cgroup(mnt, path string) (*progtype.Cgroup, error) {
	var cg *progtype.Cgroup
	dir := mnt
	parts := []string{""}
	if p := strings.Trim(path, "/"); p != "" {
		parts = append(parts, strings.Split(p, "/")...)
	}
	for _, part := range parts {
		dir = filepath.Join(dir, part)
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", dir, err)
		}
		cg = &progtype.Cgroup{ID: st.Ino, Parent: cg}
	}
	return cg, nil
}
