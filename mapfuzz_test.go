package waggle_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

// fuzzMaps are the maps of FuzzMapMemory's collection: every type that
// hands programs pointers into its memory, and a queue.
var fuzzMaps = []struct {
	name string
	spec ebpf.MapSpec
}{
	{"hash", ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 12, MaxEntries: 8}},
	{"lru", ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 16, MaxEntries: 8}},
	{"percpu_hash", ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
	{"lru_percpu", ebpf.MapSpec{Type: ebpf.LRUCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 8}},
	{"array", ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 20, MaxEntries: 4}},
	{"percpu_array", ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}},
	{"lpm", ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 8, Flags: 1}}, // BPF_F_NO_PREALLOC
	{"ring", ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: 4096}},
	{"queue", ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 4}},
}

const (
	fuzzRing  = 7
	fuzzQueue = 8
	fuzzKeyed = 7 // maps 0-6 have keys and values
)

// fuzzProgram turns data into an XDP program that looks values up (or
// inserts them) in the maps, reserves ring buffer records, and writes and
// reads bytes at any offset from the pointers it gets, then updates and
// deletes elements: what a hostile program does to a map's internals.
func fuzzProgram(data []byte) casm.Instructions {
	next := func() byte {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return b
	}
	next16 := func() int16 { return int16(uint16(next()) | uint16(next())<<8) }
	// The key (8 bytes) at r10-8, a value buffer at r10-72.
	key := func(m, k byte) casm.Instructions {
		if fuzzMaps[m].name == "lpm" {
			return casm.Instructions{
				casm.StoreImm(casm.RFP, -8, int64(k%33), casm.Word),
				casm.StoreImm(casm.RFP, -4, int64(int32(uint32(k)<<24|0x0a)), casm.Word),
			}
		}
		return casm.Instructions{casm.StoreImm(casm.RFP, -8, int64(k%10), casm.Word)}
	}
	mapPtr := func(m byte) casm.Instruction { return casm.LoadMapPtr(casm.R1, 0).WithReference(fuzzMaps[m].name) }
	// skip guards body: it runs only if r0 is not NULL.
	skip := func(body casm.Instructions) casm.Instructions {
		n := 0
		for _, ins := range body {
			n += int(ins.Size() / casm.InstructionSize)
		}
		return append(casm.Instructions{{OpCode: casm.JEq.Op(casm.ImmSource), Dst: casm.R0, Constant: 0, Offset: int16(n)}}, body...)
	}
	pokes := func(ptr casm.Register) casm.Instructions {
		var out casm.Instructions
		for range next() % 4 {
			size := []casm.Size{casm.Byte, casm.Half, casm.Word, casm.DWord}[next()%4]
			off := next16() % 512
			if next()%2 == 0 {
				out = append(out, casm.LoadImm(casm.R2, int64(binary.LittleEndian.Uint64(append([]byte{next(), next(), next(), next()}, 0xff, 0, 0xff, 0))), casm.DWord),
					casm.StoreMem(ptr, off, casm.R2, size))
			} else {
				out = append(out, casm.LoadMem(casm.R2, ptr, off, size))
			}
		}
		return out
	}
	prog := casm.Instructions{stImm64(casm.RFP, -8, 0)}
	fill := int64(int32(binary.LittleEndian.Uint32([]byte{next(), next(), next(), next()})))
	for off := int16(-72); off < -8; off += 8 {
		prog = append(prog, stImm64(casm.RFP, off, fill))
	}
	for i := 0; i < 16 && len(data) > 0; i++ {
		switch op := next() % 5; op {
		case 0, 1: // a value pointer, then pokes through it
			m := next() % fuzzKeyed
			k := next()
			prog = append(prog, key(m, k)...)
			prog = append(prog, mapPtr(m), casm.Mov.Reg(casm.R2, casm.RFP), casm.Add.Imm(casm.R2, -8), casm.FnMapLookupElem.Call())
			if op == 1 { // insert first
				prog = append(prog[:len(prog)-1],
					casm.Mov.Reg(casm.R3, casm.RFP), casm.Add.Imm(casm.R3, -72), casm.Mov.Imm(casm.R4, 0), casm.FnMapUpdateElem.Call(),
					mapPtr(m), casm.Mov.Reg(casm.R2, casm.RFP), casm.Add.Imm(casm.R2, -8), casm.FnMapLookupElem.Call())
			}
			prog = append(prog, skip(append(casm.Instructions{casm.Mov.Reg(casm.R6, casm.R0)}, pokes(casm.R6)...))...)
		case 2: // a ring buffer record, pokes, then submit, discard or leak
			prog = append(prog, mapPtr(fuzzRing), casm.Mov.Imm(casm.R2, int32(next()%64+1)), casm.Mov.Imm(casm.R3, 0), casm.FnRingbufReserve.Call())
			body := append(casm.Instructions{casm.Mov.Reg(casm.R7, casm.R0)}, pokes(casm.R7)...)
			switch next() % 3 {
			case 0:
				body = append(body, casm.Mov.Reg(casm.R1, casm.R7), casm.Mov.Imm(casm.R2, 0), casm.FnRingbufSubmit.Call())
			case 1:
				body = append(body, casm.Mov.Reg(casm.R1, casm.R7), casm.Mov.Imm(casm.R2, 0), casm.FnRingbufDiscard.Call())
			}
			prog = append(prog, skip(body)...)
		case 3: // update or delete an element
			m := next() % fuzzKeyed
			prog = append(prog, key(m, next())...)
			prog = append(prog, mapPtr(m), casm.Mov.Reg(casm.R2, casm.RFP), casm.Add.Imm(casm.R2, -8))
			if next()%2 == 0 {
				prog = append(prog, casm.Mov.Reg(casm.R3, casm.RFP), casm.Add.Imm(casm.R3, -72), casm.Mov.Imm(casm.R4, int32(next()%3)), casm.FnMapUpdateElem.Call())
			} else {
				prog = append(prog, casm.FnMapDeleteElem.Call())
			}
		case 4: // push or pop the queue
			prog = append(prog, mapPtr(fuzzQueue), casm.Mov.Reg(casm.R2, casm.RFP), casm.Add.Imm(casm.R2, -72))
			if next()%2 == 0 {
				prog = append(prog, casm.Mov.Imm(casm.R3, 0), casm.FnMapPushElem.Call())
			} else {
				prog = append(prog, casm.FnMapPopElem.Call())
			}
		}
	}
	return append(prog, casm.Mov.Imm(casm.R0, 2), casm.Return())
}

// stImm64 is `*(u64 *)(dst + off) = imm`, which cilium/ebpf's StoreImm
// does not build.
func stImm64(dst casm.Register, off int16, imm int64) casm.Instruction {
	return casm.Instruction{OpCode: casm.StoreImmOp(casm.DWord), Dst: dst, Offset: off, Constant: imm}
}

// FuzzMapMemory runs generated programs that write and read arbitrary
// bytes at arbitrary offsets from the pointers maps hand out, then uses
// every map again from the program and from Go (Lookup, All, Iterate,
// NextKey, Update, Delete, batches, the ring buffer reader). The property:
// each run and operation ends with a result or an error, never a panic or
// a hang, and the maps stay consistent (no more entries than max_entries,
// every key All lists can be looked up).
func FuzzMapMemory(f *testing.F) {
	// fill, then ops: 1 (insert, then lookup) map key count, pokes of
	// size off off store-or-load value×4; 2 (ring) size pokes... commit.
	f.Add([]byte{1, 2, 3, 4, 1, 0, 1, 2, 3, 0xf8, 0xff, 0, 1, 2, 3, 4})
	f.Add([]byte{9, 9, 9, 9, 1, 1, 5, 2, 3, 0xe8, 0xff, 0, 0x10, 0x20, 0x30, 0x40, 2, 0xf0, 0xff, 1, 3, 1, 1, 1})
	f.Add([]byte{0, 0, 0, 0, 2, 15, 2, 3, 0xf8, 0xff, 0, 9, 9, 9, 9, 0, 16, 0, 0, 1, 2})
	f.Add([]byte{7, 7, 7, 7, 1, 6, 7, 3, 3, 0xfc, 0xff, 0, 0xaa, 0xbb, 0xcc, 0xdd, 3, 6, 7, 1, 3, 0, 1, 0, 2})
	f.Add([]byte{1, 1, 1, 1, 1, 0, 1, 2, 3, 0xf0, 0xff, 0, 5, 5, 5, 5, 3, 0x20, 0, 0, 6, 6, 6, 6, 4, 0, 4, 1, 1, 4, 9, 1, 3, 0xe0, 0xff, 0, 1, 1, 1, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 256 {
			return
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			fuzzMapMemory(t, data)
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			panic(fmt.Sprintf("hang: input %x", data))
		}
	})
}

func fuzzMapMemory(t *testing.T, data []byte) {
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{
		"p": {Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: fuzzProgram(data)},
	}}
	for _, m := range fuzzMaps {
		ms := m.spec
		ms.Name = m.name
		spec.Maps[m.name] = &ms
	}
	coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 2, Budget: 1 << 20})
	if err != nil {
		t.Error(err)
		return
	}
	defer coll.Close()
	rd, err := maps.NewRingBufReader(coll.Maps["ring"].Underlying())
	if err != nil {
		t.Error(err)
		return
	}
	defer rd.Close()
	run := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for cpu := range uint32(2) {
			_, err := coll.Programs["p"].RunContext(ctx, &waggle.RunOptions{Data: make([]byte, 64), CPU: cpu, Flags: 1})
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a run with a budget of 2^20 instructions took 5 s: %v", err)
			}
		}
		rd.SetDeadline(time.Now())
		for n := 0; ; n++ {
			if _, err := rd.Read(); err != nil {
				break
			}
			if n > 4096 {
				t.Error("the ring buffer reader never ends")
				break
			}
		}
	}
	for range 3 {
		run()
		for _, m := range coll.Maps {
			checkFuzzedMap(t, m, data)
		}
	}
}

// checkFuzzedMap uses m from Go every way there is, with bounds on every
// loop, and checks that what it sees is consistent.
func checkFuzzedMap(t *testing.T, m *waggle.Map, data []byte) {
	switch m.Type() {
	case ebpf.RingBuf:
		return
	case ebpf.Queue:
		var v uint64
		for range 8 {
			if err := m.Lookup(nil, &v); err != nil {
				break
			}
			_ = m.Update(nil, uint64(7), waggle.UpdateAny)
		}
		return
	}
	var keys [][]byte
	for k := range m.All() {
		keys = append(keys, k)
		if len(keys) > int(m.MaxEntries()) {
			t.Errorf("map %s: All lists more than %d entries (input %x)", m.Name(), m.MaxEntries(), data)
			return
		}
	}
	for _, k := range keys {
		if v, err := m.LookupBytes(k); err != nil || v == nil {
			t.Errorf("map %s: key %x from All: %v, %v (input %x)", m.Name(), k, v, err, data)
		}
	}
	it := m.Iterate()
	var k, v []byte
	var pv [][8]byte
	n := 0
	for (m.Type() == ebpf.PerCPUHash || m.Type() == ebpf.LRUCPUHash || m.Type() == ebpf.PerCPUArray) && it.Next(&k, &pv) ||
		!(m.Type() == ebpf.PerCPUHash || m.Type() == ebpf.LRUCPUHash || m.Type() == ebpf.PerCPUArray) && it.Next(&k, &v) {
		if n++; n > int(m.MaxEntries()) {
			t.Errorf("map %s: Iterate lists more than %d entries", m.Name(), m.MaxEntries())
			return
		}
	}
	if it.Err() != nil {
		t.Errorf("map %s: Iterate: %v", m.Name(), it.Err())
	}
	next := make([]byte, m.KeySize())
	_ = m.NextKey(nil, &next)
	_ = m.NextKey(make([]byte, m.KeySize()), &next)
	var cursor waggle.MapBatchCursor
	kb := make([]byte, int(m.KeySize())*4)
	vb := make([]byte, 4*64)
	_, _ = m.BatchLookup(&cursor, kb, vb)
	if len(keys) > 0 {
		_ = m.Delete(keys[0])
	}
	val := make([]byte, m.ValueSize())
	if m.Type() == ebpf.PerCPUHash || m.Type() == ebpf.LRUCPUHash || m.Type() == ebpf.PerCPUArray {
		_ = m.Update(make([]byte, m.KeySize()), [][8]byte{{1}, {2}}, waggle.UpdateAny)
	} else {
		_ = m.Update(make([]byte, m.KeySize()), val, waggle.UpdateAny)
	}
	cursor = waggle.MapBatchCursor{}
	_, _ = m.BatchLookupAndDelete(&cursor, kb, vb)
}
