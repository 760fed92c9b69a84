package bpftest

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// prog returns a program spec in section sec whose instructions are insns
// followed by exit, with BTF naming the function and tagging it.
func prog(sec string, tags []string, insns ...asm.Instruction) *ebpf.ProgramSpec {
	insns = append(insns, asm.Mov.Imm(asm.R0, 0), asm.Return())
	fn := &btf.Func{Name: "f", Type: &btf.FuncProto{Return: &btf.Int{Name: "int", Size: 4}}, Tags: tags}
	insns[0] = btf.WithFuncMetadata(insns[0], fn)
	return &ebpf.ProgramSpec{SectionName: sec, Type: ebpf.SchedCLS, Instructions: insns}
}

// staticTail is what Cilium's tail_call_static emits.
func staticTail(m string, slot int32) []asm.Instruction {
	return []asm.Instruction{
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, 0).WithReference(m),
		asm.Mov.Imm32(asm.R3, slot),
		asm.FnTailCall.Call(),
	}
}

func progArray(n uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: n}
}

func TestObject_tests(t *testing.T) {
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{},
		Programs: map[string]*ebpf.ProgramSpec{
			"b_check":  prog("tc/test/b/check", nil),
			"b_setup":  prog("tc/test/b/setup", nil),
			"a_check":  prog("xdp/test/a/check", nil),
			"a_pktgen": prog("xdp/test/a/pktgen", nil),
			"other":    prog("tc/entry", nil),
			"odd":      prog("tc/test/b/teardown", nil), // not a stage: not a test program
		},
	}
	o, err := newObject("x.o", nil, spec)
	if err != nil {
		t.Fatal(err)
	}
	want := []Test{
		{Name: "a", Type: "xdp", Programs: [3]string{"a_pktgen", "", "a_check"}},
		{Name: "b", Type: "tc", Programs: [3]string{"", "b_setup", "b_check"}},
	}
	if !reflect.DeepEqual(o.Tests, want) {
		t.Errorf("tests %+v, want %+v", o.Tests, want)
	}
}

func TestObject_errors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		progs map[string]*ebpf.ProgramSpec
		maps  map[string]*ebpf.MapSpec
		want  string
	}{
		{"no tests", map[string]*ebpf.ProgramSpec{"p": prog("tc", nil)}, nil, "no tests"},
		{"no check", map[string]*ebpf.ProgramSpec{"p": prog("tc/test/a/setup", nil)}, nil, "test a: no check program"},
		{"two checks", map[string]*ebpf.ProgramSpec{"p": prog("tc/test/a/check", nil), "q": prog("tc/test/a/check", nil)}, nil, "two check programs (p and q)"},
		{"two types", map[string]*ebpf.ProgramSpec{"p": prog("tc/test/a/check", nil), "q": prog("xdp/test/a/setup", nil)}, nil, "programs of two types"},
		{"untagged tail", map[string]*ebpf.ProgramSpec{"c": prog("tc/test/a/check", nil), "t": prog("tc/tail", []string{"other"})}, nil, "no decl tag tail:<map>/<slot>"},
		{"bad tag", map[string]*ebpf.ProgramSpec{"c": prog("tc/test/a/check", nil), "t": prog("tc/tail", []string{"tail:calls"})}, map[string]*ebpf.MapSpec{"calls": progArray(4)}, "want tail:<map>/<slot>"},
		{"no map", map[string]*ebpf.ProgramSpec{"c": prog("tc/test/a/check", nil), "t": prog("tc/tail", []string{"tail:calls/1"})}, nil, "has no prog array calls"},
		{"slot out of range", map[string]*ebpf.ProgramSpec{"c": prog("tc/test/a/check", nil), "t": prog("tc/tail", []string{"tail:calls/4"})}, map[string]*ebpf.MapSpec{"calls": progArray(4)}, "slot 4 is outside calls (4 entries)"},
		{"one slot twice", map[string]*ebpf.ProgramSpec{"c": prog("tc/test/a/check", nil), "t": prog("tc/tail", []string{"tail:calls/1"}), "u": prog("tc/tail", []string{"tail:calls/1"})}, map[string]*ebpf.MapSpec{"calls": progArray(4)}, "programs t and u both take slot 1 of calls"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			maps := tc.maps
			if maps == nil {
				maps = map[string]*ebpf.MapSpec{}
			}
			_, err := newObject("x.o", nil, &ebpf.CollectionSpec{Programs: tc.progs, Maps: maps})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.name == "no tests" && !errors.Is(err, ErrNoTests) {
				t.Errorf("error %v is not ErrNoTests", err)
			}
		})
	}
}

// TestObject_tails checks which tail calls are kept: those a test or entry
// point reaches through static tail calls, transitively; all of a map's
// when its slot is not constant; all when the map is not known.
func TestObject_tails(t *testing.T) {
	maps := map[string]*ebpf.MapSpec{"calls": progArray(8), "other": progArray(8)}
	for _, tc := range []struct {
		name  string
		progs map[string]*ebpf.ProgramSpec
		kept  []string
	}{
		{
			name: "static chain",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil, staticTail("calls", 1)...),
				"t1":    prog("tc/tail", []string{"tail:calls/1"}, staticTail("calls", 2)...),
				"t2":    prog("tc/tail", []string{"tail:calls/2"}),
				"t3":    prog("tc/tail", []string{"tail:calls/3"}, staticTail("calls", 4)...),
				"t4":    prog("tc/tail", []string{"tail:calls/4"}),
				"t5":    prog("tc/tail", []string{"tail:other/1"}),
			},
			kept: []string{"t1", "t2"},
		},
		{
			name: "from an entry point",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil),
				"entry": prog("tc/entry", nil, staticTail("other", 1)...),
				"t1":    prog("tc/tail", []string{"tail:calls/1"}),
				"t5":    prog("tc/tail", []string{"tail:other/1"}),
			},
			kept: []string{"t5"},
		},
		{
			name: "variable slot",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil,
					asm.LoadMapPtr(asm.R2, 0).WithReference("calls"),
					asm.Mov.Reg(asm.R3, asm.R7),
					asm.FnTailCall.Call()),
				"t1": prog("tc/tail", []string{"tail:calls/1"}),
				"t2": prog("tc/tail", []string{"tail:calls/2"}),
				"t5": prog("tc/tail", []string{"tail:other/1"}),
			},
			kept: []string{"t1", "t2"},
		},
		{
			name: "unknown map",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil,
					asm.Mov.Reg(asm.R2, asm.R8),
					asm.Mov.Imm(asm.R3, 1),
					asm.FnTailCall.Call()),
				"t1": prog("tc/tail", []string{"tail:calls/1"}),
				"t5": prog("tc/tail", []string{"tail:other/1"}),
			},
			kept: []string{"t1", "t5"},
		},
		{
			name: "a jump between the slot and the call",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil,
					asm.LoadMapPtr(asm.R2, 0).WithReference("calls"),
					asm.Mov.Imm(asm.R3, 1),
					asm.JEq.Imm(asm.R7, 0, "x"),
					asm.FnTailCall.Call().WithSymbol("x")),
				"t1": prog("tc/tail", []string{"tail:calls/1"}),
				"t2": prog("tc/tail", []string{"tail:calls/2"}),
				"t5": prog("tc/tail", []string{"tail:other/1"}),
			},
			kept: []string{"t1", "t2", "t5"},
		},
		{
			name: "a store through r2 does not set it",
			progs: map[string]*ebpf.ProgramSpec{
				"check": prog("tc/test/a/check", nil,
					asm.LoadMapPtr(asm.R2, 0).WithReference("calls"),
					asm.Mov.Imm(asm.R3, 2),
					asm.StoreImm(asm.R2, 0, 1, asm.Word),
					asm.FnTailCall.Call()),
				"t1": prog("tc/tail", []string{"tail:calls/1"}),
				"t2": prog("tc/tail", []string{"tail:calls/2"}),
			},
			kept: []string{"t2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := newObject("x.o", nil, &ebpf.CollectionSpec{Programs: tc.progs, Maps: maps})
			if err != nil {
				t.Fatal(err)
			}
			var kept []string
			for _, tl := range o.Tails {
				kept = append(kept, tl.Program)
			}
			if !reflect.DeepEqual(kept, tc.kept) {
				t.Errorf("kept %v, want %v (dropped %v)", kept, tc.kept, o.Dropped)
			}
			if len(kept)+len(o.Dropped) != countTails(tc.progs) {
				t.Errorf("kept %v and dropped %v do not add up", kept, o.Dropped)
			}
			spec := o.Spec()
			for _, name := range o.Dropped {
				if spec.Programs[name] != nil {
					t.Errorf("Spec keeps dropped program %s", name)
				}
			}
			for _, tl := range o.Tails {
				found := false
				for _, kv := range spec.Maps[tl.Map].Contents {
					found = found || (kv.Key == tl.Slot && kv.Value == tl.Program)
				}
				if !found {
					t.Errorf("Spec: %s lacks %s at %d", tl.Map, tl.Program, tl.Slot)
				}
			}
			if len(o.spec.Maps["calls"].Contents) != 0 {
				t.Error("Spec changed the object's own spec")
			}
		})
	}
}

func countTails(progs map[string]*ebpf.ProgramSpec) int {
	n := 0
	for _, p := range progs {
		if strings.HasSuffix(p.SectionName, "/tail") {
			n++
		}
	}
	return n
}
