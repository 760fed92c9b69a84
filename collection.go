package waggle

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/interp"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/progtype"
)

// CollectionOptions configure how a collection is loaded. The zero value is
// ready to use.
type CollectionOptions struct {
	// CPUs is the number of worker slots: how many values per-CPU maps hold
	// and the range of RunOptions.CPU. 0 means runtime.NumCPU().
	CPUs int
	// Mode is the interpreter mode programs run in. Until waggle's verifier
	// lands, programs are unverified and the default, interp.Checked, is the
	// only safe choice; interp.Fast is for programs known to be correct (it
	// crashes the process on a bad access).
	Mode interp.Mode
	// Trace receives bpf_trace_printk output; nil discards it.
	Trace io.Writer
	// ProgramTypes overrides the program type the section name gives, by
	// program or section name (what `--type` does for bpftool).
	ProgramTypes map[string]ebpf.ProgramType
	// Hooks attaches programs to user-defined hook points (progtype.NewHook),
	// by program or section name: those programs see the hook's context and
	// run with Program.Exec. The section name may be anything, such as
	// "waggle/http_request"; its program type is ignored.
	Hooks map[string]*progtype.Kind
}

// Collection is a set of programs and the maps they use, loaded from one
// object. It mirrors cilium/ebpf's Collection.
type Collection struct {
	Programs map[string]*Program
	Maps     map[string]*Map

	cpus     int
	hooks    map[string]*progtype.Kind
	mode     interp.Mode
	trace    io.Writer
	registry *maps.Registry
	all      []maps.Map // in object order, owned

	mu      sync.Mutex
	regions []interp.Region // the maps' memory, for checked runs
	stale   bool
	closed  bool
}

// LoadCollection loads the object file at path (an ELF object built by
// clang) and everything it needs.
func LoadCollection(path string, opts *CollectionOptions) (*Collection, error) {
	obj, err := loader.LoadFile(path, loaderOptions(opts))
	if err != nil {
		return nil, err
	}
	return newCollection(obj, opts)
}

// NewCollection loads a collection from cilium/ebpf's spec of an object,
// such as the one bpf2go generates (LoadXxx()).
func NewCollection(spec *ebpf.CollectionSpec, opts *CollectionOptions) (*Collection, error) {
	obj, err := loader.FromSpec(spec, loaderOptions(opts))
	if err != nil {
		return nil, err
	}
	return newCollection(obj, opts)
}

// NewCollectionFromObject loads a collection from an object the caller
// has already read with package loader (to inspect it first, or to change
// its programs' types). The collection does not keep obj.
func NewCollectionFromObject(obj *loader.Object, opts *CollectionOptions) (*Collection, error) {
	return newCollection(obj, opts)
}

func loaderOptions(opts *CollectionOptions) loader.Options {
	if opts == nil {
		return loader.Options{}
	}
	return loader.Options{ProgramType: opts.ProgramTypes}
}

func newCollection(obj *loader.Object, opts *CollectionOptions) (_ *Collection, err error) {
	if opts == nil {
		opts = &CollectionOptions{}
	}
	c := &Collection{
		hooks:    opts.Hooks,
		Programs: map[string]*Program{},
		Maps:     map[string]*Map{},
		cpus:     opts.CPUs,
		mode:     opts.Mode,
		trace:    opts.Trace,
		registry: &maps.Registry{},
		stale:    true,
	}
	if c.cpus <= 0 {
		c.cpus = runtime.NumCPU()
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	for _, ms := range obj.Maps {
		m, err := c.newMap(ms)
		if err != nil {
			return nil, err
		}
		c.all = append(c.all, m.m)
		c.Maps[ms.Name] = m
	}
	progs := make([]*Program, len(obj.Programs))
	for i, lp := range obj.Programs {
		p, err := c.newProgram(lp)
		if err != nil {
			return nil, err
		}
		progs[i] = p
		c.Programs[lp.Name] = p
	}
	for _, b := range obj.Bindings {
		if err := c.bind(obj, progs, b); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// specOf converts cilium/ebpf's map spec to waggle's.
func (c *Collection) specOf(ms *ebpf.MapSpec) maps.Spec {
	s := maps.Spec{
		Name:       ms.Name,
		Type:       maps.Type(ms.Type),
		KeySize:    ms.KeySize,
		ValueSize:  ms.ValueSize,
		MaxEntries: ms.MaxEntries,
		Flags:      ms.Flags,
		MapExtra:   ms.MapExtra,
		CPUs:       c.cpus,
	}
	if s.Type == maps.PerfEventArray {
		if s.MaxEntries == 0 {
			s.MaxEntries = uint32(c.cpus) // libbpf and cilium/ebpf default to the CPU count
		}
		// Keys and values are 4-byte indices and descriptors; libbpf and
		// cilium/ebpf fill in sizes a BTF declaration leaves at 0 (as
		// xdp-tools' xdpdump declares its map).
		if s.KeySize == 0 {
			s.KeySize = 4
		}
		if s.ValueSize == 0 {
			s.ValueSize = 4
		}
	}
	if ms.InnerMap != nil {
		inner := c.specOf(ms.InnerMap)
		s.InnerMap = &inner
	}
	return s
}

func (c *Collection) newMap(ms *ebpf.MapSpec) (*Map, error) {
	spec := c.specOf(ms)
	m, err := maps.New(spec)
	if err != nil {
		return nil, fmt.Errorf("map %s: %w", ms.Name, err)
	}
	wm := &Map{name: ms.Name, m: m, spec: spec, coll: c}
	c.registry.Add(m)
	for i, kv := range ms.Contents {
		if spec.Type == maps.ProgArray || spec.Type == maps.ArrayOfMaps || spec.Type == maps.HashOfMaps {
			continue // bound after the programs and maps exist (Object.Bindings)
		}
		if err := wm.Update(kv.Key, kv.Value, UpdateAny); err != nil {
			m.Close()
			c.registry.Remove(m)
			return nil, fmt.Errorf("map %s: initial contents, entry %d: %w", ms.Name, i, err)
		}
	}
	return wm, nil
}

// bind stores a program or inner map in a prog array or map-in-map, as the
// object's declaration asks.
func (c *Collection) bind(obj *loader.Object, progs []*Program, b loader.Binding) error {
	outer := obj.Maps[b.Map]
	m := c.Maps[outer.Name]
	switch {
	case b.Program >= 0:
		pa, ok := m.m.(maps.ProgramArray)
		if !ok {
			return fmt.Errorf("map %s: holds programs but is a %s", outer.Name, m.spec.Type)
		}
		if err := pa.SetProgram(b.Key, progs[b.Program].prog); err != nil {
			return fmt.Errorf("map %s: slot %d: %w", outer.Name, b.Key, err)
		}
	case b.Inner >= 0:
		mm, ok := m.m.(maps.MapOfMaps)
		if !ok {
			return fmt.Errorf("map %s: holds maps but is a %s", outer.Name, m.spec.Type)
		}
		key, err := marshal(b.Key, int(m.spec.KeySize))
		if err != nil {
			return fmt.Errorf("map %s: %w", outer.Name, err)
		}
		if err := mm.SetInner(key, c.Maps[obj.Maps[b.Inner].Name].m); err != nil {
			return fmt.Errorf("map %s: slot %d: %w", outer.Name, b.Key, err)
		}
		c.invalidate()
	}
	return nil
}

// newProgram links a loaded program to the collection's maps, rewrites its
// context accesses for its program type, and prepares it to run.
func (c *Collection) newProgram(lp *loader.Program) (*Program, error) {
	kind := c.hooks[lp.Name]
	if kind == nil {
		kind = c.hooks[lp.Section]
	}
	if kind == nil {
		var err error
		kind, err = progtype.LookupAttach(progtype.Type(lp.Type), progtype.AttachType(lp.AttachType))
		if err != nil {
			return nil, fmt.Errorf("program %s (section %s): %w (a user hook's program needs CollectionOptions.Hooks)", lp.Name, lp.Section, err)
		}
	}
	insns, err := c.resolveMaps(lp)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", lp.Name, err)
	}
	pp, err := kind.Rewrite(insns)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", lp.Name, compactLines(lp.Lines).annotate(err))
	}
	rewritten := pp.Insns // same slots as lp.Insns: line info still applies
	table, err := helperTable(kind, lp, rewritten)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", lp.Name, err)
	}
	prog, err := interp.Load(rewritten, interp.Options{Mode: c.mode, Helpers: table})
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", lp.Name, compactLines(lp.Lines).annotate(err))
	}
	return &Program{name: lp.Name, section: lp.Section, typ: lp.Type, kind: kind, pt: pp, prog: prog, insns: rewritten, lines: compactLines(lp.Lines), coll: c}, nil
}

// resolveMaps turns the loader's map references into what programs hold at
// run time: a map's Handle for PseudoMapIdx, the address of global data for
// PseudoMapIdxValue.
func (c *Collection) resolveMaps(lp *loader.Program) ([]isa.Instruction, error) {
	insns := append([]isa.Instruction(nil), lp.Insns...)
	for i := 0; i+1 < len(insns); i++ {
		ins := insns[i]
		if !ins.IsLoadImm64() {
			continue
		}
		var v uint64
		switch ins.Src {
		case isa.PseudoMapIdx, isa.PseudoMapIdxValue:
			if int(ins.Imm) < 0 || int(ins.Imm) >= len(c.all) {
				return nil, fmt.Errorf("instruction %d: map index %d out of range (%d maps)", i, ins.Imm, len(c.all))
			}
			m := c.all[ins.Imm]
			v = m.Handle()
			if ins.Src == isa.PseudoMapIdxValue {
				e, ok := m.(maps.Elems)
				if !ok || m.Spec().Type != maps.Array {
					return nil, fmt.Errorf("instruction %d: direct value access into map %s, a %s: only arrays have values at fixed addresses", i, m.Spec().Name, m.Spec().Type)
				}
				base := e.LookupElem(0, make([]byte, 4))
				off := uint64(uint32(insns[i+1].Imm))
				if base == 0 || off >= uint64(m.Spec().ValueSize) {
					return nil, fmt.Errorf("instruction %d: offset %d is outside the %d-byte value of map %s", i, off, m.Spec().ValueSize, m.Spec().Name)
				}
				v = base + off
			}
		default:
			i++
			continue
		}
		pair := isa.LoadImm64(ins.Dst, 0, v)
		insns[i], insns[i+1] = pair[0], pair[1]
		i++
	}
	return insns, nil
}

// helperTable returns the helpers a program of kind may call: the generic
// ones its type allows and the type's own. A call to anything else is an
// error naming the helper and saying why.
func helperTable(kind *progtype.Kind, lp *loader.Program, insns []isa.Instruction) (helpers.Table, error) {
	table := helpers.Table{}
	for _, d := range helpers.Generic() {
		if kind.Allowed(d.ID) {
			table[d.ID] = d.Func
		}
	}
	for _, d := range kind.Helpers() {
		table[d.ID] = d.Func
	}
	for i, ins := range insns {
		if !ins.IsHelperCall() {
			continue
		}
		if _, ok := table[ins.Imm]; ok {
			continue
		}
		name := helpers.Name(ins.Imm)
		where := fmt.Sprintf("instruction %d", i)
		if i < len(lp.Lines) && lp.Lines[i].Line > 0 {
			where += fmt.Sprintf(" (%s:%d: %s)", lp.Lines[i].File, lp.Lines[i].Line, strings.TrimSpace(lp.Lines[i].Text))
		}
		switch {
		case name == "":
			return nil, fmt.Errorf("%s: call to helper %d, which Linux does not have", where, ins.Imm)
		case !kind.Allowed(ins.Imm):
			return nil, fmt.Errorf("%s: %s programs may not call bpf_%s (helper %d), as in Linux", where, kind, name, ins.Imm)
		default:
			return nil, fmt.Errorf("%s: bpf_%s (helper %d) is not implemented in user space yet", where, name, ins.Imm)
		}
	}
	return table, nil
}

// lineTable is a program's BTF line info, compactly: per slot an index
// into the distinct lines (0: none).
type lineTable struct {
	at    []uint32
	lines []loader.Line // lines[0] is the zero Line
}

func compactLines(lines []loader.Line) lineTable {
	t := lineTable{lines: []loader.Line{{}}}
	if len(lines) == 0 {
		return t
	}
	t.at = make([]uint32, len(lines))
	index := map[loader.Line]uint32{}
	for i, l := range lines {
		if l.Line == 0 {
			continue
		}
		n, ok := index[l]
		if !ok {
			n = uint32(len(t.lines))
			t.lines = append(t.lines, l)
			index[l] = n
		}
		t.at[i] = n
	}
	return t
}

// line returns the source line of slot pc, if known.
func (t lineTable) line(pc int) (loader.Line, bool) {
	if pc < 0 || pc >= len(t.at) || t.at[pc] == 0 {
		return loader.Line{}, false
	}
	return t.lines[t.at[pc]], true
}

// annotate wraps err with the source line of the instruction it names,
// when the object has line info.
func (t lineTable) annotate(err error) error {
	idx := -1
	var ie *isa.Error
	var fe *progtype.FlowError
	var ae *progtype.AccessError
	var ff *interp.Fault
	switch {
	case errors.As(err, &ie):
		idx = ie.Index
	case errors.As(err, &fe):
		idx = fe.Insn
	case errors.As(err, &ae):
		idx = ae.Insn
	case errors.As(err, &ff):
		idx = ff.PC
	}
	if l, ok := t.line(idx); ok {
		return fmt.Errorf("%w\n\tat %s:%d: %s", err, l.File, l.Line, strings.TrimSpace(l.Text))
	}
	return err
}

// invalidate marks the cached map regions stale (a map was added to a
// map-in-map).
func (c *Collection) invalidate() {
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
}

// mapRegions returns the memory of every map programs may reach.
func (c *Collection) mapRegions() []interp.Region {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stale {
		return c.regions
	}
	var rs []interp.Region
	seen := map[maps.Map]bool{}
	var add func(m maps.Map)
	add = func(m maps.Map) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, r := range m.Regions() {
			rs = append(rs, interp.Region{Data: r.Data, Writable: r.Writable})
		}
	}
	for _, m := range c.registry.All() {
		add(m)
	}
	c.regions, c.stale = rs, false
	return rs
}

// CPUs returns the number of worker slots of the collection.
func (c *Collection) CPUs() int { return c.cpus }

// Close releases every map. Programs of the collection must not run
// afterwards.
func (c *Collection) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	for _, m := range c.all {
		m.Close()
	}
}

// programNames lists the programs, sorted, for messages.
func (c *Collection) programNames() string {
	var names []string
	for n := range c.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}
