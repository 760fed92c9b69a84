package bpftest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// Stage is one of the three programs of a test.
type Stage int

// The stages of a test, in the order they run.
const (
	PktGen Stage = iota // builds the test packet
	Setup               // runs the code under test on it
	Check               // asserts on the result
)

// String returns the stage's name as section names spell it.
func (s Stage) String() string {
	switch s {
	case PktGen:
		return "pktgen"
	case Setup:
		return "setup"
	case Check:
		return "check"
	}
	return "Stage(" + strconv.Itoa(int(s)) + ")"
}

// Test is one test of an object: the programs in sections
// "<type>/test/<Name>/<stage>".
type Test struct {
	// Name is the test's name, from its section names.
	Name string
	// Type is the section's program type prefix: "tc" or "xdp".
	Type string
	// Programs are the names of the test's programs by Stage; "" where the
	// test has none (only Check is required).
	Programs [3]string
}

// Tail is a program the loader places in a prog array before the tests
// run, as Cilium's loader does: a function in a "*/tail" section tagged
// `btf_decl_tag("tail:<map>/<slot>")`.
type Tail struct {
	Program string
	Map     string
	Slot    uint32
}

// Object is an object file of tests, read and analysed once; every engine
// loads it from here.
type Object struct {
	// Name is the file's name, as results print it.
	Name string
	// Tests are the object's tests, sorted by name: the order they run in.
	Tests []Test
	// Tails are the tail-call programs placed in prog arrays at load time,
	// by map and slot.
	Tails []Tail
	// Dropped are the tail-call programs left out because no test, entry
	// point or kept tail call reaches them through a tail call (Cilium's
	// loader leaves them out too: they need not pass the verifier).
	Dropped []string

	elf  []byte               // the file
	spec *ebpf.CollectionSpec // parsed once, copied by each load
	// bySection are the tail calls placed by their section name ("ID/KEY"),
	// not by a decl tag: the prog array each goes into, by program.
	bySection map[string]string
	// rewritten means spec is no longer what elf holds
	// (InlineGlobalData): engines load spec.
	rewritten bool
}

// Errors of the tests' conventions.
var (
	// ErrNoTests means the object has no program in a
	// "<type>/test/<name>/check" section.
	ErrNoTests = errors.New("no tests: no program is in a <type>/test/<name>/check section")
)

// Open reads the object file at path.
func Open(path string) (*Object, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(filepath.Base(path), b)
}

// Parse reads an object file's bytes; name is how results name it.
func Parse(name string, elf []byte) (*Object, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(elf))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return newObject(name, elf, spec)
}

// newObject analyses spec, read from the file elf.
func newObject(name string, elf []byte, spec *ebpf.CollectionSpec) (*Object, error) {
	o := &Object{Name: name, elf: elf, spec: spec}
	if err := o.findTests(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := o.placeTails(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return o, nil
}

// Bytes returns the object file's bytes.
func (o *Object) Bytes() []byte { return o.elf }

// Spec returns a copy of the object as cilium/ebpf reads it, prepared as
// the kernel should load it: tail calls placed in their prog arrays
// (MapSpec.Contents), unreachable tail calls left out, and pinning off.
// The rest of iproute2's map definitions (MapSpec.Extra: the id that
// places tail calls, the pinning) is dropped once read, and the programs
// whose section names no type (tail calls in "ID/KEY" sections, programs
// in sections such as "from-container" that prog arrays name) take the
// type of the tests, as Cilium's loader gave them the object's type, and
// their attach type: Linux lets a prog array hold only programs of the
// same expected attach type (cilium/ebpf gives "xdp" sections BPF_XDP).
func (o *Object) Spec() *ebpf.CollectionSpec {
	spec := o.spec.Copy()
	for _, name := range o.Dropped {
		delete(spec.Programs, name)
	}
	for _, t := range o.Tails {
		ms := spec.Maps[t.Map]
		ms.Contents = append(ms.Contents, ebpf.MapKV{Key: t.Slot, Value: t.Program})
	}
	check := spec.Programs[o.Tests[0].Programs[Check]]
	for _, ps := range spec.Programs {
		if ps.Type == ebpf.UnspecifiedProgram {
			ps.Type, ps.AttachType = check.Type, check.AttachType
		}
	}
	for _, ms := range spec.Maps {
		ms.Pinning = ebpf.PinNone
		ms.Extra = nil
	}
	return spec
}

// findTests groups the programs in "<type>/test/<name>/<stage>" sections.
func (o *Object) findTests() error {
	byName := map[string]*Test{}
	for name, ps := range o.spec.Programs {
		typ, test, stage, ok := testSection(ps.SectionName)
		if !ok {
			continue
		}
		t := byName[test]
		if t == nil {
			t = &Test{Name: test, Type: typ}
			byName[test] = t
		}
		if t.Type != typ {
			return fmt.Errorf("test %s: programs of two types (%s and %s)", test, t.Type, typ)
		}
		if prev := t.Programs[stage]; prev != "" {
			a, b := min(prev, name), max(prev, name)
			return fmt.Errorf("test %s: two %s programs (%s and %s)", test, stage, a, b)
		}
		t.Programs[stage] = name
	}
	for _, t := range byName {
		if t.Programs[Check] == "" {
			return fmt.Errorf("test %s: no check program (sections %s/test/%s/check)", t.Name, t.Type, t.Name)
		}
		o.Tests = append(o.Tests, *t)
	}
	if len(o.Tests) == 0 {
		return ErrNoTests
	}
	sort.Slice(o.Tests, func(i, j int) bool { return o.Tests[i].Name < o.Tests[j].Name })
	return nil
}

// testSection splits a section name "<type>/test/<name>/<stage>".
func testSection(sec string) (typ, name string, stage Stage, ok bool) {
	typ, rest, found := strings.Cut(sec, "/test/")
	if !found || typ == "" || strings.Contains(typ, "/") {
		return "", "", 0, false
	}
	i := strings.LastIndexByte(rest, '/')
	if i <= 0 {
		return "", "", 0, false
	}
	name = rest[:i]
	switch rest[i+1:] {
	case "pktgen":
		stage = PktGen
	case "setup":
		stage = Setup
	case "check":
		stage = Check
	default:
		return "", "", 0, false
	}
	return typ, name, stage, true
}

// tailTagPrefix starts the BTF decl tag that places a tail call.
const tailTagPrefix = "tail:"

// placeTails finds the tail-call programs and their slots, and drops those
// that nothing reaches. A program is placed by its BTF decl tag
// (Cilium 1.18 on) or, in a section "ID/KEY" (iproute2's convention, which
// Cilium used until 1.17), at slot KEY of the prog array whose iproute2
// definition (struct bpf_elf_map) has that id.
func (o *Object) placeTails() error {
	var tails []Tail
	isTail := map[string]bool{}
	for name, ps := range o.spec.Programs {
		if id, slot, ok := tailSection(ps.SectionName); ok {
			m, err := o.mapByID(id)
			if err != nil {
				return fmt.Errorf("program %s (section %s): %w", name, ps.SectionName, err)
			}
			if slot >= o.spec.Maps[m].MaxEntries {
				return fmt.Errorf("program %s (section %s): slot %d is outside %s (%d entries)", name, ps.SectionName, slot, m, o.spec.Maps[m].MaxEntries)
			}
			tails = append(tails, Tail{Program: name, Map: m, Slot: slot})
			isTail[name] = true
			if o.bySection == nil {
				o.bySection = map[string]string{}
			}
			o.bySection[name] = m
			continue
		}
		if !strings.HasSuffix(ps.SectionName, "/tail") {
			continue
		}
		isTail[name] = true
		var fn *btf.Func
		if len(ps.Instructions) > 0 {
			fn = btf.FuncMetadata(&ps.Instructions[0])
		}
		if fn == nil {
			return fmt.Errorf("program %s (section %s): no BTF to tell its tail-call slot", name, ps.SectionName)
		}
		found := false
		for _, tag := range fn.Tags {
			spec, ok := strings.CutPrefix(tag, tailTagPrefix)
			if !ok {
				continue
			}
			m, slot, ok := strings.Cut(spec, "/")
			n, err := strconv.ParseUint(slot, 0, 32)
			if !ok || err != nil {
				return fmt.Errorf("program %s: decl tag %q: want tail:<map>/<slot>", name, tag)
			}
			ms := o.spec.Maps[m]
			if ms == nil || ms.Type != ebpf.ProgramArray {
				return fmt.Errorf("program %s: decl tag %q: the object has no prog array %s", name, tag, m)
			}
			if uint32(n) >= ms.MaxEntries {
				return fmt.Errorf("program %s: decl tag %q: slot %d is outside %s (%d entries)", name, tag, n, m, ms.MaxEntries)
			}
			tails = append(tails, Tail{Program: name, Map: m, Slot: uint32(n)})
			found = true
		}
		if !found {
			return fmt.Errorf("program %s (section %s): no decl tag tail:<map>/<slot> places it", name, ps.SectionName)
		}
	}
	sort.Slice(tails, func(i, j int) bool {
		a, b := tails[i], tails[j]
		if a.Map != b.Map {
			return a.Map < b.Map
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		return a.Program < b.Program
	})
	for i := 1; i < len(tails); i++ {
		if a, b := tails[i-1], tails[i]; a.Map == b.Map && a.Slot == b.Slot {
			return fmt.Errorf("programs %s and %s both take slot %d of %s", a.Program, b.Program, a.Slot, a.Map)
		}
	}
	reached := o.reachable(tails, isTail)
	for _, t := range tails {
		if reached[t.Program] {
			o.Tails = append(o.Tails, t)
		}
	}
	for name := range isTail {
		if !reached[name] {
			o.Dropped = append(o.Dropped, name)
		}
	}
	sort.Strings(o.Dropped)
	return nil
}

// tailSection splits iproute2's tail-call section name "ID/KEY": two
// numbers, the map's id in decimal and the slot in decimal or, with 0x,
// hexadecimal (Cilium's loader read them with %d/%v).
func tailSection(sec string) (id, slot uint32, ok bool) {
	a, b, found := strings.Cut(sec, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.ParseUint(a, 10, 32)
	k, err2 := strconv.ParseUint(b, 0, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, false
	}
	return uint32(i), uint32(k), true
}

// mapByID returns the prog array whose iproute2 definition has id: the
// first 32-bit field after the five that every legacy definition has
// (MapSpec.Extra).
func (o *Object) mapByID(id uint32) (string, error) {
	var found []string
	for name, ms := range o.spec.Maps {
		var f [4]byte
		if ms.Extra == nil || ms.Extra.Size() < 8 {
			continue // too short to be a struct bpf_elf_map
		}
		if _, err := ms.Extra.ReadAt(f[:], 0); err != nil || o.spec.ByteOrder.Uint32(f[:]) != id {
			continue
		}
		found = append(found, name)
	}
	sort.Strings(found)
	switch {
	case len(found) == 0:
		return "", fmt.Errorf("no map has iproute2 id %d", id)
	case len(found) > 1:
		return "", fmt.Errorf("maps %s and %s both have iproute2 id %d", found[0], found[1], id)
	}
	if t := o.spec.Maps[found[0]].Type; t != ebpf.ProgramArray {
		return "", fmt.Errorf("map %s (iproute2 id %d) is a %s, not a prog array", found[0], id, t)
	}
	return found[0], nil
}

// reachable returns the programs reached from the roots (every program
// that is not a tail call, and every program a prog array's declaration
// names) through tail calls: a call of bpf_tail_call with a constant map
// and slot reaches what the slot holds, one with a variable slot reaches
// every slot of the map.
func (o *Object) reachable(tails []Tail, isTail map[string]bool) map[string]bool {
	type slot struct {
		m string
		k uint32
	}
	held := map[slot][]string{}
	for _, t := range tails {
		held[slot{t.Map, t.Slot}] = append(held[slot{t.Map, t.Slot}], t.Program)
	}
	reached := map[string]bool{}
	var work []string
	mark := func(name string) {
		if !reached[name] {
			reached[name] = true
			work = append(work, name)
		}
	}
	var names []string
	for name := range o.spec.Programs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !isTail[name] {
			mark(name)
		}
	}
	for _, ms := range o.spec.Maps {
		if ms.Type != ebpf.ProgramArray {
			continue
		}
		for _, kv := range ms.Contents {
			if p, ok := kv.Value.(string); ok {
				mark(p)
			}
		}
	}
	for len(work) > 0 {
		name := work[len(work)-1]
		work = work[:len(work)-1]
		for _, c := range tailCalls(o.spec.Programs[name].Instructions) {
			if c.dynamic || c.m == "" {
				for s, ps := range held {
					if s.m == c.m || c.m == "" {
						for _, p := range ps {
							mark(p)
						}
					}
				}
				continue
			}
			for _, p := range held[slot{c.m, c.k}] {
				mark(p)
			}
		}
	}
	return reached
}

// tailCall is a call of bpf_tail_call found in a program.
type tailCall struct {
	m       string // the prog array; "" if not known here (any)
	k       uint32 // the slot, if !dynamic
	dynamic bool   // the slot is not known here (any)
}

// helperTailCall is BPF_FUNC_tail_call.
const helperTailCall = 12

// tailCalls finds the tail calls of a program: the map is known when r2 is
// set from a map reference, and the slot when r3 is set from an immediate,
// earlier in the same straight-line run of instructions (what Cilium's
// tail_call_static emits, and what clang emits for bpf_tail_call with
// constants); otherwise the call may reach any map or slot.
func tailCalls(insns asm.Instructions) []tailCall {
	var calls []tailCall
	for i := range insns {
		ins := &insns[i]
		if !ins.IsBuiltinCall() || ins.Constant != helperTailCall {
			continue
		}
		m, k, kOK := "", uint32(0), false
		haveM, haveK := false, false
		for j := i - 1; j >= 0 && !(haveM && haveK); j-- {
			p := &insns[j]
			if p.OpCode.Class().IsJump() {
				break
			}
			if c := p.OpCode.Class(); c != asm.ALUClass && c != asm.ALU64Class && c != asm.LdClass && c != asm.LdXClass {
				continue // stores write memory, not their dst register
			}
			if p.Dst == asm.R2 && !haveM {
				haveM = true
				if p.IsLoadFromMap() {
					m = p.Reference()
				}
			}
			if p.Dst == asm.R3 && !haveK {
				haveK = true
				if c := p.OpCode.Class(); c.IsALU() && p.OpCode.ALUOp() == asm.Mov && p.OpCode.Source() == asm.ImmSource {
					k, kOK = uint32(p.Constant), true
				}
			}
		}
		calls = append(calls, tailCall{m: m, k: k, dynamic: !kOK})
	}
	return calls
}
