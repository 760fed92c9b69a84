package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/helpers/helpers.c -o testdata/helpers/helpers.o

// TestHelpers_kernel runs each program of testdata/helpers once in waggle
// and in Linux: every program writes the results of the helpers it calls
// (return values, errno, outputs) into maps, and afterwards every map must
// hold the same in both.
func TestHelpers_kernel(t *testing.T) {
	for _, name := range []string{"strings", "values", "flags", "callbacks", "prefixes", "locking", "ringq", "tail", "moremaps", "percpu"} {
		t.Run(name, func(t *testing.T) {
			coll, err := waggle.LoadCollection("testdata/helpers/helpers.o", &waggle.CollectionOptions{CPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			if err != nil || ret != 2 {
				t.Fatalf("waggle: %d, %v", ret, err)
			}
			kc := kernelCollection(t, "testdata/helpers/helpers.o", name)
			kret, err := kc.Programs[name].Run(&ebpf.RunOptions{Data: make([]byte, 64)})
			if err != nil || kret != ret {
				t.Fatalf("kernel: %d, %v; waggle %d", kret, err, ret)
			}
			compareMaps(t, coll, kc)
			var v uint64
			if err := coll.Maps["out"].Lookup(uint32(0), &v); err == nil {
				t.Logf("out[0] = %d", v)
			}
		})
	}
}
