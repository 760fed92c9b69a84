package verifuzz

import (
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
)

// TestEngineRunner_perCPU: a program that adds to an element of the
// per-CPU array and inserts a key into the per-CPU hash of
// fuzzgen.PtrMaps. Every engine must agree, and the kernel's column must
// show the values of the CPU its test run ran on (the runs of the three
// inputs take turns on the CPUs), which are those waggle shows for CPU 0:
// the per-CPU array's element 1 is 0x10 + 0x55, and the new hash key holds
// the program's value (Linux zeroes the other CPUs' values).
func TestEngineRunner_perCPU(t *testing.T) {
	const arr, hash = 5, 9
	specs := fuzzgen.PtrMaps()
	if specs[arr].Type != fuzzgen.PerCPUArrayMap || specs[hash].Type != fuzzgen.PerCPUHashMap {
		t.Fatalf("maps %d and %d are not the per-CPU array and hash", arr, hash)
	}
	insns, err := asm.Parse(`
		*(u64 *)(r10 - 8) = 1
		r2 = r10
		r2 += -8
		r1 = map_idx(5) ll
		call 1
		if r0 == 0 goto out
		r1 = *(u32 *)(r0 + 0)
		r1 += 0x55
		*(u32 *)(r0 + 0) = r1
	out:
		*(u64 *)(r10 - 8) = 3
		*(u64 *)(r10 - 32) = 0x77
		*(u64 *)(r10 - 24) = 0
		*(u64 *)(r10 - 16) = 0
		r2 = r10
		r2 += -8
		r3 = r10
		r3 += -32
		r1 = map_idx(9) ll
		r4 = 0
		call 2
		r0 = 2
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	pkt := make([]byte, 64)
	pkt[12] = 8
	p := &fuzzgen.PtrProgram{
		Type:    fuzzgen.XDP,
		Insns:   insns,
		Maps:    []fuzzgen.MapEntry{{Map: arr, Key: []byte{1, 0, 0, 0}, Value: append([]byte{0x10}, make([]byte, 11)...)}},
		Packets: [][]byte{pkt, pkt, pkt},
	}
	r := NewEngineRunner(false)
	defer r.Close()
	res := r.Compare(p)
	if res.Rejected != "" || res.Refused != nil {
		t.Fatalf("rejected %q, refused %v\n%v", res.Rejected, res.Refused, res)
	}
	if len(res.Diffs) > 0 {
		t.Fatalf("engines differ:\n%v", res)
	}
	want := []string{"m5[01000000] = 650000000000000000000000", "m9[0300000000000000] = 770000000000000000000000000000000000000000000000"}
	for i, name := range res.Engines {
		for in, o := range res.Runs[i] {
			for _, w := range want {
				if !strings.Contains(o.Maps, w) {
					t.Errorf("%s, input %d: maps\n%swant %s", name, in, o.Maps, w)
				}
			}
		}
	}
	if r.k == nil {
		t.Skipf("compared waggle's engines only: %v", r.NoKernel)
	}
	if res.Engines[len(res.Engines)-1] != KernelEngine {
		t.Fatalf("the kernel did not run the program: %v", res.Skipped)
	}
}
