package waggle_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle"
)

// TestRun_faultNamesSourceLine: a program the kernel's verifier would
// refuse (a map value used without a NULL check) faults in the checked
// interpreter, and the error names the instruction and the C line.
func TestRun_faultNamesSourceLine(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/buggy/buggy.o", &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	_, err = coll.Programs["buggy"].Run(&waggle.RunOptions{Data: make([]byte, 64)})
	if !errors.Is(err, waggle.ErrMemory) {
		t.Fatalf("got %v, want a memory fault", err)
	}
	for _, want := range []string{"program buggy", "instruction ", "buggy.c:23", "*v += 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// TestCollection_mapAPI exercises the cilium/ebpf-shaped Map methods.
func TestCollection_mapAPI(t *testing.T) {
	coll, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{CPUs: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	m := coll.Maps["sources"]
	type counts struct{ Packets, Bytes uint64 }
	key := [4]byte{10, 0, 0, 1}
	if err := m.Update(key, []counts{{1, 100}, {2, 200}, {3, 300}}, waggle.UpdateNoExist); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(key, []counts{{1, 1}, {1, 1}, {1, 1}}, waggle.UpdateNoExist); !errors.Is(err, waggle.ErrKeyExist) {
		t.Fatalf("NOEXIST on a present key: %v", err)
	}
	var got []counts
	if err := m.Lookup(key, &got); err != nil || len(got) != 3 || got[2].Bytes != 300 {
		t.Fatalf("lookup: %v, %v", got, err)
	}
	var k [4]byte
	if err := m.NextKey(nil, &k); err != nil || k != key {
		t.Fatalf("first key %v, %v", k, err)
	}
	if err := m.NextKey(key, &k); !errors.Is(err, waggle.ErrKeyNotExist) {
		t.Fatalf("next after the last: %v", err)
	}
	n := 0
	it := m.Iterate()
	var v []counts
	for it.Next(&k, &v) {
		n++
	}
	if it.Err() != nil || n != 1 {
		t.Fatalf("iterate: %d entries, %v", n, it.Err())
	}
	if err := m.Delete(key); err != nil {
		t.Fatal(err)
	}
	if err := m.Lookup(key, &got); !errors.Is(err, waggle.ErrKeyNotExist) {
		t.Fatalf("after delete: %v", err)
	}
	// Wrong sizes are errors, not panics.
	if err := m.Put(uint16(1), []counts{{}, {}, {}}); err == nil || !strings.Contains(err.Error(), "4") {
		t.Fatalf("short key: %v", err)
	}
	if err := m.Put(key, []counts{{}}); err == nil {
		t.Fatal("one value for three CPUs was accepted")
	}
}

func TestMap_batch(t *testing.T) {
	coll, err := waggle.LoadCollection("examples/blocklist/blocklist.o", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	m := coll.Maps["stats"] // per-CPU array of 3 u64
	cpus := coll.CPUs()
	keys := make([]byte, 4*3)
	values := make([]byte, 8*cpus*3)
	for i := range 3 {
		keys[4*i] = byte(i)
		values[8*cpus*i] = byte(10 + i)
	}
	if n, err := m.BatchUpdate(keys, values, waggle.UpdateAny); err != nil || n != 3 {
		t.Fatalf("batch update: %d, %v", n, err)
	}
	var cursor waggle.MapBatchCursor
	outK, outV := make([]byte, len(keys)), make([]byte, len(values))
	n, err := m.BatchLookup(&cursor, outK, outV)
	if n != 3 || (err != nil && !errors.Is(err, waggle.ErrKeyNotExist)) {
		t.Fatalf("batch lookup: %d, %v", n, err)
	}
	if outV[8*cpus*2] != 12 {
		t.Errorf("values % x", outV)
	}
	// Arrays refuse deletes, as in Linux.
	if _, err := m.BatchDelete(keys[:4]); err == nil {
		t.Error("deleted from an array")
	}
}

// TestLoadCollection_byteOrder: an object compiled for the other byte
// order is refused, naming both orders, as cilium/ebpf and Linux refuse
// it; before, its programs prepared and read their globals backwards.
func TestLoadCollection_byteOrder(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("the test's other-order object is big-endian, and so is this machine")
	}
	_, err := waggle.LoadCollection("loader/testdata/globals_eb.o", nil)
	if err == nil {
		t.Fatal("a big-endian object loaded on a little-endian machine")
	}
	for _, want := range []string{"bpfeb", "bpfel", "-target"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := waggle.LoadCollection("loader/testdata/globals.o", nil); err != nil {
		t.Errorf("the little-endian build of the same object: %v", err)
	}
}
