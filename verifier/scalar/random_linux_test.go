//go:build linux

package scalar_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/kernel"
)

// randomProgram writes a straight line of scalar instructions on r6..r9
// (which start unknown), with conditional jumps to an exit block of their
// own, so every path ends without joining another and the kernel prunes
// nothing. Moves between registers are left out: the kernel links the
// copies by id and refines them together, which this package does not
// model (that is the register layer's job).
func randomProgram(r *rand.Rand, n int) string {
	reg := func() string { return fmt.Sprintf("r%d", 6+r.IntN(4)) }
	imm := func() int64 {
		switch r.IntN(6) {
		case 0:
			return int64(r.IntN(256))
		case 1:
			return -int64(r.IntN(256))
		case 2:
			return int64(int32(r.Uint32()))
		case 3:
			return int64(1) << r.IntN(31)
		case 4:
			return int64(1)<<r.IntN(31) - 1
		}
		return int64(r.IntN(64))
	}
	var b strings.Builder
	b.WriteString("call 7\nr6 = r0\ncall 7\nr7 = r0\ncall 7\nr8 = r0\ncall 7\nr9 = r0\nr0 = 0\n")
	exits := 0
	alu := []string{"+=", "-=", "*=", "&=", "|=", "^=", "<<=", ">>=", "s>>=", "/=", "%="}
	jmp := []string{"==", "!=", ">", ">=", "<", "<=", "s>", "s>=", "s<", "s<=", "&"}
	for range n {
		d := reg()
		w := r.IntN(3) == 0 // a 32-bit form
		name := func(x string) string {
			if w {
				return "w" + x[1:]
			}
			return x
		}
		switch k := r.IntN(10); {
		case k < 5:
			op := alu[r.IntN(len(alu))]
			var src string
			if r.IntN(2) == 0 {
				src = name(reg())
			} else {
				v := imm()
				switch op {
				case "<<=", ">>=", "s>>=":
					v = int64(r.IntN(32))
					if !w {
						v = int64(r.IntN(64))
					}
				case "/=", "%=":
					if v == 0 {
						v = 7
					}
				}
				src = fmt.Sprint(v)
			}
			fmt.Fprintf(&b, "%s %s %s\n", name(d), op, src)
		case k == 5:
			switch r.IntN(4) {
			case 0:
				fmt.Fprintf(&b, "%s = -%s\n", name(d), name(d))
			case 1:
				fmt.Fprintf(&b, "%s = be%d %s\n", d, []int{16, 32, 64}[r.IntN(3)], d)
			case 2:
				fmt.Fprintf(&b, "%s = bswap%d %s\n", d, []int{16, 32, 64}[r.IntN(3)], d)
			default:
				fmt.Fprintf(&b, "%s = le%d %s\n", d, []int{16, 32, 64}[r.IntN(3)], d)
			}
		case k == 6:
			if w {
				fmt.Fprintf(&b, "%s = (s%d)%s\n", name(d), []int{8, 16}[r.IntN(2)], name(d))
			} else {
				fmt.Fprintf(&b, "%s = (s%d)%s\n", d, []int{8, 16, 32}[r.IntN(3)], d)
			}
		case k == 7:
			fmt.Fprintf(&b, "%s = %d\n", name(d), imm())
		default:
			src := fmt.Sprint(imm())
			if r.IntN(3) == 0 {
				src = name(reg())
			}
			fmt.Fprintf(&b, "if %s %s %s goto exit%d\n", name(d), jmp[r.IntN(len(jmp))], src, exits)
			exits++
		}
	}
	b.WriteString("r0 = 0\nexit\n")
	for i := range exits {
		fmt.Fprintf(&b, "exit%d:\nr0 = %d\nexit\n", i, i+1)
	}
	return b.String()
}

// TestPrecision_KernelRandom is TestPrecision_Kernel on generated
// programs.
func TestPrecision_KernelRandom(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel: %v", err)
	}
	strict, release := modelledKernel(t)
	report := t.Errorf
	if !strict {
		report = t.Logf
		t.Logf("kernel %s is not %s: disagreements are logged, not failures", release, modelled)
	}
	n := 400
	if testing.Short() {
		n = 50
	}
	r := rand.New(rand.NewPCG(7, 7))
	var compared, agreed, progs, failed int
	for i := range n {
		src := randomProgram(r, 8+r.IntN(16))
		prog, err := asm.Parse(src)
		if err != nil {
			t.Fatalf("program %d: %v\n%s", i, err, src)
		}
		p, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.SocketFilter, LogLevel: 2})
		if errors.Is(err, kernel.ErrNotSupported) {
			t.Skipf("kernel: %v", err)
		}
		if err != nil {
			t.Fatalf("program %d: kernel rejects it: %+v\n%s", i, err, src)
		}
		log := p.VerifierLog()
		p.Close()
		got, err := simulate(prog)
		if err != nil {
			t.Fatalf("program %d: %v", i, err)
		}
		c, a, diffs := compareLogs(parseLog(log), got)
		compared += c
		agreed += a
		progs++
		if len(diffs) > 0 {
			failed++
			if failed <= 5 {
				report("program %d:\n%s\n%s\nkernel log:\n%s", i, strings.Join(diffs, "\n"), src, log)
			}
		}
	}
	t.Logf("%d random programs, %d scalar states compared with the kernel's log, %d agree; %d programs with a difference", progs, compared, agreed, failed)
}
