package kernel

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/cilium/ebpf"
	ciliumasm "github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// A hook the kernel lacks fails before anything is loaded or attached,
// with an error that names the probe that failed: the program type
// (cilium/ebpf's features package loads the smallest program of the type),
// the PMU a probe needs (/sys/bus/event_source/devices/...), tracefs, the
// cgroup v2 hierarchy, TCX. Nothing falls back to a weaker hook, except
// TCX to a clsact qdisc, which runs the same programs at the same place.

// HookSupported reports whether the running kernel offers the hook h
// describes. The error wraps ErrNotSupported and names the probe that
// failed, e.g. "kprobes: this kernel has no kprobe PMU
// (/sys/bus/event_source/devices/kprobe missing) and no kprobe_events in
// tracefs". A hook whose target is missing (an interface, a binary, a
// cgroup) fails too, with an error that does not wrap ErrNotSupported.
func HookSupported(h Hook) error {
	if err := Supported(); err != nil {
		return err
	}
	if err := h.Check(); err != nil {
		return err
	}
	typ, _ := h.ProgramType()
	if typ != ebpf.UnspecifiedProgram {
		if err := features.HaveProgramType(typ); err != nil {
			return fmt.Errorf("%w: %v: this kernel does not load %v programs (probe: features.HaveProgramType: %v)", ErrNotSupported, h.Kind, typ, err)
		}
	}
	switch h.Kind {
	case HookXDP, HookTCX, HookSocket:
		if _, err := net.InterfaceByName(h.Interface); err != nil {
			return fmt.Errorf("%v: interface %s: %w", h.Kind, h.Interface, err)
		}
		if h.Kind == HookTCX && !h.TCLegacy {
			return probeTCX()
		}
	case HookTracepoint:
		dir, err := tracefsPath()
		if err != nil {
			return fmt.Errorf("%w: tracepoints: %v", ErrNotSupported, err)
		}
		id := filepath.Join(dir, "events", h.Group, h.Name, "id")
		if _, err := os.Stat(id); err != nil {
			return fmt.Errorf("tracepoint %s/%s: this kernel has no such event (%s missing)", h.Group, h.Name, id)
		}
	case HookUprobe, HookUretprobe:
		if err := probePMU("uprobe"); err != nil {
			return err
		}
		if _, err := os.Stat(h.Binary); err != nil {
			return fmt.Errorf("%v: %w", h.Kind, err)
		}
	case HookKprobe, HookKretprobe:
		return probePMU("kprobe")
	case HookFentry, HookFexit:
		// features.HaveProgramType(Tracing) loaded a fentry program above;
		// fexit needs the same trampolines.
	case HookLSM:
		if lsms, err := os.ReadFile("/sys/kernel/security/lsm"); err == nil && !strings.Contains(","+strings.TrimSpace(string(lsms))+",", ",bpf,") {
			return fmt.Errorf("%w: lsm: the bpf LSM is not enabled (/sys/kernel/security/lsm is %q; boot with lsm=...,bpf)", ErrNotSupported, strings.TrimSpace(string(lsms)))
		}
	case HookCgroup:
		var st unix.Statfs_t
		if err := unix.Statfs(h.CgroupPath, &st); err != nil {
			return fmt.Errorf("cgroup %s: %w", h.CgroupPath, err)
		}
		if uint32(st.Type) != unix.CGROUP2_SUPER_MAGIC {
			return fmt.Errorf("cgroup %s: not in a cgroup v2 hierarchy (bpf programs attach to cgroup v2 directories only)", h.CgroupPath)
		}
	}
	return nil
}

// probePMU checks that the kernel has the perf PMU of kprobes or uprobes,
// or failing that, the tracefs file that creates them.
func probePMU(name string) error {
	pmu := "/sys/bus/event_source/devices/" + name
	if _, err := os.Stat(pmu); err == nil {
		return nil
	}
	dir, err := tracefsPath()
	if err == nil {
		if _, err := os.Stat(filepath.Join(dir, name+"_events")); err == nil {
			return nil
		}
		return fmt.Errorf("%w: %ss: this kernel has no %s PMU (%s missing) and no %s_events in tracefs (%s)", ErrNotSupported, name, name, pmu, name, dir)
	}
	return fmt.Errorf("%w: %ss: this kernel has no %s PMU (%s missing), and tracefs, the other way, is not mounted", ErrNotSupported, name, name, pmu)
}

// tracefsPath returns where tracefs is mounted: the first tracefs in
// /proc/self/mountinfo, as cilium/ebpf looks for it.
func tracefsPath() (string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		for i, x := range fs {
			if x == "-" && i+1 < len(fs) && fs[i+1] == "tracefs" && len(fs) > 4 && fs[3] == "/" {
				return fs[4], nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New("tracefs is not mounted (mount -t tracefs tracefs /sys/kernel/tracing)")
}

// probeTCX reports whether the kernel has TCX (Linux 6.6+): cilium/ebpf
// creates a TCX link for interface index 0, which a kernel with TCX
// refuses with ENODEV (no such interface) and one without with EINVAL (no
// such attach type); it then probes TCX itself. Nothing is attached
// either way.
func probeTCX() error {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.SchedCLS,
		License:      "GPL",
		Instructions: ciliumasm.Instructions{ciliumasm.Mov.Imm(ciliumasm.R0, 0), ciliumasm.Return()},
	})
	if err != nil {
		return fmt.Errorf("%w: tcx: probe: load a sched_cls program: %v", ErrNotSupported, err)
	}
	defer prog.Close()
	l, err := link.AttachTCX(link.TCXOptions{Program: prog, Interface: 0, Attach: ebpf.AttachTCXIngress})
	switch {
	case err == nil:
		return l.Close()
	case errors.Is(err, unix.ENODEV):
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("%w: tcx: this kernel has no TCX (probe: BPF_LINK_CREATE with BPF_TCX_INGRESS: %v; Linux 6.6+)", ErrNotSupported, err)
	}
	return fmt.Errorf("tcx: probe: %w", err)
}
