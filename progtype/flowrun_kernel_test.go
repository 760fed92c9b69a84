//go:build linux

package progtype_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
)

// TestKernel_contextFlow compares with Linux the programs the context
// analysis settles by the "context or number" and "context or another
// pointer" rules: those the kernel accepts give the kernel's results; the
// one it refuses, which overwrites the spilled context and then uses it,
// faults in the checked interpreter instead of reading memory it should
// not.
func TestKernel_contextFlow(t *testing.T) {
	mustKernel(t)
	for _, tc := range []struct {
		name     string
		src      string
		accepted bool
		faultAt  int // packet length at which waggle faults (refused programs)
	}{
		{"variable offset store beside the spill", `
			*(u64 *)(r10 - 8) = r1
			r2 = *(u32 *)(r1 + 0)
			r2 &= 3
			r2 <<= 2
			r3 = r10
			r3 += -32
			r3 += r2
			r4 = 7
			*(u32 *)(r3 + 0) = r4
			r1 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r1 + 0)
			exit`, true, 0},
		{"context on the feasible path only", `
			r6 = r1
			r7 = *(u32 *)(r6 + 0)
			r3 = r6
			if r7 < 100 goto join
			r3 = r10
			r3 += -8
		join:
			if r7 >= 100 goto out
			r0 = *(u32 *)(r3 + 0)
			exit
		out:
			r0 = 1
			exit`, true, 0},
		{"variable offset store over the spill", `
			*(u64 *)(r10 - 8) = r1
			r2 = *(u32 *)(r1 + 0)
			r2 &= 8
			r3 = r10
			r3 += -16
			r3 += r2
			r4 = 0
			*(u64 *)(r3 + 0) = r4
			r1 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r1 + 0)
			exit`, false, 72},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog := mustParse(t, tc.src)
			k := mustKind(t, progtype.SchedCLS)
			if err := kernel.HelpersSupported(kernel.ProgType(progtype.SchedCLS), prog); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
			kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(progtype.SchedCLS)})
			if (err == nil) != tc.accepted {
				t.Fatalf("the kernel says %v; the test expects it to accept the program: %v", err, tc.accepted)
			}
			if kp != nil {
				defer kp.Close()
				for _, n := range []int{64, 99, 100, 200} {
					diffRun(t, k, prog, kp, fmt.Sprintf("%d bytes", n), progtype.Input{Data: packetOf(n)})
				}
				return
			}
			// Refused: the run whose store misses the spill is right, the
			// one whose store overwrites it faults.
			out, err := runProg(t, checked, k, prog, progtype.Input{Data: packetOf(64)}, 1)
			if err != nil || out.Retval != 64 {
				t.Errorf("64 bytes: %v, %v", out, err)
			}
			_, err = runProg(t, checked, k, prog, progtype.Input{Data: packetOf(tc.faultAt)}, 1)
			if !errors.Is(err, engine.ErrMemory) {
				t.Errorf("%d bytes: %v, want a memory fault", tc.faultAt, err)
			}
		})
	}
}
