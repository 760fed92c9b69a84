package interp

import (
	"fmt"
	"math/bits"

	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// The stack of a Machine holds MaxCallFrames frames of StackSize bytes,
// each at the top of a frameStride-byte slot; the rest of a slot is a gap
// that belongs to no frame:
//
//	low                                                                top
//	+---------+--- ... ---+---------+--------+---------+--------+---------+
//	| frame 7 |           | frame 2 |  gap   | frame 1 |  gap   | frame 0 |
//	+---------+--- ... ---+---------+--------+---------+--------+---------+
//	          ^r10 of 7             ^r10 of 2          ^r10 of 1          ^r10 of 0
//
// Linux's verifier confines an access through a stack pointer to the 512
// bytes below the r10 of the frame it points into (check_stack_access_within_bounds),
// so a program it accepts never reaches from one frame into another: a
// callee reaches its caller's frame only through a pointer the caller
// passed. The interpreter cannot tell where a pointer came from, but the
// gaps make the usual escape fault in checked mode instead of landing in a
// neighbour: a callee's r10 plus a positive offset, or a caller's r10
// minus more than 512, lands in a gap unless it is off by more than
// frameStride-StackSize bytes. Fast mode lays frames out the same way.
const (
	frameStride = 2048
	// stackBytes is the stack of a Machine: frame 7 needs no gap below.
	stackBytes = (MaxCallFrames-1)*frameStride + StackSize
)

// framePointer returns r10 of frame k.
func (m *Machine) framePointer(k int) uint64 { return m.top - uint64(k)*frameStride }

// frameOf returns the frame whose slot holds addr, an address of the
// stack, and that frame's r10: the frame owns addr if fp-addr is at most
// StackSize, otherwise addr lies in the gap below it.
func (m *Machine) frameOf(addr uint64) (int, uint64) {
	k := int((m.top - addr - 1) / frameStride)
	return k, m.framePointer(k)
}

// enterFrame starts a bpf-to-bpf call's or a callback's frame below the
// running one.
func (m *Machine) enterFrame() {
	m.depth++
	m.loops = isa.MaxLoops
	m.regs[10] -= frameStride
	if m.strict {
		m.init[m.depth] = [StackSize / 64]uint64{}
	}
}

// clearStack zeroes what the run wrote on the stack (checked mode), so no
// run reads what an earlier one left there.
func (m *Machine) clearStack() {
	base := mem.Addr(m.stack)
	for d := m.dirtied; d != 0; d &= d - 1 {
		k := bits.TrailingZeros8(d)
		fp := m.framePointer(k)
		clear(m.stack[m.dirty[k]-base : fp-base])
		m.dirty[k] = fp
	}
	m.dirtied = 0
}

// liveFrame returns the live frame that owns the n bytes at addr and the
// offset of addr in it (0 at r10-512), or false when they are not all
// inside one.
func (m *Machine) liveFrame(addr, n uint64) (k int, off uint64, ok bool) {
	if addr >= m.top || addr < m.top-stackBytes {
		return 0, 0, false
	}
	k, fp := m.frameOf(addr)
	if k > m.depth || fp-addr > StackSize || fp-addr < n {
		return 0, 0, false
	}
	return k, StackSize - (fp - addr), true
}

// markInit records the stack bytes among the n at addr as written
// (Options.StrictStack). Accesses span at most the 512 bytes of one frame.
func (m *Machine) markInit(addr, n uint64) {
	k, off, ok := m.liveFrame(addr, n)
	if !ok {
		return
	}
	w := &m.init[k]
	for end := off + n; off < end; {
		i, b := off/64, off%64
		c := min(64-b, end-off)
		w[i] |= (^uint64(0) >> (64 - c)) << b
		off += c
	}
}

// uninit returns "" if the n bytes at addr are not stack, or stack the
// frame has written in this run; otherwise which byte was not written.
func (m *Machine) uninit(addr, n uint64) string {
	k, off, ok := m.liveFrame(addr, n)
	if !ok {
		return ""
	}
	w := &m.init[k]
	for start, end := off, off+n; off < end; {
		i, b := off/64, off%64
		c := min(64-b, end-off)
		want := (^uint64(0) >> (64 - c)) << b
		if miss := want &^ w[i]; miss != 0 {
			first := i*64 + uint64(bits.TrailingZeros64(miss))
			return fmt.Sprintf("byte r10-%d of frame %d was not written in this run; Linux's verifier rejects such a read for programs without CAP_PERFMON (\"invalid read from stack off %d+%d size %d\"): write the stack before reading it",
				StackSize-first, k, int64(start)-StackSize, first-start, n)
		}
		off += c
	}
	return ""
}

// uninitFault is the fault of a read of unwritten stack bytes.
func (m *Machine) uninitFault(pc int, addr uint64, n int, why string) *Fault {
	f := m.fault(pc, ErrUninitStack, "read of %d bytes at %#x: %s", n, addr, why)
	f.Addr, f.Size = addr, n
	return f
}

// stackWhy explains why the n bytes at addr, an address near the stack,
// are not an access Linux's verifier lets a frame make.
func (m *Machine) stackWhy(addr, n uint64) string {
	fp := m.regs[10]
	s := fmt.Sprintf("the access is at r10%+d of frame %d, the running one", int64(addr-fp), m.depth)
	if addr >= m.top-stackBytes && addr < m.top {
		if k, kfp := m.frameOf(addr); k < m.depth {
			s += fmt.Sprintf(", r10%+d of frame %d", int64(addr-kfp), k)
		}
	}
	return s + fmt.Sprintf(", and %d bytes long: a frame owns the %d bytes below its r10 and reaches its callers' frames only through pointers they pass; an access must lie inside one frame", n, StackSize)
}
