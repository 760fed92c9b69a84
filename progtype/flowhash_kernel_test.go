//go:build linux

package progtype_test

import (
	"testing"

	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestKernel_flowHash compares bpf_get_hash_recalc with Linux. Linux keys
// its flow hash at random at boot, so values cannot match; which frames
// hash alike must (Open vSwitch's hash action spreads flows over buckets
// with it; waggle once hashed every VLAN-tagged or non-IP frame to 1).
func TestKernel_flowHash(t *testing.T) {
	mustKernel(t)
	k := mustKind(t, progtype.SchedCLS)
	for _, p := range flowHashPrograms {
		t.Run(p.name, func(t *testing.T) {
			prog := mustParse(t, p.src)
			kp := mustKernelLoad(t, prog, progtype.SchedCLS)
			defer kp.Close()
			var names []string
			var kh, wh []uint32
			for _, f := range flowFrames() {
				kres, kerr := kp.Run(&kernel.RunOptions{Data: f.data, DataOut: make([]byte, len(f.data)+64)})
				wres, werr := runProg(t, checked, k, prog, progtype.Input{Data: f.data}, 0)
				if kerr != nil || werr != nil {
					if kerr == nil || werr == nil || errnoOf(kerr) != waggleErrno(werr) {
						t.Errorf("%s: kernel error %v, waggle error %v", f.name, kerr, werr)
					}
					continue
				}
				// The hash is cached in the packet: a second call on the
				// same run gives the same value in both.
				names = append(names, f.name)
				kh = append(kh, kres.Retval)
				wh = append(wh, wres.Retval)
			}
			if len(names) < len(flowFrames())-4 {
				t.Fatalf("only %d of %d frames ran", len(names), len(flowFrames()))
			}
			for _, d := range samePartition(names, kh, wh) {
				t.Errorf("kernel, waggle: %s", d)
			}
			classes := map[uint32]bool{}
			for _, h := range kh {
				classes[h] = true
			}
			t.Logf("%d frames, %d flows in both", len(names), len(classes))
		})
	}
}
