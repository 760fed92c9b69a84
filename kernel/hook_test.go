package kernel

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

func TestParseSection(t *testing.T) {
	for _, tc := range []struct {
		section string
		want    Hook
		err     string // a substring of the error, "" for none
	}{
		{"xdp", Hook{Kind: HookXDP}, ""},
		{"xdp.frags", Hook{Kind: HookXDP}, ""},
		{"xdp/devmap", Hook{}, "run from a map"},
		{"tcx/ingress", Hook{Kind: HookTCX, Direction: Ingress}, ""},
		{"tcx/egress", Hook{Kind: HookTCX, Direction: Egress}, ""},
		{"tc/egress", Hook{Kind: HookTCX, Direction: Egress}, ""},
		{"tc", Hook{Kind: HookTCX}, ""},
		{"classifier", Hook{Kind: HookTCX}, ""},
		{"tcx/sideways", Hook{}, "want ingress or egress"},
		{"tracepoint/syscalls/sys_enter_openat", Hook{Kind: HookTracepoint, Group: "syscalls", Name: "sys_enter_openat"}, ""},
		{"tp/sched/sched_switch", Hook{Kind: HookTracepoint, Group: "sched", Name: "sched_switch"}, ""},
		{"tp/sched", Hook{}, "GROUP/NAME"},
		{"tp/a/b/c", Hook{}, "GROUP/NAME"},
		{"raw_tp/sys_enter", Hook{Kind: HookRawTracepoint, Name: "sys_enter"}, ""},
		{"raw_tracepoint/sched_switch", Hook{Kind: HookRawTracepoint, Name: "sched_switch"}, ""},
		{"raw_tp", Hook{}, "NAME"},
		{"uprobe", Hook{Kind: HookUprobe}, ""},
		{"uprobe//bin/bash:readline", Hook{Kind: HookUprobe, Binary: "/bin/bash", Symbol: "readline"}, ""},
		{"uprobe/libc.so.6:malloc+0x10", Hook{Kind: HookUprobe, Binary: "libc.so.6", Symbol: "malloc", Offset: 16}, ""},
		{"uretprobe//bin/bash:0x4a0", Hook{Kind: HookUretprobe, Binary: "/bin/bash", Offset: 0x4a0}, ""},
		{"uprobe.s//bin/bash:readline", Hook{Kind: HookUprobe, Binary: "/bin/bash", Symbol: "readline"}, ""},
		{"uprobe//bin/bash", Hook{}, "BINARY:SYMBOL"},
		{"uprobe//bin/bash:f+x", Hook{}, "not a number"},
		{"perf_event", Hook{Kind: HookPerfEvent}, ""},
		{"socket", Hook{Kind: HookSocket}, ""},
		{"socket/anything", Hook{Kind: HookSocket}, ""},
		{"kprobe/do_sys_openat2", Hook{Kind: HookKprobe, Symbol: "do_sys_openat2"}, ""},
		{"kprobe/tcp_connect+8", Hook{Kind: HookKprobe, Symbol: "tcp_connect", Offset: 8}, ""},
		{"kretprobe/tcp_connect", Hook{Kind: HookKretprobe, Symbol: "tcp_connect"}, ""},
		{"kretprobe/tcp_connect+8", Hook{}, "no offset"},
		{"fentry/do_sys_openat2", Hook{Kind: HookFentry, Name: "do_sys_openat2"}, ""},
		{"fexit/do_sys_openat2", Hook{Kind: HookFexit, Name: "do_sys_openat2"}, ""},
		{"lsm/file_open", Hook{Kind: HookLSM, Name: "file_open"}, ""},
		{"lsm.s/file_open", Hook{Kind: HookLSM, Name: "file_open"}, ""},
		{"fentry", Hook{}, "fentry/NAME"},
		{"cgroup_skb/ingress", Hook{Kind: HookCgroup, CgroupAttach: "ingress"}, ""},
		{"cgroup_skb/egress", Hook{Kind: HookCgroup, CgroupAttach: "egress"}, ""},
		{"cgroup_skb/sideways", Hook{}, "cgroup_skb/ingress"},
		{"cgroup/skb", Hook{Kind: HookCgroup}, ""},
		{"cgroup/sock", Hook{Kind: HookCgroup, CgroupAttach: "sock_create"}, ""},
		{"cgroup/sock_create", Hook{Kind: HookCgroup, CgroupAttach: "sock_create"}, ""},
		{"cgroup/connect4", Hook{Kind: HookCgroup, CgroupAttach: "connect4"}, ""},
		{"sockops", Hook{Kind: HookCgroup, CgroupAttach: "sock_ops"}, ""},
		{"cgroup/nonsense", Hook{}, "want one of"},
		{"prog", Hook{}, "libbpf's names"},
		{"", Hook{}, "libbpf's names"},
	} {
		t.Run(tc.section, func(t *testing.T) {
			h, err := ParseSection(tc.section)
			if tc.err != "" {
				if !errors.Is(err, ErrSection) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseSection = %+v, %v; want an ErrSection saying %q", h, err, tc.err)
				}
				return
			}
			if err != nil || h != tc.want {
				t.Fatalf("ParseSection = %+v, %v; want %+v", h, err, tc.want)
			}
		})
	}
}

// TestHook_Check: a hook says which of its fields is missing; complete
// ones pass.
func TestHook_Check(t *testing.T) {
	for _, tc := range []struct {
		h   Hook
		err string
	}{
		{Hook{}, "no hook"},
		{Hook{Kind: HookXDP}, "interface"},
		{Hook{Kind: HookXDP, Interface: "eth0"}, ""},
		{Hook{Kind: HookTCX, Interface: "eth0"}, "direction"},
		{Hook{Kind: HookTCX, Interface: "eth0", Direction: Egress}, ""},
		{Hook{Kind: HookUprobe, Binary: "/bin/true"}, "symbol or the offset"},
		{Hook{Kind: HookUprobe, Binary: "/bin/true", Symbol: "main"}, ""},
		{Hook{Kind: HookPerfEvent}, "frequency"},
		{Hook{Kind: HookPerfEvent, Frequency: 99}, ""},
		{Hook{Kind: HookCgroup, CgroupAttach: "ingress"}, "directory"},
		{Hook{Kind: HookCgroup, CgroupPath: "/sys/fs/cgroup"}, "cgroup hook"},
		{Hook{Kind: HookCgroup, CgroupPath: "/sys/fs/cgroup", CgroupAttach: "upside"}, "want one of"},
		{Hook{Kind: HookCgroup, CgroupPath: "/sys/fs/cgroup", CgroupAttach: "ingress"}, ""},
		{Hook{Kind: HookKprobe}, "kernel function"},
		{Hook{Kind: HookLSM}, "name"},
		{Hook{Kind: HookSocket}, "interface"},
		{Hook{Kind: 200}, "unknown hook kind"},
	} {
		err := tc.h.Check()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%+v.Check() = %v, want %q", tc.h, err, tc.err)
		}
	}
}

// TestHook_Merge: flags name the hook, the section fills in the rest, but
// only for a hook of the same kind.
func TestHook_Merge(t *testing.T) {
	sec, _ := ParseSection("tcx/egress")
	got := Hook{Kind: HookTCX, Interface: "veth0"}.Merge(sec)
	if got != (Hook{Kind: HookTCX, Interface: "veth0", Direction: Egress}) {
		t.Errorf("tcx flags + tcx/egress = %+v", got)
	}
	got = Hook{Kind: HookTCX, Interface: "veth0", Direction: Ingress}.Merge(sec)
	if got.Direction != Ingress {
		t.Errorf("a flag's direction lost to the section's: %+v", got)
	}
	got = Hook{Kind: HookXDP, Interface: "veth0"}.Merge(sec)
	if got != (Hook{Kind: HookXDP, Interface: "veth0"}) {
		t.Errorf("xdp flags + tcx/egress = %+v", got)
	}
	if got := (Hook{}).Merge(sec); got != sec {
		t.Errorf("no flags + tcx/egress = %+v", got)
	}
}

func TestHook_ProgramType(t *testing.T) {
	for _, tc := range []struct {
		h  Hook
		pt ebpf.ProgramType
		at ebpf.AttachType
	}{
		{Hook{Kind: HookXDP}, ebpf.XDP, ebpf.AttachNone},
		{Hook{Kind: HookTCX, Direction: Egress}, ebpf.SchedCLS, ebpf.AttachTCXEgress},
		{Hook{Kind: HookUretprobe}, ebpf.Kprobe, ebpf.AttachNone},
		{Hook{Kind: HookFexit}, ebpf.Tracing, ebpf.AttachTraceFExit},
		{Hook{Kind: HookLSM}, ebpf.LSM, ebpf.AttachLSMMac},
		{Hook{Kind: HookCgroup, CgroupAttach: "sock_create"}, ebpf.CGroupSock, ebpf.AttachCGroupInetSockCreate},
		{Hook{Kind: HookCgroup, CgroupAttach: "connect6"}, ebpf.CGroupSockAddr, ebpf.AttachCGroupInet6Connect},
		{Hook{Kind: HookCgroup}, ebpf.UnspecifiedProgram, ebpf.AttachNone},
	} {
		if pt, at := tc.h.ProgramType(); pt != tc.pt || at != tc.at {
			t.Errorf("%+v: %v, %v; want %v, %v", tc.h, pt, at, tc.pt, tc.at)
		}
	}
}

func TestParseXDPMode(t *testing.T) {
	for s, want := range map[string]XDPMode{"": XDPAuto, "generic": XDPGeneric, "skb": XDPGeneric, "driver": XDPDriver, "native": XDPDriver, "offload": XDPOffload, "hw": XDPOffload} {
		if m, err := ParseXDPMode(s); err != nil || m != want {
			t.Errorf("ParseXDPMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseXDPMode("turbo"); err == nil {
		t.Error("ParseXDPMode(turbo) succeeded")
	}
}

// FuzzParseSection: any section name gives a hook or an error, never a
// panic, and a hook it gives prints and checks without one.
func FuzzParseSection(f *testing.F) {
	for _, s := range []string{"xdp", "tcx/ingress", "tp/a/b", "uprobe//bin/x:f+0x10", "kprobe/f+1", "cgroup/sock", "lsm/x", "uprobe/:", "uprobe/a:+", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseSection(s)
		if err != nil {
			if h != (Hook{}) {
				t.Fatalf("%q: an error and a hook %+v", s, h)
			}
			return
		}
		_ = h.String()
		_ = h.Check()
		h.ProgramType()
	})
}
