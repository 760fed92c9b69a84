package amd64

import (
	"unsafe"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/maps"
)

// Native ring buffer helpers. bpf_ringbuf_reserve, _submit and _discard
// of a ring the program names call routines the JIT emits once per
// program (emitRingReserve, emitRingCommit), which do what maps/ringbuf.go
// does with the ring's header words (maps.HeaderRing*): the producers'
// lock, the positions, the drop count. What they cannot finish goes to Go
// (the helper's call site), which answers as before:
//
//   - reserve: flags, a size the ring cannot hold (Go counts the drop), all
//     jitrt.MaxRecords slots of ExecCtx.Records taken, the lock still held
//     after ringLockSpins tries, a record header or position that fails
//     the checks Go makes (Go finds it again and reports ErrCorrupt);
//   - submit and discard: BPF_RB_FORCE_WAKEUP, an address that is not one
//     of the records native code holds (Go's reservations are in
//     helpers.State.Records), a header not BUSY or changed under the
//     routine.
//
// A reservation's record goes into ExecCtx.Records, which Go moves into
// State.Records at an exit for a helper that takes records back
// (site.records), at any other exit but helper calls, and when the run
// ends, so that Go's submit and discard and Release see every record the
// run holds (a run stopped by its budget between reserve and submit gives
// it back), while a record filled by a helper served in Go is still
// submitted natively.
//
// The wakeup: a commit flips the record header with lock cmpxchg (a full
// barrier), then reads the header's waiting count; the reader adds itself
// there and then reads the record header (maps/ringbuf.go). So one of the
// two sees the other. When the count is not 0 (and BPF_RB_NO_WAKEUP is not
// set), the commit is done and the code exits to Go at a wake site
// (siteWake), which only wakes the ring's reader (ExecCtx.Wake).

// ringLockSpins is how many times native code tries the producers' lock
// before it leaves the reservation to Go, which waits without spinning
// (a holder parked by the scheduler or a stop-the-world is not spun
// against, and a stop-the-world is not held up by code that spins).
const ringLockSpins = 64

var (
	offNRecords = int32(unsafe.Offsetof(jitrt.ExecCtx{}.NRecords))
	offRecords  = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Records))
	offWake     = int32(unsafe.Offsetof(jitrt.ExecCtx{}.Wake))
	recordSize  = int32(unsafe.Sizeof(jitrt.Record{}))
	offRecAddr  = int32(unsafe.Offsetof(jitrt.Record{}.Addr))
	offRecSize  = int32(unsafe.Offsetof(jitrt.Record{}.Size))
	offRecRing  = int32(unsafe.Offsetof(jitrt.Record{}.Ring))
)

// Routine results in r11 (tmp): done (rax is r0), go to the helper's
// call site, or (commits) done and wake the reader through Go.
const (
	ringDone = 0
	ringSlow = 1
	ringWake = 2
)

// ringNamed reports whether the ring buffer helper at site s takes a ring
// the program names, for which native code may run: the handle an lddw in
// the call's block loads into r1 (knownMap), which must be a ring buffer's,
// and ok is true; or, with no such lddw, a code check (emitted here) that
// r1 is a ring buffer one of the program's lddws loads, which jumps to
// slow otherwise. A ring reached through a map of maps goes to Go, whose
// helpers check that the map is still there.
func (c *compiler) ringNamed(s site, slow Label) bool {
	if !c.opts.inline || c.opts.blind {
		return false
	}
	if h, ok := c.knownMap(s.pc); ok {
		typ, ok := knownType(h)
		return ok && typ == maps.RingBuf
	}
	if len(c.consts) == 0 || len(c.consts) > maxTrieConsts {
		return false
	}
	a := &c.a
	r1 := regMap[1]
	named := a.NewLabel()
	c.isConst(r1, named, slow)
	a.Bind(named)
	a.Load(4, tmp, r1, maps.HeaderType)
	a.ALUImm(CMP, W32, tmp, int32(maps.RingBuf))
	a.Jcc(CondNE, slow)
	return true
}

// ringReserve emits bpf_ringbuf_reserve(ringbuf, size, flags) through
// emitRingReserve's routine for a ring the program names, and reports
// whether it did.
func (c *compiler) ringReserve(s site) bool {
	a := &c.a
	slow, done := a.NewLabel(), a.NewLabel()
	if !c.ringNamed(s, slow) {
		return false
	}
	c.callRoutine(&c.ringReserveL)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, done)
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
	return true
}

// ringCommit emits bpf_ringbuf_submit or bpf_ringbuf_discard(data, flags)
// through emitRingCommit's routine: a record native code reserved is
// committed there, any other goes to Go.
func (c *compiler) ringCommit(s site, discard bool) {
	a := &c.a
	slow, done := a.NewLabel(), a.NewLabel()
	if discard {
		a.MovImm32(tmp2, maps.RingDiscard)
	} else {
		a.MovImm32(tmp2, 0)
	}
	c.callRoutine(&c.ringCommitL)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, done)
	a.ALUImm(CMP, W64, tmp, ringSlow)
	a.Jcc(CondE, slow)
	c.callSite(site{kind: siteWake, pc: s.pc, imm: 1}) // flags: r2
	a.Jmp(done)
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
}

// emitRingReserve emits the routine of native reservations: with r1 (rdi)
// a ring buffer's handle, r2 (rsi) the size and r3 (rdx) the flags, it
// returns rax = the sample's address or 0 (a drop, counted), and r11 =
// ringDone; or r11 = ringSlow for Go to reserve (flags, every slot of
// ExecCtx.Records taken, or what the core leaves to Go). The record is
// pushed on ExecCtx.Records. It keeps every eBPF register but r0.
func (c *compiler) emitRingReserve() {
	a := &c.a
	slow, ret := a.NewLabel(), a.NewLabel()
	a.Bind(c.ringReserveL)
	a.Test(W64, RDX, RDX)
	a.Jcc(CondNE, slow)
	a.ALUMemImm(CMP, W64, ecReg, offNRecords, jitrt.MaxRecords)
	a.Jcc(CondAE, slow)
	c.callRoutine(&c.ringCoreL)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondNE, ret)
	a.Test(W64, RAX, RAX)
	a.Jcc(CondE, ret)
	// Push {sample, size, ring} on ExecCtx.Records.
	a.Load(8, tmp, ecReg, offNRecords)
	a.ImulImm(W64, tmp2, tmp, recordSize)
	a.ALU(ADD, W64, tmp2, ecReg)
	a.Store(8, tmp2, offRecords+offRecAddr, RAX)
	a.Store(8, tmp2, offRecords+offRecSize, RSI)
	a.Store(8, tmp2, offRecords+offRecRing, RDI)
	a.ALUImm(ADD, W64, tmp, 1)
	a.Store(8, ecReg, offNRecords, tmp)
	a.MovImm32(tmp, ringDone)
	a.Bind(ret)
	a.Ret()
	a.Bind(slow)
	a.MovImm32(tmp, ringSlow)
	a.Ret()
}

// emitRingCore emits the reservation both bpf_ringbuf_reserve and
// bpf_ringbuf_output make: with r1 (rdi) a ring buffer's handle and r2
// (rsi) the size, it returns rax = the sample's address or 0 (a drop,
// counted), and r11 = ringDone; or r11 = ringSlow for Go. It is
// maps/ringbuf.go's reserve: the consumer position read, the lock taken
// (ringLockSpins tries, else Go), the pending position moved past the
// records committed since, the space checked against both, the record's
// header written BUSY (with its page offset), the producer position
// moved, the lock released. A size past the largest record or the ring,
// and a record header or position that fails the checks Go makes, go to
// Go (which counts the drop, or finds the corruption again and reports
// ErrCorrupt). It keeps every register but rax and r11.
func (c *compiler) emitRingCore() {
	a := &c.a
	const (
		handle, size = RDI, RSI
		l, cons      = RBX, R13 // the record's length; the consumer position
		pend, prod   = R14, R15
		mask         = R9
		x, y         = R10, R11
	)
	saved := []Reg{fuelReg, RBX, R13, R14, R15, RCX, R10}
	slow, popSlow, popDone := a.NewLabel(), a.NewLabel(), a.NewLabel()
	unlockSlow, unlockDrop, locked, retry := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(c.ringCoreL)
	a.MovImm32(y, maps.RingMaxRecord)
	a.ALU(CMP, W64, size, y)
	a.Jcc(CondA, slow)
	for _, r := range saved {
		a.Push(r)
	}
	// l = (size + 8 + 7) &^ 7; more than the ring (mask+1): Go drops it.
	a.Lea(l, size, maps.RingHdrSize+7)
	a.ALUImm(AND, W64, l, -8)
	a.Load(4, mask, handle, maps.HeaderMask)
	a.Lea(x, mask, 1)
	a.ALU(CMP, W64, l, x)
	a.Jcc(CondA, popSlow)
	a.Load(8, cons, handle, maps.HeaderRingCons)
	// Take the lock: cmpxchg 0 -> RingLocked, ringLockSpins tries.
	a.MovImm32(y, ringLockSpins)
	a.Bind(retry)
	a.MovImm32(RAX, 0)
	a.MovImm32(x, maps.RingLocked)
	a.LockCmpxchg(4, handle, maps.HeaderRingLock, x)
	a.Jcc(CondE, locked)
	a.Pause()
	a.ALUImm(SUB, W32, y, 1)
	a.Jcc(CondNE, retry)
	a.Jmp(popSlow)
	a.Bind(locked)
	a.Load(8, pend, handle, maps.HeaderRingPending)
	a.Load(8, prod, handle, maps.HeaderRingProd)
	// prod - pend more than the ring: a position written over.
	a.Mov(W64, x, prod)
	a.ALU(SUB, W64, x, pend)
	a.Lea(y, mask, 1)
	a.ALU(CMP, W64, x, y)
	a.Jcc(CondA, unlockSlow)
	// Move pend past the records committed since (at most the ring's
	// size in 8-byte steps, as each is checked to end before prod).
	walk, walked := a.NewLabel(), a.NewLabel()
	a.Bind(walk)
	a.ALU(CMP, W64, pend, prod)
	a.Jcc(CondE, walked)
	a.Mov(W64, x, pend)
	a.ALU(AND, W64, x, mask)
	a.ALULoad(ADD, W64, x, handle, maps.HeaderData)
	a.Load(4, x, x, 0)
	a.TestImm(W32, x, int32(-maps.RingBusy)) // 1<<31
	a.Jcc(CondNE, walked)
	a.ALUImm(AND, W32, x, 0x3fffffff) // the length without BUSY and DISCARD
	a.ALUImm(ADD, W64, x, maps.RingHdrSize+7)
	a.ALUImm(AND, W64, x, -8)
	a.Mov(W64, y, prod)
	a.ALU(SUB, W64, y, pend)
	a.ALU(CMP, W64, x, y)
	a.Jcc(CondA, unlockSlow) // the record claims more than was reserved after it
	a.ALU(ADD, W64, pend, x)
	a.Jmp(walk)
	a.Bind(walked)
	a.Store(8, handle, maps.HeaderRingPending, pend)
	// next = prod + l must be within the ring of cons and of pend.
	a.Lea(x, prod, 0)
	a.ALU(ADD, W64, x, l)
	a.Mov(W64, y, x)
	a.ALU(SUB, W64, y, cons)
	a.ALU(CMP, W64, y, mask)
	a.Jcc(CondA, unlockDrop)
	a.Mov(W64, y, x)
	a.ALU(SUB, W64, y, pend)
	a.ALU(CMP, W64, y, mask)
	a.Jcc(CondA, unlockDrop)
	// The header at data + prod&mask: size | BUSY, then the page offset
	// from the handle.
	a.Mov(W64, y, prod)
	a.ALU(AND, W64, y, mask)
	a.ALULoad(ADD, W64, y, handle, maps.HeaderData)
	a.Mov(W32, RAX, size)
	a.ALUImm(OR, W32, RAX, int32(-maps.RingBusy))
	a.Store(4, y, 0, RAX)
	a.Mov(W64, RAX, y)
	a.ALU(SUB, W64, RAX, handle)
	a.Load(4, RCX, handle, maps.HeaderRingPageShift)
	a.Shift(SHR, W64, RAX)
	a.Store(4, y, 4, RAX)
	a.Store(8, handle, maps.HeaderRingProd, x) // x86 keeps the stores in order
	a.StoreImm(4, handle, maps.HeaderRingLock, 0)
	a.Lea(RAX, y, maps.RingHdrSize)
	a.Jmp(popDone)

	a.Bind(unlockDrop)
	a.StoreImm(4, handle, maps.HeaderRingLock, 0)
	a.MovImm32(x, 1)
	a.LockALU(ADD, 8, handle, maps.HeaderRingDropped, x)
	a.MovImm32(RAX, 0)
	a.Bind(popDone)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.MovImm32(y, ringDone)
	a.Ret()

	a.Bind(unlockSlow)
	a.StoreImm(4, handle, maps.HeaderRingLock, 0)
	a.Bind(popSlow)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Bind(slow)
	a.MovImm32(y, ringSlow)
	a.Ret()
}

// emitRingCommit emits the routine of native submits and discards: with
// r1 (rdi) the sample's address, r2 (rsi) the flags and r10 the bits to
// set (0, or RingDiscard), it commits a record ExecCtx.Records holds, as
// maps/ringbuf.go's commit does (BUSY cleared with lock cmpxchg) and takes
// it off the list, and returns r11 = ringDone, or ringWake when the ring's
// reader waits (its handle in ExecCtx.Wake); or r11 = ringSlow, having
// changed nothing, for Go: BPF_RB_FORCE_WAKEUP, an address native code
// did not reserve, a header not BUSY. rax is 0 when done. It keeps every
// eBPF register but r0.
func (c *compiler) emitRingCommit() {
	a := &c.a
	const (
		addr, flags = RDI, RSI
		n, rec      = RBX, R13
		bits, x     = R10, R11
	)
	saved := []Reg{RBX, R13}
	slow, find, found, popSlow := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(c.ringCommitL)
	a.TestImm(W64, flags, int32(maps.RingBufForceWakeup))
	a.Jcc(CondNE, slow)
	for _, r := range saved {
		a.Push(r)
	}
	a.Load(8, n, ecReg, offNRecords)
	a.Lea(rec, ecReg, offRecords)
	a.Bind(find)
	a.Test(W64, n, n)
	a.Jcc(CondE, popSlow)
	a.ALULoad(CMP, W64, addr, rec, offRecAddr)
	a.Jcc(CondE, found)
	a.ALUImm(ADD, W64, rec, recordSize)
	a.ALUImm(SUB, W64, n, 1)
	a.Jmp(find)
	a.Bind(found)
	// The header: BUSY, then BUSY cleared and bits set, atomically.
	a.Load(4, RAX, addr, -maps.RingHdrSize)
	a.TestImm(W32, RAX, int32(-maps.RingBusy))
	a.Jcc(CondE, popSlow)
	a.Mov(W32, x, RAX)
	a.ALUImm(XOR, W32, x, int32(-maps.RingBusy))
	a.ALU(OR, W32, x, bits)
	a.LockCmpxchg(4, addr, -maps.RingHdrSize, x)
	a.Jcc(CondNE, popSlow)
	// Off the list: the last record moves into its slot.
	a.Load(8, n, rec, offRecRing) // the ring's handle, from here on
	a.Load(8, RAX, ecReg, offNRecords)
	a.ALUImm(SUB, W64, RAX, 1)
	a.Store(8, ecReg, offNRecords, RAX)
	a.ImulImm(W64, RAX, RAX, recordSize)
	a.ALU(ADD, W64, RAX, ecReg)
	for _, off := range []int32{offRecAddr, offRecSize, offRecRing} {
		a.Load(8, x, RAX, offRecords+off)
		a.Store(8, rec, off, x)
	}
	// A waiting reader (read after the locked cmpxchg) is woken by Go.
	done := a.NewLabel()
	a.MovImm32(x, ringDone)
	a.TestImm(W64, flags, int32(maps.RingBufNoWakeup))
	a.Jcc(CondNE, done)
	a.ALUMemImm(CMP, W32, n, maps.HeaderRingWaiting, 0)
	a.Jcc(CondE, done)
	a.Store(8, ecReg, offWake, n)
	a.MovImm32(x, ringWake)
	a.Bind(done)
	a.MovImm32(RAX, 0)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Ret()

	a.Bind(popSlow)
	for i := len(saved) - 1; i >= 0; i-- {
		a.Pop(saved[i])
	}
	a.Bind(slow)
	a.MovImm32(x, ringSlow)
	a.Ret()
}

// ringOutput emits bpf_ringbuf_output(ringbuf, data, size, flags) through
// emitRingOutput's routine for a ring the program names, and reports
// whether it did.
func (c *compiler) ringOutput(s site) bool {
	a := &c.a
	slow, done := a.NewLabel(), a.NewLabel()
	if !c.ringNamed(s, slow) {
		return false
	}
	c.callRoutine(&c.ringOutputL)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondE, done)
	a.ALUImm(CMP, W64, tmp, ringSlow)
	a.Jcc(CondE, slow)
	c.callSite(site{kind: siteWake, pc: s.pc, imm: 3}) // flags: r4
	a.Jmp(done)
	a.Bind(slow)
	c.callSite(s)
	a.Bind(done)
	return true
}

// emitRingOutput emits the routine of native outputs: with r1 (rdi) a
// ring buffer's handle, r2 (rsi) the data, r3 (rdx) its size and r4 (rcx)
// the flags, it does what maps/ringbuf.go's Output does: a reservation
// (emitRingCore), the copy, and the commit. It returns rax = 0, -EAGAIN
// (no room, a drop counted) or -EINVAL (the header changed under it), and
// r11 = ringDone, or ringWake (done; the reader waits, its ring in
// ExecCtx.Wake); or r11 = ringSlow, having changed nothing, for Go: flags
// other than BPF_RB_NO_WAKEUP, or what the core leaves to Go. It keeps
// every eBPF register but r0.
func (c *compiler) emitRingOutput() {
	a := &c.a
	slow, ret, einval, done := a.NewLabel(), a.NewLabel(), a.NewLabel(), a.NewLabel()
	a.Bind(c.ringOutputL)
	a.TestImm(W64, RCX, ^int32(maps.RingBufNoWakeup))
	a.Jcc(CondNE, slow)
	a.Push(RSI)
	a.Mov(W64, RSI, RDX)
	c.callRoutine(&c.ringCoreL)
	a.Pop(RSI)
	a.Test(W64, tmp, tmp)
	a.Jcc(CondNE, ret)
	a.Test(W64, RAX, RAX)
	eagain := a.NewLabel()
	a.Jcc(CondE, eagain)
	// rep movsb: rcx bytes from rsi to rdi.
	for _, r := range []Reg{RDI, RSI, RCX} {
		a.Push(r)
	}
	a.Mov(W64, RDI, RAX)
	a.Mov(W64, RCX, RDX)
	a.RepMovsb()
	for _, r := range []Reg{RCX, RSI, RDI} {
		a.Pop(r)
	}
	// Commit: BUSY cleared with lock cmpxchg, as Submit does.
	a.Mov(W64, tmp2, RAX)
	a.Load(4, RAX, tmp2, -maps.RingHdrSize)
	a.TestImm(W32, RAX, int32(-maps.RingBusy))
	a.Jcc(CondE, einval)
	a.Mov(W32, tmp, RAX)
	a.ALUImm(XOR, W32, tmp, int32(-maps.RingBusy))
	a.LockCmpxchg(4, tmp2, -maps.RingHdrSize, tmp)
	a.Jcc(CondNE, einval)
	a.MovImm32(tmp, ringDone)
	a.TestImm(W64, RCX, int32(maps.RingBufNoWakeup))
	a.Jcc(CondNE, done)
	a.ALUMemImm(CMP, W32, RDI, maps.HeaderRingWaiting, 0)
	a.Jcc(CondE, done)
	a.Store(8, ecReg, offWake, RDI)
	a.MovImm32(tmp, ringWake)
	a.Bind(done)
	a.MovImm32(RAX, 0)
	a.Ret()
	a.Bind(eagain)
	a.MovImm64(RAX, uint64(maps.Return(maps.EAGAIN)))
	a.MovImm32(tmp, ringDone)
	a.Ret()
	a.Bind(einval)
	a.MovImm64(RAX, uint64(maps.Return(maps.EINVAL)))
	a.MovImm32(tmp, ringDone)
	a.Bind(ret)
	a.Ret()
	a.Bind(slow)
	a.MovImm32(tmp, ringSlow)
	a.Ret()
}

// records reports whether Go needs the records native code holds to serve
// site s (ExecCtx.Records moved into helpers.State.Records first): the
// helpers that take a record back (submit, discard, their dynptr forms),
// and calls whose helper is not known before the exit (callx) or that
// leave the program (tail calls).
func (s *site) records() bool {
	switch s.kind {
	case siteCallX, siteTail:
		return true
	case siteHelper:
		switch s.id {
		case helpers.IDRingbufSubmit, helpers.IDRingbufDiscard, helpers.IDRingbufSubmitDynptr, helpers.IDRingbufDiscardDynptr:
			return true
		}
	}
	return false
}
