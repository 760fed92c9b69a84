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
	vp, err := p.verifierProgram()
	if err != nil {
		return nil, err
	}
	return verifier.Verify(ctx, vp, opts)
}

// verifierProgram is what the verifier needs of a program: its linked
// instructions, type, maps and helpers.
func (p *Program) verifierProgram() (*verifier.Program, error) {
	lp := p.lp
	if lp.Err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: lp.Err}
	}
	c := p.coll
	kind, err := c.kindOf(lp)
	if err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: err}
	}
	vp := &verifier.Program{
		Name: lp.Name, Insns: lp.Insns, Kind: kind, GPL: gplCompatible(lp.License),
		Lines: lp.Lines, Funcs: lp.Funcs, Helpers: c.helperProtos(kind),
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

// helperProtos are the prototypes of the helpers programs of kind may
// call, built once per kind: the verifier only reads them.
func (c *Collection) helperProtos(kind *progtype.Kind) map[int32]helpers.Proto {
	key := kindKey{kind.Type(), kind.AttachType(), kind.String()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if protos, ok := c.protos[key]; ok {
		return protos
	}
	protos := map[int32]helpers.Proto{}
	for _, d := range helpers.Generic() {
		if kind.Allowed(d.ID) {
			protos[d.ID] = d.Proto
		}
	}
	for _, d := range kind.Helpers() {
		protos[d.ID] = d.Proto
	}
	if c.protos == nil {
		c.protos = map[kindKey]map[int32]helpers.Proto{}
	}
	c.protos[key] = protos
	return protos
}
