package waggle_test

import (
	"fmt"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
)

// TestHashLookup_engines looks keys of many sizes up in hashes and per-CPU
// hashes with bpf_map_lookup_elem, present and absent, on every CPU slot
// and every engine (the JIT hashes and walks the chains natively): the
// value found, or NULL.
func TestHashLookup_engines(t *testing.T) {
	const cpus, keys = 2, 40
	sizes := []uint32{1, 2, 3, 4, 5, 7, 8, 9, 12, 13, 16, 17, 24, 31, 64}
	prog := lookupProg
	spec := &ebpf.CollectionSpec{Maps: map[string]*ebpf.MapSpec{}, Programs: map[string]*ebpf.ProgramSpec{}}
	for _, ks := range sizes {
		for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.PerCPUHash} {
			name := fmt.Sprintf("h%d_%d", typ, ks)
			spec.Maps[name] = &ebpf.MapSpec{Name: name, Type: typ, KeySize: ks, ValueSize: 4, MaxEntries: keys}
			spec.Programs[name] = prog(name, ks)
		}
	}
	key := func(ks uint32, i int) []byte {
		k := make([]byte, ks)
		for j := range k {
			k[j] = byte(i*7 + j*13)
		}
		return k
	}
	for _, e := range waggle.Engines() {
		t.Run(e.String(), func(t *testing.T) {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: cpus, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			for _, ks := range sizes {
				for i := range keys - 4 { // the last 4 stay absent
					if err := coll.Maps[fmt.Sprintf("h%d_%d", ebpf.Hash, ks)].Put(key(ks, i), uint32(1000+i)); err != nil {
						t.Fatal(err)
					}
					if err := coll.Maps[fmt.Sprintf("h%d_%d", ebpf.PerCPUHash, ks)].Put(key(ks, i), []uint32{uint32(2000 + i), uint32(3000 + i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, ks := range sizes {
				for cpu := range uint32(cpus) {
					for i := range keys {
						data := append(append([]byte{0}, key(ks, i)...), make([]byte, 64)...)
						opts := &waggle.RunOptions{Data: data, CPU: cpu, Flags: 1}
						for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.PerCPUHash} {
							got, err := coll.Programs[fmt.Sprintf("h%d_%d", typ, ks)].Run(opts)
							want := uint32(1000 + i)
							if typ == ebpf.PerCPUHash {
								want = uint32(2000 + 1000*int(cpu) + i)
							}
							if i >= keys-4 {
								want = 0xdead
							}
							if err != nil || got != want {
								t.Fatalf("%v, key size %d, CPU %d, key %d: %d, %v, want %d", typ, ks, cpu, i, got, err, want)
							}
						}
					}
				}
			}
		})
	}
}

// TestHashLookup_collisions looks up keys whose hashes are equal (found by
// a birthday search with jhash and BPF_F_ZERO_SEED): with one of a pair
// stored, the other is absent; with both, each finds its own value. So
// the engines compare keys, not only hashes.
func TestHashLookup_collisions(t *testing.T) {
	for _, ks := range []uint32{4, 13, 16} {
		a, b := jhashCollision(t, ks)
		spec := &ebpf.CollectionSpec{
			Maps:     map[string]*ebpf.MapSpec{"h": {Name: "h", Type: ebpf.Hash, KeySize: ks, ValueSize: 4, MaxEntries: 8, Flags: 0x40 /* BPF_F_ZERO_SEED */}},
			Programs: map[string]*ebpf.ProgramSpec{},
		}
		p := lookupProg("h", ks)
		spec.Programs["h"] = p
		for _, e := range waggle.Engines() {
			coll, err := waggle.NewCollection(spec, &waggle.CollectionOptions{CPUs: 1, Engine: e})
			if err != nil {
				t.Fatal(err)
			}
			run := func(k []byte) uint32 {
				ret, err := coll.Programs["h"].Run(&waggle.RunOptions{Data: append(append([]byte{0}, k...), make([]byte, 64)...)})
				if err != nil {
					t.Fatal(err)
				}
				return ret
			}
			if err := coll.Maps["h"].Put(a, uint32(1)); err != nil {
				t.Fatal(err)
			}
			if got := run(b); got != 0xdead {
				t.Errorf("%s, key size %d: %x stored, %x (same hash) found %#x", e, ks, a, b, got)
			}
			if err := coll.Maps["h"].Put(b, uint32(2)); err != nil {
				t.Fatal(err)
			}
			if ga, gb := run(a), run(b); ga != 1 || gb != 2 {
				t.Errorf("%s, key size %d: both stored, found %d and %d, want 1 and 2", e, ks, ga, gb)
			}
			coll.Close()
		}
	}
}

// lookupProg returns a program that looks the packet's bytes from
// offset 1, copied to the stack, up in map m, whose keys have ks bytes,
// and returns the value's first word, or 0xdead if it is absent.
func lookupProg(m string, ks uint32) *ebpf.ProgramSpec {
	insns := asm.Instructions{
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, int32(1+ks)),
		asm.Mov.Imm(asm.R0, 0),
		jump(asm.JGT.Reg(asm.R4, asm.R3, ""), int16(2*ks+9)),
	}
	for i := range int16(ks) {
		insns = append(insns,
			asm.LoadMem(asm.R5, asm.R2, 1+i, asm.Byte),
			asm.StoreMem(asm.RFP, -64+i, asm.R5, asm.Byte))
	}
	insns = append(insns,
		asm.LoadMapPtr(asm.R1, 0).WithReference(m),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -64),
		asm.FnMapLookupElem.Call(),
		asm.Mov.Reg(asm.R1, asm.R0),
		asm.Mov.Imm(asm.R0, 0xdead),
		jump(asm.JEq.Imm(asm.R1, 0, ""), 1),
		asm.LoadMem(asm.R0, asm.R1, 0, asm.Word),
		asm.Return(),
	)
	return &ebpf.ProgramSpec{Name: m, Type: ebpf.XDP, License: "GPL", Instructions: insns}
}

// jhashCollision returns two different keys of ks bytes with the same
// jhash under seed 0 (Linux's include/linux/jhash.h, written out here
// as the oracle).
func jhashCollision(t *testing.T, ks uint32) ([]byte, []byte) {
	seen := map[uint32][]byte{}
	for i := range uint64(1 << 22) {
		k := make([]byte, ks)
		for j := range k {
			k[j] = byte((i*0x9e3779b97f4a7c15 + uint64(j)*0x632be59bd9b4e019) >> (8 * (j % 8)))
		}
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		h := jhashRef(k, 0)
		if o, ok := seen[h]; ok && string(o) != string(k) {
			return o, k
		}
		seen[h] = k
	}
	t.Fatalf("no jhash collision among 2^22 keys of %d bytes", ks)
	return nil, nil
}

func jhashRef(k []byte, seed uint32) uint32 {
	rol := func(x uint32, n uint) uint32 { return x<<n | x>>(32-n) }
	a := 0xdeadbeef + uint32(len(k)) + seed
	b, c := a, a
	for len(k) > 12 {
		a += uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
		b += uint32(k[4]) | uint32(k[5])<<8 | uint32(k[6])<<16 | uint32(k[7])<<24
		c += uint32(k[8]) | uint32(k[9])<<8 | uint32(k[10])<<16 | uint32(k[11])<<24
		a -= c
		a ^= rol(c, 4)
		c += b
		b -= a
		b ^= rol(a, 6)
		a += c
		c -= b
		c ^= rol(b, 8)
		b += a
		a -= c
		a ^= rol(c, 16)
		c += b
		b -= a
		b ^= rol(a, 19)
		a += c
		c -= b
		c ^= rol(b, 4)
		b += a
		k = k[12:]
	}
	if len(k) == 0 {
		return c
	}
	for i, x := range k {
		v := uint32(x) << (8 * (i % 4))
		switch i / 4 {
		case 0:
			a += v
		case 1:
			b += v
		default:
			c += v
		}
	}
	c ^= b
	c -= rol(b, 14)
	a ^= c
	a -= rol(c, 11)
	b ^= a
	b -= rol(a, 25)
	c ^= b
	c -= rol(b, 16)
	a ^= c
	a -= rol(c, 4)
	b ^= a
	b -= rol(a, 14)
	c ^= b
	c -= rol(b, 24)
	return c
}
