package bpftest

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Kernel is the engine of the running kernel: the object is loaded with
// cilium/ebpf (BPF_PROG_LOAD, the verifier) and its programs run with
// BPF_PROG_TEST_RUN, as Cilium's own test harness runs them. It needs
// CAP_BPF and CAP_NET_ADMIN (in practice, root).
//
// cilium/ebpf re-encodes instructions when it loads them, and v0.22.0
// zeroes the offset of most ALU instructions (sdiv, smod and movsx lose
// theirs); the tests in Cilium's convention are built for -mcpu=v3, which
// has none of those.
type Kernel struct {
	// LogSize is the verifier log buffer cilium/ebpf starts with when a
	// program is rejected; 0 means its default.
	LogSize int
}

// Name returns "kernel".
func (Kernel) Name() string { return "kernel" }

// Load loads obj into the kernel.
func (e Kernel) Load(obj *Object) (Instance, error) {
	opts := ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogSizeStart: uint32(e.LogSize)}}
	c, err := ebpf.NewCollectionWithOptions(obj.Spec(), opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Name, err)
	}
	return &kernelInstance{c: c}, nil
}

type kernelInstance struct {
	c *ebpf.Collection
}

func (in *kernelInstance) Run(name string, data, ctx []byte) (uint32, []byte, []byte, error) {
	p := in.c.Programs[name]
	if p == nil {
		return 0, nil, nil, fmt.Errorf("no program %s", name)
	}
	opts := &ebpf.RunOptions{Data: data, DataOut: make([]byte, len(data)+outSlack)}
	var ctxOut []byte
	if ctx != nil {
		ctxOut = make([]byte, len(ctx))
		opts.Context, opts.ContextOut = ctx, ctxOut
	}
	ret, err := p.Run(opts)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("program %s: %w", name, err)
	}
	return ret, opts.DataOut, ctxOut, nil
}

func (in *kernelInstance) Lookup(name string, key []byte) ([]byte, error) {
	m := in.c.Maps[name]
	if m == nil {
		return nil, fmt.Errorf("no map %s", name)
	}
	return m.LookupBytes(key)
}

func (in *kernelInstance) Update(name string, key, value []byte) error {
	m := in.c.Maps[name]
	if m == nil {
		return fmt.Errorf("no map %s", name)
	}
	return m.Update(key, value, ebpf.UpdateAny)
}

func (in *kernelInstance) Close() error {
	in.c.Close()
	return nil
}
