package asm_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
)

func ExampleParse() {
	prog, err := asm.Parse(`
	r0 = 0x0
	r2 = *(u32 *)(r1 + 0x4)      ; data_end
	r1 = *(u32 *)(r1 + 0x0)      ; data
	r1 += 0xe
	if r1 > r2 goto out          // too short for Ethernet
	r0 = 0x2 ll
out:
	exit`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(len(prog), "slots; valid:", isa.ValidateProgram(prog) == nil)
	fmt.Printf("% x\n", isa.Encode(prog[4:5]))

	_, err = asm.Parse("r0 = 0\nr11 = 1")
	fmt.Println(err)
	// Output:
	// 8 slots; valid: true
	// 2d 21 02 00 00 00 00 00
	// line 2: unknown register "r11"
}

func ExampleParse_objdump() {
	// Lines copied from llvm-objdump -d: the bytes column decides what its
	// text cannot say (here, that the call is a bpf-to-bpf call).
	prog, err := asm.Parse(`
       0:	bf 16 00 00 00 00 00 00	r6 = r1
       1:	85 10 00 00 ff ff ff ff	call -0x1
       2:	95 00 00 00 00 00 00 00	exit`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(asm.Disassemble(prog, asm.Plain))
	// Output:
	// r6 = r1
	// call pc-1
	// exit
}

func ExampleParseConformance() {
	prog, err := asm.ParseConformance(`
mov %r0, 1
jeq %r1, 0, exit
lock fetch add32 [%r10-8], %r0
exit`)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(asm.Disassemble(prog, asm.Plain))
	// Output:
	// r0 = 0x1
	// if r1 == 0x0 goto +0x1
	// w0 = atomic_fetch_add((u32 *)(r10 - 0x8), w0)
	// exit
}

func ExampleDisassemble() {
	prog := []isa.Instruction{
		{Op: 0xb7, Dst: 0, Imm: 0},          // r0 = 0
		{Op: 0x15, Dst: 1, Off: 2},          // if r1 == 0 goto +2
		{Op: 0x71, Dst: 0, Src: 1, Off: -8}, // r0 = *(u8 *)(r1 - 8)
		{Op: 0x05, Off: 0},                  // goto +0
		{Op: isa.OpExit},
	}
	fmt.Print(asm.Disassemble(prog, asm.Plain))
	fmt.Print(asm.Disassemble(prog, asm.Listing|asm.Labels))
	// Output:
	// r0 = 0x0
	// if r1 == 0x0 goto +0x2
	// r0 = *(u8 *)(r1 - 0x8)
	// goto +0x0
	// exit
	//        0:	b7 00 00 00 00 00 00 00	r0 = 0x0
	//        1:	15 01 02 00 00 00 00 00	if r1 == 0x0 goto L4
	//        2:	71 10 f8 ff 00 00 00 00	r0 = *(u8 *)(r1 - 0x8)
	//        3:	05 00 00 00 00 00 00 00	goto L4
	// L4:
	//        4:	95 00 00 00 00 00 00 00	exit
}

func ExampleAssemble() {
	// Return the first byte of the packet, or 0 when it is empty.
	prog, err := asm.Assemble(
		asm.Mov64.Imm(asm.R0, 0),
		asm.LoadMem(asm.R2, asm.R1, 4, isa.SizeW), // data_end
		asm.LoadMem(asm.R1, asm.R1, 0, isa.SizeW), // data
		asm.Mov64.Reg(asm.R3, asm.R1),
		asm.Add64.Imm(asm.R3, 1),
		asm.JGT.Reg(asm.R3, asm.R2, "out"),
		asm.LoadMem(asm.R0, asm.R1, 0, isa.SizeB),
		asm.Exit().WithLabel("out"),
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(asm.Disassemble(prog, asm.Labels))
	// Output:
	// r0 = 0x0
	// r2 = *(u32 *)(r1 + 0x4)
	// r1 = *(u32 *)(r1 + 0x0)
	// r3 = r1
	// r3 += 0x1
	// if r3 > r2 goto L7
	// r0 = *(u8 *)(r1 + 0x0)
	// L7:
	// exit
}
