package inspect

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Probe is the answer to one feature question.
type Probe struct {
	// Name is the feature as bpftool names it: "xdp" (a program type),
	// "lpm_trie" (a map type), "large_insn_limit".
	Name      string
	Available bool
	// Err is set when the probe itself failed, so Available is unknown
	// (false).
	Err string
}

// HelperSet is the helpers one program type may call.
type HelperSet struct {
	ProgType string
	Helpers  []string // "bpf_map_lookup_elem", ...
	// Err says why the helpers were not probed (the type is missing, or
	// cilium/ebpf has no probe for helpers of this type).
	Err string
}

// Features is what `bpftool feature probe kernel` reports about eBPF:
// program types, map types, helpers per program type, and miscellaneous
// features.
type Features struct {
	// Sysctls are the bpf sysctls (kernel.unprivileged_bpf_disabled,
	// net.core.bpf_jit_*), Config the kernel build options bpftool
	// reports, both "system_config" in JSON; BPFSyscall says whether the
	// bpf syscall answers.
	Sysctls      []Sysctl
	Config       []ConfigOption
	ConfigSource string // the file Config was read from ("" if none)
	BPFSyscall   bool
	ProgramTypes []Probe
	MapTypes     []Probe
	Helpers      []HelperSet
	Misc         []Probe
	// Probes counts the questions asked, Elapsed how long they took.
	Probes  int
	Elapsed time.Duration

	err error
}

// Err is why nothing could be probed (not Linux, no privilege), or nil.
func (f *Features) Err() error { return f.err }

// Sysctl is a sysctl's value; Err says why it could not be read.
type Sysctl struct {
	Name  string
	Value int64
	Err   string
}

// ConfigOption is a kernel build option: its value ("y", "m", "250"), or
// unset.
type ConfigOption struct {
	Name  string
	Value string
	Set   bool
}

// bpfSysctls are the sysctls bpftool reports, with their files under
// /proc/sys.
var bpfSysctls = [...]struct{ name, path string }{
	{"unprivileged_bpf_disabled", "kernel/unprivileged_bpf_disabled"},
	{"bpf_jit_enable", "net/core/bpf_jit_enable"},
	{"bpf_jit_harden", "net/core/bpf_jit_harden"},
	{"bpf_jit_kallsyms", "net/core/bpf_jit_kallsyms"},
	{"bpf_jit_limit", "net/core/bpf_jit_limit"},
}

// configOptions are the kernel build options bpftool reports
// (probe_kernel_image_config), in its order.
var configOptions = [...]string{
	"CONFIG_BPF", "CONFIG_BPF_SYSCALL", "CONFIG_HAVE_EBPF_JIT", "CONFIG_BPF_JIT",
	"CONFIG_BPF_JIT_ALWAYS_ON", "CONFIG_DEBUG_INFO_BTF", "CONFIG_DEBUG_INFO_BTF_MODULES",
	"CONFIG_CGROUPS", "CONFIG_CGROUP_BPF", "CONFIG_CGROUP_NET_CLASSID", "CONFIG_SOCK_CGROUP_DATA",
	"CONFIG_BPF_EVENTS", "CONFIG_KPROBE_EVENTS", "CONFIG_UPROBE_EVENTS", "CONFIG_TRACING",
	"CONFIG_FTRACE_SYSCALLS", "CONFIG_FUNCTION_ERROR_INJECTION", "CONFIG_BPF_KPROBE_OVERRIDE",
	"CONFIG_NET", "CONFIG_XDP_SOCKETS", "CONFIG_LWTUNNEL_BPF", "CONFIG_NET_ACT_BPF",
	"CONFIG_NET_CLS_BPF", "CONFIG_NET_CLS_ACT", "CONFIG_NET_SCH_INGRESS", "CONFIG_XFRM",
	"CONFIG_IP_ROUTE_CLASSID", "CONFIG_IPV6_SEG6_BPF", "CONFIG_BPF_LIRC_MODE2",
	"CONFIG_BPF_STREAM_PARSER", "CONFIG_NETFILTER_XT_MATCH_BPF", "CONFIG_BPFILTER",
	"CONFIG_BPFILTER_UMH", "CONFIG_TEST_BPF", "CONFIG_HZ",
}

// maxConfigLine bounds a line of a kernel config file.
const maxConfigLine = 1 << 16

// ParseKernelConfig reads the options bpftool reports from a kernel
// config file (CONFIG_X=y lines; "# CONFIG_X is not set" and absent
// options are unset).
func ParseKernelConfig(r io.Reader) ([]ConfigOption, error) {
	set := map[string]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxConfigLine)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), "=")
		if !ok || !strings.HasPrefix(name, "CONFIG_") {
			continue
		}
		set[name] = strings.Trim(value, `"`)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kernel config: %w", err)
	}
	out := make([]ConfigOption, 0, len(configOptions))
	for _, name := range configOptions {
		v, ok := set[name]
		out = append(out, ConfigOption{Name: name, Value: v, Set: ok})
	}
	return out, nil
}

// MarshalJSON writes the layout of `bpftool -j feature probe kernel`'s
// sections (keys in probe order):
//
//	{"system_config": {"unprivileged_bpf_disabled": 2, ..., "CONFIG_BPF": "y", ...},
//	 "syscall_config": {"have_bpf_syscall": true},
//	 "program_types": {"have_xdp_prog_type": true, ...},
//	 "map_types": {"have_hash_map_type": true, ...},
//	 "helpers": {"xdp_available_helpers": ["bpf_map_lookup_elem", ...], ...},
//	 "misc": {"have_large_insn_limit": true, ...}}
func (f *Features) MarshalJSON() ([]byte, error) {
	b := []byte(`{"system_config":{`)
	n := 0
	for _, sc := range f.Sysctls {
		if sc.Err != "" {
			continue
		}
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, sc.Name)
		b = append(b, ':')
		b = strconv.AppendInt(b, sc.Value, 10)
	}
	for _, c := range f.Config {
		if n++; n > 1 {
			b = append(b, ',')
		}
		b = appendJSONString(b, c.Name)
		b = append(b, ':')
		if c.Set {
			b = appendJSONString(b, c.Value)
		} else {
			b = append(b, "null"...)
		}
	}
	b = append(b, `},"syscall_config":{"have_bpf_syscall":`...)
	b = strconv.AppendBool(b, f.BPFSyscall)
	b = append(b, `},"program_types":{`...)
	b = appendProbes(b, f.ProgramTypes, "have_", "_prog_type")
	b = append(b, `},"map_types":{`...)
	b = appendProbes(b, f.MapTypes, "have_", "_map_type")
	b = append(b, `},"helpers":{`...)
	for i, h := range f.Helpers {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, h.ProgType+"_available_helpers")
		b = append(b, ':')
		if h.Helpers == nil {
			h.Helpers = []string{}
		}
		list, err := json.Marshal(h.Helpers)
		if err != nil {
			return nil, err
		}
		b = append(b, list...)
	}
	b = append(b, `},"misc":{`...)
	b = appendProbes(b, f.Misc, "have_", "")
	return append(b, "}}"...), nil
}

func appendProbes(b []byte, ps []Probe, prefix, suffix string) []byte {
	for i, p := range ps {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, prefix+p.Name+suffix)
		if p.Available {
			b = append(b, ":true"...)
		} else {
			b = append(b, ":false"...)
		}
	}
	return b
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}
