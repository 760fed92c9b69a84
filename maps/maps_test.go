package maps_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

func mustNew(tb testing.TB, spec maps.Spec) maps.Map {
	tb.Helper()
	m, err := maps.New(spec)
	if err != nil {
		tb.Fatalf("New(%s): %v", spec.String(), err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

func wantErrno(tb testing.TB, what string, err error, want maps.Errno) {
	tb.Helper()
	if want == 0 {
		if err != nil {
			tb.Fatalf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		tb.Fatalf("%s: got %v, want %v", what, err, want)
	}
}

func TestNew_Refused(t *testing.T) {
	for _, typ := range []maps.Type{maps.SockMap, maps.SockHash, maps.StructOps, maps.Arena, maps.TaskStorage, maps.CgrpStorage} {
		_, err := maps.New(maps.Spec{Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if !errors.Is(err, maps.EOPNOTSUPP) || !strings.Contains(err.Error(), typ.String()) {
			t.Errorf("%s: %v, want EOPNOTSUPP naming the type", typ, err)
		}
	}
}

func TestNew_Validation(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec maps.Spec
		want maps.Errno
		msg  string
	}{
		{"array key size", maps.Spec{Type: maps.Array, KeySize: 8, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "key size 8"},
		{"array no entries", maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 4}, maps.EINVAL, "max_entries is 0"},
		{"hash no value", maps.Spec{Type: maps.Hash, KeySize: 4, MaxEntries: 1}, maps.EINVAL, "value size is 0"},
		{"hash huge", maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4 << 20, MaxEntries: 1}, maps.E2BIG, "element limit"},
		{"percpu value", maps.Spec{Type: maps.PerCPUHash, KeySize: 4, ValueSize: 32769, MaxEntries: 1}, maps.E2BIG, "per-CPU value"},
		{"lru no prealloc", maps.Spec{Type: maps.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagNoPrealloc}, maps.ENOTSUPP, "preallocated"},
		{"common lru on hash", maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagNoCommonLRU}, maps.EINVAL, "NO_COMMON_LRU"},
		{"lpm prealloc", maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "NO_PREALLOC"},
		{"lpm key", maps.Spec{Type: maps.LPMTrie, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagNoPrealloc}, maps.EINVAL, "key size 4"},
		{"ringbuf size", maps.Spec{Type: maps.RingBuf, MaxEntries: 4097}, maps.EINVAL, "power of two"},
		{"user ringbuf size", maps.Spec{Type: maps.UserRingBuf, MaxEntries: 2048}, maps.EINVAL, "power of two"},
		{"user ringbuf value", maps.Spec{Type: maps.UserRingBuf, ValueSize: 4, MaxEntries: 4096}, maps.EINVAL, "value size 4"},
		{"user ringbuf flags", maps.Spec{Type: maps.UserRingBuf, MaxEntries: 4096, Flags: maps.FlagMmapable}, maps.EINVAL, "flags"},
		{"queue key", maps.Spec{Type: maps.Queue, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "no key"},
		{"bloom extra", maps.Spec{Type: maps.BloomFilter, ValueSize: 4, MaxEntries: 1, MapExtra: 16}, maps.EINVAL, "map_extra"},
		{"extra elsewhere", maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, MapExtra: 1}, maps.EINVAL, "only for bloom"},
		{"rdonly wronly", maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagRdOnly | maps.FlagWrOnly}, maps.EINVAL, "together"},
		{"prog array value", maps.Spec{Type: maps.ProgArray, KeySize: 4, ValueSize: 8, MaxEntries: 1}, maps.EINVAL, "descriptors"},
		{"map in map no inner", maps.Spec{Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.EBADF, "inner map"},
		{"map in map nested", maps.Spec{Type: maps.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1,
			InnerMap: &maps.Spec{Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1}}, maps.EINVAL, "one level"},
		{"cpumap entries", maps.Spec{Type: maps.CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: maps.MaxCPUs + 1}, maps.E2BIG, "NR_CPUS"},
		{"devmap value", maps.Spec{Type: maps.DevMap, KeySize: 4, ValueSize: 6, MaxEntries: 1}, maps.EINVAL, "ifindex"},
		{"name", maps.Spec{Name: "a-b", Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "name"},
		{"unknown type", maps.Spec{Type: 99, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "unknown map type"},
		{"unspecified", maps.Spec{Type: maps.UnspecifiedMap, KeySize: 4, ValueSize: 4, MaxEntries: 1}, maps.EINVAL, "unknown map type"},
		{"cpus", maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, CPUs: -1}, maps.EINVAL, "CPUs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := maps.New(tc.spec)
			if err == nil {
				m.Close()
			}
			wantErrno(t, "New", err, tc.want)
			if !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "create ") {
				t.Errorf("message %q does not start with the map and say %q", err, tc.msg)
			}
		})
	}
}

func TestArray(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 6, MaxEntries: 3})
	v := make([]byte, 6)
	wantErrno(t, "lookup fresh", m.Lookup(u32(2), v), 0)
	if !bytes.Equal(v, make([]byte, 6)) {
		t.Errorf("fresh value %x", v)
	}
	wantErrno(t, "update", m.Update(u32(1), []byte("abcdef"), maps.UpdateAny), 0)
	wantErrno(t, "update exist", m.Update(u32(1), []byte("ghijkl"), maps.UpdateExist), 0)
	wantErrno(t, "update noexist", m.Update(u32(1), []byte("ghijkl"), maps.UpdateNoExist), maps.EEXIST)
	wantErrno(t, "update past end", m.Update(u32(3), []byte("ghijkl"), maps.UpdateAny), maps.E2BIG)
	wantErrno(t, "update flags", m.Update(u32(0), []byte("ghijkl"), 3), maps.EINVAL)
	wantErrno(t, "update lock", m.Update(u32(0), []byte("ghijkl"), maps.UpdateLock), maps.EINVAL)
	wantErrno(t, "lookup past end", m.Lookup(u32(3), v), maps.ENOENT)
	wantErrno(t, "delete", m.Delete(u32(0)), maps.EINVAL)
	wantErrno(t, "key size", m.Lookup(u64(0), v), maps.EINVAL)
	wantErrno(t, "value size", m.Lookup(u32(0), v[:5]), maps.EINVAL)
	wantErrno(t, "lookup", m.Lookup(u32(1), v), 0)
	if string(v) != "ghijkl" {
		t.Errorf("value %q", v)
	}
	next := make([]byte, 4)
	for _, tc := range []struct {
		key  []byte
		want uint32
		err  maps.Errno
	}{{nil, 0, 0}, {u32(0), 1, 0}, {u32(1), 2, 0}, {u32(2), 0, maps.ENOENT}, {u32(7), 0, 0}} {
		err := m.NextKey(tc.key, next)
		wantErrno(t, fmt.Sprintf("next key %x", tc.key), err, tc.err)
		if err == nil && binary.LittleEndian.Uint32(next) != tc.want {
			t.Errorf("next key %x: %x", tc.key, next)
		}
	}
	// Program side: the value in place, 8-byte aligned.
	e := m.(maps.Elems)
	a := e.LookupElem(0, u32(1))
	if a == 0 || a%8 != 0 || string(mem.Bytes(a, 6)) != "ghijkl" {
		t.Fatalf("LookupElem %#x", a)
	}
	mem.Store8(a, 'X')
	wantErrno(t, "lookup", m.Lookup(u32(1), v), 0)
	if string(v) != "Xhijkl" {
		t.Errorf("program store not seen: %q", v)
	}
	if e.LookupElem(0, u32(3)) != 0 {
		t.Error("LookupElem past end")
	}
	wantErrno(t, "prog update noexist", e.UpdateElem(0, u32(0), []byte("123456"), maps.UpdateNoExist), maps.EEXIST)
	wantErrno(t, "prog update lock", e.UpdateElem(0, u32(0), []byte("123456"), maps.UpdateLock), maps.EINVAL)
	wantErrno(t, "prog delete", e.DeleteElem(0, u32(0)), maps.EINVAL)
}

func TestPerCPUArray(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.PerCPUArray, KeySize: 4, ValueSize: 4, MaxEntries: 2, CPUs: 3})
	e := m.(maps.Elems)
	// Go side: 3 CPUs at stride 8, padding kept as written; in the
	// mapping each CPU's copies are a block of 2 values.
	v := []byte{1, 0, 0, 0, 0xaa, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
	wantErrno(t, "update", m.Update(u32(1), v, 0), 0)
	for cpu := range 3 {
		a := e.LookupElem(cpu, u32(1))
		if a%8 != 0 || mem.Load32(a) != uint64(cpu+1) {
			t.Errorf("cpu %d: %#x holds %d", cpu, a, mem.Load32(a))
		}
		if next := e.LookupElem(cpu+1, u32(1)); cpu < 2 && next-a != 2*8 {
			t.Errorf("stride %d", next-a)
		}
	}
	if e.LookupElem(3, u32(1)) != 0 {
		t.Error("LookupElem for a CPU out of range")
	}
	wantErrno(t, "prog update", e.UpdateElem(1, u32(1), u32(9), 0), 0)
	got := make([]byte, 24)
	wantErrno(t, "lookup", m.Lookup(u32(1), got), 0)
	want := slices.Clone(v)
	want[8] = 9
	if !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
	wantErrno(t, "value size", m.Update(u32(1), v[:8], 0), maps.EINVAL)
}

func TestHash(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 5, ValueSize: 3, MaxEntries: 4, CPUs: 2})
	key := func(i byte) []byte { return []byte{i, 1, 2, 3, 4} }
	v := make([]byte, 3)
	wantErrno(t, "lookup empty", m.Lookup(key(1), v), maps.ENOENT)
	wantErrno(t, "delete empty", m.Delete(key(1)), maps.ENOENT)
	wantErrno(t, "update exist on missing", m.Update(key(1), []byte("abc"), maps.UpdateExist), maps.ENOENT)
	for i := range byte(4) {
		wantErrno(t, "insert", m.Update(key(i), []byte{i, i, i}, maps.UpdateNoExist), 0)
	}
	wantErrno(t, "insert into full", m.Update(key(9), []byte("xyz"), maps.UpdateAny), maps.E2BIG)
	wantErrno(t, "replace in full", m.Update(key(2), []byte("xyz"), maps.UpdateAny), 0)
	wantErrno(t, "replace exist in full", m.Update(key(2), []byte("XYZ"), maps.UpdateExist), 0)
	wantErrno(t, "noexist on present", m.Update(key(2), []byte("xyz"), maps.UpdateNoExist), maps.EEXIST)
	wantErrno(t, "lookup", m.Lookup(key(2), v), 0)
	if string(v) != "XYZ" {
		t.Errorf("value %q", v)
	}
	wantErrno(t, "lookup and delete", m.LookupAndDelete(key(2), v), 0)
	wantErrno(t, "after lookup and delete", m.Lookup(key(2), v), maps.ENOENT)
	wantErrno(t, "insert after delete", m.Update(key(9), []byte("xyz"), maps.UpdateAny), 0)

	// NextKey visits every key once; a missing key restarts from the first.
	var keys [][]byte
	next := make([]byte, 5)
	for k := []byte(nil); m.NextKey(k, next) == nil; k = slices.Clone(next) {
		keys = append(keys, slices.Clone(next))
	}
	if len(keys) != 4 {
		t.Fatalf("NextKey walked %d keys", len(keys))
	}
	wantErrno(t, "next of missing", m.NextKey(key(77), next), 0)
	if !bytes.Equal(next, keys[0]) {
		t.Errorf("next of a missing key %x, want the first %x", next, keys[0])
	}
	wantErrno(t, "next of last", m.NextKey(keys[3], next), maps.ENOENT)

	// Program side: a pointer to the value, updated in place.
	e := m.(maps.Elems)
	a := e.LookupElem(0, key(9))
	if a == 0 || a%8 != 0 || string(mem.Bytes(a, 3)) != "xyz" {
		t.Fatalf("LookupElem %#x", a)
	}
	if e.LookupElem(0, key(2)) != 0 {
		t.Error("LookupElem of a deleted key")
	}
	wantErrno(t, "prog delete", e.DeleteElem(0, key(9)), 0)
	wantErrno(t, "prog delete again", e.DeleteElem(0, key(9)), maps.ENOENT)
	wantErrno(t, "prog update flags", e.UpdateElem(0, key(9), []byte("abc"), 4), maps.EINVAL)
}

func TestPerCPUHash(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 2, CPUs: 2})
	e := m.(maps.Elems)
	// A program's insert sets its CPU's copy and zeroes the others.
	wantErrno(t, "prog insert", e.UpdateElem(1, u32(7), u32(5), 0), 0)
	got := make([]byte, 16)
	wantErrno(t, "lookup", m.Lookup(u32(7), got), 0)
	if want := []byte{0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0}; !bytes.Equal(got, want) {
		t.Errorf("got %x, want %x", got, want)
	}
	a0, a1 := e.LookupElem(0, u32(7)), e.LookupElem(1, u32(7))
	if a1-a0 != 8 || mem.Load32(a1) != 5 {
		t.Errorf("per-CPU addresses %#x %#x", a0, a1)
	}
	// An update of a present key is in place: the address stays.
	wantErrno(t, "prog update", e.UpdateElem(0, u32(7), u32(6), maps.UpdateExist), 0)
	if e.LookupElem(0, u32(7)) != a0 || mem.Load32(a0) != 6 || mem.Load32(a1) != 5 {
		t.Error("per-CPU update not in place")
	}
	wantErrno(t, "cpu out of range", e.UpdateElem(2, u32(7), u32(6), 0), maps.EINVAL)
}

func TestLRU(t *testing.T) {
	for _, typ := range []maps.Type{maps.LRUHash, maps.LRUPerCPUHash} {
		t.Run(typ.String(), func(t *testing.T) {
			m := mustNew(t, maps.Spec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4, CPUs: 1})
			e := m.(maps.Elems)
			present := func() []uint32 {
				var out []uint32
				for k := range maps.All(m) {
					out = append(out, binary.LittleEndian.Uint32(k))
				}
				slices.Sort(out)
				return out
			}
			for i := range uint32(4) {
				wantErrno(t, "insert", m.Update(u32(i), u64(uint64(i)), 0), 0)
			}
			// A program's lookup refreshes 0; a Go-side lookup of 1 does
			// not (as the syscall's does not).
			if e.LookupElem(0, u32(0)) == 0 {
				t.Fatal("lookup 0")
			}
			wantErrno(t, "go lookup", m.Lookup(u32(1), make([]byte, 8)), 0)
			wantErrno(t, "insert 4", m.Update(u32(4), u64(4), 0), 0)
			if got := present(); !slices.Equal(got, []uint32{0, 2, 3, 4}) {
				t.Fatalf("after evicting: %v, want 1 gone", got)
			}
			// Updating 2 makes it the most recent; 3 goes next.
			wantErrno(t, "update 2", m.Update(u32(2), u64(22), maps.UpdateExist), 0)
			wantErrno(t, "insert 5", m.Update(u32(5), u64(5), 0), 0)
			if got := present(); !slices.Equal(got, []uint32{0, 2, 4, 5}) {
				t.Fatalf("after evicting: %v, want 3 gone", got)
			}
			// A failing update evicts nothing.
			wantErrno(t, "noexist", m.Update(u32(5), u64(5), maps.UpdateNoExist), maps.EEXIST)
			wantErrno(t, "exist", m.Update(u32(6), u64(6), maps.UpdateExist), maps.ENOENT)
			if got := present(); !slices.Equal(got, []uint32{0, 2, 4, 5}) {
				t.Fatalf("after failed updates: %v", got)
			}
			// A delete frees room: no eviction on the next insert.
			wantErrno(t, "delete", m.Delete(u32(4)), 0)
			wantErrno(t, "insert 6", m.Update(u32(6), u64(6), 0), 0)
			if got := present(); !slices.Equal(got, []uint32{0, 2, 5, 6}) {
				t.Fatalf("after delete and insert: %v", got)
			}
			// Order now, least recent first: 0, 2, 5, 6.
			for _, k := range []uint32{7, 8} {
				wantErrno(t, "insert", m.Update(u32(k), u64(uint64(k)), 0), 0)
			}
			if got := present(); !slices.Equal(got, []uint32{5, 6, 7, 8}) {
				t.Fatalf("final: %v", got)
			}
		})
	}
}

func TestLRU_NoCommon(t *testing.T) {
	// Two CPUs, three entries each: max_entries 5 is rounded up to 6.
	m := mustNew(t, maps.Spec{Type: maps.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 5, CPUs: 2, Flags: maps.FlagNoCommonLRU})
	if m.Spec().MaxEntries != 6 {
		t.Fatalf("max_entries %d, want 6", m.Spec().MaxEntries)
	}
	e := m.(maps.Elems)
	for i := range uint32(3) {
		wantErrno(t, "cpu 0", e.UpdateElem(0, u32(i), u32(i), 0), 0)
		wantErrno(t, "cpu 1", e.UpdateElem(1, u32(10+i), u32(i), 0), 0)
	}
	// CPU 0's list is full: its own least recent element goes, CPU 1's
	// stay.
	wantErrno(t, "cpu 0 evicts", e.UpdateElem(0, u32(3), u32(3), 0), 0)
	n := 0
	for k := range maps.All(m) {
		if binary.LittleEndian.Uint32(k) == 0 {
			t.Error("key 0 not evicted")
		}
		n++
	}
	if n != 6 {
		t.Errorf("%d keys", n)
	}
}

func lpmKey(plen uint32, data ...byte) []byte { return append(u32(plen), data...) }

func TestLPM(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 1, MaxEntries: 5, Flags: maps.FlagNoPrealloc})
	for _, tc := range []struct {
		key []byte
		val byte
	}{
		{lpmKey(16, 192, 168, 0, 0), 1},
		{lpmKey(24, 192, 168, 0, 0), 2},
		{lpmKey(24, 192, 168, 128, 0), 3},
		{lpmKey(24, 192, 168, 1, 0), 4},
		{lpmKey(0, 0, 0, 0, 0), 5},
	} {
		wantErrno(t, "insert", m.Update(tc.key, []byte{tc.val}, maps.UpdateNoExist), 0)
	}
	wantErrno(t, "full", m.Update(lpmKey(8, 10, 0, 0, 0), []byte{9}, 0), maps.ENOSPC)
	wantErrno(t, "replace when full", m.Update(lpmKey(24, 192, 168, 1, 0), []byte{4}, maps.UpdateExist), 0)
	wantErrno(t, "noexist", m.Update(lpmKey(16, 192, 168, 0, 0), []byte{9}, maps.UpdateNoExist), maps.EEXIST)
	wantErrno(t, "prefix too long", m.Update(lpmKey(33, 1, 2, 3, 4), []byte{9}, 0), maps.EINVAL)
	v := make([]byte, 1)
	for _, tc := range []struct {
		addr []byte
		want byte
	}{
		{lpmKey(32, 192, 168, 1, 77), 4},
		{lpmKey(32, 192, 168, 0, 1), 2},
		{lpmKey(32, 192, 168, 128, 7), 3},
		{lpmKey(32, 192, 168, 200, 1), 1},
		{lpmKey(32, 192, 168, 2, 1), 1},
		{lpmKey(32, 8, 8, 8, 8), 5},
		{lpmKey(20, 192, 168, 1, 77), 1}, // only 20 bits asked for
	} {
		wantErrno(t, fmt.Sprint("lookup ", tc.addr), m.Lookup(tc.addr, v), 0)
		if v[0] != tc.want {
			t.Errorf("lookup %v: %d, want %d", tc.addr, v[0], tc.want)
		}
	}
	// NextKey: post-order, more specific first (kernel/bpf/lpm_trie.c).
	var order []string
	next := make([]byte, 8)
	for k := []byte(nil); m.NextKey(k, next) == nil; k = slices.Clone(next) {
		order = append(order, fmt.Sprintf("%d.%d.%d.%d/%d", next[4], next[5], next[6], next[7], next[0]))
	}
	want := []string{"192.168.0.0/24", "192.168.1.0/24", "192.168.128.0/24", "192.168.0.0/16", "0.0.0.0/0"}
	if !slices.Equal(order, want) {
		t.Errorf("NextKey order %v, want %v", order, want)
	}
	wantErrno(t, "delete", m.Delete(lpmKey(16, 192, 168, 0, 0)), 0)
	wantErrno(t, "delete again", m.Delete(lpmKey(16, 192, 168, 0, 0)), maps.ENOENT)
	wantErrno(t, "lookup after delete", m.Lookup(lpmKey(32, 192, 168, 2, 1), v), 0)
	if v[0] != 5 {
		t.Errorf("after delete 192.168.2.1 matches %d, want the default route", v[0])
	}

	// IPv6.
	m6 := mustNew(t, maps.Spec{Type: maps.LPMTrie, KeySize: 20, ValueSize: 1, MaxEntries: 8, Flags: maps.FlagNoPrealloc})
	ip6 := func(plen uint32, s ...byte) []byte { d := make([]byte, 16); copy(d, s); return lpmKey(plen, d...) }
	wantErrno(t, "v6", m6.Update(ip6(32, 0x20, 0x01, 0x0d, 0xb8), []byte{1}, 0), 0)
	wantErrno(t, "v6", m6.Update(ip6(64, 0x20, 0x01, 0x0d, 0xb8, 0, 1), []byte{2}, 0), 0)
	wantErrno(t, "v6 lookup", m6.Lookup(ip6(128, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0xff), v), 0)
	if v[0] != 2 {
		t.Errorf("v6 match %d", v[0])
	}
	wantErrno(t, "v6 lookup", m6.Lookup(ip6(128, 0x20, 0x01, 0x0d, 0xb8, 0, 2), v), 0)
	if v[0] != 1 {
		t.Errorf("v6 match %d", v[0])
	}
	wantErrno(t, "v6 miss", m6.Lookup(ip6(128, 0x20, 0x02), v), maps.ENOENT)
	if a := m6.(maps.Elems).LookupElem(0, ip6(128, 0x20, 0x01, 0x0d, 0xb8, 0, 1)); a == 0 || mem.Load8(a) != 2 {
		t.Error("LookupElem")
	}
}

func TestQueueStack(t *testing.T) {
	for _, tc := range []struct {
		typ  maps.Type
		want []byte // pop order after pushing 1, 2, 3 then 4 with BPF_EXIST
	}{
		{maps.Queue, []byte{2, 3, 4}},
		{maps.Stack, []byte{4, 3, 2}},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			m := mustNew(t, maps.Spec{Type: tc.typ, ValueSize: 1, MaxEntries: 3})
			q := m.(maps.Values)
			for i := range byte(3) {
				wantErrno(t, "push", q.PushElem([]byte{i + 1}, 0), 0)
			}
			wantErrno(t, "push full", q.PushElem([]byte{4}, 0), maps.E2BIG)
			wantErrno(t, "push noexist", q.PushElem([]byte{4}, maps.UpdateNoExist), maps.EINVAL)
			wantErrno(t, "push exist", m.Update(nil, []byte{4}, maps.UpdateExist), 0)
			v := make([]byte, 1)
			wantErrno(t, "peek", m.Lookup(nil, v), 0)
			if v[0] != tc.want[0] {
				t.Errorf("peek %d", v[0])
			}
			for _, w := range tc.want {
				wantErrno(t, "pop", m.LookupAndDelete(nil, v), 0)
				if v[0] != w {
					t.Errorf("pop %d, want %d", v[0], w)
				}
			}
			v[0] = 9
			wantErrno(t, "pop empty", q.PopElem(v), maps.ENOENT)
			if v[0] != 0 {
				t.Error("empty pop did not zero the value")
			}
			wantErrno(t, "delete", m.Delete(nil), maps.EINVAL)
			wantErrno(t, "key", m.Lookup([]byte{1}, v), maps.EINVAL)
		})
	}
}

func TestBloom(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.BloomFilter, ValueSize: 8, MaxEntries: 1000, MapExtra: 3})
	for i := range uint64(500) {
		wantErrno(t, "push", m.Update(nil, u64(i), 0), 0)
	}
	for i := range uint64(500) {
		wantErrno(t, "peek present", m.(maps.Values).PeekElem(u64(i)), 0)
	}
	fp := 0
	for i := uint64(1000); i < 11000; i++ {
		if m.Lookup(nil, u64(i)) == nil {
			fp++
		}
	}
	if fp > 2000 {
		t.Errorf("%d false positives in 10000", fp)
	}
	wantErrno(t, "flags", m.Update(nil, u64(1), maps.UpdateExist), maps.EINVAL)
	wantErrno(t, "pop", m.(maps.Values).PopElem(u64(1)), maps.EOPNOTSUPP)
	wantErrno(t, "delete", m.Delete(nil), maps.EOPNOTSUPP)
	wantErrno(t, "lookup and delete", m.LookupAndDelete(nil, u64(1)), maps.ENOTSUPP)
}

func TestRingBuf(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.RingBuf, MaxEntries: uint32(os.Getpagesize())})
	rb := m.(maps.RingBuffer)
	size := uint64(os.Getpagesize())
	if rb.Query(maps.RingBufRingSize) != size {
		t.Errorf("ring size %d", rb.Query(maps.RingBufRingSize))
	}
	a := rb.Reserve(5)
	b := rb.Reserve(3)
	c := rb.Reserve(16)
	if a == 0 || b-a != 16 || c-b != 16 || !rb.Contains(a) {
		t.Fatalf("reserve at %#x %#x %#x", a, b, c)
	}
	copy(mem.Bytes(a, 5), "first")
	copy(mem.Bytes(b, 3), "bye")
	copy(mem.Bytes(c, 16), "third, 16 bytes!")
	wantErrno(t, "submit c", rb.Submit(c, 0), 0)
	wantErrno(t, "discard b", rb.Discard(b, 0), 0)
	wantErrno(t, "submit b twice", rb.Submit(b, 0), maps.EINVAL)
	wantErrno(t, "submit stray", rb.Submit(a+1, 0), maps.EINVAL)

	r, err := maps.NewRingBufReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// a is still busy: nothing to read, though c is submitted.
	r.SetDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past a busy record: %v", err)
	}
	r.SetDeadline(time.Time{})
	wantErrno(t, "submit a", rb.Submit(a, 0), 0)
	for _, want := range []string{"first", "third, 16 bytes!"} {
		rec, err := r.Read()
		if err != nil || string(rec.RawSample) != want {
			t.Fatalf("read %q, %v; want %q", rec.RawSample, err, want)
		}
	}
	if rb.Query(maps.RingBufAvailData) != 0 || rb.Query(maps.RingBufConsPos) != 56 || rb.Query(maps.RingBufProdPos) != 56 {
		t.Errorf("positions: avail %d cons %d prod %d", rb.Query(0), rb.Query(2), rb.Query(3))
	}
	// Fill the ring: records of 64+8 bytes; the ring holds size-1 bytes.
	sample := bytes.Repeat([]byte{7}, 64)
	n := 0
	for rb.Output(sample, 0) == nil {
		n++
	}
	if want := int((size - 1) / 72); n != want {
		t.Errorf("%d records fit, want %d", n, want)
	}
	wantErrno(t, "output when full", rb.Output(sample, 0), maps.EAGAIN)
	if rb.Reserve(72) != 0 || rb.Dropped() != 3 {
		t.Errorf("dropped %d, want 3", rb.Dropped())
	}
	wantErrno(t, "output flags", rb.Output(sample, 4), maps.EINVAL)
	for range n {
		rec, err := r.Read()
		if err != nil || !bytes.Equal(rec.RawSample, sample) {
			t.Fatalf("read %x, %v", rec.RawSample, err)
		}
	}
	// Records now wrap past the end of the data: still contiguous.
	for i := range 3 * n {
		big := bytes.Repeat([]byte{byte(i)}, 100+i%7)
		wantErrno(t, "output", rb.Output(big, 0), 0)
		rec, err := r.Read()
		if err != nil || !bytes.Equal(rec.RawSample, big) {
			t.Fatalf("record %d: %x, %v", i, rec.RawSample, err)
		}
	}
	if rb.Reserve(size) != 0 {
		t.Error("reserved a record as large as the ring")
	}
	// A blocked read wakes on submit and on close.
	done := make(chan error)
	go func() {
		rec, err := r.Read()
		if err == nil && string(rec.RawSample) != "late" {
			err = fmt.Errorf("read %q", rec.RawSample)
		}
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	wantErrno(t, "output", rb.Output([]byte("late"), 0), 0)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { _, err := r.Read(); done <- err }()
	time.Sleep(10 * time.Millisecond)
	r.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	wantErrno(t, "lookup", m.Lookup(nil, nil), maps.ENOTSUPP)
}

func TestPerfEventArray(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.PerfEventArray, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2})
	pe := m.(maps.PerfEvents)
	wantErrno(t, "no reader", pe.Output(0, maps.PerfCurrentCPU, []byte("x")), maps.ENOENT)
	r, err := maps.NewPerfReader(m, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	wantErrno(t, "current cpu", pe.Output(1, maps.PerfCurrentCPU, []byte("hello")), 0)
	wantErrno(t, "index", pe.OutputFrags(0, 0, []byte("wor"), []byte("ld")), 0)
	wantErrno(t, "other cpu", pe.Output(0, 1, []byte("x")), maps.EOPNOTSUPP)
	wantErrno(t, "empty slot", pe.Output(3, 3, []byte("x")), maps.ENOENT)
	wantErrno(t, "past end", pe.Output(0, 4, []byte("x")), maps.E2BIG)
	wantErrno(t, "flags", pe.Output(0, 1<<32, []byte("x")), maps.EINVAL)
	got := map[int]string{}
	for range 2 {
		rec, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		got[rec.CPU] = string(bytes.TrimRight(rec.RawSample, "\x00"))
		if len(rec.RawSample)%8 != 4 {
			t.Errorf("raw sample of %d bytes: want the kernel's padding to 8 with the size word", len(rec.RawSample))
		}
	}
	if got[0] != "world" || got[1] != "hello" {
		t.Errorf("records %v", got)
	}
	// Fill CPU 0's ring (one page): losses are counted and reported
	// before the next sample.
	sample := make([]byte, 100)
	var sent, lost int
	for range 100 {
		if err := pe.Output(0, maps.PerfCurrentCPU, sample); errors.Is(err, maps.ENOSPC) {
			lost++
		} else if err == nil {
			sent++
		}
	}
	if lost == 0 {
		t.Fatal("nothing lost")
	}
	var read int
	for range sent {
		rec, err := r.Read()
		if err != nil || rec.LostSamples != 0 {
			t.Fatalf("read %+v, %v", rec, err)
		}
		read++
	}
	wantErrno(t, "after draining", pe.Output(0, maps.PerfCurrentCPU, sample), 0)
	rec, err := r.Read()
	if err != nil || rec.LostSamples != uint64(lost) || rec.CPU != 0 {
		t.Fatalf("loss record %+v, %v; want %d lost", rec, err, lost)
	}
	if rec, err = r.Read(); err != nil || len(rec.RawSample) != (100+4+7)&^7-4 {
		t.Fatalf("sample after loss: %d bytes, %v", len(rec.RawSample), err)
	}
	wantErrno(t, "update", m.Update(u32(0), u32(3), 0), maps.EOPNOTSUPP)
	r.Pause()
	wantErrno(t, "paused", pe.Output(0, maps.PerfCurrentCPU, sample), maps.ENOENT)
	r.Resume()
	wantErrno(t, "resumed", pe.Output(0, maps.PerfCurrentCPU, sample), 0)
	r.SetDeadline(time.Now().Add(-time.Second))
	if _, err := r.Read(); err != nil {
		t.Fatalf("a record is ready: %v", err)
	}
	if _, err := r.Read(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("deadline: %v", err)
	}
	r.Close()
	wantErrno(t, "closed reader", pe.Output(0, maps.PerfCurrentCPU, sample), maps.ENOENT)
}

type prog struct{ id uint32 }

func (p *prog) ID() uint32 { return p.id }

func TestProgArray(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	pa := m.(maps.ProgramArray)
	p := &prog{id: 42}
	wantErrno(t, "set", pa.SetProgram(1, p), 0)
	wantErrno(t, "set past end", pa.SetProgram(2, p), maps.E2BIG)
	if got, ok := pa.Program(1); !ok || got != p {
		t.Error("Program(1)")
	}
	if _, ok := pa.Program(0); ok {
		t.Error("Program(0) of an empty slot")
	}
	v := make([]byte, 4)
	wantErrno(t, "lookup id", m.Lookup(u32(1), v), 0)
	if binary.LittleEndian.Uint32(v) != 42 {
		t.Errorf("id %x", v)
	}
	wantErrno(t, "update fd", m.Update(u32(0), u32(3), 0), maps.EOPNOTSUPP)
	wantErrno(t, "update flags", m.Update(u32(0), u32(3), maps.UpdateExist), maps.EINVAL)
	wantErrno(t, "delete", m.Delete(u32(1)), 0)
	wantErrno(t, "delete empty", m.Delete(u32(1)), maps.ENOENT)
	wantErrno(t, "delete past end", m.Delete(u32(2)), maps.E2BIG)
	if _, ok := pa.Program(1); ok {
		t.Error("program still there")
	}
}

func TestMapInMap(t *testing.T) {
	inner := maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	for _, outer := range []maps.Spec{
		{Type: maps.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMap: &inner},
		{Type: maps.HashOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMap: &inner},
	} {
		t.Run(outer.Type.String(), func(t *testing.T) {
			m := mustNew(t, outer)
			mm := m.(maps.MapOfMaps)
			in := mustNew(t, inner)
			wrong := mustNew(t, maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 3})
			wantErrno(t, "set", mm.SetInner(u32(1), in), 0)
			wantErrno(t, "set mismatched", mm.SetInner(u32(0), wrong), maps.EINVAL)
			if got, ok := mm.Inner(u32(1)); !ok || got != in {
				t.Error("Inner")
			}
			if h := m.(maps.Elems).LookupElem(0, u32(1)); h != in.Handle() {
				t.Errorf("LookupElem %#x, want the inner handle %#x", h, in.Handle())
			}
			if m.(maps.Elems).LookupElem(0, u32(0)) != 0 {
				t.Error("LookupElem of an empty slot")
			}
			wantErrno(t, "lookup id", m.Lookup(u32(1), make([]byte, 4)), maps.EOPNOTSUPP)
			wantErrno(t, "update fd", m.Update(u32(1), u32(3), 0), maps.EOPNOTSUPP)
			wantErrno(t, "delete", m.Delete(u32(1)), 0)
			if _, ok := mm.Inner(u32(1)); ok {
				t.Error("inner map still there")
			}
			// An inner map with BPF_F_INNER_MAP may differ in max_entries.
			flex := inner
			flex.Flags = maps.FlagInnerMap
			o2 := outer
			o2.InnerMap = &flex
			m2 := mustNew(t, o2)
			big := mustNew(t, maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 8, MaxEntries: 100, Flags: maps.FlagInnerMap})
			wantErrno(t, "set inner-map-flagged", m2.(maps.MapOfMaps).SetInner(u32(0), big), 0)
		})
	}
}

func TestRedirectMaps(t *testing.T) {
	dev := mustNew(t, maps.Spec{Type: maps.DevMap, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	wantErrno(t, "devmap", dev.Update(u32(2), append(u32(7), u32(0)...), 0), 0)
	wantErrno(t, "devmap program", dev.Update(u32(1), append(u32(7), u32(5)...), 0), maps.EOPNOTSUPP)
	wantErrno(t, "devmap noexist", dev.Update(u32(1), append(u32(7), u32(0)...), maps.UpdateNoExist), maps.EEXIST)
	wantErrno(t, "devmap past end", dev.Update(u32(4), append(u32(7), u32(0)...), 0), maps.E2BIG)
	rd := dev.(maps.Redirector)
	if r, ok := rd.RedirectTarget(2); !ok || r != (maps.Redirect{Key: 2, Value: 7}) {
		t.Errorf("RedirectTarget(2) = %+v, %v", r, ok)
	}
	if _, ok := rd.RedirectTarget(1); ok {
		t.Error("RedirectTarget of an empty slot")
	}
	wantErrno(t, "devmap delete empty", dev.Delete(u32(1)), 0)
	wantErrno(t, "devmap delete past end", dev.Delete(u32(9)), maps.EINVAL)

	dh := mustNew(t, maps.Spec{Type: maps.DevMapHash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	wantErrno(t, "devmap hash exist inserts", dh.Update(u32(100), u32(3), maps.UpdateExist), 0)
	wantErrno(t, "devmap hash ifindex 0", dh.Update(u32(101), u32(0), 0), maps.EINVAL)
	wantErrno(t, "devmap hash", dh.Update(u32(101), u32(4), 0), 0)
	wantErrno(t, "devmap hash full", dh.Update(u32(102), u32(4), 0), maps.E2BIG)
	var keys []uint32
	dh.(maps.Redirector).RedirectTargets(func(r maps.Redirect) bool { keys = append(keys, r.Key); return true })
	if slices.Sort(keys); !slices.Equal(keys, []uint32{100, 101}) {
		t.Errorf("targets %v", keys)
	}

	cpu := mustNew(t, maps.Spec{Type: maps.CPUMap, KeySize: 4, ValueSize: 4, MaxEntries: 4, CPUs: 2})
	wantErrno(t, "cpumap", cpu.Update(u32(1), u32(192), 0), 0)
	wantErrno(t, "cpumap qsize", cpu.Update(u32(1), u32(16385), 0), maps.EOVERFLOW)
	wantErrno(t, "cpumap cpu", cpu.Update(u32(3), u32(192), 0), maps.ENODEV)
	if r, ok := cpu.(maps.Redirector).RedirectTarget(1); !ok || r.Value != 192 {
		t.Errorf("cpumap target %+v", r)
	}

	xsk := mustNew(t, maps.Spec{Type: maps.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 4})
	wantErrno(t, "xsk", xsk.Update(u32(0), u32(11), 0), 0)
	wantErrno(t, "xsk lookup", xsk.Lookup(u32(0), make([]byte, 4)), maps.EOPNOTSUPP)
	if r, ok := xsk.(maps.Redirector).RedirectTarget(0); !ok || r.Value != 11 {
		t.Errorf("xskmap target %+v", r)
	}
}

func TestStackTrace(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.StackTrace, KeySize: 4, ValueSize: 16, MaxEntries: 3})
	wantErrno(t, "lookup", m.Lookup(u32(0), make([]byte, 16)), maps.ENOENT)
	wantErrno(t, "delete", m.Delete(u32(3)), maps.ENOENT)
	wantErrno(t, "delete past ids", m.Delete(u32(4)), maps.E2BIG)
	wantErrno(t, "next", m.NextKey(nil, make([]byte, 4)), maps.ENOENT)
}

func TestClose(t *testing.T) {
	specs := []maps.Spec{
		{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{Type: maps.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{Type: maps.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagNoPrealloc},
		{Type: maps.Queue, ValueSize: 4, MaxEntries: 1},
		{Type: maps.BloomFilter, ValueSize: 4, MaxEntries: 1},
		{Type: maps.RingBuf, MaxEntries: uint32(os.Getpagesize())},
		{Type: maps.DevMap, KeySize: 4, ValueSize: 4, MaxEntries: 1},
		{Type: maps.ProgArray, KeySize: 4, ValueSize: 4, MaxEntries: 1},
	}
	for _, s := range specs {
		m, err := maps.New(s)
		if err != nil {
			t.Fatal(err)
		}
		wantErrno(t, "close", m.Close(), 0)
		wantErrno(t, s.Type.String()+" close twice", m.Close(), maps.EBADF)
		k, v := make([]byte, s.KeySize), make([]byte, s.ValueSize)
		for name, err := range map[string]error{
			"lookup": m.Lookup(k, v), "update": m.Update(k, v, 0), "delete": m.Delete(k),
		} {
			if !errors.Is(err, maps.EBADF) && !(s.Type == maps.RingBuf) {
				t.Errorf("%s %s after close: %v", s.Type, name, err)
			}
		}
		if e, ok := m.(maps.Elems); ok && e.LookupElem(0, k) != 0 {
			t.Errorf("%s LookupElem after close", s.Type)
		}
	}
}

func TestBatch(t *testing.T) {
	m := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 100})
	var keys, values []byte
	for i := range uint32(50) {
		keys = append(keys, u32(i)...)
		values = append(values, u32(i*3)...)
	}
	if n, err := maps.UpdateBatch(m, keys, values, 0); n != 50 || err != nil {
		t.Fatalf("UpdateBatch: %d, %v", n, err)
	}
	if _, err := maps.UpdateBatch(m, keys, values, maps.UpdateNoExist); !errors.Is(err, maps.EINVAL) {
		t.Errorf("UpdateBatch with element flags: %v", err)
	}
	seen := map[uint32]uint32{}
	var c maps.BatchCursor
	for {
		k, v := make([]byte, 4*7), make([]byte, 4*7)
		n, err := maps.LookupBatch(m, &c, k, v)
		for i := range n {
			seen[binary.LittleEndian.Uint32(k[i*4:])] = binary.LittleEndian.Uint32(v[i*4:])
		}
		if errors.Is(err, maps.ErrKeyNotExist) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 50 || seen[7] != 21 {
		t.Errorf("LookupBatch saw %d keys", len(seen))
	}
	if n, err := maps.LookupBatch(m, &c, make([]byte, 4), make([]byte, 4)); n != 0 || !errors.Is(err, maps.ErrKeyNotExist) {
		t.Errorf("after the end: %d, %v", n, err)
	}
	if n, err := maps.DeleteBatch(m, append(u32(1), u32(1000)...)); n != 1 || !errors.Is(err, maps.ENOENT) {
		t.Errorf("DeleteBatch: %d, %v", n, err)
	}
	var got int
	c = maps.BatchCursor{}
	for {
		n, err := maps.LookupAndDeleteBatch(m, &c, make([]byte, 4*64), make([]byte, 4*64))
		got += n
		if err != nil {
			break
		}
	}
	if got != 49 {
		t.Errorf("LookupAndDeleteBatch returned %d", got)
	}
	if err := m.NextKey(nil, make([]byte, 4)); !errors.Is(err, maps.ENOENT) {
		t.Errorf("map not empty: %v", err)
	}
	q := mustNew(t, maps.Spec{Type: maps.Queue, ValueSize: 4, MaxEntries: 1})
	if _, err := maps.LookupBatch(q, &c, nil, nil); !errors.Is(err, maps.ENOTSUPP) {
		t.Errorf("queue batch: %v", err)
	}
}

func TestIterate(t *testing.T) {
	for _, spec := range []maps.Spec{
		{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1000},
		{Type: maps.LRUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1000},
		{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 300},
		{Type: maps.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 1000, CPUs: 3},
	} {
		t.Run(spec.Type.String(), func(t *testing.T) {
			m := mustNew(t, spec)
			vs := 4
			if spec.CPUs > 0 {
				vs = 8 * spec.CPUs
			}
			for i := range uint32(300) {
				v := make([]byte, vs)
				copy(v, u32(i+1))
				wantErrno(t, "update", m.Update(u32(i), v, 0), 0)
			}
			seen := map[uint32]bool{}
			it := maps.Iterate(m)
			for k, v := range it.All() {
				i := binary.LittleEndian.Uint32(k)
				if binary.LittleEndian.Uint32(v) != i+1 || seen[i] {
					t.Fatalf("entry %d = %x (seen %v)", i, v, seen[i])
				}
				seen[i] = true
				// Deleting behind the walk must not disturb it.
				if spec.Type != maps.Array {
					m.Delete(k)
				}
			}
			if it.Err() != nil || len(seen) != 300 {
				t.Errorf("walked %d entries, %v", len(seen), it.Err())
			}
		})
	}
}

func TestSet(t *testing.T) {
	var ms []maps.Map
	for range 20 {
		ms = append(ms, mustNew(t, maps.Spec{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}))
	}
	other := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	for _, n := range []int{0, 1, 8, 9, 20} {
		// Duplicates and nils are left out.
		s := maps.NewSet(append(append([]maps.Map{nil}, ms[:n]...), ms[:n]...)...)
		if s.Len() != n || len(s.All()) != n {
			t.Fatalf("set of %d maps holds %d", n, s.Len())
		}
		for i, m := range ms {
			got, ok := s.Lookup(m.Handle())
			if ok != (i < n) || ok && got != m {
				t.Errorf("set of %d: Lookup of map %d: %v, %v", n, i, got, ok)
			}
		}
		for _, h := range []uint64{0, other.Handle(), ms[0].Handle() + 8, ms[0].Handle() - 1, ^uint64(0)} {
			if m, err := s.Resolve(h); err == nil {
				t.Errorf("set of %d resolves %#x to %v", n, h, m)
			}
		}
	}
	var none *maps.Set
	if _, err := none.Resolve(ms[0].Handle()); err == nil || none.Len() != 0 {
		t.Error("a nil set resolves a handle")
	}
}

func TestReturn(t *testing.T) {
	if maps.Return(nil) != 0 || maps.Return(maps.ENOENT) != uint64(^uint64(1)) {
		t.Error("Return")
	}
	wrapped := fmt.Errorf("context: %w", maps.E2BIG)
	if int64(maps.Return(wrapped)) != -7 || int64(maps.Return(errors.New("x"))) != -22 {
		t.Error("Return of wrapped errors")
	}
}

func TestAccessFlags(t *testing.T) {
	ro := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagRdOnly})
	wantErrno(t, "update read-only", ro.Update(u32(0), u32(0), 0), maps.EPERM)
	wantErrno(t, "program update", ro.(maps.Elems).UpdateElem(0, u32(0), u32(0), 0), 0)
	wo := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagWrOnly})
	wantErrno(t, "update write-only", wo.Update(u32(0), u32(0), 0), 0)
	wantErrno(t, "lookup write-only", wo.Lookup(u32(0), make([]byte, 4)), maps.EPERM)
}

func TestReadOnlyProg(t *testing.T) {
	for _, s := range []maps.Spec{
		{Type: maps.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagRdOnlyProg},
		{Type: maps.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagRdOnlyProg},
		{Type: maps.LPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 1, Flags: maps.FlagRdOnlyProg | maps.FlagNoPrealloc},
	} {
		m := mustNew(t, s)
		e := m.(maps.Elems)
		k := make([]byte, s.KeySize)
		wantErrno(t, s.Type.String()+" go update", m.Update(k, u32(1), 0), 0)
		wantErrno(t, s.Type.String()+" prog update", e.UpdateElem(0, k, u32(2), 0), maps.EPERM)
		if e.LookupElem(0, k) == 0 {
			t.Errorf("%s: programs may still read", s.Type)
		}
		if r := m.Regions(); len(r) != 1 || r[0].Writable {
			t.Errorf("%s: region writable", s.Type)
		}
	}
}
