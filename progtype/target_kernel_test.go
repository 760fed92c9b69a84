//go:build linux

package progtype_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestTargetHost: target host offers a type the helpers of target linux
// that cilium/ebpf's probe of the running kernel finds, and checks its
// program and map types by the same probes.
func TestTargetHost(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("target host probes the kernel, which needs root: %v", err)
	}
	for _, ty := range []progtype.Type{progtype.XDP, progtype.SchedCLS, progtype.SocketFilter, progtype.CgroupSKB} {
		kind, err := progtype.Lookup(ty)
		if err != nil {
			t.Fatal(err)
		}
		if err := kind.HostProgramType(); err != nil {
			t.Errorf("%v: %v", kind, err)
		}
		linux, err := kind.TargetHelpers(progtype.TargetLinux, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		calls := kind.AllowedHelpers()
		calls = append(calls, 2000) // no such helper
		if ty != progtype.SchedCLS {
			calls = append(calls, 9) // bpf_skb_store_bytes: tc only
		}
		host, err := kind.TargetHelpers(progtype.TargetHost, false, calls)
		if err != nil {
			t.Fatal(err)
		}
		offered := 0
		for _, id := range calls {
			_, inLinux := linux[id]
			_, got := host[id]
			// A probe the kernel's verifier refused for another reason
			// than the helper (bpf_copy_from_user might sleep) found it.
			probe := features.HaveProgramHelper(ebpf.ProgramType(ty), asm.BuiltinFunc(id))
			var ve *ebpf.VerifierError
			if want := inLinux && (probe == nil || errors.As(probe, &ve)); got != want {
				t.Errorf("%v, helper %d: target host offers it: %v; target linux %v, probe %v", kind, id, got, inLinux, probe)
			}
			why, _ := kind.HelperUnavailable(progtype.TargetHost, false, id)
			if (why == "") != got {
				t.Errorf("%v, helper %d: offered %v, why not %q", kind, id, got, why)
			}
			if got {
				offered++
			}
		}
		t.Logf("%v: the kernel offers %d of the %d helpers upstream Linux does", kind, offered, len(linux))
	}
	if err := progtype.HostMapType(maps.Hash); err != nil {
		t.Error(err)
	}
	if err := progtype.HostMapType(maps.Type(4000)); err == nil || strings.Contains(err.Error(), "run as root") {
		t.Errorf("map type 4000: %v", err)
	} else {
		t.Logf("map type 4000: %v", err)
	}
}
