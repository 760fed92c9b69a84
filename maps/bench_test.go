package maps_test

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/maps"
)

// BenchmarkMaps measures lookups and updates of existing keys, program side
// (the Elems methods helpers call), Go side (Lookup, Update) and, with
// root, the kernel's Go side through cilium/ebpf (one bpf syscall each),
// for the same map and keys:
//
//	go test ./maps -run '^$' -bench BenchmarkMaps
//
// The kernel's program-side cost is measured through programs elsewhere
// (BPF_PROG_TEST_RUN); ratios between the rows are what matter.
func BenchmarkMaps(b *testing.B) {
	const n = 10000
	lpmSpec := maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: n, Flags: maps.FlagNoPrealloc}
	for _, tc := range []struct {
		name string
		spec maps.Spec
		key  func(i int) []byte
	}{
		{"array", maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: n}, func(i int) []byte { return u32(uint32(i)) }},
		{"hash", maps.Spec{Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 2 * n}, func(i int) []byte { return u64(uint64(i) * 0x9e3779b97f4a7c15) }},
		{"lru", maps.Spec{Type: maps.LRUHash, KeySize: 8, ValueSize: 8, MaxEntries: 2 * n}, func(i int) []byte { return u64(uint64(i) * 0x9e3779b97f4a7c15) }},
		{"percpu_hash", maps.Spec{Type: maps.PerCPUHash, KeySize: 8, ValueSize: 8, MaxEntries: 2 * n}, func(i int) []byte { return u64(uint64(i) * 0x9e3779b97f4a7c15) }},
		{"lpm", lpmSpec, func(i int) []byte {
			// /16 to /32 prefixes under 10.0.0.0/8.
			plen := 16 + uint32(i%17)
			addr := (0x0a000000 | uint32(i)*2654435761>>8) &^ (1<<(32-plen) - 1)
			return binary.BigEndian.AppendUint32(u32(plen), addr)
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			spec := tc.spec
			cpus := 0
			if s := possibleCPUsOr(2); spec.Type == maps.PerCPUHash {
				cpus = s
			}
			spec.CPUs = max(cpus, 1)
			m := mustNew(b, spec)
			vs := len(goValue(m))
			keys := make([][]byte, 0, n)
			for i := range n {
				k := tc.key(i)
				if err := m.Update(k, make([]byte, vs), maps.UpdateAny); err != nil {
					b.Fatal(err)
				}
				keys = append(keys, k)
			}
			// Look up what was stored: for the trie, addresses inside the
			// prefixes (a /32 key).
			lookups := keys
			if spec.Type == maps.LPMTrie {
				lookups = make([][]byte, n)
				for i, k := range keys {
					lookups[i] = append(u32(32), k[4:]...)
				}
			}
			order := rand.New(rand.NewPCG(1, 1)).Perm(n)
			e := m.(maps.Elems)
			value8 := make([]byte, spec.ValueSize)
			value := make([]byte, vs)
			b.Run("lookup/prog", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if e.LookupElem(0, lookups[order[i%n]]) == 0 {
						b.Fatal("miss")
					}
					i++
				}
			})
			b.Run("lookup/go", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if err := m.Lookup(lookups[order[i%n]], value); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("update/prog", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if err := e.UpdateElem(0, keys[order[i%n]], value8, maps.UpdateAny); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			b.Run("update/go", func(b *testing.B) {
				i := 0
				for b.Loop() {
					if err := m.Update(keys[order[i%n]], value, maps.UpdateAny); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
			benchKernel(b, spec, keys, lookups, order)
		})
	}
}

// goValue returns a Go-side value buffer for m.
func goValue(m maps.Map) []byte {
	s := m.Spec()
	switch s.Type {
	case maps.PerCPUArray, maps.PerCPUHash, maps.LRUPerCPUHash:
		return make([]byte, (int(s.ValueSize)+7)&^7*s.CPUs)
	}
	return make([]byte, s.ValueSize)
}

// possibleCPUsOr reads /sys/devices/system/cpu/possible ("0-1"), the
// number of CPUs a kernel per-CPU map has.
func possibleCPUsOr(def int) int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return def
	}
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexAny(s, "-,"); i >= 0 {
		s = s[i+1:]
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n + 1
}

// BenchmarkMemory creates a 1,000,000-entry hash map of 8-byte keys and
// values, fills it, and reports the bytes it maps (MemoryUsage) and how
// much the process's resident memory grew; with root also the kernel's
// memlock for the same map:
//
//	go test ./maps -run '^$' -bench BenchmarkMemory -benchtime 1x
func BenchmarkMemory(b *testing.B) {
	for b.Loop() {
		rss0 := residentBytes()
		m, err := maps.New(maps.Spec{Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 1_000_000})
		if err != nil {
			b.Fatal(err)
		}
		v := make([]byte, 8)
		for i := range uint64(1_000_000) {
			if err := m.Update(u64(i), v, maps.UpdateNoExist); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(m.MemoryUsage())/(1<<20), "MiB-mapped")
		b.ReportMetric(float64(residentBytes()-rss0)/(1<<20), "MiB-resident")
		b.ReportMetric(float64(m.MemoryUsage())/1e6, "B/entry")
		m.Close()
		if mem, ok := kernelMemlock(b); ok {
			b.ReportMetric(float64(mem)/(1<<20), "MiB-kernel")
		}
	}
}

// residentBytes is the process's resident set (/proc/self/statm), 0 where
// there is none.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
