//go:build linux

package kernel

import (
	"bytes"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
)

func TestProgramGPLCompatible(t *testing.T) {
	mustSupported(t)
	prog := []isa.Instruction{{Op: mov64, Dst: isa.R0, Imm: 2}, {Op: exit}}
	for _, license := range []string{"GPL", "Dual MIT/GPL", "MIT"} {
		p, err := Load(prog, LoadOptions{Type: XDP, License: license})
		if err != nil {
			t.Fatal(err)
		}
		gpl, err := ProgramGPLCompatible(p.FD())
		p.Close()
		if want := license != "MIT"; err != nil || gpl != want {
			t.Errorf("license %q: gpl_compatible %v, %v; want %v", license, gpl, err, want)
		}
	}
	if _, err := ProgramGPLCompatible(-1); err == nil {
		t.Error("fd -1 has info")
	}
}

func TestProgramXlatedBytes(t *testing.T) {
	mustSupported(t)
	prog := []isa.Instruction{{Op: mov64, Dst: isa.R0, Imm: 2}, {Op: exit}}
	p := mustLoad(t, prog, XDP)
	b, err := ProgramXlatedBytes(p.FD())
	if err != nil {
		t.Fatal(err)
	}
	if want := isa.Encode(prog); !bytes.Equal(b, want) {
		t.Errorf("translated % x, want % x", b, want)
	}
}

func TestMapBTFTypes(t *testing.T) {
	mustSupported(t)
	key := &btf.Int{Name: "unsigned int", Size: 4}
	value := &btf.Struct{Name: "pair", Size: 8, Members: []btf.Member{{Name: "a", Type: key}, {Name: "b", Type: key, Offset: 32}}}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Key: key, Value: value})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, k, v, err := MapBTFTypes(m.FD())
	if err != nil || id == 0 || k == 0 || v == 0 {
		t.Fatalf("btf %d, key %d, value %d, %v", id, k, v, err)
	}
	h, err := btf.NewHandleFromID(btf.ID(id))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	spec, err := h.Spec(nil)
	if err != nil {
		t.Fatal(err)
	}
	vt, err := spec.TypeByID(btf.TypeID(v))
	if err != nil || vt.TypeName() != "pair" {
		t.Errorf("value type %v, %v", vt, err)
	}

	plain, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if id, k, v, err := MapBTFTypes(plain.FD()); err != nil || id|k|v != 0 {
		t.Errorf("a map without BTF: %d %d %d %v", id, k, v, err)
	}
}
