package kernel

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle/loader"
)

// The spec conversion (newPlan) runs on every OS: these tests need neither
// Linux nor root.

func mustLoadObject(tb testing.TB, path string, opts loader.Options) *loader.Object {
	tb.Helper()
	obj, err := loader.LoadFile(path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return obj
}

func mustPlan(tb testing.TB, obj *loader.Object, opts *CollectionOptions) *plan {
	tb.Helper()
	pl, err := newPlan(obj, opts)
	if err != nil {
		tb.Fatal(err)
	}
	return pl
}

func planNames(pl *plan) []string {
	var names []string
	for _, p := range pl.programs {
		names = append(names, p.Name)
	}
	return names
}

// Test_newPlan_legacyMaps: samples/bpf's 28-byte bpf_map_def, whose tail
// (inner_map_idx, numa_node) cilium/ebpf keeps in MapSpec.Extra and refuses
// to create a map from when it is not zero, reaches cilium/ebpf read and
// cleared, with the map of maps given its inner map.
func Test_newPlan_legacyMaps(t *testing.T) {
	obj := mustLoadObject(t, "../loader/testdata/legacy.o", loader.Options{})
	if obj.Spec.Maps["outer"].Extra == nil {
		t.Fatal("cilium/ebpf's spec keeps no tail for outer: the test object changed")
	}
	pl := mustPlan(t, obj, &CollectionOptions{})
	for name, ms := range pl.spec.Maps {
		if ms.Extra != nil {
			t.Errorf("map %s: Extra is still set", name)
		}
	}
	outer := pl.spec.Maps["outer"]
	if outer.InnerMap == nil || outer.InnerMap.Type != obj.Maps[obj.MapIndex("inner")].Type {
		t.Errorf("outer's inner map: %+v", outer.InnerMap)
	}
	if obj.Spec.Maps["outer"].Extra == nil || obj.Spec.Maps["outer"].InnerMap != nil {
		t.Error("newPlan changed the loader's spec")
	}
	for _, p := range pl.programs {
		if ps := pl.spec.Programs[p.Name]; ps.Type == ebpf.UnspecifiedProgram || ps.Type != p.Type {
			t.Errorf("program %s: type %v, the loader's %v", p.Name, ps.Type, p.Type)
		}
	}
	if len(pl.programs) != 2 {
		t.Errorf("programs %v, want both", planNames(pl))
	}
}

// Test_newPlan_iproute2: iproute2's object: the "ingress" section takes
// its type from the options, the "1/0" and "1/1" sections take the type of
// cls_entry, whose prog array (id 1) holds them, and become bindings of
// that array; maps with iproute2 pinning ask to be pinned by name, and
// cilium/ebpf is asked to pin nothing.
func Test_newPlan_iproute2(t *testing.T) {
	obj := mustLoadObject(t, "../loader/testdata/iproute2.o", loader.Options{ProgramType: map[string]ebpf.ProgramType{"ingress": ebpf.SchedCLS}})
	pl := mustPlan(t, obj, &CollectionOptions{})
	for _, name := range []string{"cls_case1", "cls_case2", "cls_entry", "ing"} {
		ps := pl.spec.Programs[name]
		if ps == nil || ps.Type != ebpf.SchedCLS {
			t.Errorf("program %s: %+v, want a SchedCLS program", name, ps)
		}
	}
	if len(pl.skipped) != 0 {
		t.Errorf("skipped %v", pl.skipped)
	}
	want := []binding{{mapName: "jmp_tc", key: 0, program: "cls_case1"}, {mapName: "jmp_tc", key: 1, program: "cls_case2"}}
	for _, w := range want {
		if !slices.Contains(pl.bindings, w) {
			t.Errorf("no binding %+v in %+v", w, pl.bindings)
		}
	}
	if !pl.byName["jmp_tc"] || !pl.byName["map_sh"] || pl.byName["map_inner"] {
		t.Errorf("maps to pin by name: %v", pl.byName)
	}
	for name, ms := range pl.spec.Maps {
		if ms.Pinning != ebpf.PinNone {
			t.Errorf("map %s: cilium/ebpf is asked to pin it (%v)", name, ms.Pinning)
		}
	}
}

// Test_newPlan_types: programs in sections libbpf does not know take the
// type of the programs whose prog arrays hold them; those nothing types
// are skipped, each with a reason naming its section and the flag that
// fixes it; the declarative `.values` of prog arrays are bindings, not
// contents.
func Test_newPlan_types(t *testing.T) {
	obj := mustLoadObject(t, "../loader/testdata/inherit.o", loader.Options{})
	pl := mustPlan(t, obj, &CollectionOptions{})
	for _, name := range []string{"entry", "tail_a", "tail_b"} {
		if ps := pl.spec.Programs[name]; ps == nil || ps.Type != ebpf.XDP {
			t.Errorf("program %s: %+v, want XDP", name, ps)
		}
	}
	for _, s := range pl.skipped {
		if !strings.Contains(s.Reason.Error(), s.Section) || !strings.Contains(s.Reason.Error(), "--type") {
			t.Errorf("skipped %s: %v", s.Name, s.Reason)
		}
	}
	if !slices.ContainsFunc(pl.skipped, func(s SkippedProgram) bool { return s.Name == "orphan" }) {
		t.Errorf("orphan (tail-9, held by no typed program's array) is not skipped: %v", pl.skipped)
	}
	if ms := pl.spec.Maps["level1"]; len(ms.Contents) != 0 {
		t.Errorf("level1's contents %v, want none (they are bindings)", ms.Contents)
	}
	if !slices.Contains(pl.bindings, binding{mapName: "level1", key: 0, program: "tail_a"}) {
		t.Errorf("bindings %+v", pl.bindings)
	}
	// With a default type, nothing is skipped.
	obj = mustLoadObject(t, "../loader/testdata/inherit.o", loader.Options{DefaultType: ebpf.XDP})
	if pl := mustPlan(t, obj, &CollectionOptions{}); len(pl.skipped) != 0 {
		t.Errorf("with DefaultType: skipped %v", pl.skipped)
	}
}

// Test_newPlan_programs: a selection loads the named programs and, through
// the object's bindings, the tail-call targets their prog arrays hold; a
// name the object lacks is an error naming the programs it has.
func Test_newPlan_programs(t *testing.T) {
	obj := mustLoadObject(t, "../examples/tailcall/dispatch.o", loader.Options{})
	all := mustPlan(t, obj, &CollectionOptions{})
	if len(all.programs) < 2 {
		t.Fatalf("dispatch.o has %v", planNames(all))
	}
	pl := mustPlan(t, obj, &CollectionOptions{Programs: []string{"xdp_dispatch"}})
	if got, want := planNames(pl), planNames(all); !slices.Equal(got, want) {
		t.Errorf("xdp_dispatch with its tail calls: %v, want %v", got, want)
	}
	var leaf string
	for _, p := range all.programs {
		if p.Name != "xdp_dispatch" {
			leaf = p.Name
		}
	}
	pl = mustPlan(t, obj, &CollectionOptions{Programs: []string{leaf}})
	if got := planNames(pl); !slices.Equal(got, []string{leaf}) {
		t.Errorf("%s alone: %v", leaf, got)
	}
	if len(pl.spec.Programs) != 1 {
		t.Errorf("spec programs %d, want 1", len(pl.spec.Programs))
	}
	_, err := newPlan(obj, &CollectionOptions{Programs: []string{"nope"}})
	if err == nil || !strings.Contains(err.Error(), "xdp_dispatch") {
		t.Errorf("unknown program: %v", err)
	}
}

// Test_newPlan_loaderError: a program waggle's loader cannot link (a
// reference to another object's map) is skipped with the loader's
// error, or, when asked for by name, fails the load.
func Test_newPlan_loaderError(t *testing.T) {
	obj := mustLoadObject(t, "../loader/testdata/externs.o", loader.Options{})
	pl := mustPlan(t, obj, &CollectionOptions{})
	i := slices.IndexFunc(pl.skipped, func(s SkippedProgram) bool { return s.Name == "uses_extern_map" })
	if i < 0 || !strings.Contains(pl.skipped[i].Reason.Error(), "shared_counts") {
		t.Fatalf("skipped %v", pl.skipped)
	}
	if pl.spec.Programs["uses_extern_map"] != nil {
		t.Error("the skipped program is in the spec")
	}
	_, err := newPlan(obj, &CollectionOptions{Programs: []string{"uses_extern_map"}})
	if err == nil || !strings.Contains(err.Error(), "shared_counts") {
		t.Errorf("asked for by name: %v", err)
	}
}

// Test_newPlan_dataOffsets: a lddw of a global variable points where
// waggle's loader (as libbpf) points it. cilium/ebpf drops the addend of
// such a reference; the test drops it in the spec (the offset of every
// data load made 0) and newPlan must restore every one.
func Test_newPlan_dataOffsets(t *testing.T) {
	obj := mustLoadObject(t, "../loader/testdata/globals.o", loader.Options{})
	type load struct {
		prog string
		i    int
		off  uint32
	}
	var want []load
	for name, ps := range obj.Spec.Programs {
		for i := range ps.Instructions {
			ins := &ps.Instructions[i]
			if ins.IsLoadFromMap() && ins.Src == asm.PseudoMapValue && isDataSection(ins.Reference()) {
				want = append(want, load{name, i, uint32(uint64(ins.Constant) >> 32)})
				ins.Constant = int64(uint32(ins.Constant))
			}
		}
	}
	nonzero := slices.ContainsFunc(want, func(l load) bool { return l.off != 0 })
	if !nonzero {
		t.Fatal("no data load at a non-zero offset: the test object changed")
	}
	pl := mustPlan(t, obj, &CollectionOptions{})
	for _, w := range want {
		ins := pl.spec.Programs[w.prog].Instructions[w.i]
		if got := uint32(uint64(ins.Constant) >> 32); got != w.off {
			t.Errorf("%s: instruction %d (%v): offset %d, want %d", w.prog, w.i, ins, got, w.off)
		}
	}
}

// TestProgramError: one line, the kernel's or cilium/ebpf's refusal, the
// instruction and source line, waggle's verdict when it disagrees; %+v
// adds both verdicts and the log.
func TestProgramError(t *testing.T) {
	e := &ProgramError{
		Program: "xdp_peek", Section: "xdp", Insn: 1, Line: "./reject.c:15: return data[0]",
		Log: []string{"0: R1=ctx()", "1: (71) r2 = *(u8 *)(r1 +0)", "invalid access to packet"},
		Err: fmt.Errorf("load program: permission denied"), Kernel: true,
		Waggle: &Verdict{Accepted: true, Insn: -1},
	}
	msg := e.Error()
	for _, s := range []string{"xdp_peek", "the kernel refuses it", "instruction 1", "reject.c:15", "permission denied", "waggle's verifier accepts it"} {
		if !strings.Contains(msg, s) {
			t.Errorf("Error() = %q, want %q in it", msg, s)
		}
	}
	if strings.Contains(msg, "\n") {
		t.Errorf("Error() has several lines: %q", msg)
	}
	full := fmt.Sprintf("%+v", e)
	for _, s := range []string{"kernel: rejects", "waggle: accepts", "    invalid access to packet"} {
		if !strings.Contains(full, s) {
			t.Errorf("%%+v = %q, want %q in it", full, s)
		}
	}
	e.Waggle = &Verdict{Err: fmt.Errorf("R1 invalid mem access"), Insn: 1}
	if msg := e.Error(); strings.Contains(msg, "waggle") {
		t.Errorf("both reject, yet: %q", msg)
	}
	e.Kernel = false
	if msg := e.Error(); !strings.Contains(msg, "cilium/ebpf cannot load it") {
		t.Errorf("cilium/ebpf's refusal: %q", msg)
	}
}

func TestMapPinPath(t *testing.T) {
	for in, want := range map[string]string{"counts": "counts", ".rodata": "_rodata", ".data.custom": "_data_custom"} {
		if got := MapPinPath("d", in); got != filepath.Join("d", "maps", want) {
			t.Errorf("MapPinPath(d, %q) = %q, want d/maps/%s", in, got, want)
		}
		if got := ProgramPinPath("d", in); got != filepath.Join("d", "progs", want) {
			t.Errorf("ProgramPinPath(d, %q) = %q, want d/progs/%s", in, got, want)
		}
	}
}
