package amd64_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/jit/amd64"
)

// A function returning the signed maximum of its two System V arguments
// (rdi, rsi), with a forward jump to a label:
//
//	mov  %rdi,%rax
//	cmp  %rsi,%rdi
//	jge  done
//	mov  %rsi,%rax
//	done: ret
func ExampleAsm() {
	var a amd64.Asm
	done := a.NewLabel()
	a.Mov(amd64.W64, amd64.RAX, amd64.RDI)
	a.ALU(amd64.CMP, amd64.W64, amd64.RDI, amd64.RSI)
	a.Jcc(amd64.CondGE, done)
	a.Mov(amd64.W64, amd64.RAX, amd64.RSI)
	a.Bind(done)
	a.Ret()

	code, err := a.Finish()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("% x\n", code)
	// Output: 48 89 f8 48 39 f7 0f 8d 03 00 00 00 48 89 f0 c3
}
