package interp_test

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/interp"
)

// A program that sums the bytes of its input memory, run in checked mode
// with the conformance suite's convention (r1 = memory, r2 = length).
func ExampleLoad() {
	prog, err := asm.Parse(`
		r0 = 0
	loop:
		if r2 == 0 goto out
		r3 = *(u8 *)(r1 + 0)
		r0 += r3
		r1 += 1
		r2 += -1
		goto loop
	out:
		exit`)
	if err != nil {
		panic(err)
	}
	p, err := interp.Load(prog, interp.Options{})
	if err != nil {
		panic(err)
	}
	r0, err := p.RunMemory([]byte{1, 2, 3, 4})
	fmt.Println(r0, err)
	// Output: 10 <nil>
}

// Checked mode stops a program that reads past its memory, naming the
// instruction.
func ExampleMachine_Run_fault() {
	prog, _ := asm.Parse(`
		r0 = *(u32 *)(r1 + 2)
		exit`)
	p, _ := interp.Load(prog, interp.Options{Mode: interp.Checked})
	data := []byte{1, 2, 3, 4}
	_, err := interp.NewMachine().Run(p, &interp.Args{
		Regs:    [5]uint64{interp.Addr(data), uint64(len(data))},
		Regions: []interp.Region{{Data: data}},
	})
	fmt.Println(errors.Is(err, interp.ErrMemory))
	// Output: true
}
