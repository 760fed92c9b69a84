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
// opts.Target says what the program is verified for: waggle's runtime
// (progtype.TargetUser, the default, what Prepare and Run verify), upstream
// Linux (progtype.TargetLinux) or the running kernel (progtype.TargetHost),
// which differ in the helpers a program may call.
func (p *Program) Verify(ctx context.Context, opts *verifier.Options) (*verifier.Result, error) {
	lp := p.lp
	if lp == nil {
		// prepareSelf drops the linked program once it is prepared.
		return nil, fmt.Errorf("program %s: already prepared (Prepare, Run): verify it before, or in another Collection", p.name)
	}
	if lp.Err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: lp.Err}
	}
	c := p.coll
	kind, err := c.kindOf(lp)
	if err != nil {
		return nil, &PrepareError{Program: lp.Name, Section: lp.Section, Err: err}
	}
	var o verifier.Options
	if opts != nil {
		o = *opts
	}
	var protos map[int32]helpers.Proto
	switch o.Target {
	case progtype.TargetUser:
		// What the runtime runs: the table its engine calls.
		protos = c.helperTable(kind, lp.License).Protos
	case progtype.TargetLinux, progtype.TargetHost:
		// The table of target linux is built once per program type;
		// host's is linux's narrowed to what the running kernel offers
		// of the helpers the program calls (probed once per process).
		protos, err = c.helperProtos(kind, progtype.TargetLinux, o.Unprivileged)
		if err == nil && o.Target == progtype.TargetHost {
			protos, err = kind.HostHelpers(protos, progtype.HelperCalls(lp.Insns))
		}
	default:
		_, err = kind.TargetHelpers(o.Target, o.Unprivileged, nil) // says which targets there are
	}
	if err != nil {
		// Not a verdict: the target cannot be decided.
		return nil, fmt.Errorf("verifier: %s: %w", lp.Name, err)
	}
	vp, err := p.verifierProgram(kind, protos)
	if err != nil {
		return nil, err
	}
	if o.KernelTypes == nil && o.Target != progtype.TargetUser {
		// Read the kernel's BTF once per collection, not per program.
		o.KernelTypes = c.kernelTypes()
	}
	return verifier.Verify(ctx, vp, &o)
}

// verify is the verification of Prepare: for target user, against the
// helper table the engine calls.
func (p *Program) verify(ctx context.Context, kind *progtype.Kind, table *progtype.HelperTable) (*verifier.Result, error) {
	vp, err := p.verifierProgram(kind, table.Protos)
	if err != nil {
		return nil, err
	}
	return verifier.Verify(ctx, vp, nil)
}

// verifierProgram is what the verifier needs of a program: its linked
// instructions, type, maps and the prototypes of the helpers it may call.
func (p *Program) verifierProgram(kind *progtype.Kind, protos map[int32]helpers.Proto) (*verifier.Program, error) {
	lp := p.lp
	c := p.coll
	vp := &verifier.Program{
		Name: lp.Name, Insns: lp.Insns, Kind: kind, GPL: progtype.GPLCompatible(lp.License),
		Lines: lp.Lines, Funcs: lp.Funcs, Helpers: protos, Sleepable: lp.Flags&bpfFSleepable != 0,
		Maps: make([]verifier.Map, 0, len(c.all)),
	}
	for i, m := range c.all {
		spec := m.Spec()
		wm := c.Maps[spec.Name]
		if wm == nil {
			return nil, fmt.Errorf("map %s: not in the collection", spec.Name)
		}
		vm := wm.fields
		vm.Spec, vm.ReadOnly, vm.WriteOnly = spec, spec.Flags&flagRdonlyProg != 0, spec.Flags&flagWronlyProg != 0
		vm.SpinLock = max(c.lockOff[m], -1)
		if vm.ReadOnly && i < len(c.frozen) && c.frozen[i] {
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
// may call on target user (progtype.Kind.HelperTable), built once per kind
// and license: the verifier and the engine only read it. Its bpf_tail_call
// prepares the program it continues with (preparingTailCall).
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

// protoKey identifies a helper table of target linux: the program type and
// whether the program is unprivileged.
type protoKey struct {
	kind   kindKey
	target progtype.Target
	unpriv bool
}

// helperProtos are the prototypes of the helpers programs of kind may
// call on target t (progtype.TargetLinux; target user's are helperTable's),
// built once per kind: the verifier only reads them. An error is
// TargetHelpers'.
func (c *Collection) helperProtos(kind *progtype.Kind, t progtype.Target, unpriv bool) (map[int32]helpers.Proto, error) {
	key := protoKey{kindKey{kind.Type(), kind.AttachType(), kind.String()}, t, unpriv}
	c.mu.Lock()
	defer c.mu.Unlock()
	if protos, ok := c.protos[key]; ok {
		return protos, nil
	}
	protos, err := kind.TargetHelpers(t, unpriv, nil)
	if err != nil {
		return nil, err
	}
	if c.protos == nil {
		c.protos = map[protoKey]map[int32]helpers.Proto{}
	}
	c.protos[key] = protos
	return protos, nil
}
