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
	vp, err := p.verifierProgram(opts)
	if err != nil {
		return nil, err
	}
	return verifier.Verify(ctx, vp, opts)
}

// verifierProgram is what the verifier needs of a program: its linked
// instructions, type, maps and helpers (for the target of opts).
func (p *Program) verifierProgram(opts *verifier.Options) (*verifier.Program, error) {
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
	// The helper tables of targets user and linux are built once per
	// program type; host's is linux's narrowed to what the running kernel
	// offers of the helpers the program calls (probed once per process).
	var o verifier.Options
	if opts != nil {
		o = *opts
	}
	t := o.Target
	if t == progtype.TargetHost {
		t = progtype.TargetLinux
	}
	protos, err := c.helperProtos(kind, t, o.Unprivileged)
	if err == nil && o.Target == progtype.TargetHost {
		protos, err = kind.HostHelpers(protos, progtype.HelperCalls(lp.Insns))
	}
	if err != nil {
		// Not a verdict: the target cannot be decided.
		return nil, fmt.Errorf("verifier: %s: %w", lp.Name, err)
	}
	vp := &verifier.Program{
		Name: lp.Name, Insns: lp.Insns, Kind: kind, GPL: gplCompatible(lp.License),
		Lines: lp.Lines, Funcs: lp.Funcs, Helpers: protos,
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

// protoKey identifies a helper table: the program type, the target
// (user or linux; host's is linux's narrowed per program) and whether the
// program is unprivileged.
type protoKey struct {
	kind   kindKey
	target progtype.Target
	unpriv bool
}

// helperProtos are the prototypes of the helpers programs of kind may
// call on target t (progtype.TargetUser or TargetLinux), built once per
// kind: the verifier only reads them. An error is TargetHelpers'.
func (c *Collection) helperProtos(kind *progtype.Kind, t progtype.Target, unpriv bool) (map[int32]helpers.Proto, error) {
	if t == progtype.TargetUser {
		unpriv = false // the runtime's helpers are the same
	}
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
