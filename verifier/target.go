package verifier

import (
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// forTarget returns p with the helpers of opts.Target when p.Helpers is
// nil (a copy: the caller's Program is not changed), and for TargetHost
// checks that the running kernel has the program's type and the types of
// the maps it refers to.
func forTarget(p *Program, opts *Options) (*Program, error) {
	if p == nil || p.Kind == nil || len(p.Insns) == 0 {
		return p, nil // run says what is wrong
	}
	if opts.Target == progtype.TargetHost {
		if err := p.Kind.HostProgramType(); err != nil {
			if errors.Is(err, progtype.ErrHostProbe) {
				return nil, fmt.Errorf("verifier: %s: %w", p.Name, err)
			}
			return nil, &Error{Program: p.Name, Insn: -1, Msg: err.Error(), Hint: "verify with target linux (--target linux) to check the program against upstream Linux"}
		}
		for i, ins := range p.Insns {
			if !ins.IsLoadImm64() || ins.Src != isa.PseudoMapIdx && ins.Src != isa.PseudoMapIdxValue || int(ins.Imm) < 0 || int(ins.Imm) >= len(p.Maps) {
				continue
			}
			m := p.Maps[ins.Imm].Spec
			if err := progtype.HostMapType(m.Type); err != nil {
				if errors.Is(err, progtype.ErrHostProbe) {
					return nil, fmt.Errorf("verifier: %s: map %s: %w", p.Name, m.Name, err)
				}
				return nil, &Error{Program: p.Name, Insn: i, Msg: fmt.Sprintf("map %s: %v", m.Name, err), Hint: "use a map type this kernel has"}
			}
		}
	}
	if p.Helpers != nil {
		return p, nil
	}
	hs, err := p.Kind.TargetHelpers(opts.Target, opts.Unprivileged, progtype.HelperCalls(p.Insns))
	if err != nil {
		// The target cannot be decided (a user hook on a kernel target,
		// a kernel that cannot be probed): not a verdict.
		return nil, fmt.Errorf("verifier: %s: %w", p.Name, err)
	}
	cp := *p
	cp.Helpers = hs
	return &cp, nil
}

// unavailableHelper is the error for a call to a helper that is not in
// p.Helpers: Linux's message, with why the target lacks it and what to
// do as the hint.
func (v *verifier) unavailableHelper(pc int, id int32) *Error {
	name := helpers.Name(id)
	if name == "" {
		return hinted(v.errorf(pc, "invalid func unknown#%d", id), "Linux has no helper %d: call one it has", id)
	}
	why, hint := v.p.Kind.HelperUnavailable(v.opts.Target, v.opts.Unprivileged, id)
	if why == "" {
		// The caller's Program.Helpers left it out.
		why = fmt.Sprintf("bpf_%s is not among the program's helpers (verifier.Program.Helpers)", name)
		hint = "add its prototype to Program.Helpers, or leave Helpers nil for the target's"
	}
	return hinted(v.errorf(pc, "program of this type cannot use helper bpf_%s#%d (%s)", name, id, why), "%s", hint)
}
