//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// linkIDs returns the ids of every bpf link in the kernel.
func linkIDs(t *testing.T) []uint32 {
	t.Helper()
	var ids []uint32
	it := new(link.Iterator)
	defer it.Close()
	for it.Next() {
		ids = append(ids, uint32(it.ID))
	}
	if err := it.Err(); err != nil {
		t.Fatal(err)
	}
	return ids
}

// TestAttachCmd_pinDetach: waggle attach --pin puts the counter example on
// a veth and leaves it there; the frames sent through the peer are counted
// in the map pinned next to the link; waggle detach leaves no pin and no
// link.
func TestAttachCmd_pinDetach(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	v := ktest.NewVeth(t)
	dir := filepath.Join(ktest.BPFFS(t), "counter")
	code, stdout, stderr := runCLI(t, "", "attach", "../../examples/counter/counter.o", "--xdp", v.Host, "--mode", "generic", "--pin", dir, "--json")
	if code != 0 {
		t.Fatalf("attach: status %d: %s", code, stderr)
	}
	var res attachResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if res.Program != "xdp_count" || res.Section != "xdp" || res.Hook != "xdp" || len(res.Links) != 1 || res.ProgramID == 0 {
		t.Fatalf("attach: %+v", res)
	}
	want := []string{filepath.Join(dir, "link"), filepath.Join(dir, "prog"), filepath.Join(dir, "maps", "sources")}
	if !slices.Equal(res.Pinned, want) {
		t.Fatalf("pinned %v, want %v", res.Pinned, want)
	}
	if !slices.Contains(linkIDs(t), res.Links[0]) {
		t.Fatalf("link %d is gone once the command ended", res.Links[0])
	}
	// The program runs on, and its map is read through the pin.
	m, err := ebpf.LoadPinnedMap(want[2], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sender := v.SenderAtPeer(t)
	listener := ktest.Listen(t, v.Host)
	for range 5 {
		if err := unix.Send(sender, ktest.IPv4Frame(17), 0); err != nil {
			t.Fatal(err)
		}
	}
	ktest.Await(t, listener, 5, func(f []byte) bool { return len(f) > 23 && f[23] == 17 })
	var per []struct{ Packets, Bytes uint64 }
	if err := m.Lookup([4]byte{10, 9, 0, 1}, &per); err != nil {
		t.Fatalf("the pinned map: %v", err)
	}
	var n uint64
	for _, c := range per {
		n += c.Packets
	}
	if n != 5 {
		t.Fatalf("the pinned program counted %d frames, want 5", n)
	}

	// A second attach cannot take the directory.
	code, _, stderr = runCLI(t, "", "attach", "../../examples/counter/counter.o", "--xdp", v.Host, "--pin", dir)
	if code == 0 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("attach into a used directory: status %d: %s", code, stderr)
	}

	code, stdout, stderr = runCLI(t, "", "detach", dir)
	if code != 0 {
		t.Fatalf("detach: status %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "detached "+dir) {
		t.Fatalf("detach said %q", stdout)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("%s after detach: %v", dir, err)
	}
	if slices.Contains(linkIDs(t), res.Links[0]) {
		t.Fatalf("link %d still there after detach", res.Links[0])
	}
	code, _, stderr = runCLI(t, "", "detach", dir)
	if code == 0 {
		t.Fatalf("detaching twice succeeded: %s", stderr)
	}
}

// TestAttachCmd_hold: without --pin, attach holds the program until
// --duration and then detaches it: the socket filter example says how many
// packets it let through, and no link it made is left.
func TestAttachCmd_hold(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	v := ktest.NewVeth(t)
	before := linkIDs(t)
	code, stdout, stderr := runCLI(t, "", "attach", "../../kernel/testdata/attach/hooks.o", "--program", "tcx_ingress", "--tcx", v.Host, "--duration", "100ms", "--json")
	if code != 0 {
		t.Fatalf("attach: status %d: %s", code, stderr)
	}
	var res attachResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if res.Held != "--duration" || res.Target != "tcx ingress on "+v.Host || len(res.Links) != 1 || len(res.Pinned) != 0 {
		t.Fatalf("attach: %+v", res)
	}
	if slices.Contains(linkIDs(t), res.Links[0]) || slices.Contains(before, res.Links[0]) {
		t.Fatalf("link %d left after the hold", res.Links[0])
	}

	code, stdout, stderr = runCLI(t, "", "attach", "../../examples/sockfilter/filter.o", "--socket", v.Host, "--duration", "100ms")
	if code != 0 || !strings.Contains(stdout, "packets (") || !strings.Contains(stdout, "detached (--duration)") {
		t.Fatalf("socket filter: status %d: %s%s", code, stdout, stderr)
	}
}

// TestAttachCmd_errors: a hook the kernel lacks is named with its probe;
// flags that contradict each other, or a section of another type, are
// refused before anything is loaded.
func TestAttachCmd_errors(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"two hooks", []string{"../../examples/counter/counter.o", "--xdp", "lo", "--tcx", "lo"}, "give one hook"},
		{"mode without xdp", []string{"../../examples/counter/counter.o", "--tcx", "lo", "--mode", "generic"}, "--mode goes with --xdp"},
		{"bad mode", []string{"../../examples/counter/counter.o", "--xdp", "lo", "--mode", "turbo"}, "want generic, driver or offload"},
		{"no interface", []string{"../../examples/counter/counter.o"}, "give the interface"},
		{"wrong type", []string{"../../examples/counter/counter.o", "--tcx", "lo", "--direction", "ingress"}, "the tcx hook takes SchedCLS programs"},
		{"no such interface", []string{"../../examples/counter/counter.o", "--xdp", "waggle-nonesuch"}, "waggle-nonesuch"},
		{"freq without perf-event", []string{"../../examples/counter/counter.o", "--xdp", "lo", "--freq", "99"}, "--freq goes with --perf-event"},
		{"direction without tcx", []string{"../../examples/counter/counter.o", "--direction", "egress"}, "--direction goes with --tcx"},
		{"bad tracepoint", []string{"../../kernel/testdata/attach/hooks.o", "--program", "tp_openat", "--tracepoint", "openat"}, "want GROUP/NAME"},
		{"pin and duration", []string{"../../examples/counter/counter.o", "--xdp", "lo", "--pin", "/sys/fs/bpf/x", "--duration", "1s"}, "--duration"},
		{"not on bpffs", []string{"../../examples/counter/counter.o", "--xdp", "lo", "--mode", "generic", "--pin", filepath.Join(t.TempDir(), "x")}, "not on a bpffs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", append([]string{"attach"}, tc.args...)...)
			if code == 0 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("status %d, stderr %q; want %q", code, stderr, tc.want)
			}
		})
	}
	// kprobes: absent here, named with the probe; elsewhere attached.
	probe := kernel.HookSupported(kernel.Hook{Kind: kernel.HookKprobe, Symbol: "do_sys_openat2"})
	code, stdout, stderr := runCLI(t, "", "attach", "../../kernel/testdata/attach/kprobe.o", "--duration", "10ms")
	switch {
	case probe == nil && code != 0:
		t.Fatalf("kprobes are there, yet: %s", stderr)
	case probe != nil && (code == 0 || !strings.Contains(stderr, probe.Error())):
		t.Fatalf("kprobes absent (%v), yet: status %d: %s%s", probe, code, stdout, stderr)
	}
}
