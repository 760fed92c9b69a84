package fuzzgen

import "github.com/waggle-bpf/waggle/isa"

// stackBytes is a set of the bytes of the 512-byte stack frame: bit i is
// the byte at r10 - 512 + i.
type stackBytes [8]uint64

func (s *stackBytes) span(off int16, n int) (lo, hi int, ok bool) {
	lo = 512 + int(off)
	hi = lo + n
	return lo, hi, lo >= 0 && hi <= 512
}

func (s *stackBytes) add(off int16, n int) {
	if lo, hi, ok := s.span(off, n); ok {
		for i := lo; i < hi; i++ {
			s[i/64] |= 1 << (i % 64)
		}
	}
}

func (s *stackBytes) has(off int16, n int) bool {
	lo, hi, ok := s.span(off, n)
	if !ok {
		return false
	}
	for i := lo; i < hi; i++ {
		if s[i/64]&(1<<(i%64)) == 0 {
			return false
		}
	}
	return true
}

// UninitStackRead returns the slot of the first instruction that may read a
// stack byte some path to it leaves unwritten, or -1 if there is none. Linux
// lets privileged programs read uninitialised stack (the value is whatever
// the kernel left there), so such a program has no defined result; the
// generator never makes one, and program minimisers must not either. Only
// accesses through r10 with a constant offset are tracked, which is all
// that generated programs do.
func UninitStackRead(insns []isa.Instruction) int {
	// Forward "definitely written" analysis: the set at each slot is the
	// intersection over the paths reaching it, computed to a fixpoint.
	in := make([]*stackBytes, len(insns))
	in[0] = &stackBytes{}
	work := []int{0}
	flow := func(to int, s *stackBytes) {
		if to < 0 || to >= len(insns) {
			return
		}
		if in[to] == nil {
			c := *s
			in[to] = &c
			work = append(work, to)
			return
		}
		changed := false
		for i := range s {
			if v := in[to][i] & s[i]; v != in[to][i] {
				in[to][i], changed = v, true
			}
		}
		if changed {
			work = append(work, to)
		}
	}
	for len(work) > 0 {
		pc := work[len(work)-1]
		work = work[:len(work)-1]
		s := *in[pc]
		ins := insns[pc]
		switch c := ins.Op.Class(); {
		case (c == isa.ClassST || c == isa.ClassSTX) && ins.Dst == isa.R10:
			s.add(ins.Off, ins.Op.Size().Bytes())
		case ins.IsExit():
			continue
		}
		if ins.IsLoadImm64() {
			flow(pc+2, &s)
			continue
		}
		if t, ok := ins.JumpTarget(pc); ok && !ins.IsLocalCall() {
			flow(t, &s)
			if ins.Op == isa.OpJA || ins.Op == isa.OpJA32 {
				continue
			}
		}
		flow(pc+1, &s)
	}
	for pc, ins := range insns {
		if in[pc] == nil {
			continue
		}
		n := ins.Op.Size().Bytes()
		switch c := ins.Op.Class(); {
		case c == isa.ClassLDX && ins.Src == isa.R10:
			if !in[pc].has(ins.Off, n) {
				return pc
			}
		case c == isa.ClassSTX && ins.Op.Mode() == isa.ModeATOMIC && ins.Dst == isa.R10:
			if !in[pc].has(ins.Off, n) {
				return pc
			}
		}
	}
	return -1
}
