package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/waggle-bpf/waggle"
)

// TestBudget_engines requires every engine to end a run at the same
// place when its budget runs out: the same return value, or the same
// budget fault at the same instruction, for budgets around the least one
// that lets the program finish and below it. The suite's programs have
// loops of every shape the JIT spends fuel for differently: back edges
// that are unconditional jumps, conditional back edges (spent before the
// comparison and given back when they fall through) and conditional
// backward jumps out of an inner loop (spent out of line when taken),
// plus bpf_loop callbacks and may_goto.
func TestBudget_engines(t *testing.T) {
	cases := map[string]Case{}
	for _, c := range Suite() {
		cases[c.Name] = c
	}
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"strcmp", "checksum", "log2", "sieve", "switch", "prime", "bpf_loop", "can_loop", "xdp_firewall"}
	if testing.Short() {
		// CI's race pass runs -short: one program per kind of fuel
		// spending that is cheap under the race detector (the full pass ran
		// them all): about a tenth of the time.
		names = []string{"strcmp", "bpf_loop", "can_loop", "xdp_firewall"}
	}
	for _, name := range names {
		c, ok := cases[name]
		if !ok {
			t.Fatalf("the suite has no %s", name)
		}
		t.Run(name, func(t *testing.T) {
			run := func(e waggle.Engine, budget uint64) string {
				coll, p, err := load(c, &waggle.CollectionOptions{CPUs: 1, Engine: e, Budget: budget})
				if err != nil {
					t.Fatalf("%s: %v", e, err)
				}
				defer coll.Close()
				ret, err := p.Run(&waggle.RunOptions{Data: c.Data})
				var f *waggle.Fault
				switch {
				case err == nil:
					return fmt.Sprintf("returned %d", ret)
				case errors.As(err, &f) && errors.Is(err, waggle.ErrBudget):
					return fmt.Sprintf("budget fault at %d", f.PC)
				}
				t.Fatalf("%s, budget %d: %v", e, budget, err)
				return ""
			}
			// The least budget the checked interpreter finishes with.
			lo, hi := uint64(1), uint64(1)<<26
			if r := run(waggle.EngineInterp, hi); r[0] != 'r' {
				t.Fatalf("a budget of %d: %s", hi, r)
			}
			for lo < hi {
				mid := lo + (hi-lo)/2
				if run(waggle.EngineInterp, mid)[0] == 'r' {
					hi = mid
				} else {
					lo = mid + 1
				}
			}
			budgets := []uint64{lo, lo + 1, 1}
			if lo > 2 {
				budgets = append(budgets, lo-2, lo-1)
			}
			for range 6 {
				budgets = append(budgets, 1+rng.Uint64N(lo))
			}
			for _, b := range budgets {
				want := run(waggle.EngineInterp, b)
				for _, e := range waggle.Engines()[1:] {
					if got := run(e, b); got != want {
						t.Errorf("budget %d (least to finish %d): %s %s, %s %s", b, lo, e, got, waggle.EngineInterp, want)
					}
				}
			}
			t.Logf("least budget %d", lo)
		})
	}
}
