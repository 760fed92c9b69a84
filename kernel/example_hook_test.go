package kernel_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/kernel"
)

// ParseSection reads the hook from a program's section name; the caller
// adds what a section name cannot hold, then Check says whether the hook
// is complete.
func ExampleParseSection() {
	for _, sec := range []string{"xdp", "tcx/egress", "tracepoint/syscalls/sys_enter_openat", "uprobe//bin/bash:readline+4"} {
		h, err := kernel.ParseSection(sec)
		if err != nil {
			fmt.Println(err)
			continue
		}
		switch h.Kind {
		case kernel.HookXDP, kernel.HookTCX:
			h.Interface = "eth0"
		}
		fmt.Printf("%-40s %v (complete: %v)\n", sec, h, h.Check() == nil)
	}
	// Output:
	// xdp                                      xdp on eth0 (auto) (complete: true)
	// tcx/egress                               tcx egress on eth0 (complete: true)
	// tracepoint/syscalls/sys_enter_openat     tracepoint syscalls/sys_enter_openat (complete: true)
	// uprobe//bin/bash:readline+4              uprobe /bin/bash:readline+0x4 (complete: true)
}

// AttachFile loads an object and attaches one of its programs; Pin keeps
// it attached after the process ends, until Detach. (Root only; not run
// as a test.)
func ExampleAttachFile() {
	a, err := kernel.AttachFile("examples/counter/counter.o", kernel.AttachOptions{
		Hook: kernel.Hook{Kind: kernel.HookXDP, Interface: "eth0", XDPMode: kernel.XDPGeneric},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer a.Close()
	pinned, err := a.Pin("/sys/fs/bpf/counter")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(pinned) // [/sys/fs/bpf/counter/link /sys/fs/bpf/counter/prog /sys/fs/bpf/counter/maps/sources]
	// Later, perhaps from another process:
	if _, err := kernel.Detach("/sys/fs/bpf/counter"); err != nil {
		fmt.Println(err)
	}
}
