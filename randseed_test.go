package waggle_test

import (
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// TestCollectionOptions_RandSeed: with a seed, the same runs in the same
// order draw the same numbers from bpf_get_prandom_u32, consecutive runs
// draw different ones, and another seed draws others.
func TestCollectionOptions_RandSeed(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"rand": {Type: ebpf.XDP, License: "GPL", Instructions: asm.Instructions{
			asm.FnGetPrandomU32.Call(),
			asm.Return(),
		}},
	}}
	draws := func(seed uint64) []uint32 {
		coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{RandSeed: seed})
		if err != nil {
			t.Fatal(err)
		}
		defer coll.Close()
		var out []uint32
		for range 8 {
			ret, err := coll.Programs["rand"].Run(&waggle.RunOptions{Data: make([]byte, 64)})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, ret)
		}
		return out
	}
	a, b, other := draws(7), draws(7), draws(8)
	distinct := map[uint32]bool{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("seed 7 drew %v, then %v", a, b)
		}
		distinct[a[i]] = true
	}
	if len(distinct) < len(a) {
		t.Errorf("consecutive runs drew repeated numbers: %v", a)
	}
	same := 0
	for i := range a {
		if a[i] == other[i] {
			same++
		}
	}
	if same == len(a) {
		t.Errorf("seeds 7 and 8 drew the same numbers: %v", a)
	}
}
