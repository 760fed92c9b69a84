//go:build linux

package scalar_test

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/verifier/scalar"
)

// The precision tests: small programs whose register states the kernel's
// verifier prints at log level 2 ("2: (57) r1 &= 255 ; R1=scalar(smin=...")
// are run through a minimal straight-line verifier built on this package
// (scalars only, no pruning), and every scalar the kernel prints must be
// printed the same way here. The programs get unknown numbers from
// bpf_get_prandom_u32 and end every path with its own exit, so the kernel
// prunes nothing.

// prologue puts three independent unknown numbers in r6, r7 and r8.
const prologue = `
call 7
r6 = r0
call 7
r7 = r0
call 7
r8 = r0
`

var precisionCases = []struct {
	name, body string
}{
	{"mask", `
r6 &= 0xff
r7 &= 0xf0
r6 += r7
w8 &= 0x7
r8 <<= 3
r0 = 0
exit`},
	{"index_bounds_check", `
if r6 > 15 goto +4
r6 <<= 3
r6 += 16
r0 = 0
exit
r0 = 1
exit`},
	{"signed_checks", `
if r6 s< -8 goto +6
if r6 s> 100 goto +5
r6 += 8
r7 = r6
r7 *= 3
r0 = 0
exit
r0 = 1
exit`},
	{"jmp32", `
if w6 > 1000 goto +4
w6 -= 500
if w6 s< 0 goto +2
r0 = 0
exit
r0 = 1
exit`},
	{"shifts", `
r6 >>= 56
r7 s>>= 60
r8 &= 0xffff
r8 <<= 40
w0 = w7
w0 >>= 4
r1 = r6
r1 s>>= 2
r0 = 0
exit`},
	{"sub_and_or", `
r6 &= 0xff
r7 &= 0xf
r6 -= r7
r7 |= 0x100
r8 ^= 0xff
w8 ^= 0x1
r0 = 0
exit`},
	{"eq_ne", `
r6 &= 0x3f
if r6 == 0 goto +5
if r6 != 0x3f goto +2
r0 = 0
exit
r0 = 2
exit
r0 = 1
exit`},
	{"reg_vs_reg", `
r6 &= 0xff
r7 &= 0xfff
if r6 > r7 goto +3
r7 -= r6
r0 = 0
exit
r6 -= r7
r0 = 1
exit`},
	{"jset", `
r6 &= 0xff
if r6 & 0x4 goto +3
if r6 & 0x3 goto +2
r0 = 0
exit
r0 = 1
exit`},
	{"movsx", `
r6 &= 0x1ff
r1 = (s8)r6
r7 &= 0x7f
r2 = (s8)r7
r3 = (s16)r7
w4 = (s8)w7
r8 = 0x80
r5 = (s8)r8
r0 = 0
exit`},
	{"alu32_wrap", `
w6 = w6
w6 += 0x7fffffff
w7 &= 0xff
w7 -= 0x10
r8 &= 0xff
w8 *= 0x100
r0 = 0
exit`},
	{"give_up", `
r6 &= 0xff
r1 = r6
r1 /= 3
r2 = r6
r2 %= 7
r3 = r7
r3 <<= r6
r4 = r6
r4 = -r4
r5 = r6
r5 = be16 r5
r0 = 0
exit`},
	{"mul", `
r6 &= 0xff
r7 &= 0xffff
r6 *= r7
r8 &= 0xf
r8 *= -1
r0 = 0
exit`},
	{"const_fold", `
r1 = 7
r1 += 5
r1 *= 3
w1 -= 40
r2 = 0x100000000 ll
r2 |= 1
r2 >>= 1
r0 = 0
exit`},
	{"le_lt_ge", `
if r6 >= 0x10 goto +6
if r6 < 4 goto +3
if r6 <= 8 goto +2
r0 = 0
exit
r0 = 1
exit
r0 = 2
exit`},
	{"mul_tnum", `
r6 &= 1
r6 |= 6
r6 *= 0x13
r7 &= 1
r7 |= 6
r7 *= 0x23
r8 &= 0x10
r8 |= 3
w8 *= 0x17
r0 = 0
exit`},
	{"add_sub_wrap", `
r6 &= 0xf
r7 = r6
r1 = 0x7ffffffffffffff8 ll
r6 += r1
r1 = 0x8000000000000010 ll
r6 += r1
r7 += r1
r7 -= r1
r7 -= r1
w8 &= 0xf
w8 += 0x7ffffff8
w8 += -0x7ffffff0
w8 -= -0x7ffffff0
w8 -= -0x7ffffff0
r0 = 0
exit`},
	{"byte_swaps", `
if r6 > 100 goto +12
r1 = r6
r1 = le16 r1
r2 = r6
r2 = be16 r2
r3 = r6
r3 = bswap64 r3
r4 = r6
r4 = le64 r4
r5 = r6
r5 = be32 r5
r0 = 0
exit
r7 |= 0x100
r7 = le16 r7
r8 = bswap16 r8
r0 = 1
exit`},
	{"neg", `
if r6 > 100 goto +5
r6 = -r6
w7 &= 0xff
w7 = -w7
r0 = 0
exit
r6 = -r6
r0 = 1
exit`},
	{"dead_side", `
r6 <<= 12
if w6 == 0 goto +6
r7 &= 0x3f
if r7 == r6 goto +2
r0 = 0
exit
r0 = 1
exit
r0 = 2
exit`},
	{"self_compare", `
w6 >>= 6
w6 = -w6
w6 <<= 31
if r6 <= r6 goto +3
r7 += r6
r0 = 0
exit
if w8 s> w8 goto +2
r0 = 1
exit
r0 = 2
exit`},
	{"fork", `
r6 s>>= 63
r6 &= 5
w7 s>>= 31
w7 |= 0x10
r0 = 0
exit`},
	{"sle_sge", `
if r6 s>= 0 goto +5
if r6 s<= -1000 goto +2
r0 = 0
exit
r0 = 1
exit
if w6 s>= 0x100 goto +2
r0 = 2
exit
r0 = 3
exit`},
}

// modelled is the kernel release series whose verifier this package
// models; other kernels track some operations differently (6.12 gives up
// on neg and byte swaps, for one), so with them disagreements are logged,
// not failures.
const modelled = "6.18"

// modelledKernel reports whether the running kernel is of the modelled
// series, and its release.
func modelledKernel(tb testing.TB) (bool, string) {
	tb.Helper()
	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		tb.Fatal(err)
	}
	release := unix.ByteSliceToString(uts.Release[:])
	return release == modelled || strings.HasPrefix(release, modelled+".") || strings.HasPrefix(release, modelled+"-"), release
}

// TestPrecision_Kernel compares every scalar the kernel prints with this
// package's state for it.
func TestPrecision_Kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel: %v", err)
	}
	strict, release := modelledKernel(t)
	report := t.Errorf
	if !strict {
		report = t.Logf
		t.Logf("kernel %s is not %s: disagreements are logged, not failures", release, modelled)
	}
	var compared, agreed int
	for _, tc := range precisionCases {
		t.Run(tc.name, func(t *testing.T) {
			prog, err := asm.Parse(prologue + tc.body)
			if err != nil {
				t.Fatal(err)
			}
			p, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.SocketFilter, LogLevel: 2})
			if errors.Is(err, kernel.ErrNotSupported) {
				t.Skipf("kernel: %v", err)
			}
			if err != nil {
				t.Fatalf("kernel rejects the program: %+v", err)
			}
			log := p.VerifierLog()
			p.Close()
			want := parseLog(log)
			got, err := simulate(prog)
			if err != nil {
				t.Fatal(err)
			}
			c, a, diffs := compareLogs(want, got)
			compared += c
			agreed += a
			for _, d := range diffs {
				report("%s", d)
			}
			if c == 0 {
				t.Fatalf("no scalar compared; kernel log:\n%s", log)
			}
			if t.Failed() {
				t.Logf("kernel log:\n%s", log)
			}
		})
	}
	t.Logf("%d scalar states compared with the kernel's log, %d agree", compared, agreed)
}

// event is one line of a verifier log: the state after instruction pc, or
// (from >= 0) the state at the start of a path popped from the stack.
type event struct {
	pc, from int
	safe     bool
	regs     map[int]string // register -> printed scalar
	vals     map[int]scalar.Value
}

var (
	insnLine     = regexp.MustCompile(`^(\d+): \([0-9a-f]{2}\) [^;]*;\s*(.*)$`)
	bareInsnLine = regexp.MustCompile(`^(\d+): \([0-9a-f]{2}\) [^;]*$`)
	stateLine    = regexp.MustCompile(`^(\d+): (R\d.*)$`)
	fromLine     = regexp.MustCompile(`^from (\d+) to (\d+): (.*)$`)
	regName      = regexp.MustCompile(`R(\d+)(?:_[a-zA-Z]+)?=`)
	scalarID     = regexp.MustCompile(`id=\d+(?:[+-]\d+)?,?`)
)

// parseLog reads the kernel's level-2 log into events, keeping only the
// scalar registers of each line, normalised: ids (which this package does
// not track) and the precision mark removed.
func parseLog(log string) []event {
	var evs []event
	pending := -1 // an instruction printed without its state
	for _, line := range strings.Split(log, "\n") {
		line = strings.TrimSpace(line)
		if m := stateLine.FindStringSubmatch(line); m != nil {
			// The state after a jump the kernel decided, printed apart
			// from the instruction ("12: R9=5").
			if pc, _ := strconv.Atoi(m[1]); pc == pending {
				evs = append(evs, event{pc: pc, from: -1, regs: parseRegs(m[2])})
			}
			pending = -1
		} else if m := bareInsnLine.FindStringSubmatch(line); m != nil {
			pending, _ = strconv.Atoi(m[1])
		} else if m := insnLine.FindStringSubmatch(line); m != nil {
			pc, _ := strconv.Atoi(m[1])
			evs = append(evs, event{pc: pc, from: -1, regs: parseRegs(m[2])})
		} else if m := fromLine.FindStringSubmatch(line); m != nil {
			from, _ := strconv.Atoi(m[1])
			pc, _ := strconv.Atoi(m[2])
			evs = append(evs, event{pc: pc, from: from, safe: m[3] == "safe", regs: parseRegs(m[3])})
		}
	}
	return evs
}

func parseRegs(s string) map[int]string {
	regs := map[int]string{}
	idx := regName.FindAllStringSubmatchIndex(s, -1)
	for i, m := range idx {
		end := len(s)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		n, _ := strconv.Atoi(s[m[2]:m[3]])
		v := strings.TrimSpace(s[m[1]:end])
		v = strings.TrimPrefix(v, "P")
		if !strings.HasPrefix(v, "scalar(") && !isNumber(v) {
			continue // a pointer
		}
		v = scalarID.ReplaceAllString(v, "")
		v = strings.Replace(v, ",)", ")", 1)
		regs[n] = v
	}
	return regs
}

func isNumber(s string) bool {
	if _, err := strconv.ParseInt(s, 0, 64); err == nil {
		return true
	}
	_, err := strconv.ParseUint(s, 0, 64)
	return err == nil
}

// simulate explores prog as the kernel does, scalars only: the
// fall-through of an undecided jump first, its target later (LIFO).
func simulate(prog []isa.Instruction) ([]event, error) {
	type path struct {
		pc, from int
		regs     [11]*scalar.Value
	}
	snap := func(pc, from int, regs *[11]*scalar.Value) event {
		e := event{pc: pc, from: from, regs: map[int]string{}, vals: map[int]scalar.Value{}}
		for i, r := range regs {
			if r != nil {
				e.regs[i] = r.String()
				e.vals[i] = *r
			}
		}
		return e
	}
	var evs []event
	stack := []path{{pc: 0, from: -1}}
	for steps := 0; len(stack) > 0; steps++ {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if p.from >= 0 {
			evs = append(evs, snap(p.pc, p.from, &p.regs))
		}
		regs := p.regs
		for pc := p.pc; ; {
			if steps++; steps > 10000 || pc < 0 || pc >= len(prog) {
				return nil, fmt.Errorf("simulation ran away at %d", pc)
			}
			ins := prog[pc]
			op := ins.Op
			set := func(r isa.Register, v scalar.Value) { regs[r] = &v }
			switch op.Class() {
			case isa.ClassALU, isa.ClassALU64:
				if regs[ins.Dst] == nil && op.ALUOp() != isa.ALUMov {
					return nil, fmt.Errorf("insn %d: r%d is not a scalar", pc, ins.Dst)
				}
				src := scalar.Const(uint64(int64(ins.Imm)))
				if op.Source() == isa.SourceX && op.ALUOp() != isa.ALUEnd {
					if regs[ins.Src] == nil {
						return nil, fmt.Errorf("insn %d: r%d is not a scalar", pc, ins.Src)
					}
					src = *regs[ins.Src]
				}
				dst := scalar.Unknown()
				if regs[ins.Dst] != nil {
					dst = *regs[ins.Dst]
				}
				if neg, zero, ok := scalar.Fork(op.ALUOp(), dst, src); ok {
					other := regs
					other[ins.Dst] = &zero
					stack = append(stack, path{pc: pc, from: pc, regs: other})
					dst = neg
				}
				set(ins.Dst, scalar.ALU(op.ALUOp(), op.Class() == isa.ClassALU64, ins.Off, ins.Imm,
					op.Source() == isa.SourceBE, dst, src))
				evs = append(evs, snap(pc, -1, &regs))
				pc++
			case isa.ClassLD:
				if !ins.IsLoadImm64() {
					return nil, fmt.Errorf("insn %d: unsupported", pc)
				}
				set(ins.Dst, scalar.Const(isa.Imm64(ins, prog[pc+1])))
				evs = append(evs, snap(pc, -1, &regs))
				pc += 2
			case isa.ClassJMP, isa.ClassJMP32:
				switch {
				case ins.IsExit():
					goto next
				case ins.IsHelperCall():
					for r := isa.R1; r <= isa.R5; r++ {
						regs[r] = nil
					}
					set(isa.R0, scalar.Unknown())
					evs = append(evs, snap(pc, -1, &regs))
					pc++
					continue
				case op.JumpOp() == isa.JumpA:
					pc += 1 + int(ins.Off)
					continue
				}
				wide := op.Class() == isa.ClassJMP
				a := regs[ins.Dst]
				b := scalar.Const(uint64(int64(ins.Imm)))
				if op.Source() == isa.SourceX {
					if regs[ins.Src] == nil {
						return nil, fmt.Errorf("insn %d: r%d is not a scalar", pc, ins.Src)
					}
					b = *regs[ins.Src]
				}
				if a == nil {
					return nil, fmt.Errorf("insn %d: r%d is not a scalar", pc, ins.Dst)
				}
				target := pc + 1 + int(ins.Off)
				switch scalar.BranchTaken(op.JumpOp(), *a, b, wide) {
				case scalar.Always:
					evs = append(evs, snap(pc, -1, &regs))
					pc = target
					continue
				case scalar.Never:
					evs = append(evs, snap(pc, -1, &regs))
					pc++
					continue
				}
				ta, tb := scalar.Refine(op.JumpOp(), *a, b, wide, true)
				fa, fb := scalar.Refine(op.JumpOp(), *a, b, wide, false)
				other := regs
				other[ins.Dst] = &ta
				if op.Source() == isa.SourceX {
					other[ins.Src] = &tb
					set(ins.Src, fb)
				}
				set(ins.Dst, fa)
				if op.Source() == isa.SourceX && ins.Src == ins.Dst {
					ts := scalar.RefineSelf(op.JumpOp(), *a, wide, true)
					fs := scalar.RefineSelf(op.JumpOp(), *a, wide, false)
					other[ins.Dst] = &ts
					set(ins.Dst, fs)
				}
				stack = append(stack, path{pc: target, from: pc, regs: other})
				evs = append(evs, snap(pc, -1, &regs))
				pc++
			default:
				return nil, fmt.Errorf("insn %d: unsupported class", pc)
			}
		}
	next:
	}
	return evs, nil
}

// compareLogs walks the kernel's events and the simulation's side by
// side; each scalar the kernel prints is compared with the simulation's.
func compareLogs(kern, sim []event) (compared, agreed int, diffs []string) {
	j := 0
	for _, k := range kern {
		if k.safe {
			// The kernel pruned this path; skip the simulation's copy.
			for j < len(sim) && !(sim[j].from == k.from && sim[j].pc == k.pc) {
				j++
			}
			j++
			for j < len(sim) && sim[j].from < 0 {
				j++
			}
			continue
		}
		if k.from >= 0 {
			// The kernel may have pruned the rest of the path before (a
			// state equal to one seen, for the registers still live).
			for j < len(sim) && !(sim[j].from == k.from && sim[j].pc == k.pc) {
				j++
			}
		}
		if j >= len(sim) {
			diffs = append(diffs, fmt.Sprintf("kernel goes on at %d (from %d), the simulation ended", k.pc, k.from))
			return
		}
		s := sim[j]
		j++
		if s.pc != k.pc || s.from != k.from {
			diffs = append(diffs, fmt.Sprintf("paths diverge: kernel at %d (from %d), simulation at %d (from %d)", k.pc, k.from, s.pc, s.from))
			return
		}
		for r, want := range k.regs {
			compared++
			got, ok := s.regs[r]
			if ok && got == want {
				agreed++
				continue
			}
			where := fmt.Sprintf("%d", k.pc)
			if k.from >= 0 {
				where = fmt.Sprintf("from %d to %d", k.from, k.pc)
			}
			diffs = append(diffs, fmt.Sprintf("%s: R%d: kernel %s, waggle %s", where, r, want, got))
		}
	}
	if j < len(sim) {
		diffs = append(diffs, fmt.Sprintf("the simulation goes on at %d (from %d), the kernel ended", sim[j].pc, sim[j].from))
	}
	return
}
