package mapdump_test

import (
	"encoding/binary"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/internal/mapdump"
)

func TestSumCPUs(t *testing.T) {
	// Three CPUs' 4-byte counters, each padded to 8 bytes.
	b := make([]byte, 24)
	for cpu, v := range []uint32{1, 2, 0xffffffff} {
		binary.NativeEndian.PutUint32(b[8*cpu:], v)
	}
	if got := binary.NativeEndian.Uint32(mapdump.SumCPUs(b, 4)); got != 2 {
		t.Errorf("1 + 2 + 0xffffffff as a u32 = %d, want 2", got)
	}
	// 12-byte values: two words each.
	b = make([]byte, 32)
	binary.NativeEndian.PutUint64(b[0:], 5)
	binary.NativeEndian.PutUint32(b[8:], 7)
	binary.NativeEndian.PutUint64(b[16:], 6)
	binary.NativeEndian.PutUint32(b[24:], 8)
	s := mapdump.SumCPUs(b, 12)
	if len(s) != 12 || binary.NativeEndian.Uint64(s) != 11 || binary.NativeEndian.Uint32(s[8:]) != 15 {
		t.Errorf("12-byte sum % x, want 11 and 15", s)
	}
	if !mapdump.PerCPU(ebpf.LRUCPUHash) || mapdump.PerCPU(ebpf.Hash) {
		t.Error("PerCPU")
	}
}
