package isa_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/isa"
)

func ExampleDecode() {
	code := []byte{
		0xb7, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x00, 0x00, // r0 = 42
		0x95, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // exit
	}
	prog, err := isa.Decode(code)
	if err != nil {
		panic(err)
	}
	for i, ins := range prog {
		fmt.Println(i, ins)
	}
	fmt.Println(isa.ValidateProgram(prog))
	// Output:
	// 0 r0 = 0x2a
	// 1 exit
	// <nil>
}

func ExampleValidateProgram() {
	prog := []isa.Instruction{
		{Op: 0x07, Dst: isa.R0, Off: 1, Imm: 1}, // add64 with a reserved offset
		{Op: isa.OpExit},
	}
	fmt.Println(isa.ValidateProgram(prog))
	// Output: instruction 0 (add64 imm): reserved field is not zero: off is 1, must be 0
}

func ExampleLoadImm64() {
	lddw := isa.LoadImm64(isa.R1, 0, 0x1122334455667788)
	fmt.Println(isa.Format(lddw[0], lddw[1]))
	// Output: r1 = 0x1122334455667788 ll
}
