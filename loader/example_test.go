package loader_test

import (
	"fmt"
	"path/filepath"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
)

// Load a tail-call dispatcher built by clang and print its programs, the
// maps they refer to by index, and the prog array slots the object fills
// declaratively.
func ExampleLoadFile() {
	obj, err := loader.LoadFile("testdata/tailcall.o", loader.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, m := range obj.Maps {
		fmt.Printf("map %d: %s, %s\n", i, m.Name, m.Type)
	}
	for _, b := range obj.Bindings {
		fmt.Printf("%s[%d] = %s\n", obj.Maps[b.Map].Name, b.Key, obj.Programs[b.Program].Name)
	}
	p := obj.Program("entry")
	fmt.Printf("%s (section %s, %s):\n", p.Name, p.Section, p.Type)
	for pc := 0; pc < len(p.Insns); pc += p.Insns[pc].Width() {
		var next isa.Instruction
		if pc+1 < len(p.Insns) {
			next = p.Insns[pc+1]
		}
		fmt.Printf("%3d: %-28s ; %s:%d\n", pc, isa.Format(p.Insns[pc], next), filepath.Base(p.Lines[pc].File), p.Lines[pc].Line)
	}
	// Output:
	// map 0: dispatch, ProgramArray
	// dispatch[0] = small
	// dispatch[5] = large
	// entry (section socket, SocketFilter):
	//   0: r2 = *(u32 *)(r1 + 0x0)      ; tailcall.c:38
	//   1: r3 = 0x5                     ; tailcall.c:38
	//   2: if r2 > 0x64 goto +0x1       ; tailcall.c:38
	//   3: r3 = 0x0                     ; tailcall.c:38
	//   4: r2 = map_idx(0) ll           ; tailcall.c:38
	//   6: call 0xc                     ; tailcall.c:38
	//   7: r0 = 0x0                     ; tailcall.c:39
	//   8: exit                         ; tailcall.c:39
}
