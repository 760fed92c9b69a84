package interp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// FuzzRunChecked executes arbitrary bytecode in checked mode: the run ends
// with a result or an error, never a crash. When the checked run succeeds,
// the fast run of the same program on the same machine and memory must agree
// with it exactly, since it performs the same, now proven, accesses, and
// so must a checked run with Options.StrictStack unless it stops at a read
// of unwritten stack.
func FuzzRunChecked(f *testing.F) {
	f.Add(isa.Encode([]isa.Instruction{mov(isa.R0, 1), exit}), []byte{1, 2, 3, 4})
	f.Add(isa.Encode([]isa.Instruction{ldx(isa.SizeW, isa.R0, isa.R1, 0), exit}), []byte{1, 2, 3, 4})
	f.Add(isa.Encode([]isa.Instruction{mov(isa.R2, 3), atomic(isa.SizeDW, isa.AtomicAdd|isa.AtomicFetch, isa.R10, -8, isa.R2), movr(isa.R0, isa.R2), exit}), []byte{})
	f.Add(isa.Encode([]isa.Instruction{callLocal(1), exit, stx(isa.SizeDW, isa.R10, -16, isa.R1), exit}), []byte{0})
	f.Add(isa.Encode([]isa.Instruction{{Op: 0x20, Imm: 1}, {Op: isa.OpJA, Off: -2}}), []byte{9, 9, 9, 9, 9})
	table := helpers.Table{5: func(env helpers.Env, a *[5]uint64) (uint64, error) {
		b, err := env.Memory(a[0], a[1]&0xff, true)
		if err != nil {
			return 0, err
		}
		for i := range b {
			b[i]++
		}
		return uint64(len(b)), nil
	}}
	f.Fuzz(func(t *testing.T, code, input []byte) {
		prog, err := isa.Decode(code[:len(code)/8*8])
		if err != nil {
			return
		}
		// Make most inputs valid programs: registers in range, and an exit
		// at the end so execution cannot run off it.
		for i := range prog {
			prog[i].Dst %= 11
			prog[i].Src %= 11
		}
		prog = append(prog, exit)
		checked, err := Load(prog, Options{Helpers: table, Budgeted: true})
		if err != nil {
			return
		}
		data := mem.Aligned(len(input))
		copy(data, input)
		m := NewMachine()
		a := &Args{
			Regs:    [5]uint64{mem.Addr(data), uint64(len(data))},
			Regions: []Region{{Data: data, Writable: true}},
			Packet:  input,
			Budget:  1000,
		}
		want, err := m.Run(checked, a)
		if err != nil {
			return
		}
		after := bytes.Clone(data)
		// With StrictStack the run gives the same result or stops at a
		// read of unwritten stack, nothing else.
		copy(data, input)
		strict, err := Load(prog, Options{Helpers: table, Budgeted: true, StrictStack: true})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := m.Run(strict, a); err != nil && !errors.Is(err, ErrUninitStack) || err == nil && got != want {
			t.Fatalf("strict: %#x, %v; checked: %#x", got, err, want)
		}
		copy(data, input)
		clear(m.stack)
		fast := mustLoad(t, prog, Options{Mode: Fast, Helpers: table, Budgeted: true})
		got, err := m.Run(fast, a)
		if err != nil || got != want {
			t.Fatalf("fast: %#x, %v; checked: %#x", got, err, want)
		}
		if !bytes.Equal(data, after) {
			t.Fatalf("memory differs: fast % x, checked % x", data, after)
		}
	})
}
