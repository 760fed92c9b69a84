package helpers_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

func mustMap(t *testing.T, spec maps.Spec) maps.Map {
	t.Helper()
	m, err := maps.New(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// runMaps runs src with map handles patched into "lddw rN = map_fd(i)" (the
// i-th map) and every map's memory as a checked region.
func runMaps(t *testing.T, src string, ms ...maps.Map) uint64 {
	t.Helper()
	prog, err := asm.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	reg := maps.NewSet(ms...)
	var regions []engine.Region
	for _, m := range ms {
		for _, r := range m.Regions() {
			regions = append(regions, engine.Region{Data: r.Data, Writable: r.Writable})
		}
	}
	for i := range prog {
		if prog[i].IsLoadImm64() && prog[i].Src == isa.PseudoMapFD {
			h := ms[prog[i].Imm].Handle()
			pair := isa.LoadImm64(prog[i].Dst, 0, h)
			prog[i], prog[i+1] = pair[0], pair[1]
		}
	}
	p, err := checkedEngine(t).Load(prog, engine.Options{Helpers: helpers.Generic().Table()})
	if err != nil {
		t.Fatal(err)
	}
	r0, err := p.Engine().NewMachine().Run(p, &engine.Args{Regions: regions, State: &helpers.State{Maps: reg, CPU: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return r0
}

func TestMapHelpers_hash(t *testing.T) {
	h := mustMap(t, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	got := runMaps(t, `
		r1 = 7
		*(u32 *)(r10 - 4) = r1
		r1 = 100
		*(u64 *)(r10 - 16) = r1
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 1
		call 2            // update(7, 100, BPF_NOEXIST) = 0
		r6 = r0
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 1
		call 2            // again: -EEXIST
		r6 <<= 8
		r0 &= 0xff
		r6 |= r0
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		call 1            // lookup(7)
		if r0 == 0 goto miss
		r1 = *(u64 *)(r0 + 0)
		r1 += 1
		*(u64 *)(r0 + 0) = r1   // in place
		r6 <<= 16
		r6 |= r1
		r0 = r6
		exit
	miss:
		r0 = -1
		exit`, h)
	// 0 (first update), 0xef (-17 & 0xff), 101
	if got != (0<<24|0xef)<<16|101 {
		t.Fatalf("r0 = %#x", got)
	}
	v := make([]byte, 8)
	if err := h.Lookup(binary.NativeEndian.AppendUint32(nil, 7), v); err != nil || binary.NativeEndian.Uint64(v) != 101 {
		t.Fatalf("value after the run: %d, %v", binary.NativeEndian.Uint64(v), err)
	}
}

func TestMapHelpers_queueAndRingbuf(t *testing.T) {
	q := mustMap(t, maps.Spec{Name: "q", Type: maps.Queue, ValueSize: 8, MaxEntries: 4})
	rb := mustMap(t, maps.Spec{Name: "rb", Type: maps.RingBuf, MaxEntries: 4096})
	got := runMaps(t, `
		r1 = 42
		*(u64 *)(r10 - 8) = r1
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -8
		r3 = 0
		call 87           // push 42
		r1 = 0
		*(u64 *)(r10 - 8) = r1
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -8
		call 88           // pop
		r6 = *(u64 *)(r10 - 8)
		r1 = map_fd(1) ll
		r2 = 8
		r3 = 0
		call 131          // reserve 8 bytes
		if r0 == 0 goto out
		*(u64 *)(r0 + 0) = r6
		r1 = r0
		r2 = 0
		call 132          // submit
	out:
		r0 = r6
		exit`, q, rb)
	if got != 42 {
		t.Fatalf("popped %d, want 42", got)
	}
	rd, err := maps.NewRingBufReader(rb)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.SetDeadline(time.Now().Add(time.Second))
	rec, err := rd.Read()
	if err != nil || len(rec.RawSample) != 8 || binary.NativeEndian.Uint64(rec.RawSample) != 42 {
		t.Fatalf("ring buffer record %x, %v", rec.RawSample, err)
	}
}

// TestMapHelpers_lookupPercpu: bpf_map_lookup_percpu_elem reads any CPU's
// copy of a per-CPU value (the run is on CPU 1), gives NULL for a CPU the
// map does not have, and is an error on a map that is not per-CPU (Linux's
// verifier refuses such programs).
func TestMapHelpers_lookupPercpu(t *testing.T) {
	pa := mustMap(t, maps.Spec{Name: "pa", Type: maps.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1, CPUs: 2})
	prog := `
		r1 = 0
		*(u32 *)(r10 - 4) = r1
		r1 = 5
		*(u64 *)(r10 - 16) = r1
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = r10
		r3 += -16
		r4 = 0
		call 2            // update CPU 1's copy to 5
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = 1
		call 195          // CPU 1's copy
		if r0 == 0 goto miss
		r6 = *(u64 *)(r0 + 0)
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = 0
		call 195          // CPU 0's copy
		if r0 == 0 goto miss
		r7 = *(u64 *)(r0 + 0)
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = 2
		call 195          // no CPU 2: NULL
		r0 <<= 16
		r6 <<= 8
		r0 |= r6
		r0 |= r7
		exit
	miss:
		r0 = -1
		exit`
	if got := runMaps(t, prog, pa); got != 5<<8 {
		t.Fatalf("r0 = %#x, want %#x", got, 5<<8)
	}

	h := mustMap(t, maps.Spec{Name: "h", Type: maps.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	p, err := asm.Parse(`
		r1 = 0
		*(u32 *)(r10 - 4) = r1
		r1 = map_fd(0) ll
		r2 = r10
		r2 += -4
		r3 = 0
		call 195
		exit`)
	if err != nil {
		t.Fatal(err)
	}
	pair := isa.LoadImm64(isa.R1, 0, h.Handle())
	p[2], p[3] = pair[0], pair[1]
	reg := maps.NewSet(h)
	lp, err := checkedEngine(t).Load(p, engine.Options{Helpers: helpers.Generic().Table()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = lp.Engine().NewMachine().Run(lp, &engine.Args{State: &helpers.State{Maps: reg}})
	if err == nil || !strings.Contains(err.Error(), "bpf_map_lookup_percpu_elem on map h, a hash") {
		t.Fatalf("error %v", err)
	}
}

// TestRingbufRecordBounds: a checked run reaches a ring buffer record for
// exactly the size it reserved, and only until it submits it, as Linux's
// verifier allows (a PTR_TO_MEM of mem_size = the constant size, released
// by submit); the ring's other bytes (record headers, other records) are
// not the program's. The ring's data area is not among the run's regions,
// as Program.Run leaves it out.
func TestRingbufRecordBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		off   int // the byte written, relative to the record
		after bool
		fault bool
	}{
		{name: "the first byte", off: 0},
		{name: "the last byte", off: 12},
		{name: "one past", off: 13, fault: true},
		{name: "the header before it", off: -1, fault: true},
		{name: "after the submit", off: 0, after: true, fault: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rb := mustMap(t, maps.Spec{Name: "rb", Type: maps.RingBuf, MaxEntries: 4096})
			access := fmt.Sprintf("*(u8 *)(r6 %+d) = 1", tc.off)
			before, after := access, ""
			if tc.after {
				before, after = "", access
			}
			prog, err := asm.Parse(fmt.Sprintf(`
				r1 = map_fd(0) ll
				r2 = 13
				r3 = 0
				call 131
				if r0 == 0 goto out
				r6 = r0
				%s
				r1 = r6
				r2 = 0
				call 132
				%s
			out:
				r0 = 0
				exit`, before, after))
			if err != nil {
				t.Fatal(err)
			}
			pair := isa.LoadImm64(isa.R1, 0, rb.Handle())
			prog[0], prog[1] = pair[0], pair[1]
			p, err := checkedEngine(t).Load(prog, engine.Options{Helpers: helpers.Generic().Table()})
			if err != nil {
				t.Fatal(err)
			}
			st := &helpers.State{Maps: maps.NewSet(rb)}
			_, err = p.Engine().NewMachine().Run(p, &engine.Args{State: st})
			st.Release()
			if tc.fault != errors.Is(err, engine.ErrMemory) || !tc.fault && err != nil {
				t.Fatalf("%v, want a fault: %v", err, tc.fault)
			}
			if err != nil {
				t.Log(err)
			}
		})
	}
}
