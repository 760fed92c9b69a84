package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// waggleVerdicts runs waggle's verifier on the named programs of obj, for
// the running kernel (progtype.TargetHost: the helpers this kernel
// offers), so that its verdicts can be set beside the kernel's.
func waggleVerdicts(obj *loader.Object, names []string) map[string]*Verdict {
	out := make(map[string]*Verdict, len(names))
	coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		for _, n := range names {
			out[n] = &Verdict{Unknown: true, Insn: -1, Err: fmt.Errorf("waggle cannot open the object: %w", err)}
		}
		return out
	}
	defer coll.Close()
	for _, n := range names {
		out[n] = verdict(coll.Programs[n])
	}
	return out
}

// verdict is waggle's verifier's verdict on p: a *verifier.Error is a
// rejection; any other error means no verdict.
func verdict(p *waggle.Program) *Verdict {
	if p == nil {
		return &Verdict{Unknown: true, Insn: -1, Err: errors.New("not in waggle's collection")}
	}
	res, err := p.Verify(context.Background(), &verifier.Options{Target: progtype.TargetHost})
	v := &Verdict{Insn: -1, Err: err}
	if res != nil {
		v.Processed = res.Processed
	}
	var ve *verifier.Error
	switch {
	case err == nil:
		v.Accepted = true
	case errors.As(err, &ve):
		v.Insn = ve.Insn
		if ve.File != "" {
			v.Line = fmt.Sprintf("%s:%d: %s", ve.File, ve.Line, ve.Source)
		}
	default:
		v.Unknown = true
	}
	return v
}
