package interp

import (
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
)

// TestRun_MayGoto runs may_goto with Linux's countdown: each frame's
// may_goto instructions together fall through isa.MaxLoops times, then
// jump; a bpf-to-bpf call and each callback start with a budget of their
// own, and the caller's is what it was when it returns.
func TestRun_MayGoto(t *testing.T) {
	if raceEnabled && testing.Short() {
		// Each case runs 8M iterations on one goroutine: 44 s under the
		// race detector, which has nothing to find in it. CI runs it
		// without the detector.
		t.Skip("8M-iteration loops on one goroutine; run without -race")
	}
	const n = isa.MaxLoops
	// loop calls the callback a[0] times and returns the sum of what it
	// returned.
	loop := func(env helpers.Env, a *[5]uint64) (uint64, error) {
		var sum uint64
		for i := uint64(0); i < a[0]; i++ {
			ret, err := env.Call(a[1], [5]uint64{i, a[2]})
			if err != nil {
				return 0, err
			}
			sum += ret
		}
		return sum, nil
	}
	for _, tc := range []struct {
		name string
		src  string
		want uint64
	}{
		{"can_loop", `
			r0 = 0
		loop:
			may_goto done
			r0 += 1
			goto loop
		done:
			exit`, n},
		{"two may_goto share the frame's budget", `
			r0 = 0
			r1 = 0
		loop:
			may_goto done
			r0 += 1
			may_goto done
			r1 += 1
			goto loop
		done:
			r0 <<= 32
			r0 |= r1
			exit`, n/2<<32 | n/2},
		{"backward may_goto", `
			r0 = 0
			goto check
		out:
			exit
		check:
			r0 += 1
			may_goto out
			goto check`, n + 1},
		{"loop ends by its own condition", `
			r0 = 0
		loop:
			may_goto done
			r0 += 1
			if r0 < 1000 goto loop
		done:
			exit`, 1000},
		{"a call has its own budget and the caller keeps its own", `
			r6 = 0
			may_goto +0x1
			r6 += 1
			call sub
			r6 += r0
		loop:
			may_goto done
			r6 += 1
			goto loop
		done:
			r0 = r6
			exit
		sub:
			r0 = 0
		subloop:
			may_goto subdone
			r0 += 1
			goto subloop
		subdone:
			exit`, 1 + n + (n - 1)},
		{"each callback starts with a full budget", `
			may_goto +0x1
			r0 = 0
			r1 = 2
			r2 = func(cb) ll
			r3 = 0
			r4 = 0
			call 181
			exit
		cb:
			r0 = 0
		cbloop:
			may_goto cbdone
			r0 += 1
			goto cbloop
		cbdone:
			exit`, 2 * n},
	} {
		prog, err := asm.Parse(tc.src)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for _, mode := range modes {
			for _, budgeted := range []bool{false, true} {
				p := mustLoad(t, prog, Options{Mode: mode, Budgeted: budgeted, Helpers: helpers.Table{181: loop}})
				m := NewMachine()
				for run := range 2 { // the budget is per run, not per Machine
					got, err := m.Run(p, &Args{})
					if err != nil || got != tc.want {
						t.Errorf("%s, %s, budgeted %v, run %d: got %#x, %v; want %#x", tc.name, mode, budgeted, run, got, err, tc.want)
					}
				}
			}
		}
	}
}

// TestRun_MayGotoBudget: a may_goto loop still spends the run's
// instruction budget.
func TestRun_MayGotoBudget(t *testing.T) {
	prog, err := asm.Parse(`
		r0 = 0
	loop:
		may_goto done
		r0 += 1
		goto loop
	done:
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		p := mustLoad(t, prog, Options{Mode: mode, Budgeted: true})
		if _, err := NewMachine().Run(p, &Args{Budget: 1000}); !errors.Is(err, ErrBudget) {
			t.Errorf("%s: got %v, want ErrBudget", mode, err)
		}
	}
}

// TestRun_MayGotoTailCall: the program a tail call enters starts with a
// budget of its own (its prologue sets it up in Linux), whatever the
// caller spent.
func TestRun_MayGotoTailCall(t *testing.T) {
	caller, err := asm.Parse(`
	loop:
		may_goto out
		r6 += 1
		if r6 < 100 goto loop
	out:
		r2 = 0
		r3 = 0
		call 12
		r0 = 99
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	target, err := asm.Parse(`
		r0 = 0
	loop:
		may_goto out
		r0 += 1
		goto loop
	out:
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range modes {
		var next *Program
		table := helpers.Table{12: func(env helpers.Env, a *[5]uint64) (uint64, error) {
			env.State().TailCall = next
			return 0, nil
		}}
		p := mustLoad(t, caller, Options{Mode: mode, Helpers: table})
		next = mustLoad(t, target, Options{Mode: mode, Helpers: table})
		got, err := NewMachine().Run(p, &Args{State: &helpers.State{}})
		if err != nil || got != isa.MaxLoops {
			t.Errorf("%s: got %d, %v; want %d", mode, got, err, isa.MaxLoops)
		}
	}
}
