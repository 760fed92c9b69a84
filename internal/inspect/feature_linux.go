//go:build linux

package inspect

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/kernel"
)

// ProbeFeatures asks the running kernel what bpftool feature probe asks:
// which program types load, which map types are created, which helpers
// each available program type may call, and a few instruction-set
// features. Each answer comes from cilium/ebpf's features package, which
// loads a small program or creates a small map and caches the answer for
// the process. With helpers false the helper matrix (program types ×
// helpers, the slow part) is skipped.
func ProbeFeatures(withHelpers bool) *Features {
	start := time.Now()
	f := &Features{}
	f.Sysctls, f.Config, f.ConfigSource = systemConfig()
	if err := kernel.Supported(); err != nil {
		f.err = fmt.Errorf("feature probe: %w", err)
		return f
	}
	probe := func(name string, err error) Probe {
		f.Probes++
		p := Probe{Name: name, Available: err == nil}
		if err != nil && !errors.Is(err, ebpf.ErrNotSupported) {
			p.Err = err.Error()
		}
		return p
	}
	f.BPFSyscall = true // Supported loaded a program
	var avail []uint32
	for t := uint32(1); t < uint32(len(progTypeNames)); t++ {
		p := probe(progTypeNames[t], features.HaveProgramType(ebpf.ProgramType(t)))
		f.ProgramTypes = append(f.ProgramTypes, p)
		if p.Available {
			avail = append(avail, t)
		}
	}
	for t := uint32(1); t < uint32(len(mapTypeNames)); t++ {
		f.MapTypes = append(f.MapTypes, probe(mapTypeNames[t], features.HaveMapType(ebpf.MapType(t))))
	}
	if withHelpers {
		for _, t := range avail {
			hs := HelperSet{ProgType: progTypeNames[t]}
			for id := int32(1); helpers.Name(id) != ""; id++ {
				err := features.HaveProgramHelper(ebpf.ProgramType(t), asm.BuiltinFunc(id))
				f.Probes++
				if err == nil {
					hs.Helpers = append(hs.Helpers, "bpf_"+helpers.Name(id))
					continue
				}
				if !errors.Is(err, ebpf.ErrNotSupported) && hs.Err == "" {
					hs.Err = err.Error()
				}
			}
			if hs.Err != "" && len(hs.Helpers) == 0 {
				hs.Helpers = nil
			} else {
				hs.Err = ""
			}
			f.Helpers = append(f.Helpers, hs)
		}
	}
	for _, m := range []struct {
		name  string
		probe func() error
	}{
		{"large_insn_limit", features.HaveLargeInstructions},
		{"bounded_loops", features.HaveBoundedLoops},
		{"v2_isa_extension", features.HaveV2ISA},
		{"v3_isa_extension", features.HaveV3ISA},
		{"v4_isa_extension", features.HaveV4ISA},
	} {
		f.Misc = append(f.Misc, probe(m.name, m.probe()))
	}
	f.Elapsed = time.Since(start)
	return f
}

// systemConfig reads the bpf sysctls and the kernel's build options (from
// /proc/config.gz, or the config file of the running release in /boot or
// its modules' directory, as bpftool looks for them).
func systemConfig() ([]Sysctl, []ConfigOption, string) {
	var sysctls []Sysctl
	for _, s := range bpfSysctls {
		sc := Sysctl{Name: s.name}
		b, err := os.ReadFile("/proc/sys/" + s.path)
		if err == nil {
			sc.Value, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
		if err != nil {
			sc.Err = err.Error()
		}
		sysctls = append(sysctls, sc)
	}
	var uts unix.Utsname
	release := ""
	if unix.Uname(&uts) == nil {
		release = unix.ByteSliceToString(uts.Release[:])
	}
	for _, path := range []string{"/boot/config-" + release, "/lib/modules/" + release + "/config", "/proc/config.gz"} {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		var r io.Reader = f
		if strings.HasSuffix(path, ".gz") {
			zr, err := gzip.NewReader(f)
			if err != nil {
				f.Close()
				continue
			}
			r = zr
		}
		opts, err := ParseKernelConfig(r)
		f.Close()
		if err == nil {
			return sysctls, opts, path
		}
	}
	return sysctls, nil, ""
}
