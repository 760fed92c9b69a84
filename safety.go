package waggle

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/maps"
	"github.com/waggle-bpf/waggle/verifier"
)

// DefaultBudget is the budget of a run of an unverified program unless
// CollectionOptions.Budget says otherwise: an upper bound of the
// instructions it executes (counted where a program can run code again, not per instruction:
// a loop iteration spends its length, a call or callback the size of the
// function it enters;
// loops, calls and callbacks, bpf_loop's and bpf_for_each_map_elem's
// too). 2^31 is far above what legitimate programs run (the kernel's
// verifier walks at most a million instructions; bpf_loop's most, 2^23
// calls of a 250-instruction callback, fits), and a run that spends it
// all takes seconds, not hours.
const DefaultBudget = 1 << 31

// ErrUnverifiedFast is the error of CollectionOptions.Engine EngineInterpFast for
// programs that run CollectionOptions.Unverified, without
// CollectionOptions.UnsafeFastUnverified.
var ErrUnverifiedFast = errors.New("fast mode runs memory accesses unchecked, which is safe only for programs the verifier has accepted, and these run unverified: run them in checked mode (the default), or verify them")

// acquire takes a reference on the collection's maps for a run or a map
// operation; false if the collection is closed. refs counts references
// twice over, plus one once Close was called, so one atomic add both
// counts and tells whether the collection is closed.
func (c *Collection) acquire() bool {
	if c.refs.Add(2)&1 != 0 {
		c.release()
		return false
	}
	return true
}

// release drops a reference; the last one after Close frees the maps.
func (c *Collection) release() {
	if c.refs.Add(-2) == 1 {
		c.free()
	}
}

// free closes the maps, once, and lets go of the collections it kept.
func (c *Collection) free() {
	c.freed.Do(func() {
		for _, m := range c.all {
			m.Close()
		}
		c.mu.Lock()
		kept := c.kept
		c.kept = nil
		c.mu.Unlock()
		for _, o := range kept {
			o.release()
		}
	})
}

// keep holds a reference on other, whose program or map a prog array or
// map-in-map of c now holds, until c is freed: runs of c's programs may
// reach other's maps (a tail call, an inner map), so other's Close must
// not unmap them while c lives. other's maps' spin lock offsets join c's,
// since the locks c's runs take may be in them. (The helpers of other's
// programs, tail-called from c's, resolve the maps those programs
// reference, as in other's own runs.)
func (c *Collection) keep(other *Collection) error {
	if other == nil || other == c {
		return nil
	}
	// other's lock offsets first, so that no goroutine holds two
	// collections' mutexes at once.
	other.mu.Lock()
	locks := make(map[maps.Map]int, len(other.all))
	for _, m := range other.all {
		locks[m] = other.lockOff[m]
	}
	other.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.kept {
		if o == other {
			return nil
		}
	}
	if !other.acquire() {
		return errCollectionClosed
	}
	c.kept = append(c.kept, other)
	for m, off := range locks {
		if _, ok := c.lockOff[m]; !ok {
			c.lockOff[m] = off
		}
	}
	return nil
}

// errCollectionClosed is the error of runs and map operations after Close.
var errCollectionClosed = fmt.Errorf("the collection is closed: %w", maps.EBADF)

// referencedMaps returns the maps a program's lddw instructions name
// (its subprograms and callbacks are linked into it): with the inner maps
// of the map-in-maps among them, the only maps whose memory its runs may
// reach and whose handles its helpers accept (reach).
func (c *Collection) referencedMaps(lp *loader.Program) []maps.Map {
	var refs []maps.Map
	seen := map[maps.Map]bool{}
	for i := 0; i+1 < len(lp.Insns); i++ {
		ins := lp.Insns[i]
		if !ins.IsLoadImm64() {
			continue
		}
		if (ins.Src == isa.PseudoMapIdx || ins.Src == isa.PseudoMapIdxValue) && int(ins.Imm) >= 0 && int(ins.Imm) < len(c.all) {
			if m := c.all[ins.Imm]; !seen[m] {
				seen[m] = true
				refs = append(refs, m)
			}
		}
		i++
	}
	return refs
}

// addInner records that inner was stored in the map-in-map outer: programs
// referencing outer may reach inner's values from now on. A map once stored
// stays reachable for them (a slight over-approximation of Linux, which
// allows only the maps stored now; both are memory safe, since a
// collection's maps live until the collection closes).
func (c *Collection) addInner(outer, inner maps.Map, lockOff int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inner == nil {
		c.inner = map[maps.Map][]maps.Map{}
	}
	for _, m := range c.inner[outer] {
		if m == inner {
			return
		}
	}
	c.inner[outer] = append(c.inner[outer], inner)
	if _, ok := c.lockOff[inner]; !ok {
		c.lockOff[inner] = lockOff
	}
	c.gen.Add(1)
}

// progReach is what a program's runs may use of the collection's maps,
// for one generation of its map-in-maps: the maps (for helpers) and their
// values (for checked memory accesses), from one list, so that a helper
// accepts exactly the maps whose values the program may touch.
type progReach struct {
	gen uint64
	set *maps.Set
	mem engine.Memory
}

// reach returns the maps the program's runs may use: those its lddw
// instructions load (referencedMaps) and the maps stored in the
// map-in-maps among them, and in map-in-maps stored there. Their values
// are the program's checked memory (engine.Options.Memory), but for ring
// buffers, which lend only the records a run reserves
// (helpers.State.Records); the maps are the only ones its helpers accept
// (helpers.State.Maps). Cached until a map-in-map gets a new inner map.
func (p *Program) reach() *progReach {
	c := p.coll
	gen := c.gen.Load()
	if r := p.reachCache.Load(); r != nil && r.gen == gen {
		return r
	}
	var all []maps.Map
	var regions []maps.Region
	c.mu.Lock()
	seen := map[maps.Map]bool{}
	var add func(m maps.Map)
	add = func(m maps.Map) {
		if seen[m] {
			return
		}
		seen[m] = true
		all = append(all, m)
		if m.Spec().Type != maps.RingBuf {
			regions = append(regions, m.Regions()...)
		}
		for _, in := range c.inner[m] {
			add(in)
		}
	}
	for _, m := range p.refs {
		add(m)
	}
	c.mu.Unlock()
	mm, err := c.engine.NewMemory(regions)
	if err != nil {
		mm = nil // maps never overlap; if they did, allow none of them
	}
	r := &progReach{gen: gen, set: maps.NewSet(all...), mem: mm}
	p.reachCache.Store(r)
	return r
}

// memory is the program's engine.Options.Memory: the values of the maps
// its runs may use (reach).
func (p *Program) memory() engine.Memory { return p.reach().mem }

// Spin lock offsets of a map's value, from its BTF.
const (
	lockNone  = -1 // the value has no bpf_spin_lock field
	lockNoBTF = -2 // the map has no BTF: any 4-byte aligned word of a value
)

// spinLockOffset returns where the value type t holds its struct
// bpf_spin_lock, lockNone, or lockNoBTF for a map without BTF. Linux looks
// at the value struct's own members, or a global data section's variables
// (btf_find_field).
func spinLockOffset(t btf.Type) int { return fieldOffset(t, "bpf_spin_lock") }

// timerOffset is spinLockOffset for struct bpf_timer.
func timerOffset(t btf.Type) int { return fieldOffset(t, "bpf_timer") }

// fieldOffset returns where the value type t holds a struct named name,
// lockNone, or lockNoBTF for a map without BTF.
func fieldOffset(t btf.Type, name string) int {
	if t == nil {
		return lockNoBTF
	}
	is := func(t btf.Type) bool {
		st, ok := btf.UnderlyingType(t).(*btf.Struct)
		return ok && st.Name == name
	}
	switch v := btf.UnderlyingType(t).(type) {
	case *btf.Struct:
		for _, mb := range v.Members {
			if is(mb.Type) {
				return int(mb.Offset.Bytes())
			}
		}
	case *btf.Datasec:
		for _, vs := range v.Vars {
			if vr, ok := vs.Type.(*btf.Var); ok && is(vr.Type) {
				return int(vs.Offset)
			}
		}
	}
	return lockNone
}

// mapLockOffset is spinLockOffset of a map spec's value.
func mapLockOffset(ms *ebpf.MapSpec) int { return spinLockOffset(ms.Value) }

// mapFields is what the verifier knows of the special fields of a map
// spec's values (its verifier.Map without Spec and access flags), and of
// the inner maps of a map-in-map.
func mapFields(ms *ebpf.MapSpec) verifier.Map {
	vm := verifier.Map{SpinLock: max(spinLockOffset(ms.Value), -1), Timer: max(timerOffset(ms.Value), -1), NoBTF: ms.Value == nil}
	if ms.InnerMap != nil {
		in := mapFields(ms.InnerMap)
		vm.Inner = &in
	}
	return vm
}

// checkMapFields refuses, as Linux's map_check_btf does when it creates
// the map, a map whose values hold a struct bpf_timer or bpf_spin_lock
// that its type cannot have.
func checkMapFields(ms *ebpf.MapSpec) error {
	if ms.Value == nil {
		return nil
	}
	if spinLockOffset(ms.Value) >= 0 {
		switch ms.Type {
		case ebpf.Hash, ebpf.Array, ebpf.CGroupStorage, ebpf.SkStorage, ebpf.InodeStorage, ebpf.TaskStorage, ebpf.CgroupStorage:
		default:
			return fmt.Errorf("its value holds a struct bpf_spin_lock, which Linux allows only in hash, array and local storage maps, not %s: %w", ms.Type, maps.EOPNOTSUPP)
		}
	}
	if timerOffset(ms.Value) >= 0 {
		switch ms.Type {
		case ebpf.Hash, ebpf.LRUHash, ebpf.Array:
		default:
			return fmt.Errorf("its value holds a struct bpf_timer, which Linux allows only in hash, LRU hash and array maps, not %s: %w", ms.Type, maps.EOPNOTSUPP)
		}
	}
	if ms.InnerMap != nil {
		if err := checkMapFields(ms.InnerMap); err != nil {
			return fmt.Errorf("inner map: %w", err)
		}
	}
	return nil
}

// lockRule is the collection's helpers.State.CheckLock: the address of a
// bpf_spin_lock must be the bpf_spin_lock field of a value of one of the
// collection's maps (any 4-byte aligned word of a value when the map has no
// BTF), never the stack, the context, the packet or a map's internals.
func (c *Collection) lockRule(addr uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for m, off := range c.lockOff {
		for _, r := range m.Regions() {
			lo := mem.Addr(r.Data)
			if addr < lo || addr-lo >= uint64(len(r.Data)) {
				continue
			}
			name := m.Spec().Name
			o := addr - lo
			if r.Stride != 0 {
				o %= r.Stride
				if o < r.Offset || o-r.Offset >= r.Len {
					return fmt.Errorf("the address is in map %s but not in a value", name)
				}
				o -= r.Offset
			}
			switch {
			case off == lockNone:
				return fmt.Errorf("map %s's value type has no struct bpf_spin_lock field (Linux allows locks only there)", name)
			case off == lockNoBTF && o%4 != 0:
				return fmt.Errorf("offset %d of map %s's value is not 4-byte aligned", o, name)
			case off >= 0 && o != uint64(off):
				return fmt.Errorf("offset %d of map %s's value: its struct bpf_spin_lock is at offset %d", o, name, off)
			case !r.Writable:
				return fmt.Errorf("map %s is read-only to programs", name)
			}
			return nil
		}
	}
	return errors.New("not in a map value: Linux allows bpf_spin_lock only on the struct bpf_spin_lock field of a map value (not on the stack, the context or the packet)")
}

// runContext arms the runner's stop flag for ctx, which can be done: it
// returns a function to call when the run is over, and an error if ctx is
// already done.
func (rn *runner) runContext(ctx context.Context) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrStopped, context.Cause(ctx))
	}
	stop := rn.stop
	unregister := context.AfterFunc(ctx, func() { stop.Store(true) })
	return func() {
		if !unregister() {
			// The function ran, or is running: this flag is spent, and
			// must not stop the runner's next run.
			rn.stop = new(atomic.Bool)
		}
	}, nil
}

// annotate adds the source line to an error naming an instruction: of the
// program the instruction belongs to, which a tail call may have entered.
func (p *Program) annotate(err error) error {
	var f *engine.Fault
	if errors.As(err, &f) && f.Program != nil && f.Program != p.prog {
		for _, q := range p.coll.Programs {
			if q.prog == f.Program {
				return fmt.Errorf("in program %s, entered by a tail call: %w", q.name, q.lines.annotate(err))
			}
		}
	}
	return p.lines.annotate(err)
}
