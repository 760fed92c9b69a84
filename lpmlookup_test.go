package waggle_test

import (
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// lpmSpec is an XDP program that looks the key at byte 14 of its packet
// (a u32 prefix length and n bytes of data) up in the trie "trie" and
// returns the value found, a u32, or 0xffff for none.
func lpmSpec(n int) *ebpf.CollectionSpec {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(14+4+n)),
		{OpCode: asm.JGT.Op(asm.RegSource), Dst: asm.R4, Src: asm.R3}, // to the miss, below
	}
	for i := range 4 + n {
		insns = append(insns,
			asm.LoadMem(asm.R5, asm.R2, int16(14+i), asm.Byte),
			asm.StoreMem(asm.RFP, int16(-40+i), asm.R5, asm.Byte))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, 0).WithReference("trie"),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -40),
		asm.FnMapLookupElem.Call(),
		asm.Instruction{OpCode: asm.JEq.Op(asm.ImmSource), Dst: asm.R0, Constant: 0, Offset: 2},
		asm.LoadMem(asm.R0, asm.R0, 0, asm.Word),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 0xffff),
		asm.Return(),
	)
	// The bounds check's jump goes to the miss: count the slots to it.
	slots := 0
	for _, ins := range insns[5 : len(insns)-2] {
		slots += int(ins.Size() / asm.InstructionSize)
	}
	insns[4].Offset = int16(slots)
	return &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"trie": {Name: "trie", Type: ebpf.LPMTrie, KeySize: uint32(4 + n), ValueSize: 4,
			MaxEntries: 4096, Flags: 1 /* BPF_F_NO_PREALLOC */}},
		Programs: map[string]*ebpf.ProgramSpec{"lookup": {Name: "lookup", Type: ebpf.XDP, License: "GPL", Instructions: insns}},
	}
}

// TestLPMLookup_engines looks keys up in tries of random prefixes on every
// engine (the JIT walks a trie the program names natively) and requires
// the same answers: data of 1 to 16 bytes (the walk compares 8, 4 and 1
// bytes at a time), prefix lengths from 0 to all the bits and past them,
// keys that extend a prefix, that leave it at every bit, and random ones;
// then again after deletes, which leave intermediate nodes.
func TestLPMLookup_engines(t *testing.T) {
	for _, n := range []int{1, 3, 4, 5, 8, 12, 16} {
		rng := rand.New(rand.NewPCG(uint64(n), 7))
		bits := 8 * n
		var prefixes [][]byte // keys in the map's layout
		for range 300 {
			k := make([]byte, 4+n)
			binary.NativeEndian.PutUint32(k, uint32(rng.IntN(bits+1)))
			for i := range n {
				k[4+i] = byte(rng.IntN(4)) << 6 // few distinct bits: shared prefixes
				if rng.IntN(3) == 0 {
					k[4+i] = byte(rng.Uint32())
				}
			}
			prefixes = append(prefixes, k)
		}
		var keys [][]byte
		for _, p := range prefixes {
			for range 4 {
				k := slices.Clone(p)
				binary.NativeEndian.PutUint32(k, uint32(rng.IntN(bits+2))) // past the bits too
				if b := rng.IntN(bits); rng.IntN(2) == 0 {
					k[4+b/8] ^= 0x80 >> (b % 8) // leave the prefix at bit b
				}
				keys = append(keys, k)
			}
		}
		frames := make([][]byte, len(keys))
		for i, k := range keys {
			frames[i] = append(make([]byte, 14), k...)
			frames[i] = append(frames[i], make([]byte, 64)...)
		}
		var want []uint32
		for _, e := range waggle.Engines() {
			coll, err := waggle.NewCollection(lpmSpec(n), &waggle.CollectionOptions{Engine: e, CPUs: 1})
			if err != nil {
				t.Fatalf("%d bytes, %s: %v", n, e, err)
			}
			trie := coll.Maps["trie"]
			for i, p := range prefixes {
				if err := trie.Put(p, uint32(i+1)); err != nil {
					t.Fatal(err)
				}
			}
			var got []uint32
			run := func() {
				runs := make([]waggle.BatchRun, len(frames))
				for i := range runs {
					runs[i].Data = frames[i]
				}
				if k, err := coll.Programs["lookup"].RunBatch(runs, nil); err != nil {
					t.Fatalf("%d bytes, %s: run %d: %v", n, e, k, err)
				}
				for _, r := range runs {
					got = append(got, r.Retval)
				}
			}
			run()
			for i, p := range prefixes {
				if i%3 == 0 {
					trie.Delete(p) // a prefix given twice is gone already
				}
			}
			run()
			coll.Close()
			if want == nil {
				want = got
				hits := 0
				for _, v := range got {
					if v != 0xffff {
						hits++
					}
				}
				if hits < len(got)/4 || hits == len(got) {
					t.Fatalf("%d bytes: %d of %d lookups found a prefix; the test wants both answers often", n, hits, len(got))
				}
				continue
			}
			for i := range got {
				if got[i] != want[i] {
					k := keys[i%len(keys)]
					t.Fatalf("%d bytes, %s: key %x (run %d): %#x, %s found %#x", n, e, k, i, got[i], waggle.Engines()[0], want[i])
				}
			}
		}
	}
}

// prefixOf reports whether the trie key p (u32 prefix length, data) is a
// prefix of key k's data up to k's prefix length.
func prefixOf(p, k []byte) bool {
	pl, kl := binary.NativeEndian.Uint32(p), binary.NativeEndian.Uint32(k)
	if pl > kl {
		return false
	}
	for b := range pl {
		if (p[4+b/8]^k[4+b/8])&(0x80>>(b%8)) != 0 {
			return false
		}
	}
	return true
}

// TestLPMLookup_concurrent looks keys up on every engine, on two workers,
// while Go deletes and puts prefixes back: each answer must be the value of
// a prefix that matches the key (the trie's seqlock and the run's section
// keep a walk from mixing versions of the trie or reading a node reused
// meanwhile).
func TestLPMLookup_concurrent(t *testing.T) {
	const n = 4
	rng := rand.New(rand.NewPCG(11, 12))
	var prefixes [][]byte
	for range 200 {
		k := make([]byte, 4+n)
		binary.NativeEndian.PutUint32(k, uint32(8+rng.IntN(25)))
		k[4], k[5], k[6], k[7] = 10, byte(rng.IntN(4)), byte(rng.IntN(8)), byte(rng.Uint32())
		prefixes = append(prefixes, k)
	}
	var frames [][]byte
	for range 512 {
		k := make([]byte, 4+n)
		binary.NativeEndian.PutUint32(k, 32)
		k[4], k[5], k[6], k[7] = 10, byte(rng.IntN(4)), byte(rng.IntN(8)), byte(rng.Uint32())
		frames = append(frames, append(append(make([]byte, 14), k...), make([]byte, 64)...))
	}
	for _, e := range waggle.Engines() {
		coll, err := waggle.NewCollection(lpmSpec(n), &waggle.CollectionOptions{Engine: e, CPUs: 2})
		if err != nil {
			t.Fatal(err)
		}
		trie := coll.Maps["trie"]
		for i, p := range prefixes {
			if err := trie.Put(p, uint32(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		done := make(chan struct{})
		writer := make(chan int)
		go func() {
			wr := rand.New(rand.NewPCG(13, 14))
			changes := 0
			for {
				select {
				case <-done:
					writer <- changes
					return
				default:
				}
				i := wr.IntN(len(prefixes))
				trie.Delete(prefixes[i])
				if err := trie.Put(prefixes[i], uint32(i+1)); err != nil {
					t.Error(err)
				}
				changes++
			}
		}()
		runs := make([]waggle.BatchRun, len(frames))
		hits := 0
		for round := range 200 {
			for i := range runs {
				runs[i] = waggle.BatchRun{Data: frames[i]}
			}
			if k, err := coll.Programs["lookup"].RunBatch(runs, &waggle.RunBatchOptions{Workers: 2}); err != nil {
				t.Fatalf("%s: run %d: %v", e, k, err)
			}
			for i, r := range runs {
				if r.Retval == 0xffff {
					continue
				}
				hits++
				key := frames[i][14 : 14+4+n]
				if r.Retval < 1 || int(r.Retval) > len(prefixes) || !prefixOf(prefixes[r.Retval-1], key) {
					t.Fatalf("%s: round %d: key %x found value %d, not a prefix of it", e, round, key, r.Retval)
				}
			}
		}
		close(done)
		changes := <-writer
		coll.Close()
		if hits == 0 || changes == 0 {
			t.Fatalf("%s: %d hits, %d changes: the test raced nothing", e, hits, changes)
		}
		t.Logf("%s: %d hits while Go made %d changes", e, hits, changes)
	}
}

// TestLPMLookup_corrupt writes over a trie's nodes (its root's children
// pointing back at the root, a loop; a link past the node slots; a prefix
// length past the key's bits) and looks keys up on every engine: the JIT's
// native walk must send such a walk to Go, which refuses the corrupt trie,
// so that every engine ends, gives the same answers, and none reads outside
// the map.
func TestLPMLookup_corrupt(t *testing.T) {
	const n = 4
	for _, corrupt := range []struct {
		name  string
		write func(node func(i uint32) uint64, root uint32, nodes uint32)
	}{
		{"a loop", func(node func(uint32) uint64, root, _ uint32) {
			mem.Store32(node(root), uint64(root))
			mem.Store32(node(root)+4, uint64(root))
		}},
		{"past the nodes", func(node func(uint32) uint64, root, nodes uint32) {
			mem.Store32(node(root), uint64(nodes+5))
			mem.Store32(node(root)+4, 0xffffffff)
		}},
		{"a prefix past the key", func(node func(uint32) uint64, root, _ uint32) {
			mem.Store32(node(root)+8, 1000)
		}},
	} {
		t.Run(corrupt.name, func(t *testing.T) {
			var want []uint32
			for _, e := range waggle.Engines() {
				coll, err := waggle.NewCollection(lpmSpec(n), &waggle.CollectionOptions{Engine: e, CPUs: 1})
				if err != nil {
					t.Fatal(err)
				}
				trie := coll.Maps["trie"]
				for i, p := range [][4]byte{{10, 0, 0, 0}, {10, 1, 0, 0}, {10, 1, 2, 0}, {192, 168, 0, 0}} {
					key := binary.NativeEndian.AppendUint32(nil, uint32(8+8*(i%3)))
					if err := trie.Put(append(key, p[:]...), uint32(i+1)); err != nil {
						t.Fatal(err)
					}
				}
				h := trie.Underlying().Handle()
				nsize, data := mem.Load32(h+maps.HeaderElemSize), mem.Load64(h+maps.HeaderData)
				root, nodes := uint32(mem.Load32(h+maps.HeaderLPMRoot)), uint32(mem.Load32(h+maps.HeaderLPMNodes))
				corrupt.write(func(i uint32) uint64 { return data + uint64(i)*nsize }, root, nodes)
				var got []uint32
				for _, a := range [][4]byte{{10, 1, 2, 3}, {10, 9, 9, 9}, {192, 168, 1, 1}, {1, 2, 3, 4}} {
					frame := make([]byte, 64)
					binary.NativeEndian.PutUint32(frame[14:], 32)
					copy(frame[18:], a[:])
					ret, err := coll.Programs["lookup"].Run(&waggle.RunOptions{Data: frame})
					if err != nil {
						t.Fatalf("%s: %v", e, err)
					}
					got = append(got, ret)
				}
				coll.Close()
				if want == nil {
					want = got
				} else if !slices.Equal(got, want) {
					t.Fatalf("%s: %v, %s gave %v", e, got, waggle.Engines()[0], want)
				}
			}
		})
	}
}
