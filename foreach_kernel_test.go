package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/foreach/foreach.c -o testdata/foreach/foreach.o

// TestForEachMapElem_kernel walks a hash, an LRU hash and a per-CPU hash
// with bpf_for_each_map_elem in waggle and in Linux while the callback
// deletes the keys it visits, stops at a key, writes values and adds keys:
// what each walk visits, in which order, and what it returns, and the maps
// afterwards, must be the same.
func TestForEachMapElem_kernel(t *testing.T) {
	for _, name := range []string{"foreach_hash", "foreach_lru", "foreach_pcpu"} {
		t.Run(name, func(t *testing.T) {
			coll, err := waggle.LoadCollection("testdata/foreach/foreach.o", &waggle.CollectionOptions{CPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			ret, err := coll.Programs[name].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			if err != nil || ret != 2 {
				t.Fatalf("waggle: %d, %v", ret, err)
			}
			kc := kernelCollection(t, "testdata/foreach/foreach.o", name)
			kret, err := kc.Programs[name].Run(&ebpf.RunOptions{Data: make([]byte, 64)})
			if err != nil || kret != ret {
				t.Fatalf("kernel: %d, %v; waggle %d", kret, err, ret)
			}
			compareMaps(t, coll, kc)
			var visits uint64
			if err := coll.Maps["out"].Lookup(uint32(5), &visits); err != nil || visits == 0 {
				t.Fatalf("the walk that deletes visited %d keys (%v)", visits, err)
			}
		})
	}
}
