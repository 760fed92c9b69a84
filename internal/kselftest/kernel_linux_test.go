package kselftest

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// TestWithoutCaps drops the capabilities of unprivileged mode around a
// load, which the kernel must then refuse (or judge as unprivileged), and
// restores them: the next load succeeds.
func TestWithoutCaps(t *testing.T) {
	if !isRoot() {
		t.Skip("needs root")
	}
	spec := &ebpf.ProgramSpec{
		Type: ebpf.SocketFilter, License: "GPL",
		// r0 = r10; exit: leaks a pointer, which only privileged
		// programs may.
		Instructions: asm.Instructions{asm.Mov.Reg(asm.R0, asm.R10), asm.Return()},
	}
	load := func() error {
		p, err := ebpf.NewProgram(spec)
		if err == nil {
			p.Close()
		}
		return err
	}
	if err := load(); err != nil {
		t.Fatalf("privileged: %v", err)
	}
	var inner error
	if err := withoutCaps(dropped(Case{Mode: Unprivileged}), func() error {
		inner = load()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if inner == nil {
		t.Error("the pointer leak loaded without CAP_BPF and CAP_PERFMON")
	} else if unprivDisabled() != "" && !errors.Is(inner, unix.EPERM) {
		t.Errorf("with unprivileged BPF disabled: %v, want EPERM", inner)
	}
	if err := load(); err != nil {
		t.Fatalf("capabilities not restored: %v", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	if data[capBPF/32].Effective&(1<<(capBPF%32)) == 0 && data[capSysAdmin/32].Effective&(1<<(capSysAdmin%32)) == 0 {
		t.Error("CAP_BPF and CAP_SYS_ADMIN missing after withoutCaps")
	}
}

func TestRingbufSize(t *testing.T) {
	page := uint32(unix.Getpagesize())
	for _, tc := range []struct{ in, want uint32 }{
		{0, page}, {8, page}, {page, page}, {page + 1, 2 * page}, {3 * page, 4 * page},
	} {
		if got := ringbufSize(tc.in); got != tc.want {
			t.Errorf("ringbufSize(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
