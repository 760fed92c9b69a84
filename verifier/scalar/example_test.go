package scalar_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// An index from an unknown number, bounded by a check and scaled: the
// states the kernel's verifier prints for the same instructions.
func Example() {
	r1 := scalar.Unknown() // r1 = bpf_get_prandom_u32()

	// if r1 > 15 goto out
	fmt.Println(scalar.BranchTaken(isa.JumpGT, r1, scalar.Const(15), true))
	r1, _ = scalar.Refine(isa.JumpGT, r1, scalar.Const(15), true, false)
	fmt.Println(r1)

	// r1 <<= 3; r1 += 16
	r1 = scalar.ALU(isa.ALULsh, true, 0, 3, false, r1, scalar.Const(3))
	r1 = scalar.ALU(isa.ALUAdd, true, 0, 16, false, r1, scalar.Const(16))
	fmt.Println(r1)
	fmt.Println(r1.Contains(16+15*8), r1.Contains(17))

	// if r1 > 200 goto ...: never taken now
	fmt.Println(scalar.BranchTaken(isa.JumpGT, r1, scalar.Const(200), true))
	// Output:
	// maybe
	// scalar(smin=smin32=0,smax=umax=smax32=umax32=15,var_off=(0x0; 0xf))
	// scalar(smin=umin=smin32=umin32=16,smax=umax=smax32=umax32=136,var_off=(0x0; 0xf8))
	// true false
	// never
}
