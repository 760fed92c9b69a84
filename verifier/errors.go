package verifier

import (
	"fmt"
	"strings"

	"github.com/waggle-bpf/waggle/isa"
)

// Error is a rejection: what is wrong, where, how the program got there
// and what to change.
type Error struct {
	// Program is the program's name.
	Program string
	// Insn is the slot of the instruction at fault, -1 when the error is
	// not about one instruction.
	Insn int
	// Text is the instruction, disassembled.
	Text string
	// Msg is the reason, in the kernel verifier's words where it has them
	// ("R2 invalid mem access 'scalar'").
	Msg string
	// File, Line and Source locate the instruction in the C source (BTF
	// line info), when the object has it.
	File   string
	Line   int
	Source string
	// Regs is the register state at the instruction, as the kernel's log
	// prints it.
	Regs string
	// Path is the branches taken from the entry to the instruction.
	Path []Branch
	// Hint says what to change, when there is something to say.
	Hint string
}

// Branch is one decision on the path to an error.
type Branch struct {
	Insn  int  // the jump's slot
	Taken bool // whether the jump was taken
	File  string
	Line  int
	// Source is the C source line of the jump.
	Source string
}

// Error returns one line: "insn 12 (r0 = *(u8 *)(r2 +0)) at xdp.c:34: R2
// invalid mem access 'scalar'".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("verifier: ")
	if e.Program != "" {
		b.WriteString(e.Program + ": ")
	}
	if e.Insn >= 0 {
		fmt.Fprintf(&b, "insn %d", e.Insn)
		if e.Text != "" {
			fmt.Fprintf(&b, " (%s)", e.Text)
		}
		if e.File != "" {
			fmt.Fprintf(&b, " at %s:%d", e.File, e.Line)
		}
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every Error an ErrRejected.
func (e *Error) Unwrap() error { return ErrRejected }

// Explain returns the whole story: the error, the source line, the path
// that led there, the registers and the hint, one item a line.
func (e *Error) Explain() string {
	var b strings.Builder
	b.WriteString(e.Error() + "\n")
	if e.Source != "" {
		fmt.Fprintf(&b, "  source: %s\n", strings.TrimSpace(e.Source))
	}
	if len(e.Path) > 0 {
		b.WriteString("  path from the entry:\n")
		for _, br := range e.Path {
			what := "not taken"
			if br.Taken {
				what = "taken"
			}
			fmt.Fprintf(&b, "    insn %d: branch %s", br.Insn, what)
			if br.File != "" {
				fmt.Fprintf(&b, " (%s:%d: %s)", br.File, br.Line, strings.TrimSpace(br.Source))
			}
			b.WriteString("\n")
		}
	}
	if e.Regs != "" {
		fmt.Fprintf(&b, "  registers: %s\n", e.Regs)
	}
	if e.Hint != "" {
		fmt.Fprintf(&b, "  hint: %s\n", e.Hint)
	}
	return b.String()
}

// shapeErr is an error found before paths are explored.
func (v *verifier) shapeErr(pc int, format string, args ...any) *Error {
	e := &Error{Program: v.p.Name, Insn: pc, Msg: fmt.Sprintf(format, args...)}
	v.locate(e)
	return e
}

func (v *verifier) locate(e *Error) {
	pc := e.Insn
	if pc < 0 || pc >= len(v.insns) {
		return
	}
	next := isa.Instruction{}
	if pc+1 < len(v.insns) {
		next = v.insns[pc+1]
	}
	e.Text = isa.Format(v.insns[pc], next)
	if pc < len(v.p.Lines) {
		l := v.p.Lines[pc]
		e.File, e.Line, e.Source = l.File, l.Line, l.Text
	}
}

// errorf is an error at slot pc on the current path, with its path and
// registers.
func (v *verifier) errorf(pc int, format string, args ...any) *Error {
	e := &Error{Program: v.p.Name, Insn: pc, Msg: fmt.Sprintf(format, args...)}
	v.locate(e)
	if v.cur != nil {
		e.Regs = v.formatState(v.cur)
		var steps []*step
		for s := v.cur.path; s != nil; s = s.prev {
			steps = append(steps, s)
		}
		// Long paths: keep the last 64 decisions.
		if len(steps) > 64 {
			steps = steps[:64]
		}
		for i := len(steps) - 1; i >= 0; i-- {
			s := steps[i]
			br := Branch{Insn: s.insn, Taken: s.taken}
			if s.insn < len(v.p.Lines) {
				l := v.p.Lines[s.insn]
				br.File, br.Line, br.Source = l.File, l.Line, l.Text
			}
			e.Path = append(e.Path, br)
		}
	}
	return e
}

// hinted adds a hint to an error.
func hinted(e *Error, format string, args ...any) *Error {
	e.Hint = fmt.Sprintf(format, args...)
	return e
}

// formatState prints the registers of the current frame that hold
// something, and the stack slots, as the kernel's log does.
func (v *verifier) formatState(s *state) string {
	var parts []string
	f := s.cur()
	if len(s.frames) > 1 {
		parts = append(parts, fmt.Sprintf("frame%d:", len(s.frames)-1))
	}
	for i := range f.regs {
		r := &f.regs[i]
		if r.typ == notInit {
			continue
		}
		parts = append(parts, fmt.Sprintf("R%d=%s", i, r.format(v)))
	}
	for i := range f.stack {
		sl := &f.stack[i]
		off := -8 * (i + 1)
		if sl.spilled() {
			parts = append(parts, fmt.Sprintf("fp%d=%s", off, sl.sp.format(v)))
			continue
		}
		var b strings.Builder
		any := false
		for k := 0; k < 8; k++ { // the slot's highest byte first, as the kernel prints it
			c := "?"
			switch sl.kinds[k] {
			case stackMisc:
				c, any = "m", true
			case stackZero:
				c, any = "0", true
			case stackSpill:
				c, any = "r", true
			}
			b.WriteString(c)
		}
		if any {
			parts = append(parts, fmt.Sprintf("fp%d=%s", off, b.String()))
		}
	}
	return strings.Join(parts, " ")
}
