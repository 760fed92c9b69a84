//go:build linux

package bpftest_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/bpftest"
	"github.com/waggle-bpf/waggle/internal/ciliumdp"
	"github.com/waggle-bpf/waggle/kernel"
)

// unitRefusals are the reasons (as ciliumdp.Reason groups them) the
// kernel refuses programs of Cilium's unit tests for, with why: a refusal
// for another reason fails TestCiliumKernelVerdicts. None on Linux 6.18.
var unitRefusals = map[string]string{}

// TestCiliumKernelVerdicts loads every program of Cilium's BPF unit tests
// (TestCilium's objects, typed as bpftest types them) on its own in the
// kernel with the verifier's statistics, as ciliumdp.TestKernelVerdicts
// does for the datapath: the kernel's verdicts and costs a verifier is
// measured by. Every refusal must have a reason unitRefusals explains.
// It needs root, clang-19 and the workplace tree, and is opt-in like the
// datapath's every-configuration set (the loads take 40 s to a minute and
// a half, mostly making the objects' maps; TestCilium already loads every
// object in the kernel):
//
//	WAGGLE_CILIUM_ALL=1 go test ./bpftest -run TestCiliumKernelVerdicts -v -timeout 30m
func TestCiliumKernelVerdicts(t *testing.T) {
	if os.Getenv(ciliumdp.AllConfigsEnv) != "1" {
		t.Skipf("loads every program of Cilium's unit tests in the kernel on its own (a minute or more): set %s=1", ciliumdp.AllConfigsEnv)
	}
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel verdicts: %v", err)
	}
	objs := ciliumObjects(t)
	var (
		programs, accepted, processed int
		library                       int
		ktime, cpu                    time.Duration
		largest                       string
		largestInsns                  int
		reasons                       = map[string][]string{}
	)
	start := time.Now()
	for _, path := range objs {
		name := filepath.Base(path)
		obj, err := bpftest.Open(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		k, err := ciliumdp.LoadSpec(obj.Spec())
		if err != nil {
			reasons["the kernel refuses the object: "+ciliumdp.Reason(err)] = append(reasons["the kernel refuses the object: "+ciliumdp.Reason(err)], name)
			continue
		}
		for _, pn := range slices.Sorted(maps.Keys(k.Errs)) {
			programs++
			load := k.Loads[pn]
			if load.Library {
				library++
			}
			processed += load.Processed
			ktime += load.VerifyTime
			cpu += load.CPU
			if load.Processed > largestInsns {
				largest, largestInsns = name+"/"+pn, load.Processed
			}
			if err := k.Errs[pn]; err != nil {
				r := ciliumdp.Reason(err)
				reasons[r] = append(reasons[r], name+"/"+pn)
				continue
			}
			accepted++
			if load.Processed <= 0 || load.CPU <= 0 {
				t.Errorf("%s/%s: statistics %+v", name, pn, load)
			}
		}
		k.Close()
	}
	t.Logf("%d objects, %d programs, the kernel accepts %d; %d processed insns, kernel time %v, thread CPU %v (loads of %v); largest %s, %d insns; %d programs loaded through cilium/ebpf (attach targets), their CPU time including its preparation",
		len(objs), programs, accepted, processed, ktime.Round(time.Millisecond), cpu.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), largest, largestInsns, library)
	if programs == 0 {
		t.Error("no programs")
	}
	for _, r := range slices.Sorted(maps.Keys(reasons)) {
		why, ok := unitRefusals[r]
		if !ok {
			t.Errorf("the kernel refuses %d programs for a reason not understood: %q: %v", len(reasons[r]), r, reasons[r])
			continue
		}
		t.Logf("rejected %d: %s: %s", len(reasons[r]), r, why)
	}
}
