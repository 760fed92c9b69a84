// Package mapdump prints a map's contents, from waggle or from Linux, the
// same way: sorted "key=value" lines in hex, with the values of per-CPU
// maps summed over the CPUs word by word, so that tests comparing the two
// sides compare strings (and print readable differences).
package mapdump

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

// PerCPU reports whether maps of type t hold a value per CPU.
func PerCPU(t ebpf.MapType) bool {
	return t == ebpf.PerCPUArray || t == ebpf.PerCPUHash || t == ebpf.LRUCPUHash
}

// SumCPUs adds per-CPU values, each padded to 8 bytes as both sides lay
// them out, as 64-bit words, and returns the first valueSize bytes of the
// sum: counters of any width add up (a 4-byte counter's carry goes to the
// padding).
func SumCPUs(b []byte, valueSize int) []byte {
	stride := (valueSize + 7) &^ 7
	sum := make([]byte, stride)
	for off := 0; off+stride <= len(b); off += stride {
		for w := 0; w+8 <= stride; w += 8 {
			v := binary.NativeEndian.Uint64(sum[w:]) + binary.NativeEndian.Uint64(b[off+w:])
			binary.NativeEndian.PutUint64(sum[w:], v)
		}
	}
	return sum[:valueSize]
}

// Waggle returns the contents of a waggle map.
func Waggle(m *waggle.Map) []string {
	var out []string
	for k, v := range m.All() {
		if PerCPU(m.Type()) {
			v = SumCPUs(v, int(m.ValueSize()))
		}
		out = append(out, fmt.Sprintf("%x=%x", k, v))
	}
	sort.Strings(out)
	return out
}

// Kernel returns the contents of a map in Linux, read with cilium/ebpf.
func Kernel(m *ebpf.Map) ([]string, error) {
	var out []string
	it := m.Iterate()
	var k []byte
	if PerCPU(m.Type()) {
		var vs [][]byte
		for it.Next(&k, &vs) {
			var all []byte
			for _, v := range vs {
				p := make([]byte, (len(v)+7)&^7)
				copy(p, v)
				all = append(all, p...)
			}
			out = append(out, fmt.Sprintf("%x=%x", k, SumCPUs(all, int(m.ValueSize()))))
		}
	} else {
		var v []byte
		for it.Next(&k, &v) {
			out = append(out, fmt.Sprintf("%x=%x", k, v))
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("map %v: %w", m, err)
	}
	sort.Strings(out)
	return out, nil
}
