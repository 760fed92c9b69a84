package waggle_test

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/forge/forge.c -o testdata/forge/forge.o

// forgeFrame is a frame carrying the distance forge.c's programs add to
// the handle of their own map.
func forgeFrame(delta uint64) []byte {
	in := smallFrame()
	binary.LittleEndian.PutUint64(in[14:], delta)
	return in
}

// TestHostile_forgedHandle: a program that makes up the handle of a map
// of its collection it does not reference (its own map's handle plus the
// distance), and passes it to a map helper, fails with a fault naming the
// instruction, as Linux's verifier would refuse it, and the other map is
// left as it was; with the handle of its own map, the same program works.
// Every helper that takes a map is tried: lookup, update, delete, push,
// pop, peek, ring buffer output, reserve and query, perf event output, a
// tail call through a forged prog array, for_each_map_elem, redirect_map
// and lookup_percpu_elem.
func TestHostile_forgedHandle(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/forge/forge.o", &waggle.CollectionOptions{CPUs: 2, Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []string{"hash_own", "hash_victim"} {
		must(coll.Maps[m].Put(uint32(0), uint64(1)))
	}
	for _, m := range []string{"queue_own", "queue_victim"} {
		must(coll.Maps[m].Put(nil, uint64(5)))
	}
	must(coll.Maps["jt_own"].Put(uint32(0), coll.Programs["landing_own"]))
	must(coll.Maps["jt_victim"].Put(uint32(0), coll.Programs["landing_victim"]))
	must(coll.Maps["dev_own"].Put(uint32(0), uint32(1)))
	must(coll.Maps["dev_victim"].Put(uint32(0), uint32(2)))

	// state describes a map's contents, to compare before and after.
	state := func(name string) string {
		m := coll.Maps[name].Underlying()
		var b strings.Builder
		switch m.Spec().Type {
		case maps.RingBuf:
			rb := m.(maps.RingBuffer)
			b.WriteString(string(binary.LittleEndian.AppendUint64(nil, rb.Query(maps.RingBufProdPos))))
		case maps.Queue:
			v := make([]byte, 8)
			err := m.Lookup(nil, v)
			b.WriteString(string(v) + errString(err))
		case maps.PerfEventArray:
			// No reader: an output would be lost either way.
		default:
			for k, v := range maps.All(m) {
				b.WriteString(string(k) + "=" + string(v) + ";")
			}
		}
		return b.String()
	}
	handle := func(name string) uint64 { return coll.Maps[name].Underlying().Handle() }
	for _, tc := range []struct {
		prog, own, victim string
		ret               uint32 // with the program's own map
	}{
		{"forge_lookup", "hash_own", "hash_victim", 2},
		{"forge_update", "hash_own", "hash_victim", 2},
		{"forge_delete", "hash_own", "hash_victim", 2},
		{"forge_push", "queue_own", "queue_victim", 2},
		{"forge_pop", "queue_own", "queue_victim", 2},
		{"forge_peek", "queue_own", "queue_victim", 2},
		{"forge_ringbuf_output", "rb_own", "rb_victim", 2},
		{"forge_ringbuf_reserve", "rb_own", "rb_victim", 2},
		{"forge_ringbuf_query", "rb_own", "rb_victim", 2},
		{"forge_perf_output", "perf_own", "perf_victim", 1}, // no reader: ENOENT, as in Linux
		{"forge_tail_call", "jt_own", "jt_victim", 2},
		{"forge_for_each", "hash_own", "hash_victim", 2},
		{"forge_redirect_map", "dev_own", "dev_victim", 4}, // XDP_REDIRECT
		{"forge_lookup_percpu", "pcpu_own", "pcpu_victim", 2},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			p := coll.Programs[tc.prog]
			must(coll.Maps["hash_own"].Put(uint32(0), uint64(1)))
			before := map[string]string{}
			for _, m := range []string{tc.victim, "hash_victim"} {
				before[m] = state(m)
			}
			delta := handle(tc.victim) - handle(tc.own)
			_, err := p.Run(&waggle.RunOptions{Data: forgeFrame(delta)})
			var f *waggle.Fault
			if !errors.As(err, &f) || !errors.Is(err, maps.ErrUnreferenced) || !strings.Contains(err.Error(), "instruction ") {
				t.Fatalf("with %s's handle: %v, want a fault naming the instruction and maps.ErrUnreferenced", tc.victim, err)
			}
			if ins := p.Instructions()[f.PC]; !ins.IsHelperCall() {
				t.Errorf("the fault names instruction %d, %v, not the helper call", f.PC, ins)
			}
			for m, s := range before {
				if got := state(m); got != s {
					t.Errorf("%s changed: %q, was %q", m, got, s)
				}
			}
			// A forged handle that is no map at all fails the same way.
			if _, err := p.Run(&waggle.RunOptions{Data: forgeFrame(8)}); !errors.Is(err, maps.ErrUnreferenced) {
				t.Errorf("with a handle 8 bytes into %s: %v", tc.own, err)
			}
			if ret, err := p.Run(&waggle.RunOptions{Data: forgeFrame(0)}); err != nil || ret != tc.ret {
				t.Fatalf("with its own map: %d, %v; want %d", ret, err, tc.ret)
			}
		})
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestHostile_forgedInnerHandle: a program may pass helpers the inner map
// its lookup in a map-in-map it references returns, but not another inner
// map, held by a map-in-map it does not reference. After a tail call,
// helpers accept the target's maps and no longer the caller's.
func TestHostile_forgedInnerHandle(t *testing.T) {
	coll, err := waggle.LoadCollection("testdata/forge/forge.o", &waggle.CollectionOptions{CPUs: 2, Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	handle := func(name string) uint64 { return coll.Maps[name].Underlying().Handle() }
	p := coll.Programs["forge_inner"]
	if _, err := p.Run(&waggle.RunOptions{Data: forgeFrame(handle("in_other") - handle("in_own"))}); !errors.Is(err, maps.ErrUnreferenced) {
		t.Fatalf("forge_inner with in_other's handle: %v", err)
	}
	var v uint64
	if err := coll.Maps["in_other"].Lookup(uint32(0), &v); err != nil || v != 0 {
		t.Fatalf("in_other = %#x, %v; want 0", v, err)
	}
	if ret, err := p.Run(&waggle.RunOptions{Data: forgeFrame(0)}); err != nil || ret != 2 {
		t.Fatalf("forge_inner with the inner map it looked up: %d, %v", ret, err)
	}
	if err := coll.Maps["in_own"].Lookup(uint32(0), &v); err != nil || v != 0x666 {
		t.Fatalf("in_own = %#x, %v; want 0x666", v, err)
	}
	// An inner map stored later is allowed too.
	if err := coll.Maps["outer_own"].Update(uint32(0), coll.Maps["in_other"], waggle.UpdateAny); err != nil {
		t.Fatal(err)
	}
	if ret, err := p.Run(&waggle.RunOptions{Data: forgeFrame(0)}); err != nil || ret != 2 {
		t.Fatalf("forge_inner with in_other stored in outer_own: %d, %v", ret, err)
	}
	if err := coll.Maps["in_other"].Lookup(uint32(0), &v); err != nil || v != 0x666 {
		t.Fatalf("in_other = %#x, %v; want 0x666", v, err)
	}

	// Tail calls.
	if err := coll.Maps["tc_caller_map"].Put(uint32(0), uint64(1)); err != nil {
		t.Fatal(err)
	}
	if err := coll.Maps["jt_tc"].Put(uint32(0), coll.Programs["tc_callee"]); err != nil {
		t.Fatal(err)
	}
	caller := coll.Programs["tc_caller"]
	_, err = caller.Run(&waggle.RunOptions{Data: forgeFrame(handle("tc_caller_map") - handle("tc_callee_map"))})
	if !errors.Is(err, maps.ErrUnreferenced) || !strings.Contains(err.Error(), "in program tc_callee, entered by a tail call") {
		t.Fatalf("tc_callee with its caller's map: %v", err)
	}
	if err := coll.Maps["tc_caller_map"].Lookup(uint32(0), &v); err != nil || v != 1 {
		t.Fatalf("tc_caller_map = %#x, %v; want 1", v, err)
	}
	for range 2 { // the second run starts in tc_caller's maps again
		if ret, err := caller.Run(&waggle.RunOptions{Data: forgeFrame(0), Repeat: 2}); err != nil || ret != 2 {
			t.Fatalf("tc_callee with its own map: %d, %v", ret, err)
		}
	}
	if err := coll.Maps["tc_callee_map"].Lookup(uint32(0), &v); err != nil || v != 0x666 {
		t.Fatalf("tc_callee_map = %#x, %v; want 0x666", v, err)
	}
}
