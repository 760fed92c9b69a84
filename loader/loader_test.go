package loader

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle/isa"
)

// TestLoad_all loads every test object and checks the invariants every
// Object has: valid programs, references inside Maps and Funcs, one Line per
// slot.
func TestLoad_all(t *testing.T) {
	for _, path := range objects(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			obj := mustLoad(t, path)
			if len(obj.Programs) == 0 {
				t.Fatal("no programs")
			}
			for _, p := range obj.Programs {
				if sym, ok := unresolvable[filepath.Base(path)][p.Name]; ok {
					if p.Err == nil || !strings.Contains(p.Err.Error(), strconv.Quote(sym)) {
						t.Errorf("%s: %v, want an error naming %s", p.Name, p.Err, sym)
					}
					continue
				}
				checkProgram(t, obj, p)
			}
		})
	}
}

func checkProgram(t *testing.T, obj *Object, p *Program) {
	t.Helper()
	if p.Err != nil {
		t.Errorf("%s: %v", p.Name, p.Err)
		return
	}
	if err := isa.ValidateProgram(p.Insns); err != nil {
		t.Errorf("%s: %v", p.Name, err)
	}
	if len(p.Lines) != len(p.Insns) {
		t.Errorf("%s: %d lines for %d slots", p.Name, len(p.Lines), len(p.Insns))
	}
	if len(p.Funcs) == 0 || p.Funcs[0].Name != p.Name || p.Funcs[0].Start != 0 {
		t.Errorf("%s: Funcs[0] is %+v, want the entry function at 0", p.Name, p.Funcs)
	}
	starts := make(map[int]bool)
	for i, f := range p.Funcs {
		if i > 0 && f.Start <= p.Funcs[i-1].Start {
			t.Errorf("%s: Funcs not ascending: %+v", p.Name, p.Funcs)
		}
		starts[f.Start] = true
	}
	for pc := 0; pc < len(p.Insns); pc += p.Insns[pc].Width() {
		ins := p.Insns[pc]
		switch {
		case ins.IsLocalCall() || (ins.IsLoadImm64() && ins.Src == isa.PseudoFunc):
			tgt, _ := ins.JumpTarget(pc)
			if !starts[tgt] {
				t.Errorf("%s: slot %d: target %d is not a function start", p.Name, pc, tgt)
			}
		case ins.IsLoadImm64() && (ins.Src == isa.PseudoMapIdx || ins.Src == isa.PseudoMapIdxValue):
			if ins.Imm < 0 || int(ins.Imm) >= len(obj.Maps) {
				t.Errorf("%s: slot %d: map index %d, object has %d maps", p.Name, pc, ins.Imm, len(obj.Maps))
				continue
			}
			if m := obj.Maps[ins.Imm]; ins.Src == isa.PseudoMapIdxValue && uint32(p.Insns[pc+1].Imm) >= m.ValueSize {
				t.Errorf("%s: slot %d: offset %d into %s of %d bytes", p.Name, pc, p.Insns[pc+1].Imm, m.Name, m.ValueSize)
			}
		case ins.IsLoadImm64() && ins.Src != 0:
			t.Errorf("%s: slot %d: lddw with pseudo source %d left", p.Name, pc, ins.Src)
		}
	}
}

// TestLoad_exactBytes checks, for every program of every test object, that
// each slot no relocation touches equals the ELF section's bytes, in Load
// and in FromSpec (which has only cilium/ebpf's decoded instructions: this
// is what shows that converting them field by field restores sdiv, smod,
// movsx and atomics).
func TestLoad_exactBytes(t *testing.T) {
	for _, path := range objects(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw := rawFuncs(t, mustRead(t, path))
			obj := mustLoad(t, path)
			var fromSpec *Object
			// A spec hides the functions of a .text-only object.
			if spec, err := ebpf.LoadCollectionSpec(path); err == nil && len(spec.Programs) > 0 {
				fromSpec, err = FromSpec(spec, Options{})
				switch {
				case errors.Is(err, ErrNotSupported):
					t.Logf("FromSpec: %v", err)
				case err != nil:
					t.Fatal(err)
				}
			}
			checked := 0
			for _, p := range obj.Programs {
				var q *Program
				if fromSpec != nil {
					q = mustProgram(t, fromSpec, p.Name)
				}
				for k, f := range p.Funcs {
					end := len(p.Insns)
					if k+1 < len(p.Funcs) {
						end = p.Funcs[k+1].Start
					}
					rf, ok := raw[f.Name]
					if !ok {
						t.Fatalf("%s: function %s not in the ELF file", p.Name, f.Name)
					}
					if len(rf.insns) != end-f.Start {
						t.Fatalf("%s: function %s has %d slots, the ELF %d", p.Name, f.Name, end-f.Start, len(rf.insns))
					}
					for j, want := range rf.insns {
						if rf.fixed[j] {
							continue
						}
						checked++
						if got := p.Insns[f.Start+j]; got != want {
							t.Errorf("%s: slot %d (%s+%d): Load has %+v, ELF %+v", p.Name, f.Start+j, f.Name, j, got, want)
						}
						if q != nil {
							if got := q.Insns[f.Start+j]; got != want {
								t.Errorf("%s: slot %d (%s+%d): FromSpec has %+v, ELF %+v", p.Name, f.Start+j, f.Name, j, got, want)
							}
						}
					}
				}
			}
			if checked == 0 {
				t.Error("no slot checked")
			}
		})
	}
}

// TestLoad_fromSpec checks that Load and FromSpec of cilium/ebpf's spec of
// the same object agree, map indices compared by name.
func TestLoad_fromSpec(t *testing.T) {
	for _, path := range objects(t) {
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil || len(spec.Programs) == 0 {
			continue // cilium/ebpf refuses it, or hides its .text: only Load can
		}
		t.Run(filepath.Base(path), func(t *testing.T) {
			a := mustLoad(t, path)
			b, err := FromSpec(spec, Options{})
			if errors.Is(err, ErrNotSupported) {
				t.Skipf("FromSpec: %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(a.Programs) != len(b.Programs) || len(a.Maps) != len(b.Maps) {
				t.Fatalf("Load: %d programs, %d maps; FromSpec: %d, %d", len(a.Programs), len(a.Maps), len(b.Programs), len(b.Maps))
			}
			for _, p := range a.Programs {
				q := mustProgram(t, b, p.Name)
				if !reflect.DeepEqual(named(a, p), named(b, q)) {
					t.Errorf("%s: programs differ", p.Name)
				}
				if !reflect.DeepEqual(p.Lines, q.Lines) {
					t.Errorf("%s: lines differ", p.Name)
				}
				if len(p.Funcs) != len(q.Funcs) {
					t.Errorf("%s: funcs differ: %v, %v", p.Name, p.Funcs, q.Funcs)
				}
			}
			for _, m := range a.Maps {
				n := b.Maps[mustMap(t, b, m.Name)]
				if m.Type != n.Type || m.KeySize != n.KeySize || m.ValueSize != n.ValueSize || m.MaxEntries != n.MaxEntries || m.Flags != n.Flags {
					t.Errorf("map %s: Load %v, FromSpec %v", m.Name, m, n)
				}
			}
			if len(a.Bindings) != len(b.Bindings) || len(a.MapDefs) != len(b.MapDefs) {
				t.Errorf("bindings %v vs %v, defs %v vs %v", a.Bindings, b.Bindings, a.MapDefs, b.MapDefs)
			}
		})
	}
}

// TestFromSpec_unchanged checks that FromSpec leaves the spec alone.
func TestFromSpec_unchanged(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpec("testdata/maps.o")
	if err != nil {
		t.Fatal(err)
	}
	before := spec.Copy()
	if _, err := FromSpec(spec, Options{}); err != nil {
		t.Fatal(err)
	}
	for name, m := range spec.Maps {
		if m.Name != before.Maps[name].Name || len(m.Contents) != len(before.Maps[name].Contents) {
			t.Errorf("map %s changed", name)
		}
	}
	for name, p := range spec.Programs {
		if len(p.Instructions) != len(before.Programs[name].Instructions) {
			t.Errorf("program %s changed", name)
		}
	}
}

// refs lists the names of the maps a program's lddw slots refer to, with
// the offset for global data, in slot order.
func refs(obj *Object, p *Program) []string {
	var out []string
	for pc := 0; pc < len(p.Insns); pc += p.Insns[pc].Width() {
		ins := p.Insns[pc]
		switch {
		case ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx:
			out = append(out, obj.Maps[ins.Imm].Name)
		case ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdxValue:
			out = append(out, obj.Maps[ins.Imm].Name+"+"+strconv.Itoa(int(p.Insns[pc+1].Imm)))
		}
	}
	return out
}

func TestLoad_maps(t *testing.T) {
	obj := mustLoad(t, "testdata/maps.o")
	want := map[string]ebpf.MapType{
		"hash": ebpf.Hash, "array": ebpf.Array, "percpu_hash": ebpf.PerCPUHash,
		"percpu_array": ebpf.PerCPUArray, "lru": ebpf.LRUHash, "lpm": ebpf.LPMTrie,
		"events": ebpf.RingBuf, "inner0": ebpf.Array, "inner1": ebpf.Array,
		"outer_array": ebpf.ArrayOfMaps, "outer_hash": ebpf.HashOfMaps, "jumps": ebpf.ProgramArray,
	}
	var names []string
	for _, m := range obj.Maps {
		names = append(names, m.Name)
		if want[m.Name] != m.Type {
			t.Errorf("map %s: type %s, want %s", m.Name, m.Type, want[m.Name])
		}
	}
	// Offset order in .maps (clang puts the maps it initialises first).
	if wantOrder := []string{"inner0", "inner1", "outer_array", "outer_hash", "jumps", "hash", "array", "percpu_hash", "percpu_array", "lru", "lpm", "events"}; !slices.Equal(names, wantOrder) {
		t.Errorf("maps in order %v, want %v", names, wantOrder)
	}
	if in := obj.Maps[mustMap(t, obj, "outer_array")].InnerMap; in == nil || in.Type != ebpf.Array || in.ValueSize != 4 {
		t.Errorf("outer_array: inner map %v", in)
	}
	if m := obj.Maps[mustMap(t, obj, "jumps")]; len(m.Contents) != 0 {
		t.Errorf("jumps: contents %v left, want them in Bindings", m.Contents)
	}
	drop := slices.IndexFunc(obj.Programs, func(p *Program) bool { return p.Name == "drop" })
	wantB := []Binding{
		{Map: mustMap(t, obj, "outer_array"), Key: 0, Program: -1, Inner: mustMap(t, obj, "inner0")},
		{Map: mustMap(t, obj, "outer_array"), Key: 1, Program: -1, Inner: mustMap(t, obj, "inner1")},
		{Map: mustMap(t, obj, "outer_hash"), Key: 3, Program: -1, Inner: mustMap(t, obj, "inner1")},
		{Map: mustMap(t, obj, "jumps"), Key: 2, Program: drop, Inner: -1},
	}
	if !slices.Equal(obj.Bindings, wantB) {
		t.Errorf("bindings\n got %+v\nwant %+v", obj.Bindings, wantB)
	}
	got := refs(obj, mustProgram(t, obj, "use_maps"))
	for _, name := range []string{"hash", "array", "percpu_hash", "percpu_array", "lru", "lpm", "events", "outer_array", "outer_hash", "jumps"} {
		if !slices.Contains(got, name) {
			t.Errorf("use_maps does not refer to %s: %v", name, got)
		}
	}
	if p := mustProgram(t, obj, "use_maps"); p.Type != ebpf.XDP || p.Section != "xdp" || p.License != "GPL" {
		t.Errorf("use_maps: %s %q %q", p.Type, p.Section, p.License)
	}
}

func TestLoad_globals(t *testing.T) {
	obj := mustLoad(t, "testdata/globals.o")
	for _, name := range []string{".data", ".rodata", ".bss", ".data.custom", ".rodata.cfg", ".data.names", ".kconfig"} {
		m := obj.Maps[mustMap(t, obj, name)]
		if m.Type != ebpf.Array || m.MaxEntries != 1 || m.KeySize != 4 {
			t.Errorf("%s: %v", name, m)
		}
		if len(m.Contents) != 1 || len(m.Contents[0].Value.([]byte)) != int(m.ValueSize) {
			t.Errorf("%s: contents %v", name, m.Contents)
		}
		if ro := m.Flags&bpfFRdonlyProg != 0; ro != (strings.HasPrefix(name, ".rodata") || name == ".kconfig") {
			t.Errorf("%s: flags %#x", name, m.Flags)
		}
	}
	data := obj.Maps[mustMap(t, obj, ".data")].Contents[0].Value.([]byte)
	if data[0] != 5 || data[0x18] != 9 {
		t.Errorf(".data initial value % x: want counter = 5 at 0, hidden = 9 at 0x18", data)
	}
	// counter, the static hidden (a section-relative reference with the
	// offset in the instruction), table, seen, limit, custom, ports, the
	// format string, name.
	want := []string{".data+0", ".data+24", ".bss+0", ".rodata+0", ".data+8", ".data+8", ".data.custom+0", ".rodata.cfg+0", ".rodata+4", ".data.names+0"}
	if got := refs(obj, mustProgram(t, obj, "count")); !slices.Equal(got, want) {
		t.Errorf("count refers to\n %v, want\n %v", got, want)
	}
	// LINUX_KERNEL_VERSION at 0 and CONFIG_HZ at 4 in .kconfig.
	want = []string{".kconfig+0", ".kconfig+4", ".data.custom+0", ".bss+0", ".data+24"}
	if got := refs(obj, mustProgram(t, obj, "version")); !slices.Equal(got, want) {
		t.Errorf("version refers to\n %v, want\n %v", got, want)
	}
	if v := obj.Variables["limit"]; v == nil || v.SectionName != ".rodata" {
		t.Errorf("variable limit: %v", v)
	}
}

func TestLoad_subprograms(t *testing.T) {
	obj := mustLoad(t, "testdata/subprogs.o")
	for _, tc := range []struct {
		prog  string
		funcs []string
	}{
		{"calls", []string{"calls", "add3", "local_helper", "twice"}},
		{"loops", []string{"loops", "step", "step2", "square", "twice"}},
		{"tc_twice", []string{"tc_twice", "twice"}},
		{"tc_main", []string{"tc_main", "tc_twice", "twice"}},
	} {
		p := mustProgram(t, obj, tc.prog)
		var got []string
		for _, f := range p.Funcs {
			got = append(got, f.Name)
		}
		if !slices.Equal(got, tc.funcs) {
			t.Errorf("%s: functions %v, want %v", tc.prog, got, tc.funcs)
		}
	}
	// The callbacks of bpf_loop are PseudoFunc lddws pointing at them.
	p := mustProgram(t, obj, "loops")
	var callbacks []string
	for pc, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoFunc {
			tgt, _ := ins.JumpTarget(pc)
			callbacks = append(callbacks, p.Func(tgt).Name)
		}
	}
	if !slices.Equal(callbacks, []string{"step", "step2"}) {
		t.Errorf("callbacks %v", callbacks)
	}
	if f := p.Funcs[1]; f.BTF == nil || f.BTF.Name != "step" {
		t.Errorf("step: BTF %v", f.BTF)
	}
	// Line info names the source.
	l := p.Lines[0]
	if filepath.Base(l.File) != "subprogs.c" || l.Line == 0 || !strings.Contains(l.Text, "loops") {
		t.Errorf("line of slot 0: %+v", l)
	}
	if s := l.String(); !strings.Contains(s, "subprogs.c:") || !strings.Contains(s, ": int loops(") {
		t.Errorf("Line.String() = %q", s)
	}
}

func TestLoad_tailCall(t *testing.T) {
	obj := mustLoad(t, "testdata/tailcall.o")
	names := func() (out []string) {
		for _, p := range obj.Programs {
			out = append(out, p.Name)
		}
		return
	}()
	if !slices.Equal(names, []string{"small", "large", "entry"}) {
		t.Errorf("programs in order %v", names)
	}
	d := mustMap(t, obj, "dispatch")
	want := []Binding{{Map: d, Key: 0, Program: 0, Inner: -1}, {Map: d, Key: 5, Program: 1, Inner: -1}}
	if !slices.Equal(obj.Bindings, want) {
		t.Errorf("bindings %+v, want %+v", obj.Bindings, want)
	}
	if got := refs(obj, mustProgram(t, obj, "entry")); !slices.Equal(got, []string{"dispatch"}) {
		t.Errorf("entry refers to %v", got)
	}
}

func TestLoad_legacy(t *testing.T) {
	for _, path := range []string{"testdata/legacy.o", "testdata/legacy_nobtf.o", "testdata/legacy_oldclang.o"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			obj := mustLoad(t, path)
			var names []string
			for _, m := range obj.Maps {
				names = append(names, m.Name)
			}
			if !slices.Equal(names, []string{"counts", "stats", "inner", "outer"}) {
				t.Errorf("maps %v", names)
			}
			if len(obj.MapDefs) != 4 {
				t.Fatalf("MapDefs %+v", obj.MapDefs)
			}
			for _, d := range obj.MapDefs {
				if d.Format != MapDefLibbpf || d.Size != 28 {
					t.Errorf("def %+v", d)
				}
			}
			outer := obj.Maps[mustMap(t, obj, "outer")]
			if outer.InnerMap == nil || outer.InnerMap.Name != "inner" || outer.InnerMap.Type != ebpf.Array {
				t.Errorf("outer: inner map %v", outer.InnerMap)
			}
			if outer.Extra != nil {
				t.Error("Extra not cleared")
			}
			p := mustProgram(t, obj, "on_unlink")
			if p.Type != ebpf.Kprobe || p.AttachTo != "do_unlinkat" || obj.KernelVersion != 0xfffffffe {
				t.Errorf("on_unlink: %s %q, version %#x", p.Type, p.AttachTo, obj.KernelVersion)
			}
			if got := refs(obj, p); len(got) != 2 || got[0] != "counts" {
				t.Errorf("on_unlink refers to %v", got)
			}
		})
	}
	// The same source with and without BTF, and as old clang wrote it,
	// gives the same programs.
	a, b, c := mustLoad(t, "testdata/legacy.o"), mustLoad(t, "testdata/legacy_nobtf.o"), mustLoad(t, "testdata/legacy_oldclang.o")
	for _, p := range a.Programs {
		if !reflect.DeepEqual(p.Insns, mustProgram(t, b, p.Name).Insns) {
			t.Errorf("%s: BTF and no-BTF objects differ", p.Name)
		}
		if !reflect.DeepEqual(p.Insns, mustProgram(t, c, p.Name).Insns) {
			t.Errorf("%s: old-clang object differs", p.Name)
		}
	}
	if b.BTF != nil || mustProgram(t, b, "on_unlink").Lines[0] != (Line{}) {
		t.Error("no-BTF object has BTF or lines")
	}

	obj := mustLoad(t, "testdata/legacy20.o")
	if len(obj.MapDefs) != 0 || len(obj.Maps) != 2 {
		t.Errorf("legacy20: defs %v maps %v", obj.MapDefs, obj.Maps)
	}
	if p := mustProgram(t, obj, "trace_openat"); p.Type != ebpf.TracePoint || p.AttachTo != "syscalls/sys_enter_openat" {
		t.Errorf("trace_openat: %s %q", p.Type, p.AttachTo)
	}
}

func TestLoad_iproute2(t *testing.T) {
	obj := mustLoad(t, "testdata/iproute2.o")
	jmp, sh, inner, outer := mustMap(t, obj, "jmp_tc"), mustMap(t, obj, "map_sh"), mustMap(t, obj, "map_inner"), mustMap(t, obj, "map_outer")
	wantDefs := []MapDef{
		{Map: jmp, Format: MapDefIproute2, Size: 36, ID: 1, Pinning: 2},
		{Map: sh, Format: MapDefIproute2, Size: 36, Pinning: 1},
		{Map: inner, Format: MapDefIproute2, Size: 36, ID: 42, InnerIdx: 1},
		{Map: outer, Format: MapDefIproute2, Size: 36, InnerID: 42},
	}
	if !slices.Equal(obj.MapDefs, wantDefs) {
		t.Errorf("defs\n got %+v\nwant %+v", obj.MapDefs, wantDefs)
	}
	if in := obj.Maps[outer].InnerMap; in == nil || in.Name != "map_inner" {
		t.Errorf("map_outer: inner map %v", in)
	}
	idx := func(name string) int {
		return slices.IndexFunc(obj.Programs, func(p *Program) bool { return p.Name == name })
	}
	wantB := []Binding{
		{Map: outer, Key: 1, Program: -1, Inner: inner},
		{Map: jmp, Key: 0, Program: idx("cls_case1"), Inner: -1},
		{Map: jmp, Key: 1, Program: idx("cls_case2"), Inner: -1},
	}
	if !slices.Equal(obj.Bindings, wantB) {
		t.Errorf("bindings\n got %+v\nwant %+v", obj.Bindings, wantB)
	}
	if p := mustProgram(t, obj, "cls_entry"); p.Type != ebpf.SchedCLS {
		t.Errorf("cls_entry: %s", p.Type)
	}
	if p := mustProgram(t, obj, "ing"); p.Type != ebpf.UnspecifiedProgram {
		t.Errorf("ing: %s", p.Type)
	}

	old := mustLoad(t, "testdata/iproute2_old.o")
	if want := []MapDef{{Map: 0, Format: MapDefIproute2, Size: 28, ID: 2, Pinning: 2}}; !slices.Equal(old.MapDefs, want) {
		t.Errorf("iproute2_old: defs %+v, want %+v", old.MapDefs, want)
	}
	if want := []Binding{{Map: 0, Key: 0, Program: 0, Inner: -1}}; !slices.Equal(old.Bindings, want) {
		t.Errorf("iproute2_old: bindings %+v", old.Bindings)
	}
	// Told otherwise, the same 28 bytes are a bpf_map_def.
	asLibbpf, err := LoadFile("testdata/iproute2_old.o", Options{MapDef: MapDefLibbpf})
	if err != nil {
		t.Fatal(err)
	}
	if d := asLibbpf.MapDefs[0]; d.Format != MapDefLibbpf || d.InnerMapIdx != 2 || d.NumaNode != 2 || len(asLibbpf.Bindings) != 0 {
		t.Errorf("as bpf_map_def: %+v, bindings %v", d, asLibbpf.Bindings)
	}
}

func TestLoad_v4(t *testing.T) {
	obj := mustLoad(t, "testdata/v4.o")
	p := mustProgram(t, obj, "signed_ops")
	var text []string
	for pc, ins := range p.Insns {
		text = append(text, isa.Format(ins, p.Insns[min(pc+1, len(p.Insns)-1)]))
	}
	all := strings.Join(text, "\n")
	for _, want := range []string{"r1 = (s8)r2", "r1 = (s16)r2", "r1 = (s32)r2", "w1 = (s8)w2", "r1 s/= r2", "r1 s%= 0x3", "w1 s/= w2", "w1 s%= -0x4", "r1 = bswap64 r1", "r3 = *(s8 *)(r10 - 0x8)", "gotol +0x0"} {
		if !strings.Contains(all, want) {
			t.Errorf("%q missing from\n%s", want, all)
		}
	}
}

// TestLoad_RELA rewrites every object's REL sections as RELA, the addends
// moved out of the instructions, and checks that it loads to the same
// Object. cilium/ebpf alone reads no RELA section: it would drop every
// relocation.
func TestLoad_RELA(t *testing.T) {
	for _, path := range objects(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			b := mustRead(t, path)
			rela := toRELA(t, b, nil)
			if bytes.Equal(rela, b) {
				t.Skip("no relocations")
			}
			want, got := mustLoadBytes(t, b), mustLoadBytes(t, rela)
			if len(want.Programs) != len(got.Programs) {
				t.Fatalf("%d programs, want %d", len(got.Programs), len(want.Programs))
			}
			for i, p := range want.Programs {
				if !reflect.DeepEqual(p.Insns, got.Programs[i].Insns) {
					t.Errorf("%s: RELA object loads to different instructions", p.Name)
				}
			}
			if !reflect.DeepEqual(want.Bindings, got.Bindings) {
				t.Errorf("bindings %v, want %v", got.Bindings, want.Bindings)
			}
		})
	}
}

// TestLoad_dataAddend checks that a reference to a global variable with an
// addend (here 4 bytes into table) gets the variable's offset plus the
// addend, as libbpf computes it; cilium/ebpf v0.22.0 drops the addend of
// STT_OBJECT references.
func TestLoad_dataAddend(t *testing.T) {
	b := toRELA(t, mustRead(t, "testdata/globals.o"), func(sec string, sym elf.Symbol, implicit int64) int64 {
		if sym.Name == "table" {
			return implicit + 4
		}
		return implicit
	})
	obj := mustLoadBytes(t, b)
	got := refs(obj, mustProgram(t, obj, "count"))
	if got[4] != ".data+12" || got[5] != ".data+12" {
		t.Errorf("table+4 resolved to %v, want .data+12", got[4:6])
	}
}

func TestLoad_sectionTypes(t *testing.T) {
	obj := mustLoad(t, "testdata/sections.o")
	for _, tc := range []struct {
		prog     string
		typ      ebpf.ProgramType
		attach   ebpf.AttachType
		attachTo string
	}{
		{"p_socket", ebpf.SocketFilter, ebpf.AttachNone, ""},
		{"p_xdp", ebpf.XDP, ebpf.AttachXDP, ""},
		{"p_xdp_frags", ebpf.XDP, ebpf.AttachXDP, ""},
		{"p_xdp_devmap", ebpf.XDP, ebpf.AttachXDPDevMap, ""},
		{"p_xdp_cpumap", ebpf.XDP, ebpf.AttachXDPCPUMap, ""},
		{"p_tc", ebpf.SchedCLS, ebpf.AttachNone, ""},
		{"p_tc_ingress", ebpf.SchedCLS, ebpf.AttachTCXIngress, ""},
		{"p_tcx_ingress", ebpf.SchedCLS, ebpf.AttachTCXIngress, ""},
		{"p_tcx_egress", ebpf.SchedCLS, ebpf.AttachTCXEgress, ""},
		{"p_classifier", ebpf.SchedCLS, ebpf.AttachNone, ""},
		{"p_action", ebpf.SchedACT, ebpf.AttachNone, ""},
		{"p_kprobe", ebpf.Kprobe, ebpf.AttachNone, "do_unlinkat"},
		{"p_kretprobe", ebpf.Kprobe, ebpf.AttachNone, "do_unlinkat"},
		{"p_uprobe", ebpf.Kprobe, ebpf.AttachNone, "/bin/sh:main"},
		{"p_uretprobe", ebpf.Kprobe, ebpf.AttachNone, "/bin/sh:main"},
		{"p_ksyscall", ebpf.Kprobe, ebpf.AttachNone, "openat"},
		{"p_tracepoint", ebpf.TracePoint, ebpf.AttachNone, "syscalls/sys_enter_openat"},
		{"p_tp", ebpf.TracePoint, ebpf.AttachNone, "sched/sched_switch"},
		{"p_raw_tracepoint", ebpf.RawTracepoint, ebpf.AttachNone, "sys_enter"},
		{"p_raw_tp", ebpf.RawTracepoint, ebpf.AttachNone, "sys_exit"},
		{"p_raw_tp_w", ebpf.RawTracepointWritable, ebpf.AttachNone, "sys_exit"},
		{"p_tp_btf", ebpf.Tracing, ebpf.AttachTraceRawTp, "sched_switch"},
		{"p_fentry", ebpf.Tracing, ebpf.AttachTraceFEntry, "do_unlinkat"},
		{"p_fexit", ebpf.Tracing, ebpf.AttachTraceFExit, "do_unlinkat"},
		{"p_fentry_s", ebpf.Tracing, ebpf.AttachTraceFEntry, "do_unlinkat"},
		{"p_fmod_ret", ebpf.Tracing, ebpf.AttachModifyReturn, "do_unlinkat"},
		{"p_lsm", ebpf.LSM, ebpf.AttachLSMMac, "file_open"},
		{"p_iter", ebpf.Tracing, ebpf.AttachTraceIter, "task"},
		{"p_perf_event", ebpf.PerfEvent, ebpf.AttachNone, ""},
		{"p_cgroup_skb_ingress", ebpf.CGroupSKB, ebpf.AttachCGroupInetIngress, ""},
		{"p_cgroup_skb_egress", ebpf.CGroupSKB, ebpf.AttachCGroupInetEgress, ""},
		{"p_cgroup_skb", ebpf.CGroupSKB, ebpf.AttachNone, ""},
		{"p_cgroup_sock_create", ebpf.CGroupSock, ebpf.AttachCGroupInetSockCreate, ""},
		{"p_cgroup_connect4", ebpf.CGroupSockAddr, ebpf.AttachCGroupInet4Connect, ""},
		{"p_cgroup_sysctl", ebpf.CGroupSysctl, ebpf.AttachCGroupSysctl, ""},
		{"p_cgroup_dev", ebpf.CGroupDevice, ebpf.AttachCGroupDevice, ""},
		{"p_cgroup_getsockopt", ebpf.CGroupSockopt, ebpf.AttachCGroupGetsockopt, ""},
		{"p_sockops", ebpf.SockOps, ebpf.AttachCGroupSockOps, ""},
		{"p_sk_skb_parser", ebpf.SkSKB, ebpf.AttachSkSKBStreamParser, ""},
		{"p_sk_skb_verdict", ebpf.SkSKB, ebpf.AttachSkSKBStreamVerdict, ""},
		{"p_sk_skb", ebpf.SkSKB, ebpf.AttachNone, ""},
		{"p_sk_msg", ebpf.SkMsg, ebpf.AttachSkMsgVerdict, ""},
		{"p_sk_lookup", ebpf.SkLookup, ebpf.AttachSkLookup, ""},
		{"p_sk_reuseport", ebpf.SkReuseport, ebpf.AttachSkReuseportSelect, ""},
		{"p_lwt_in", ebpf.LWTIn, ebpf.AttachNone, ""},
		{"p_lwt_out", ebpf.LWTOut, ebpf.AttachNone, ""},
		{"p_lwt_xmit", ebpf.LWTXmit, ebpf.AttachNone, ""},
		{"p_lwt_seg6local", ebpf.LWTSeg6Local, ebpf.AttachNone, ""},
		{"p_flow_dissector", ebpf.FlowDissector, ebpf.AttachFlowDissector, ""},
		{"p_lirc_mode2", ebpf.LircMode2, ebpf.AttachLircMode2, ""},
		{"p_syscall", ebpf.Syscall, ebpf.AttachNone, ""},
		{"p_struct_ops", ebpf.StructOps, ebpf.AttachNone, ""},
		{"p_netfilter", ebpf.Netfilter, ebpf.AttachNetfilter, ""},
		{"p_freplace", ebpf.Extension, ebpf.AttachNone, "foo"},
		{"p_optional_xdp", ebpf.XDP, ebpf.AttachXDP, ""},
		{"p_unknown", ebpf.UnspecifiedProgram, ebpf.AttachNone, ""},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			p := mustProgram(t, obj, tc.prog)
			if p.Type != tc.typ || p.AttachType != tc.attach || p.AttachTo != tc.attachTo {
				t.Errorf("section %q: %s, %s, %q; want %s, %s, %q", p.Section, p.Type, p.AttachType, p.AttachTo, tc.typ, tc.attach, tc.attachTo)
			}
		})
	}
	if p := mustProgram(t, obj, "p_xdp_frags"); p.Flags != 1<<5 { // BPF_F_XDP_HAS_FRAGS
		t.Errorf("xdp.frags: flags %#x", p.Flags)
	}
	if p := mustProgram(t, obj, "p_fentry_s"); p.Flags != 1<<4 { // BPF_F_SLEEPABLE
		t.Errorf("fentry.s: flags %#x", p.Flags)
	}
}

func TestOptions_ProgramType(t *testing.T) {
	obj, err := LoadFile("testdata/iproute2.o", Options{ProgramType: map[string]ebpf.ProgramType{
		"ingress":   ebpf.SchedCLS, // by section
		"cls_case1": ebpf.SchedACT, // by program name
		"1/1":       ebpf.SchedCLS,
	}})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]ebpf.ProgramType{"ing": ebpf.SchedCLS, "cls_case1": ebpf.SchedACT, "cls_case2": ebpf.SchedCLS, "cls_entry": ebpf.SchedCLS} {
		if got := mustProgram(t, obj, name).Type; got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
	_, err = LoadFile("testdata/iproute2.o", Options{ProgramType: map[string]ebpf.ProgramType{"egress": ebpf.SchedCLS}})
	if err == nil || !strings.Contains(err.Error(), `no program or section is called "egress"`) {
		t.Errorf("unknown key: %v", err)
	}
}

// TestFromSpec_handBuilt converts a spec written with cilium/ebpf's
// assembler rather than read from ELF.
func TestFromSpec_handBuilt(t *testing.T) {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{
			"m": {Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		},
		Programs: map[string]*ebpf.ProgramSpec{
			"p": {
				Name: "p",
				Type: ebpf.XDP,
				Instructions: asm.Instructions{
					asm.LoadMapPtr(asm.R1, 0).WithReference("m").WithSymbol("p"),
					asm.Mov.Imm(asm.R2, 7),
					asm.SDiv.Imm(asm.R2, -2),
					asm.MovSX8.Reg(asm.R3, asm.R2),
					asm.Call.Label("f"),
					asm.Return(),
					asm.Mov.Imm(asm.R0, 1).WithSymbol("f"),
					asm.Return(),
				},
				License: "MIT",
			},
		},
	}
	obj, err := FromSpec(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := obj.Programs[0]
	want := []isa.Instruction{
		{Op: isa.OpLoadImm64, Dst: isa.R1, Src: isa.PseudoMapIdx, Imm: 0}, {},
		{Op: 0xb7, Dst: isa.R2, Imm: 7},
		{Op: 0x37, Dst: isa.R2, Off: 1, Imm: -2},
		{Op: 0xbf, Dst: isa.R3, Src: isa.R2, Off: 8},
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 1},
		{Op: isa.OpExit},
		{Op: 0xb7, Dst: isa.R0, Imm: 1},
		{Op: isa.OpExit},
	}
	if !slices.Equal(p.Insns, want) {
		t.Errorf("got\n%+v\nwant\n%+v", p.Insns, want)
	}
	if len(p.Funcs) != 2 || p.Funcs[1] != (Func{Name: "f", Start: 7}) || p.License != "MIT" {
		t.Errorf("funcs %+v license %q", p.Funcs, p.License)
	}
}

// TestFromSpec_labels: in a hand-built program, a symbol that jumps refer
// to (and no call) is a label inside its function, as cilium/ebpf's
// encoder has it, not the start of a function; labels are the function's
// own (two functions may both have an "out"), and a jump to a label of
// another function, or past a 16-bit offset, is an error.
func TestFromSpec_labels(t *testing.T) {
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"p": {
		Name: "p", Type: ebpf.XDP, License: "MIT",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, 0),
			asm.JEq.Imm(asm.R1, 0, "out"),
			asm.LoadImm(asm.R2, 1, asm.DWord),
			asm.Call.Label("f"),
			asm.Ja.Label("out"),
			asm.Return().WithSymbol("out"),
			asm.JEq.Imm(asm.R1, 0, "out").WithSymbol("f"),
			asm.Mov.Imm(asm.R0, 1),
			asm.Mov.Imm(asm.R0, 2).WithSymbol("out"),
			asm.Return(),
		},
	}}}
	obj, err := FromSpec(spec, Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := obj.Programs[0]
	want := []isa.Instruction{
		{Op: 0xb7, Dst: isa.R0},
		{Op: 0x15, Dst: isa.R1, Off: 4},
		{Op: isa.OpLoadImm64, Dst: isa.R2, Imm: 1}, {},
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 2},
		{Op: 0x05, Off: 0},
		{Op: isa.OpExit},
		{Op: 0x15, Dst: isa.R1, Off: 1},
		{Op: 0xb7, Dst: isa.R0, Imm: 1},
		{Op: 0xb7, Dst: isa.R0, Imm: 2},
		{Op: isa.OpExit},
	}
	if !slices.Equal(p.Insns, want) {
		t.Errorf("got\n%+v\nwant\n%+v", p.Insns, want)
	}
	if len(p.Funcs) != 2 || p.Funcs[1].Name != "f" || p.Funcs[1].Start != 7 {
		t.Errorf("funcs %+v", p.Funcs)
	}

	// A jump into another function's label.
	spec.Programs["p"].Instructions = asm.Instructions{
		asm.Call.Label("f"),
		asm.Ja.Label("there"),
		asm.Return(),
		asm.Mov.Imm(asm.R0, 1).WithSymbol("f"),
		asm.Return().WithSymbol("there"),
	}
	if obj, err := FromSpec(spec, Options{}); err == nil && obj.Programs[0].Err == nil {
		t.Error("a jump to another function's label was linked")
	} else if err == nil && !strings.Contains(obj.Programs[0].Err.Error(), `jump to "there"`) {
		t.Errorf("error %v does not name the label", obj.Programs[0].Err)
	}

	// Too far for a 16-bit offset.
	far := asm.Instructions{asm.Ja.Label("end")}
	for range 1 << 15 {
		far = append(far, asm.Mov.Imm(asm.R0, 0))
	}
	far = append(far, asm.Return().WithSymbol("end"))
	spec.Programs["p"].Instructions = far
	if obj, err := FromSpec(spec, Options{}); err == nil && obj.Programs[0].Err == nil {
		t.Error("a jump past a 16-bit offset was linked")
	} else if err == nil && !strings.Contains(obj.Programs[0].Err.Error(), "16-bit offset") {
		t.Errorf("error %v does not say why", obj.Programs[0].Err)
	}
}

func TestFromSpec_errors(t *testing.T) {
	prog := func(insns ...asm.Instruction) *ebpf.CollectionSpec {
		return &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"p": {Name: "p", Instructions: insns}}}
	}
	for _, tc := range []struct {
		name string
		spec *ebpf.CollectionSpec
		want string
	}{
		{"nil", nil, "nil CollectionSpec"},
		{"unknown map", prog(asm.LoadMapPtr(asm.R1, 0).WithReference("nope"), asm.Return()), `symbol "nope" is not a map`},
		{"undefined function", prog(asm.Call.Label("nope"), asm.Return()), `refers to function "nope", which the object does not define`},
		{"empty", prog(), "no instructions"},
		{"wide constant", prog(asm.Mov.Imm(asm.R0, 0).WithSymbol("p"), asm.Instruction{OpCode: asm.Mov.Op(asm.ImmSource), Constant: 1 << 40}, asm.Return()), "does not fit in 32 bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := FromSpec(tc.spec, Options{})
			if err == nil {
				// A program that cannot be linked fails alone.
				err = obj.Program("p").Err
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestKconfigMetaOffset pins the reflection into cilium/ebpf's metadata: if
// a new version moves it, FromSpec of globals.o can no longer tell the two
// .kconfig variables apart.
func Test_kconfigMetaOffset(t *testing.T) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(mustLoadELFData(t, "testdata/globals.o")))
	if err != nil {
		t.Fatal(err)
	}
	var offs []uint32
	for _, ins := range spec.Programs["version"].Instructions {
		if off, ok := kconfigMetaOffset(&ins); ok {
			offs = append(offs, off)
		}
	}
	if !slices.Equal(offs, []uint32{0, 4}) {
		t.Errorf("kconfig offsets %v, want [0 4]", offs)
	}
}

// mustLoadELFData returns the normalised bytes Load hands cilium/ebpf.
func mustLoadELFData(tb testing.TB, path string) []byte {
	tb.Helper()
	ef, err := readELF(mustRead(tb, path))
	if err != nil {
		tb.Fatal(err)
	}
	return ef.data
}

func TestLoad_errors(t *testing.T) {
	good := mustRead(t, "testdata/legacy.o")
	f, err := elf.NewFile(bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	relText := f.Section(".relsocket1")
	if relText == nil {
		t.Fatal("no .relsocket1")
	}
	maps := f.Section("maps")
	syms, _ := f.Symbols()
	symIndex := func(name string) uint64 {
		for i, s := range syms {
			if s.Name == name {
				return uint64(i + 1)
			}
		}
		t.Fatalf("no symbol %s", name)
		return 0
	}
	patch := func(fn func(b []byte)) []byte {
		b := slices.Clone(good)
		fn(b)
		return b
	}
	le := func(b []byte, at uint64, v uint64) { copy(b[at:], le64(v)) }
	cases := []struct {
		name string
		obj  []byte
		want string
	}{
		{"empty", nil, "parse ELF"},
		{"truncated", good[:len(good)/2], "parse ELF"},
		{"not ELF", []byte("hello, world, this is not an ELF object at all......................"), "parse ELF"},
		{"relocation symbol out of range", patch(func(b []byte) {
			le(b, relText.Offset+8, 9999<<32|1)
		}), "section socket1: relocation 0 at instruction"},
		{"relocation off the end", patch(func(b []byte) {
			le(b, relText.Offset, 1<<20)
		}), "is not an instruction of the"},
		{"relocation of a non-lddw", patch(func(b []byte) {
			le(b, relText.Offset, 0) // slot 0 is a mov
		}), "is neither a lddw nor a call"},
		{"symbol not a map", patch(func(b []byte) {
			// The second relocation of socket1 (a lddw of counts) now names
			// the license.
			le(b, relText.Offset+16+8, symIndex("_license")<<32|1)
		}), `symbol "_license" is in section license, which is not a map, data or program section`},
		{"bad inner_map_idx", patch(func(b []byte) {
			b[maps.Offset+3*28+20] = 7 // outer.inner_map_idx
		}), "map outer: inner_map_idx 7, but its section has 4 maps"},
		{"map of maps without inner map", patch(func(b []byte) {
			b[maps.Offset+3*28+20] = 3 // outer.inner_map_idx = outer
		}), "map outer: is its own inner map"},
	}
	iproute2 := mustRead(t, "testdata/iproute2.o")
	ip, err := elf.NewFile(bytes.NewReader(iproute2))
	if err != nil {
		t.Fatal(err)
	}
	ipMaps := ip.Section("maps")
	for _, tc := range []struct {
		name string
		at   uint64 // offset in the maps section
		v    byte
		want string
	}{
		// map_outer (the fourth 36-byte definition) names inner_id 43.
		{"unknown inner_id", 3*36 + 28, 43, "map map_outer: inner_id 43: no map has that id"},
		// map_sh gets jmp_tc's id.
		{"duplicate id", 36 + 20, 1, "maps jmp_tc and map_sh: both have id 1"},
		// jmp_tc becomes an array: section 1/0 then names a non-prog-array.
		{"tail call into a non-prog-array", 0, 2, `section "1/0" names map jmp_tc (id 1), which is a Array, not a prog array`},
	} {
		b := slices.Clone(iproute2)
		b[ipMaps.Offset+tc.at] = tc.v
		cases = append(cases, struct {
			name string
			obj  []byte
			want string
		}{tc.name, b, tc.want})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			obj, err := Load(bytes.NewReader(tc.obj), Options{})
			if err == nil {
				// A relocation that cannot be applied fails the program
				// holding the instruction, not the object.
				var ok []string
				for _, p := range obj.Programs {
					if p.Err != nil && err == nil {
						err = fmt.Errorf("program %s: %w", p.Name, p.Err)
					} else if p.Err == nil {
						ok = append(ok, p.Name)
					}
				}
				if err != nil && len(ok) == 0 {
					t.Errorf("every program failed with the bad relocation")
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func le64(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

func TestFromSpec_notSupported(t *testing.T) {
	// A spec from a kconfig load whose variable cannot be told.
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{"p": {Name: "p", Instructions: asm.Instructions{
		{OpCode: asm.LoadImmOp(asm.DWord), Dst: asm.R1, Src: asm.PseudoMapValue},
		asm.Return(),
	}}}}
	obj, err := FromSpec(spec, Options{})
	if err == nil {
		err = obj.Program("p").Err
	}
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("error %v, want ErrNotSupported", err)
	}
}

// readerAt hides the Size method of bytes.Reader, as an *os.File would.
type readerAt struct{ r *bytes.Reader }

func (r readerAt) ReadAt(p []byte, off int64) (int, error) { return r.r.ReadAt(p, off) }

func TestLoad_readerWithoutSize(t *testing.T) {
	b := mustRead(t, "testdata/maps.o")
	obj, err := Load(readerAt{bytes.NewReader(b)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Programs) != 2 {
		t.Errorf("%d programs", len(obj.Programs))
	}
	if _, err := LoadFile("testdata/nonexistent.o", Options{}); err == nil {
		t.Error("no error for a missing file")
	}
}

// TestLoad_bigEndian loads the same program built for bpfeb: programs in
// waggle's form do not depend on the object's byte order.
func TestLoad_bigEndian(t *testing.T) {
	eb, le := mustLoad(t, "testdata/globals_eb.o"), mustLoad(t, "testdata/globals.o")
	if eb.ByteOrder.String() != "BigEndian" {
		t.Errorf("byte order %v", eb.ByteOrder)
	}
	for _, p := range le.Programs {
		if !reflect.DeepEqual(p.Insns, mustProgram(t, eb, p.Name).Insns) {
			t.Errorf("%s: big-endian object loads to different instructions", p.Name)
		}
	}
}
