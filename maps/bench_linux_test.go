//go:build linux

package maps_test

import (
	"os"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/maps"
)

// benchKernel measures the same lookups and updates through the bpf
// syscall (cilium/ebpf), when the kernel lets us create maps.
func benchKernel(b *testing.B, spec maps.Spec, keys, lookups [][]byte, order []int) {
	if os.Geteuid() != 0 {
		return
	}
	km, err := ebpf.NewMap(kernelSpec(spec))
	if err != nil {
		return
	}
	defer km.Close()
	n := len(keys)
	var value any = make([]byte, spec.ValueSize)
	var out any = make([]byte, spec.ValueSize)
	if isPerCPU(spec.Type) {
		pv := make([][]byte, possibleCPUsOr(1))
		for i := range pv {
			pv[i] = make([]byte, spec.ValueSize)
		}
		value, out = pv, make([][]byte, len(pv))
		for i := range pv {
			out.([][]byte)[i] = make([]byte, spec.ValueSize)
		}
	}
	for _, k := range keys {
		if err := km.Update(k, value, ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("lookup/kernel", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := km.Lookup(lookups[order[i%n]], out); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("update/kernel", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if err := km.Update(keys[order[i%n]], value, ebpf.UpdateAny); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// kernelMemlock creates the 1M-entry hash in the kernel and returns its
// memlock (the kernel's map_mem_usage).
func kernelMemlock(b *testing.B) (uint64, bool) {
	if os.Geteuid() != 0 {
		return 0, false
	}
	km, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1_000_000})
	if err != nil {
		return 0, false
	}
	defer km.Close()
	info, err := km.Info()
	if err != nil {
		return 0, false
	}
	return info.Memlock()
}
