package maps_test

import (
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// lpmKey is a struct bpf_lpm_trie_key_u8 with an IPv4 address.
func lpm4(plen, addr uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, plen), addr)
}

// TestSection_LPM: a value pointer looked up inside a Section keeps its
// prefix's value after the prefix is deleted and other updates free and
// take nodes, as in Linux, where the trie frees nodes after an RCU grace
// period; a section that does not end costs no capacity and no errors (a
// full trie still replaces its prefixes and refuses new ones with ENOSPC,
// as Linux's does), only the guarantee for that section once its spare
// nodes run out; once it ends, nodes are reused on time again and the trie
// holds what was written.
func TestSection_LPM(t *testing.T) {
	const max = 16
	m := mustNew(t, maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: max, Flags: maps.FlagNoPrealloc, CPUs: 2})
	maps.LPMGrace(m, 20*time.Millisecond)
	e := m.(maps.Elems)
	prefix := func(i uint32) []byte { return lpm4(24, 0x0a000000|i<<8) }
	want := map[uint32]uint64{}
	put := func(i uint32, v uint64, prog bool) {
		t.Helper()
		var err error
		if prog {
			err = e.UpdateElem(1, prefix(i), u64(v), maps.UpdateAny)
		} else {
			err = m.Update(prefix(i), u64(v), maps.UpdateAny)
		}
		if err != nil {
			t.Fatalf("update prefix %d (program side %v): %v", i, prog, err)
		}
		want[i] = v
	}
	for i := range uint32(max) {
		put(i, uint64(i), false)
	}

	var s maps.Section
	s.Enter(m, 1)
	a := e.LookupElem(1, lpm4(32, 0x0a000307))
	if a == 0 || mem.Load64(a) != 3 {
		t.Fatalf("lookup of 10.0.3.7 inside 10.0.3.0/24: address %#x", a)
	}
	if err := m.Delete(prefix(3)); err != nil {
		t.Fatal(err)
	}
	delete(want, 3)
	var live []uint32
	for i := range want {
		live = append(live, i)
	}
	// Fewer frees than the spare nodes (max(max_entries, 64) plus what the
	// trie does not use): the deleted node is not reused. (Replacements
	// take leaf nodes, whose values they write.)
	for n := range 60 {
		put(live[n%len(live)], uint64(1000+n), false)
		if got := mem.Load64(a); got != 3 {
			t.Fatalf("after %d replacements the deleted prefix's value reads %d, want 3", n+1, got)
		}
	}
	put(100, 100, false)
	live = append(live, 100)
	if early, waits := maps.LPMGrace(m, 0); early != 0 || waits != 0 {
		t.Fatalf("%d nodes reused early and %d waits with spare nodes left", early, waits)
	}
	// The section does not end: updates keep answering as Linux's do.
	for n := range 200 {
		put(live[n%max], uint64(2000+n), n%2 == 0)
	}
	if early, _ := maps.LPMGrace(m, 0); early == 0 {
		t.Fatal("no node reused early, with more frees than spare nodes inside one section")
	}
	if err := m.Update(prefix(200), u64(1), maps.UpdateAny); !errors.Is(err, maps.ENOSPC) {
		t.Fatalf("new prefix in a full trie: %v, want ENOSPC", err)
	}
	if err := e.UpdateElem(0, prefix(200), u64(1), maps.UpdateNoExist); !errors.Is(err, maps.ENOSPC) {
		t.Fatalf("new prefix in a full trie, program side: %v, want ENOSPC", err)
	}
	s.Exit()
	if s.Held() {
		t.Fatal("the section still holds the trie after Exit")
	}

	// Nodes are reused on time again.
	early, _ := maps.LPMGrace(m, 0)
	for n := range 500 {
		put(live[n%max], uint64(3000+n), n%3 == 0)
	}
	if got, _ := maps.LPMGrace(m, 0); got != early {
		t.Fatalf("%d more nodes reused early with no section open", got-early)
	}
	checkLPM(t, m, prefix, want)

	// No capacity was lost: empty it, and max_entries fresh prefixes fit.
	for i := range want {
		if err := m.Delete(prefix(i)); err != nil {
			t.Fatal(err)
		}
	}
	clear(want)
	for i := range uint32(max) {
		put(500+i, uint64(i), i%2 == 0)
	}
	if err := m.Update(prefix(600), u64(1), maps.UpdateAny); !errors.Is(err, maps.ENOSPC) {
		t.Fatalf("prefix %d of %d: %v, want ENOSPC", max+1, max, err)
	}
	checkLPM(t, m, prefix, want)
}

// checkLPM requires trie m to hold exactly want (prefix index -> value).
func checkLPM(t *testing.T, m maps.Map, prefix func(uint32) []byte, want map[uint32]uint64) {
	t.Helper()
	v := make([]byte, 8)
	for i, w := range want {
		if err := m.Lookup(prefix(i), v); err != nil || binary.LittleEndian.Uint64(v) != w {
			t.Fatalf("prefix %d: %d, %v; want %d", i, binary.LittleEndian.Uint64(v), err, w)
		}
	}
	n := 0
	for range maps.All(m) {
		n++
	}
	if n != len(want) {
		t.Fatalf("the trie holds %d prefixes, want %d", n, len(want))
	}
}

// TestSection_Enter: a section holds a map once however often it enters
// it, holds nothing for maps without grace periods, and a Go-side update
// waits for a section that ends while it waits.
func TestSection_Enter(t *testing.T) {
	hash := mustNew(t, maps.Spec{Type: maps.Hash, KeySize: 8, ValueSize: 8, MaxEntries: 4})
	trie := mustNew(t, maps.Spec{Type: maps.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 1, Flags: maps.FlagNoPrealloc, CPUs: 1})
	var s maps.Section
	s.Enter(hash, 0)
	if s.Held() {
		t.Fatal("a section holds a hash map, which has no grace periods")
	}
	maps.LPMGrace(trie, time.Hour)
	if err := trie.Update(lpm4(8, 0x0a000000), u64(1), maps.UpdateAny); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		s.Enter(trie, 5)
	}
	// Replace the prefix until every spare node waits for the section,
	// and end the section while the next replacement waits for it.
	done := make(chan error)
	go func() {
		for n := range 1000 {
			if err := trie.Update(lpm4(8, 0x0a000000), u64(uint64(n)), maps.UpdateAny); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	var err error
	finished := false
	for !finished {
		if _, waits := maps.LPMGrace(trie, 0); waits > 0 {
			break
		}
		select {
		case err = <-done:
			finished = true
		default:
			runtime.Gosched()
		}
	}
	s.Exit()
	if finished {
		t.Fatalf("1000 replacements inside a section never waited for it (%v)", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if early, _ := maps.LPMGrace(trie, 0); early != 0 {
		t.Fatalf("%d nodes reused early; the section ended", early)
	}
}
