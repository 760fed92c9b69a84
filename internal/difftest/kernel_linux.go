//go:build linux

package difftest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/waggle-bpf/waggle/internal/conformance"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// Names of the known Linux 6.18 bugs a difference can be attributed to
// (testdata/kernel-bugs/<name>.data).
const (
	BugCmpxchg32Zext        = "cmpxchg32-zext-after-pruning"
	BugAtomicFetchPrecision = "atomic-fetch-precision"
)

// Runner runs generated programs in the kernel and in the interpreter and
// compares them. It reuses buffers, so use one per goroutine.
type Runner struct {
	interp *Interp
	out    []byte

	// MinimiseTime bounds the time Minimise spends on one difference; 0
	// means DefaultMinimiseTime.
	MinimiseTime time.Duration

	// Time spent in each engine, for throughput figures.
	KernelLoad, KernelRun, InterpTime time.Duration
}

// NewRunner returns a Runner. Call kernel.Supported first.
func NewRunner() *Runner { return &Runner{interp: NewInterp()} }

// Kernel loads insns as an XDP program and test-runs it once on a copy of
// packet. A verifier rejection is an Outcome whose Err is a
// *kernel.VerifierError.
func (r *Runner) Kernel(insns []isa.Instruction, packet []byte) Outcome {
	t0 := time.Now()
	p, err := kernel.Load(insns, kernel.LoadOptions{Type: kernel.XDP})
	t1 := time.Now()
	r.KernelLoad += t1.Sub(t0)
	if err != nil {
		return Outcome{Err: err}
	}
	defer p.Close()
	if n := len(packet) + 256; len(r.out) < n {
		r.out = make([]byte, n)
	}
	res, err := p.Run(&kernel.RunOptions{Data: packet, DataOut: r.out})
	r.KernelRun += time.Since(t1)
	if err != nil {
		return Outcome{Err: err}
	}
	return Outcome{Ret: uint64(res.Retval), Packet: bytes.Clone(res.Data)}
}

// Interp runs insns (kernel form) in the interpreter.
func (r *Runner) Interp(insns []isa.Instruction, packet []byte, eng engine.Engine) Outcome {
	t0 := time.Now()
	o := r.interp.Run(insns, packet, eng)
	r.InterpTime += time.Since(t0)
	return o
}

// Result is the verdict on one program.
type Result struct {
	// Rejected is the verifier's error when the kernel did not accept the
	// program: a generator bug.
	Rejected error
	// Diff is non-nil when the engines disagree.
	Diff *Diff
}

// Diff is a disagreement between the kernel and the interpreter, or between
// the interpreter's two modes.
type Diff struct {
	Seed    uint64
	Insns   []isa.Instruction // kernel form
	Packet  []byte
	Kernel  Outcome
	Checked Outcome
	Fast    Outcome // zero unless Checked ran without error
	JIT     Outcome // zero unless Checked ran without error
	// Known is set when the difference is one of the known kernel bugs.
	Known *KnownBug
}

// KnownBug says which known kernel bug explains a difference, and why.
type KnownBug struct {
	Name     string
	PCs      []int  // the instructions the rewrite changed
	Op       string // their categories, e.g. "atomic32 fetch xor"
	Evidence string
}

// ModesDiffer reports whether waggle's engines disagree (the
// interpreter's checked and fast modes, the JIT): always a waggle bug.
func (d *Diff) ModesDiffer() bool {
	return d.Checked.Err == nil && (!same(d.Checked, d.Fast) || !same(d.Checked, d.JIT))
}

// Check runs a generated program in the kernel and on waggle's engines.
// The unchecked engines (the fast interpreter, the JIT) run only after the kernel has verified the program
// and the checked mode has run it without a fault, so it never touches
// memory it does not own.
func (r *Runner) Check(p *fuzzgen.Program) (Result, error) {
	k := r.Kernel(p.Insns, p.Packet)
	if k.Err != nil {
		var verr *kernel.VerifierError
		if errors.As(k.Err, &verr) {
			return Result{Rejected: k.Err}, nil
		}
		return Result{}, fmt.Errorf("seed %d: kernel: %w", p.Seed, k.Err)
	}
	d := &Diff{Seed: p.Seed, Insns: p.Insns, Packet: p.Packet, Kernel: k}
	d.Checked = r.Interp(p.Insns, p.Packet, Checked())
	if d.Checked.Err == nil {
		d.Fast = r.Interp(p.Insns, p.Packet, Fast())
		d.JIT = r.Interp(p.Insns, p.Packet, JIT())
	}
	if agrees(k, d.Checked) && same(d.Checked, d.Fast) && same(d.Checked, d.JIT) {
		return Result{}, nil
	}
	if !d.ModesDiffer() && d.Checked.Err == nil {
		d.Known = r.knownBug(d.Insns, d.Packet, d.Checked)
	}
	return Result{Diff: d}, nil
}

// knownBug tries the rewrites that undo the known kernel bugs. It returns
// the first after which the kernel agrees with want (the interpreter's
// outcome on the original program), provided the interpreter's own outcome
// is unchanged by the rewrite. Rewrites of one instruction are tried first;
// then all instructions of the kind at once, since the verifier's precision
// tracking can fail at each fetching atomic along a chain of them (a value
// fetched by one atomic, spilled, and fetched again by the next), and each
// break alone suffices to prune a live path.
func (r *Runner) knownBug(insns []isa.Instruction, packet []byte, want Outcome) *KnownBug {
	try := func(v []isa.Instruction) bool {
		if v == nil {
			return false
		}
		if !same(want, r.Interp(v, packet, Checked())) {
			return false // not neutral: no conclusion
		}
		return agrees(r.Kernel(v, packet), want)
	}
	var cmpxchg32, fetching []int
	for pc, ins := range insns {
		if isCmpxchg32(ins) {
			cmpxchg32 = append(cmpxchg32, pc)
		}
		if a, fetch := isAtomic(ins); a && fetch && ins.Dst == isa.R10 {
			fetching = append(fetching, pc)
		}
	}
	describe := func(pcs []int) string {
		var s []string
		for _, pc := range pcs {
			s = append(s, fmt.Sprintf("%q at slot %d", isa.Format(insns[pc], isa.Instruction{}), pc))
		}
		return strings.Join(s, ", ")
	}
	bug := func(name string, pcs []int, what string) *KnownBug {
		k := &KnownBug{Name: name, PCs: pcs}
		var ops []string
		for _, pc := range pcs {
			ops = append(ops, fuzzgen.Category(insns[pc], pc))
		}
		k.Op = strings.Join(ops, " + ")
		k.Evidence = fmt.Sprintf(what, describe(pcs))
		return k
	}
	for _, pc := range cmpxchg32 {
		if try(zextAfter(insns, pc)) {
			return bug(BugCmpxchg32Zext, []int{pc}, "inserting w0 = w0 after %s makes Linux agree")
		}
	}
	// shrink drops instructions from a set of rewrites that works while it
	// still works, so the evidence names only those that matter.
	shrink := func(pcs []int, rewrite func([]isa.Instruction, []int) []isa.Instruction) []int {
		for i := 0; i < len(pcs) && len(pcs) > 1; {
			fewer := append(append([]int(nil), pcs[:i]...), pcs[i+1:]...)
			if try(rewrite(insns, fewer)) {
				pcs = fewer
			} else {
				i++
			}
		}
		return pcs
	}
	if len(cmpxchg32) > 1 && try(zextAfterAll(insns, cmpxchg32)) {
		return bug(BugCmpxchg32Zext, shrink(cmpxchg32, zextAfterAll), "inserting w0 = w0 after each of %s (together; none alone) makes Linux agree")
	}
	for _, pc := range fetching {
		if try(plainAtomic(insns, pc)) {
			return bug(BugAtomicFetchPrecision, []int{pc}, "replacing %s by its plain load/op/store makes Linux agree")
		}
	}
	if len(fetching) > 1 && try(plainAtomics(insns, fetching)) {
		return bug(BugAtomicFetchPrecision, shrink(fetching, plainAtomics), "replacing the fetching atomics %s (together; no one alone) by plain loads/ops/stores makes Linux agree")
	}
	return nil
}

// differs is the property the minimiser preserves.
type differs func(insns []isa.Instruction, packet []byte) bool

// criterion returns the property a minimised reproducer of d must keep,
// and the program to start from. For a kernel difference it first makes the
// program return the first differing output word (fuzzgen.ReturnWord), so
// that the difference shows in r0, which is what the conformance format
// records; if that loses the difference it keeps the whole comparison.
func (r *Runner) criterion(d *Diff) (differs, []isa.Instruction) {
	kernelOK := func(insns []isa.Instruction, packet []byte) (Outcome, bool) {
		k := r.Kernel(insns, packet)
		return k, k.Err == nil
	}
	if d.ModesDiffer() {
		return func(insns []isa.Instruction, packet []byte) bool {
			if _, ok := kernelOK(insns, packet); !ok {
				return false
			}
			c := r.Interp(insns, packet, Checked())
			return c.Err == nil && !same(c, r.Interp(insns, packet, Fast()))
		}, d.Insns
	}
	retDiffers := func(insns []isa.Instruction, packet []byte) bool {
		k, ok := kernelOK(insns, packet)
		if !ok {
			return false
		}
		c := r.Interp(insns, packet, Checked())
		return c.Err != nil || uint32(c.Ret) != uint32(k.Ret)
	}
	start := d.Insns
	if c := d.Checked; c.Err == nil && len(c.Packet) == len(d.Kernel.Packet) {
		for off := 0; off+4 <= len(c.Packet); off += 4 {
			if !bytes.Equal(c.Packet[off:off+4], d.Kernel.Packet[off:off+4]) {
				start = fuzzgen.ReturnWord(d.Insns, off)
				break
			}
		}
	}
	if retDiffers(start, d.Packet) {
		return retDiffers, start
	}
	return func(insns []isa.Instruction, packet []byte) bool {
		k, ok := kernelOK(insns, packet)
		return ok && !agrees(k, r.Interp(insns, packet, Checked()))
	}, d.Insns
}

// Minimise shrinks the program and input of d while the difference
// persists: it deletes chunks of instructions and single instructions,
// turns conditional jumps into unconditional ones, replaces lddw by a
// 32-bit move and other instructions by "goto +0" (a nop that still marks a
// jump target, which matters to the verifier's state pruning), and zeroes
// input words, until nothing more can go or MinimiseTime is up. Slots 0 and
// 1 (the ctx loads) and the final exit stay. Candidates that read
// uninitialised stack or break a loop's counter are dropped before they
// reach the kernel. It returns the smaller program (kernel form) and packet.
func (r *Runner) Minimise(d *Diff) ([]isa.Instruction, []byte) {
	deadline := time.Now().Add(r.minimiseTime())
	differ, insns := r.criterion(d)
	still := func(c []isa.Instruction, packet []byte) bool {
		if c == nil || isa.ValidateProgram(c) != nil || !loopsBounded(c) {
			return false
		}
		// A program reading stack it never wrote has no defined result
		// (Linux lets root read uninitialised stack).
		if fuzzgen.UninitStackRead(c) >= 0 || !differ(c, packet) {
			return false
		}
		if d.Known == nil {
			return true
		}
		// Stay on the same known bug rather than drift to another
		// difference.
		want := r.Interp(c, packet, Checked())
		k := r.knownBug(c, packet, want)
		return k != nil && k.Name == d.Known.Name
	}
	packet := bytes.Clone(d.Packet)
	if !still(insns, packet) {
		return insns, packet // not reproducible: leave it whole
	}
	nop := isa.Instruction{Op: isa.OpJA}
	// splitsLddw reports whether a chunk boundary at pc falls between the
	// two slots of a lddw.
	splitsLddw := func(p []isa.Instruction, pc int) bool {
		return pc > 0 && pc < len(p) && p[pc-1].IsLoadImm64()
	}
	for changed := true; changed && time.Now().Before(deadline); {
		changed = false
		for size := 32; size >= 1; size /= 2 {
			step := max(1, size/2)
			for pc := len(insns) - 1 - size; pc >= 2 && time.Now().Before(deadline); pc -= step {
				if pc+size > len(insns)-1 || splitsLddw(insns, pc) || splitsLddw(insns, pc+size) {
					continue
				}
				cands := [][]isa.Instruction{replace(insns, pc, size, nil)}
				if ins := insns[pc]; size == 1 || (size == 2 && ins.IsLoadImm64()) {
					switch {
					case ins.IsLoadImm64():
						cands = append(cands, replace(insns, pc, 2, []isa.Instruction{{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: ins.Dst, Imm: ins.Imm}}))
					case ins.Op.Class().IsJump() && ins.Op != isa.OpJA && ins.Op != isa.OpJA32 && !ins.IsExit():
						if t, ok := ins.JumpTarget(pc); ok && t > pc {
							cands = append(cands, replace(insns, pc, 1, []isa.Instruction{{Op: isa.OpJA, Off: int16(t - pc - 1)}}))
						}
					case ins != nop:
						cands = append(cands, replace(insns, pc, 1, []isa.Instruction{nop}))
					}
				}
				for _, c := range cands {
					if still(c, packet) {
						insns, changed = c, true
						break
					}
				}
			}
		}
	}
	for off := 0; off+8 <= len(packet) && time.Now().Before(deadline); off += 8 {
		var w [8]byte
		if bytes.Equal(packet[off:off+8], w[:]) {
			continue
		}
		saved := bytes.Clone(packet[off : off+8])
		copy(packet[off:], w[:])
		if !still(insns, packet) {
			copy(packet[off:], saved)
		}
	}
	return insns, packet
}

// DefaultMinimiseTime bounds the time Minimise spends on one difference.
const DefaultMinimiseTime = time.Minute

func (r *Runner) minimiseTime() time.Duration {
	if r.MinimiseTime > 0 {
		return r.MinimiseTime
	}
	return DefaultMinimiseTime
}

// loopsBounded reports whether every backward jump of prog still has the
// shape fuzzgen gives loops: a conditional jump on a counter c against an
// immediate, "c = imm" just before the loop head, and exactly one write to c
// in the loop, an add or sub of an immediate. Anything else may be a loop
// the verifier cannot bound, and exploring it to the 1M-instruction limit
// takes long; the minimiser skips such candidates.
func loopsBounded(prog []isa.Instruction) bool {
	for pc, ins := range prog {
		h, ok := ins.JumpTarget(pc)
		if !ok || h > pc {
			continue
		}
		c := ins.Dst
		if ins.Op.Source() != isa.SourceK || ins.Op == isa.OpJA || ins.Op == isa.OpJA32 || h == 0 {
			return false
		}
		init := prog[h-1]
		if !init.Op.Class().IsALU() || init.Op.ALUOp() != isa.ALUMov || init.Op.Source() != isa.SourceK || init.Dst != c {
			return false
		}
		updates := 0
		for i := h; i < pc; i++ {
			w, ok := writes(prog[i])
			if !ok || w != c {
				continue
			}
			u := prog[i]
			if !u.Op.Class().IsALU() || u.Op.Source() != isa.SourceK || (u.Op.ALUOp() != isa.ALUAdd && u.Op.ALUOp() != isa.ALUSub) {
				return false
			}
			updates++
		}
		if updates != 1 {
			return false
		}
	}
	return true
}

// writes returns the register ins writes, if any.
func writes(ins isa.Instruction) (isa.Register, bool) {
	switch c := ins.Op.Class(); {
	case c.IsALU(), c == isa.ClassLDX, ins.IsLoadImm64():
		return ins.Dst, true
	case c == isa.ClassSTX && ins.Op.Mode() == isa.ModeATOMIC:
		switch op := isa.AtomicOp(ins.Imm); {
		case op == isa.AtomicCmpXchg:
			return isa.R0, true
		case op.Fetches():
			return ins.Src, true
		}
	}
	return 0, false
}

// Reproducer minimises d and returns it in the conformance .data format,
// in the convention of the conformance suite (r1 = packet, r2 = its length;
// see fuzzgen.ForConformance). "-- result" is the interpreter's r0, which is
// RFC 9669's answer when the kernel is the one at fault; the header says
// what Linux returned.
func (r *Runner) Reproducer(d *Diff) string {
	insns, packet := r.Minimise(d)
	k := r.Kernel(insns, packet)
	c := r.Interp(insns, packet, Checked())
	conf := fuzzgen.ForConformance(insns)
	result, runErr := conformance.RunOn(Checked(), conf, packet)
	header := []string{
		fmt.Sprintf("Kernel differential test, fuzzgen seed %d, minimised from %d to %d slots.", d.Seed, len(d.Insns), len(insns)),
	}
	switch {
	case d.Known != nil:
		header = append(header, fmt.Sprintf("Known Linux bug %s: %s.", d.Known.Name, d.Known.Evidence))
	case d.ModesDiffer():
		header = append(header, "waggle's checked and fast interpreters disagree: an interpreter bug.")
	default:
		header = append(header, "UNEXPLAINED: decide whether Linux or waggle is wrong; if waggle is, put Linux's answer in -- result.")
	}
	header = append(header,
		fmt.Sprintf("Linux 6.18 XDP test run: retval %#x (the low 32 bits of r0)", k.Ret),
		fmt.Sprintf("waggle interp (checked): r0 %#x%s", c.Ret, errSuffix(c.Err)),
	)
	if k.Err == nil && c.Err == nil && !bytes.Equal(k.Packet, c.Packet) {
		header = append(header, "output packets differ at bytes "+diffRanges(k.Packet, c.Packet))
	}
	if runErr != nil {
		header = append(header, "conformance form fails in the interpreter: "+runErr.Error())
	}
	header = append(header, "Slots 0-1 are the conformance form of the XDP ctx loads (r2 = r1 + len; r1 = r1).")
	return formatData(header, conf, packet, result)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " (error: " + err.Error() + ")"
}

// diffRanges lists the byte ranges where a and b (of equal length) differ.
func diffRanges(a, b []byte) string {
	var s string
	for i := 0; i < len(a) && i < len(b); {
		if a[i] == b[i] {
			i++
			continue
		}
		j := i
		for j < len(a) && j < len(b) && a[j] != b[j] {
			j++
		}
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("[%d, %d)", i, j)
		i = j
	}
	return s
}

// KernelConformance runs a program written for the conformance suite's
// convention (r1 = mem, r2 = len(mem), the result is all of r0) in the
// kernel, the way the suite's kernel plugin does: an XDP wrapper checks the
// packet length, calls the program as a bpf-to-bpf subprogram with r1
// pointing into the packet, and stores the returned r0 in the packet's
// first 8 bytes, so all 64 bits come back.
//
//	 0  r2 = *(u32 *)(r1 + 4)      data_end
//	 1  r1 = *(u32 *)(r1 + 0)      data
//	 2  r3 = r1
//	 3  r3 += 8 + len(mem)
//	 4  if r3 <= r2 goto +2
//	 5  w0 = 0xbad
//	 6  exit
//	 7  *(u64 *)(r10 - 8) = r1
//	 8  r1 += 8                    the test's memory
//	 9  r2 = len(mem)
//	10  call pc+3                  the test program, at slot 14
//	11  r1 = *(u64 *)(r10 - 8)
//	12  *(u64 *)(r1 + 0) = r0
//	13  exit
//
// The packet is 8 bytes of result, then mem, padded to 14 bytes (XDP's
// minimum).
func (r *Runner) KernelConformance(insns []isa.Instruction, mem []byte) (uint64, error) {
	const (
		ldxw   = isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeW)
		ldxdw  = isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeDW)
		stxdw  = isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeDW)
		mov64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov)
		mov64X = mov64 | isa.Opcode(isa.SourceX)
		mov32  = isa.Opcode(isa.ClassALU) | isa.Opcode(isa.ALUMov)
		add64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUAdd)
		jleX   = isa.Opcode(isa.ClassJMP) | isa.Opcode(isa.JumpLE) | isa.Opcode(isa.SourceX)
	)
	wrapper := []isa.Instruction{
		{Op: ldxw, Dst: isa.R2, Src: isa.R1, Off: 4},
		{Op: ldxw, Dst: isa.R1, Src: isa.R1, Off: 0},
		{Op: mov64X, Dst: isa.R3, Src: isa.R1},
		{Op: add64, Dst: isa.R3, Imm: int32(8 + len(mem))},
		{Op: jleX, Dst: isa.R3, Src: isa.R2, Off: 2},
		{Op: mov32, Dst: isa.R0, Imm: 0xbad},
		{Op: isa.OpExit},
		{Op: stxdw, Dst: isa.R10, Src: isa.R1, Off: -8},
		{Op: add64, Dst: isa.R1, Imm: 8},
		{Op: mov64, Dst: isa.R2, Imm: int32(len(mem))},
		{Op: isa.OpCall, Src: isa.PseudoCall, Imm: 3},
		{Op: ldxdw, Dst: isa.R1, Src: isa.R10, Off: -8},
		{Op: stxdw, Dst: isa.R1, Src: isa.R0, Off: 0},
		{Op: isa.OpExit},
	}
	packet := make([]byte, max(8+len(mem), 14))
	copy(packet[8:], mem)
	k := r.Kernel(append(wrapper, insns...), packet)
	if k.Err != nil {
		return 0, k.Err
	}
	if len(k.Packet) < 8 {
		return 0, fmt.Errorf("kernel returned a %d-byte packet", len(k.Packet))
	}
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(k.Packet[i])
	}
	return v, nil
}
