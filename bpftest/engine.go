package bpftest

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/loader"
)

// Engine loads test objects and runs their programs: waggle's user-space
// runtime (Interp) or the running kernel (Kernel).
type Engine interface {
	// Name is the engine's name, as the --engine flag spells it.
	Name() string
	// Load loads obj with its tail calls in place (Object.Tails) and its
	// prog arrays filled as they are declared.
	Load(obj *Object) (Instance, error)
}

// Instance is a loaded object: its programs share its maps, so what one
// test leaves in them the next one sees.
type Instance interface {
	// Run runs the program called name once, as BPF_PROG_TEST_RUN does, on
	// the packet data and the context ctx (nil for none), and returns its
	// return value and the packet and context after the run.
	Run(name string, data, ctx []byte) (ret uint32, dataOut, ctxOut []byte, err error)
	// Lookup returns the value at key in the map called name.
	Lookup(name string, key []byte) ([]byte, error)
	// Update stores value at key in the map called name.
	Update(name string, key, value []byte) error
	// Close releases the instance.
	Close() error
}

// Interp is the engine of waggle's user-space runtime: the object runs in
// a waggle.Collection, with no kernel and no privileges, on the engine its
// options name (by default waggle's pick: the JIT on linux/amd64, the
// checked interpreter elsewhere; waggle.EngineAuto).
type Interp struct {
	// Options are the collection's options; nil means the defaults with
	// RandSeed DefaultRandSeed, so that a test whose program is
	// statistical passes or fails the same way on every run.
	Options *waggle.CollectionOptions
}

// DefaultRandSeed is the bpf_get_prandom_u32 seed of Interp's collections
// when Interp.Options is nil (waggle.CollectionOptions.RandSeed). The
// kernel's numbers cannot be fixed: there a statistical test may fail now
// and then (Cilium's nat4_port_allocation_tcp does about once in a
// hundred runs, in the kernel as in waggle unseeded).
const DefaultRandSeed = 1

// Name returns "interp".
func (Interp) Name() string { return "interp" }

// Load loads obj into a waggle collection, placing its tail calls as
// Cilium's loader places them.
func (e Interp) Load(obj *Object) (Instance, error) {
	lo, err := e.object(obj)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Name, err)
	}
	opts := e.Options
	if opts == nil {
		opts = &waggle.CollectionOptions{RandSeed: DefaultRandSeed}
	}
	c, err := waggle.NewCollectionFromObject(lo, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", obj.Name, err)
	}
	return &interpInstance{c: c}, nil
}

// object returns obj as waggle's loader reads it, with its tail calls
// placed and the unreachable ones left out.
func (e Interp) object(obj *Object) (*loader.Object, error) {
	if obj.rewritten { // the ELF file is not what runs: convert the spec
		return loader.FromSpec(obj.Spec(), loader.Options{})
	}
	lo, err := loader.Load(bytes.NewReader(obj.elf), loader.Options{})
	if err != nil {
		return nil, err
	}
	// The loader places the programs of "ID/KEY" sections itself; obj.Tails
	// says which of them are kept, and where.
	lo.Bindings = slices.DeleteFunc(lo.Bindings, func(b loader.Binding) bool {
		return b.Program >= 0 && obj.bySection[lo.Programs[b.Program].Name] == lo.Maps[b.Map].Name
	})
	if err := dropPrograms(lo, obj.Dropped); err != nil {
		return nil, err
	}
	for _, t := range obj.Tails {
		m, p := lo.MapIndex(t.Map), programIndex(lo, t.Program)
		if m < 0 || p < 0 {
			return nil, fmt.Errorf("tail call %s in %s: the loader has no such program or map", t.Program, t.Map)
		}
		lo.Bindings = append(lo.Bindings, loader.Binding{Map: m, Key: t.Slot, Program: p, Inner: -1})
	}
	return lo, nil
}

// dropPrograms removes the named programs from lo, renumbering the
// bindings that refer to the others.
func dropPrograms(lo *loader.Object, names []string) error {
	if len(names) == 0 {
		return nil
	}
	renum := make([]int, len(lo.Programs))
	var kept []*loader.Program
	for i, p := range lo.Programs {
		if slices.Contains(names, p.Name) {
			renum[i] = -1
			continue
		}
		renum[i] = len(kept)
		kept = append(kept, p)
	}
	var bs []loader.Binding
	for _, b := range lo.Bindings {
		if b.Program >= 0 {
			if renum[b.Program] < 0 {
				return fmt.Errorf("program %s is left out, but map %s holds it", lo.Programs[b.Program].Name, lo.Maps[b.Map].Name)
			}
			b.Program = renum[b.Program]
		}
		bs = append(bs, b)
	}
	lo.Programs, lo.Bindings = kept, bs
	return nil
}

func programIndex(lo *loader.Object, name string) int {
	for i, p := range lo.Programs {
		if p.Name == name {
			return i
		}
	}
	return -1
}

type interpInstance struct {
	c *waggle.Collection
}

func (in *interpInstance) Run(name string, data, ctx []byte) (uint32, []byte, []byte, error) {
	p := in.c.Programs[name]
	if p == nil {
		return 0, nil, nil, fmt.Errorf("no program %s", name)
	}
	opts := &waggle.RunOptions{Data: data, DataOut: make([]byte, len(data)+outSlack)}
	var ctxOut []byte
	if ctx != nil {
		ctxOut = make([]byte, len(ctx))
		opts.Context, opts.ContextOut = ctx, ctxOut
	}
	ret, err := p.Run(opts)
	if err != nil {
		return 0, nil, nil, err
	}
	return ret, opts.DataOut, ctxOut, nil
}

func (in *interpInstance) Lookup(name string, key []byte) ([]byte, error) {
	m := in.c.Maps[name]
	if m == nil {
		return nil, fmt.Errorf("no map %s", name)
	}
	return m.LookupBytes(key)
}

func (in *interpInstance) Update(name string, key, value []byte) error {
	m := in.c.Maps[name]
	if m == nil {
		return fmt.Errorf("no map %s", name)
	}
	return m.Update(key, value, waggle.UpdateAny)
}

func (in *interpInstance) Close() error {
	in.c.Close()
	return nil
}

// outSlack is how much a packet may grow in one run: the room given to
// DataOut beyond the input's length. Encapsulations add at most a few
// hundred bytes (XDP's headroom is 256); a packet that grows more fails
// the run with ENOSPC, on both engines.
const outSlack = 4096
