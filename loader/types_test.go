package loader

import (
	"bytes"
	"debug/elf"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
)

// TestLoad_ovs reads an object laid out as Open vSwitch's eBPF datapath
// was, built as old clang built it: every program a static function in its
// own section, whose symbol has no type. cilium/ebpf refuses it ("missing
// symbols"); the loader types the symbol that starts each section as a
// function and reads it.
func TestLoad_ovs(t *testing.T) {
	const path = "testdata/ovs_oldclang.o"
	if _, err := ebpf.LoadCollectionSpec(path); err == nil {
		t.Fatal("cilium/ebpf reads the object; it no longer has the layout it reproduces")
	}
	ef, err := readELF(mustRead(t, path))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ef.normalised, "4 local symbols starting a program section typed as functions") {
		t.Errorf("normalised: %q", ef.normalised)
	}
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	syms, _ := f.Symbols()
	f.Close()
	for _, s := range syms {
		if s.Name == "to_stack" && (elf.ST_TYPE(s.Info) != elf.STT_NOTYPE || elf.ST_BIND(s.Info) != elf.STB_LOCAL) {
			t.Fatalf("to_stack is %s %s in the object, want a local NOTYPE symbol", elf.ST_BIND(s.Info), elf.ST_TYPE(s.Info))
		}
	}
	obj := mustLoad(t, path)
	var got []string
	for _, p := range obj.Programs {
		got = append(got, p.Section+":"+p.Name)
		if p.Type != ebpf.UnspecifiedProgram {
			t.Errorf("%s: type %s, want none (no section names one)", p.Name, p.Type)
		}
		checkProgram(t, obj, p)
	}
	want := []string{"tail-32:ovs_parser", "tail-0:tail_action_unspec", "ingress:to_stack", "egress:from_stack"}
	if !slices.Equal(got, want) {
		t.Errorf("programs %v, want %v", got, want)
	}
	// stats_account, a static function in .text, is called: it is linked
	// into both callers.
	for _, name := range []string{"to_stack", "ovs_parser"} {
		p := mustProgram(t, obj, name)
		if len(p.Funcs) != 2 || p.Funcs[1].Name != "stats_account" {
			t.Errorf("%s: functions %+v", name, p.Funcs)
		}
	}
	if d := obj.MapDefs; len(d) != 2 || d[0].Size != 28 {
		t.Errorf("map definitions %+v", d)
	}
	// The type to give them all, as tc's "bpf obj ... type" does.
	typed, err := LoadFile(path, Options{DefaultType: ebpf.SchedCLS})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range typed.Programs {
		if p.Type != ebpf.SchedCLS || p.TypeFrom != TypeFromDefault {
			t.Errorf("%s: %s from %s, want sched_cls from default", p.Name, p.Type, p.TypeFrom)
		}
	}
}

// TestLoad_textOnly reads objects whose functions have no section
// attribute: their functions are programs, with the section ".text" and no
// type, with and without BTF.
func TestLoad_textOnly(t *testing.T) {
	for _, path := range []string{"testdata/textonly.o", "testdata/textonly_nobtf.o"} {
		t.Run(path, func(t *testing.T) {
			spec, err := ebpf.LoadCollectionSpec(path)
			if err != nil || len(spec.Programs) != 0 {
				t.Fatalf("cilium/ebpf: %d programs, %v; want none (it hides .text)", len(spec.Programs), err)
			}
			obj := mustLoad(t, path)
			var names []string
			for _, p := range obj.Programs {
				names = append(names, p.Name)
				if p.Section != ".text" || p.Type != ebpf.UnspecifiedProgram {
					t.Errorf("%s: section %q, type %s", p.Name, p.Section, p.Type)
				}
				checkProgram(t, obj, p)
			}
			if !slices.Equal(names, []string{"is_big", "drop_big", "pass"}) {
				t.Errorf("programs %v", names)
			}
			p := mustProgram(t, obj, "drop_big")
			if len(p.Funcs) != 2 || p.Funcs[1].Name != "is_big" {
				t.Errorf("drop_big links %+v", p.Funcs)
			}
			if strings.HasSuffix(path, "textonly.o") {
				if p.Funcs[0].BTF == nil || p.Funcs[0].BTF.Name != "drop_big" {
					t.Errorf("drop_big: BTF func info %v", p.Funcs[0].BTF)
				}
				if l := p.Lines[0]; !strings.HasSuffix(l.File, "textonly.c") || l.Line == 0 {
					t.Errorf("drop_big: line info of slot 0 %+v", l)
				}
			}
			typed, err := LoadFile(path, Options{ProgramType: map[string]ebpf.ProgramType{"drop_big": ebpf.XDP}})
			if err != nil {
				t.Fatal(err)
			}
			if p := mustProgram(t, typed, "drop_big"); p.Type != ebpf.XDP || p.TypeFrom != TypeFromOption {
				t.Errorf("drop_big: %s from %s", p.Type, p.TypeFrom)
			}
		})
	}
	// Where other sections hold programs, .text holds their subprograms,
	// which are no programs.
	for _, p := range mustLoad(t, "testdata/subprogs.o").Programs {
		if p.Section == ".text" {
			t.Errorf("subprogs.o: %s from .text is a program", p.Name)
		}
	}
}

// TestLoad_inheritTypes checks which programs take the type of the programs
// whose prog arrays hold them.
func TestLoad_inheritTypes(t *testing.T) {
	for _, tc := range []struct {
		path string
		opts Options
		want map[string]string // program -> "type from"
	}{
		{"testdata/inherit.o", Options{}, map[string]string{
			"entry":         "XDP section",
			"tail_a":        "XDP tail call",
			"tail_b":        "XDP tail call", // through tail_a's prog array
			"orphan":        "UnspecifiedProgram section",
			"lonely_caller": "UnspecifiedProgram section",
			"torn":          "UnspecifiedProgram section", // xdp and socket programs tail-call it
			"sock":          "SocketFilter section",
		}},
		{"testdata/inherit.o", Options{DefaultType: ebpf.SchedCLS}, map[string]string{
			"entry":         "XDP section",
			"tail_a":        "XDP tail call",
			"tail_b":        "XDP tail call",
			"orphan":        "SchedCLS default",
			"lonely_caller": "SchedCLS default",
			"torn":          "SchedCLS default",
			"sock":          "SocketFilter section",
		}},
		{"testdata/inherit.o", Options{ProgramType: map[string]ebpf.ProgramType{"lonely_sec": ebpf.XDP, "tail_a": ebpf.SchedCLS}}, map[string]string{
			"entry":         "XDP section",
			"tail_a":        "SchedCLS option",
			"tail_b":        "SchedCLS tail call", // from its caller's overridden type
			"orphan":        "XDP tail call",
			"lonely_caller": "XDP option",
		}},
		// iproute2: the "ID/KEY" sections land in the prog array of the
		// classifier; "ingress" has no caller.
		{"testdata/iproute2.o", Options{}, map[string]string{
			"cls_entry": "SchedCLS section",
			"cls_case1": "SchedCLS tail call",
			"cls_case2": "SchedCLS tail call",
			"ing":       "UnspecifiedProgram section",
		}},
		{"testdata/iproute2_old.o", Options{}, map[string]string{
			"target": "SchedCLS tail call",
		}},
	} {
		obj, err := LoadFile(tc.path, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range tc.want {
			p := mustProgram(t, obj, name)
			if got := p.Type.String() + " " + p.TypeFrom.String(); got != want {
				t.Errorf("%s %+v: %s is %q, want %q", tc.path, tc.opts, name, got, want)
			}
		}
	}
}

// TestLoad_badRelocationFailsOneProgram: a relocation that cannot be
// applied fails the programs whose instructions it is for, and only them;
// the error names the section, the relocation and the instruction.
func TestLoad_badRelocationFailsOneProgram(t *testing.T) {
	b := mustRead(t, "testdata/inherit.o")
	f, err := elf.NewFile(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rel := f.Section(".reltail-1")
	if rel == nil {
		t.Fatal("no .reltail-1")
	}
	// tail_a's lddw of level2 now names the license.
	syms, _ := f.Symbols()
	lic := slices.IndexFunc(syms, func(s elf.Symbol) bool { return s.Name == "LICENSE" }) + 1
	bad := slices.Clone(b)
	copy(bad[rel.Offset+8:], le64(uint64(lic)<<32|1))
	obj := mustLoadBytes(t, bad)
	for _, p := range obj.Programs {
		switch p.Name {
		case "tail_a":
			if p.Err == nil || !strings.Contains(p.Err.Error(), `section tail-1: relocation 0 at instruction`) || !strings.Contains(p.Err.Error(), `symbol "LICENSE" is in section license`) {
				t.Errorf("tail_a: %v", p.Err)
			}
			if p.Type != ebpf.XDP {
				t.Errorf("tail_a: type %s, still bound in entry's prog array", p.Type)
			}
		default:
			if p.Err != nil {
				t.Errorf("%s: %v", p.Name, p.Err)
			}
			checkProgram(t, obj, p)
		}
	}
}

// TestLoad_externs: a map or variable the object declares extern for
// another object to define cannot be resolved, and fails the programs that
// refer to it, naming the symbol; a kernel symbol (__ksym) and a symbol of
// inline assembly stay externs with a zero constant, as cilium/ebpf leaves
// them, and programs that refer to nothing undefined load.
func TestLoad_externs(t *testing.T) {
	obj := mustLoad(t, "testdata/externs.o")
	want := map[string]string{
		"uses_extern_map": `symbol "shared_counts" is an extern map`,
		"uses_extern_var": `symbol "shared_total" is an extern variable`,
	}
	externs := map[string]string{"uses_ksym": "_stext", "uses_asm_symbol": "ASM_SYMBOL"}
	for _, p := range obj.Programs {
		if w, ok := want[p.Name]; ok {
			if p.Err == nil || !strings.Contains(p.Err.Error(), w) {
				t.Errorf("%s: %v, want an error with %q", p.Name, p.Err, w)
			}
			continue
		}
		if p.Err != nil {
			t.Errorf("%s: %v", p.Name, p.Err)
			continue
		}
		checkProgram(t, obj, p)
		if name, ok := externs[p.Name]; ok && (len(p.Externs) != 1 || p.Externs[0].Name != name || p.Externs[0].Kind != Ksym) {
			t.Errorf("%s: externs %v, want the ksym %s", p.Name, p.Externs, name)
		}
	}
	if len(obj.Programs) != 5 {
		t.Errorf("%d programs, want 5", len(obj.Programs))
	}
}

// TestLoad_attachTypeOption: Options.AttachType sets the expected attach
// type of a program by section or program name, and names a key that
// matches neither.
func TestLoad_attachTypeOption(t *testing.T) {
	for _, key := range []string{"connect4", "sock4_connect"} {
		obj, err := LoadFile("testdata/untyped.o", Options{
			ProgramType: map[string]ebpf.ProgramType{key: ebpf.CGroupSockAddr},
			AttachType:  map[string]ebpf.AttachType{key: ebpf.AttachCGroupInet4Connect},
		})
		if err != nil {
			t.Fatal(err)
		}
		p := mustProgram(t, obj, "sock4_connect")
		if p.Type != ebpf.CGroupSockAddr || p.AttachType != ebpf.AttachCGroupInet4Connect {
			t.Errorf("by %q: %s, attach type %s", key, p.Type, p.AttachType)
		}
	}
	obj := mustLoad(t, "testdata/untyped.o")
	if p := mustProgram(t, obj, "sock4_connect"); p.Type != ebpf.UnspecifiedProgram || p.AttachType != ebpf.AttachNone {
		t.Errorf("without options: %s, attach type %s", p.Type, p.AttachType)
	}
	_, err := LoadFile("testdata/untyped.o", Options{AttachType: map[string]ebpf.AttachType{"bind4": ebpf.AttachCGroupInet4Bind}})
	if err == nil || !strings.Contains(err.Error(), `option AttachType: no program or section is called "bind4"`) {
		t.Errorf("unknown key: %v", err)
	}
}
