package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/percpu/percpu.c -o testdata/percpu/percpu.o

// TestMapLookupPercpuElem_kernel fills a per-CPU array and hash with a
// value per CPU, reads CPU 0's and 1's values (and a CPU that does not
// exist) with bpf_map_lookup_percpu_elem in waggle and in Linux, and
// requires the same results.
func TestMapLookupPercpuElem_kernel(t *testing.T) {
	const obj = "testdata/percpu/percpu.o"
	coll, err := waggle.LoadCollection(obj, &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	kc := kernelCollection(t, obj, "percpu")
	cpus, err := ebpf.PossibleCPU()
	if err != nil || cpus < 2 {
		t.Skipf("the kernel comparison needs two CPUs: %d, %v", cpus, err)
	}
	values := func(n int, base uint64) []uint64 {
		v := make([]uint64, n)
		for i := range v {
			v[i] = base + uint64(i)
		}
		return v
	}
	for _, k := range []uint32{0, 1} {
		if err := coll.Maps["pcarray"].Put(k, values(2, 100+10*uint64(k))); err != nil {
			t.Fatal(err)
		}
		if err := kc.Maps["pcarray"].Put(k, values(cpus, 100+10*uint64(k))); err != nil {
			t.Fatal(err)
		}
	}
	if err := coll.Maps["pchash"].Put(uint32(7), values(2, 700)); err != nil {
		t.Fatal(err)
	}
	if err := kc.Maps["pchash"].Put(uint32(7), values(cpus, 700)); err != nil {
		t.Fatal(err)
	}
	if ret, err := coll.Programs["percpu"].Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil || ret != 2 {
		t.Fatalf("waggle: %d, %v", ret, err)
	}
	if ret, err := kc.Programs["percpu"].Run(&ebpf.RunOptions{Data: make([]byte, 64)}); err != nil || ret != 2 {
		t.Fatalf("kernel: %d, %v", ret, err)
	}
	want := []uint64{100, 101, 111, 0xdead, 0xdead, 700, 701, 0xdead, 0xdead}
	for i, w := range want {
		var got, kgot uint64
		if err := coll.Maps["out"].Lookup(uint32(i), &got); err != nil {
			t.Fatal(err)
		}
		if err := kc.Maps["out"].Lookup(uint32(i), &kgot); err != nil {
			t.Fatal(err)
		}
		if got != w || kgot != w {
			t.Errorf("out[%d]: waggle %d, kernel %d, want %d", i, got, kgot, w)
		}
	}
}
