package interp

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// The interpreter runs XDP batches for less than a Run per packet.
var _ engine.PacketBatcher = machine{}

// RunPackets implements engine.PacketBatcher: it runs p, which must be an
// interpreter Program, once per item of b.
func (em machine) RunPackets(p engine.Program, a *Args, b *engine.PacketBatch) (int, error) {
	ip, ok := p.(*Program)
	if !ok {
		return 0, fmt.Errorf("interp: cannot run a %T, which another engine loaded: %w", p, engine.ErrNotSupported)
	}
	if m := em.m; m.last != ip || m.lastArgs != a {
		m.last, m.lastArgs = ip, a // as Run: for a Rerun after it
	}
	return em.m.runPackets(ip, a, b)
}

// Batches implements engine.PacketBatcher: a program that may run Go
// makes one run per RunPackets, no cheaper than a Run.
func (em machine) Batches(p engine.Program) bool {
	ip, ok := p.(*Program)
	return ok && !ip.goes
}

// sliceHeader is the size of a []byte header, which starts each item of
// a batch: its address and length are the first two words.
const sliceHeader = 3 * bits.UintSize / 8

// runPackets is RunPackets on m.
//
// A program that may run Go (Program.goes: a helper, a legacy packet
// load, a trace function) runs one item per call, after b.Sync: whether a
// run calls a helper is known only once it does, and by then it may have
// written its packet and context, which the caller's Sync might reset.
// Any other runs whole batches. Nothing it runs can change the helpers'
// State, the running program (no tail calls), the map memory it reaches
// (no lookups) or the scratch it lends, so the items share everything Run
// sets up (run) and each starts only with what a run changes: registers,
// fuel, loop budget, frame depth and, in checked mode, the stack it wrote.
// The map memory of a checked batch is p's Options.Memory when it starts:
// a run without helpers reaches only the map values its instructions
// name, which Memory keeps.
//
// An empty batch (N <= 0) reads and writes nothing. A batch whose items,
// frame or room are inconsistent (no items, a return value that does not
// fit behind an item's packet or in its stride, used bytes beyond the
// room) gets an error before any run. Items that overlap the frame or
// each other, and packet addresses that are not the caller's memory, are
// the caller's bug: they are not checked.
func (m *Machine) runPackets(p *Program, a *Args, b *engine.PacketBatch) (int, error) {
	if b.N <= 0 {
		return 0, nil
	}
	if err := checkBatch(b); err != nil {
		return 0, err
	}
	// A run with a budget its program does not count fails in Run, as
	// Run would fail it, after Sync for item 0.
	if p.goes || (a.Budget != 0 || a.Stop != nil) && !p.budgeted {
		item := uint64(b.Items)
		if g, n := guardsOf(b); refused(b, &g, n, item) {
			return 0, nil
		}
		loadPacket(b, item)
		if b.Sync != nil {
			b.Sync(0)
		}
		r0, err := m.Run(p, a)
		if err != nil {
			return 0, err
		}
		mem.Store32(item+uint64(b.RetOff), r0)
		return 1, nil
	}
	done, err := m.run(p, a, b, 1)
	if err != nil && b.Sync != nil {
		b.Sync(int(done))
	}
	return int(done), err
}

// guardsOf returns the non-zero offsets of b.Guards, and how many.
func guardsOf(b *engine.PacketBatch) (g [4]uint64, n int) {
	for _, off := range b.Guards {
		if off != 0 {
			g[n] = uint64(off)
			n++
		}
	}
	return g, n
}

// refused reports whether the batch stops before the item at item: its
// packet's length is outside [b.Min, b.Room], or one of the n words at
// the offsets g is not zero.
func refused(b *engine.PacketBatch, g *[4]uint64, n int, item uint64) bool {
	if l := len(mem.SliceAt(item)); l < b.Min || l > b.Room {
		return true
	}
	for _, off := range g[:n] {
		if loadWord(item+off) != 0 {
			return true
		}
	}
	return false
}

// loadWord loads the pointer-sized word at addr: a guard is a pointer.
func loadWord(addr uint64) uint64 {
	if bits.UintSize == 32 {
		return mem.Load32(addr)
	}
	return mem.Load64(addr)
}

// checkBatch returns an error if b's fields are inconsistent.
func checkBatch(b *engine.PacketBatch) error {
	switch {
	case b.Items == 0:
		return errors.New("interp: a batch of packets without items")
	case b.RetOff < sliceHeader || b.N > 1 && (b.RetOff > b.Stride || b.Stride-b.RetOff < 4):
		return fmt.Errorf("interp: a batch's items are %d bytes, and their 4-byte return value at %d does not fit behind their %d-byte packet", b.Stride, b.RetOff, sliceHeader)
	case b.Room < 0 || b.Used < 0 || b.Used > b.Room || b.Frame == 0 && b.Room != 0:
		return fmt.Errorf("interp: a batch's frame at %#x has %d bytes, of which %d are used", b.Frame, b.Room, b.Used)
	}
	return nil
}

// loadPacket copies the packet of the item at item to b.Frame, zeroes
// what the packet before it (b.Used bytes) left past its end, and writes
// its end to b.Ends: what packets does for each item, for one.
func loadPacket(b *engine.PacketBatch, item uint64) {
	frame := mem.Bytes(uint64(b.Frame), uint64(b.Room))
	n := copy(frame, mem.SliceAt(item))
	if n < b.Used {
		clear(frame[n:b.Used])
	}
	b.Used = n
	end := uint64(b.Frame) + uint64(n)
	if e := b.Ends[0]; e != 0 {
		mem.Store64(uint64(e), end)
	}
	if e := b.Ends[1]; e != 0 {
		mem.Store64(uint64(e), end)
	}
}

// packets runs the batch b for run, which set m up for runs of p with a,
// and returns how many runs completed.
func (m *Machine) packets(p *Program, a *Args, b *engine.PacketBatch) (uint64, error) {
	var frame []byte
	if b.Room > 0 {
		frame = mem.Bytes(uint64(b.Frame), uint64(b.Room))
	}
	base, used := uint64(b.Frame), b.Used
	// Both ends are stored for every run: an unused one to a word of
	// the Machine's that nothing reads.
	end0, end1 := uint64(b.Ends[0]), uint64(b.Ends[1])
	if end0 == 0 {
		end0 = mem.SliceAddr(m.sink[:])
	}
	if end1 == 0 {
		end1 = mem.SliceAddr(m.sink[:])
	}
	item, stride, ret := uint64(b.Items), uint64(b.Stride), uint64(b.RetOff)
	fuel := m.fuel
	checked, strict, verified := p.mode == Checked, m.strict, p.verified
	// The item checks of refused, unrolled: unused guards repeat a used
	// one, and the length's bounds are one unsigned comparison.
	g, ng := guardsOf(b)
	for k := ng; k < len(g) && ng > 0; k++ {
		g[k] = g[0]
	}
	minLen, span := uint(b.Min), uint(b.Room)-uint(b.Min)
	// r0-r10 at each run's start, copied in one go: as eleven values
	// they would not fit in registers across the loop.
	regs := (*[11]uint64)(m.regs[:11])
	start := [11]uint64{1: a.Regs[0], 2: a.Regs[1], 3: a.Regs[2], 4: a.Regs[3], 5: a.Regs[4], 10: m.top}
	*regs = start
	for i := range b.N {
		pkt := mem.SliceAt(item)
		if uint(len(pkt))-minLen > span || ng > 0 && loadWord(item+g[0])|loadWord(item+g[1])|loadWord(item+g[2])|loadWord(item+g[3]) != 0 {
			b.Used = used
			return uint64(i), nil
		}
		n := copy(frame, pkt)
		if n < used {
			clear(frame[n:used])
		}
		used = n
		mem.Store64(end0, base+uint64(n))
		mem.Store64(end1, base+uint64(n))
		if strict {
			m.init[0] = [StackSize / 64]uint64{}
		}
		m.depth, m.loops, m.fuel = 0, isa.MaxLoops, fuel
		if verified {
			// r1 and r10 are all a verified program reads before it
			// writes (r1 may have changed, r10 not).
			regs[1] = start[1]
		} else {
			*regs = start
		}
		r0, err := m.exec(p, 0)
		if checked {
			m.clearStack()
		}
		if err != nil {
			b.Used = used
			return uint64(i), err
		}
		mem.Store32(item+ret, r0)
		item += stride
	}
	b.Used = used
	return uint64(b.N), nil
}
