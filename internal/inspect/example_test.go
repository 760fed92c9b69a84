package inspect_test

import (
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/inspect"
	"github.com/waggle-bpf/waggle/internal/mapjson"
)

// A struct with the typedef it needs, as `waggle btf dump --format c`
// prints it.
func ExampleWriteC() {
	u32 := &btf.Typedef{Name: "__u32", Type: &btf.Int{Name: "unsigned int", Size: 4}}
	key := &btf.Struct{Name: "lpm_key", Size: 8, Members: []btf.Member{
		{Name: "prefixlen", Type: u32},
		{Name: "addr", Type: &btf.Array{Type: &btf.Int{Name: "unsigned char", Size: 1}, Index: u32, Nelems: 4}, Offset: 32},
	}}
	if err := inspect.WriteC(os.Stdout, []btf.Type{key}); err != nil {
		fmt.Println(err)
	}
	// Output:
	// typedef unsigned int __u32;
	//
	// struct lpm_key {
	// 	__u32 prefixlen;
	// 	unsigned char addr[4];
	// };
}

// A KEY argument of `waggle map lookup`, as hex bytes or as JSON typed
// from the map's BTF.
func ExampleParseKey() {
	m := &mapjson.Map{Name: "counts", Type: ebpf.Hash, KeySize: 4, ValueSize: 8,
		Key: &btf.Int{Name: "unsigned int", Size: 4}, Value: &btf.Int{Name: "unsigned long long", Size: 8}}
	for _, arg := range []string{"0a 00 00 00", "10", "0a 00"} {
		key, err := inspect.ParseKey(m, arg)
		if err != nil {
			fmt.Printf("%q: %v\n", arg, err)
			continue
		}
		fmt.Printf("%q: % x\n", arg, key)
	}
	// Output:
	// "0a 00 00 00": 0a 00 00 00
	// "10": 0a 00 00 00
	// "0a 00": map counts: key of 2 bytes, want 4
}
