package waggle

import (
	"context"
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// flagRdonlyProg is BPF_F_RDONLY_PROG: programs may only read the map.
const flagRdonlyProg = 1 << 7

// flagWronlyProg is BPF_F_WRONLY_PROG: programs may only write the map.
const flagWronlyProg = 1 << 8

// Verify runs waggle's verifier on the program, as BPF_PROG_LOAD runs
// Linux's: it explores every path and returns what it found, or a
// *verifier.Error that says why the program is unsafe. opts may be nil.
func (p *Program) Verify(ctx context.Context, opts *verifier.Options) (*verifier.Result, error) {
	lp := p.lp
	if lp.Err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: lp.Err}
	}
	kind, err := p.coll.kindOf(lp)
	if err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: err}
	}
	return p.verify(ctx, kind, p.coll.helperTable(kind, lp.License), opts)
}

// verify runs the verifier on the program of the given kind, which may
// call the helpers of table.
func (p *Program) verify(ctx context.Context, kind *progtype.Kind, table *progtype.HelperTable, opts *verifier.Options) (*verifier.Result, error) {
	vp, err := p.verifierProgram(kind, table)
	if err != nil {
		return nil, err
	}
	return verifier.Verify(ctx, vp, opts)
}

// verifierProgram is what the verifier needs of a program: its linked
// instructions, type, maps and helpers.
func (p *Program) verifierProgram(kind *progtype.Kind, table *progtype.HelperTable) (*verifier.Program, error) {
	lp := p.lp
	c := p.coll
	vp := &verifier.Program{
		Name: lp.Name, Insns: lp.Insns, Kind: kind, GPL: table.GPL,
		Lines: lp.Lines, Funcs: lp.Funcs, Helpers: table.Protos,
		Maps: make([]verifier.Map, 0, len(c.all)),
	}
	for i, m := range c.all {
		spec := m.Spec()
		vm := verifier.Map{Spec: spec, ReadOnly: spec.Flags&flagRdonlyProg != 0, WriteOnly: spec.Flags&flagWronlyProg != 0, SpinLock: c.lockOff[m]}
		if vm.SpinLock < 0 {
			vm.SpinLock = -1
		}
		if vm.ReadOnly && i < len(c.frozen) && c.frozen[i] {
			wm := c.Maps[spec.Name]
			if wm == nil {
				return nil, fmt.Errorf("map %s: not in the collection", spec.Name)
			}
			b, err := wm.LookupBytes(uint32(0))
			if err == nil && b != nil {
				vm.Frozen = b[:spec.ValueSize]
			}
		}
		vp.Maps = append(vp.Maps, vm)
	}
	return vp, nil
}

// helperTable returns the helpers programs of kind with the given license
// may call (progtype.Kind.HelperTable), built once per kind and license:
// the verifier and the engine only read it. Its bpf_tail_call prepares
// the program it continues with (preparingTailCall).
func (c *Collection) helperTable(kind *progtype.Kind, license string) *progtype.HelperTable {
	key := tableKey{kindKey{kind.Type(), kind.AttachType(), kind.String()}, license}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.tables[key]; ok {
		return t
	}
	t := kind.HelperTable(license)
	if tail, ok := t.Funcs[helpers.IDTailCall]; ok {
		t.Funcs[helpers.IDTailCall] = preparingTailCall(tail)
	}
	if c.tables == nil {
		c.tables = map[tableKey]*progtype.HelperTable{}
	}
	c.tables[key] = t
	return t
}
