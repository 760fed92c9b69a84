package bpftest_test

import (
	"fmt"

	"github.com/waggle-bpf/waggle/bpftest"
)

// Run the unit tests of examples/unittest (ttl_test.c, in Cilium's
// pktgen/setup/check convention) in user space, as "waggle test" does.
// With Options{Engine: bpftest.Kernel{}} the same tests run in the kernel.
func Example() {
	obj, err := bpftest.Open("../examples/unittest/ttl_test.o")
	if err != nil {
		fmt.Println(err)
		return
	}
	var sum bpftest.Summary
	for _, r := range bpftest.Run(obj, bpftest.Options{}) {
		sum.Add(r)
		for _, c := range r.Cases() {
			fmt.Println(c.Status, c.Name)
			for _, l := range c.Logs {
				fmt.Println("   ", l)
			}
		}
	}
	fmt.Println(sum)
	// Output:
	// PASS ttl_expired
	// PASS ttl_forward/verdict
	// PASS ttl_forward/ttl
	// PASS ttl_forward/checksum
	// 4 passed, 0 failed
}

// Log messages are printf formats with 64-bit arguments; without a length
// modifier a conversion takes the low 32 bits, as C's would.
func ExampleLog_String() {
	l := bpftest.Log{Format: "lb.c:42: backend %d, port %x, cookie %llx", Args: []uint64{1<<32 | 3, 0x1f90, 1 << 40}}
	fmt.Println(l)
	// Output:
	// lb.c:42: backend 3, port 1f90, cookie 10000000000
}
