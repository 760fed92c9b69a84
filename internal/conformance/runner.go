package conformance

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// Engine runs one program with the suite's calling convention: r1 points to
// a writable copy of mem (0 when there is none), r2 holds its length, and the
// result is r0.
type Engine struct {
	Name string
	Run  func(prog []isa.Instruction, mem []byte) (uint64, error)
}

// Budget bounds the instructions of one conformance run: the suite's
// programs are unverified, so a looping one must end with an error, not
// hang the runner.
const Budget = 1 << 24

// Helpers is the helper table conformance runs get: helper 5 is Linux's
// bpf_ktime_get_ns, the only helper the suite calls (README §3).
func Helpers() helpers.Table { return helpers.Time() }

// On returns the conformance Engine that runs programs on e. The suite's
// programs are not verified (Linux's verifier refuses some of them, see
// README §3), so an engine that does not check memory accesses is for
// measuring only: it runs with engine.Options.UnsafeFastUnverified, which
// exists for the suite, whose programs touch only their memory.
func On(e engine.Engine) Engine {
	return Engine{
		Name: e.Name(),
		Run: func(prog []isa.Instruction, data []byte) (uint64, error) {
			return RunOn(e, prog, data)
		},
	}
}

// RunOn runs prog on a copy of data on engine e with the suite's calling
// convention.
func RunOn(e engine.Engine, prog []isa.Instruction, data []byte) (uint64, error) {
	p, err := e.Load(prog, engine.Options{Helpers: Helpers(), Budgeted: true, UnsafeFastUnverified: !e.Checked()})
	if err != nil {
		return 0, err
	}
	buf := mem.Aligned(len(data))
	copy(buf, data)
	a := &engine.Args{Budget: Budget}
	if len(buf) > 0 {
		a.Regs = [5]uint64{mem.Addr(buf), uint64(len(buf))}
		a.Regions = []engine.Region{{Data: buf, Writable: true}}
	}
	return e.NewMachine().Run(p, a)
}

// Outcome is the verdict on one test, in the upstream runner's terms.
type Outcome int

const (
	Pass  Outcome = iota
	Fail          // the program ran and returned the wrong value, or ran when it should have failed
	Error         // the program could not be assembled, loaded or run, and was expected to
	Skip          // the file has no program or no expectation
)

func (o Outcome) String() string {
	return [...]string{"PASS", "FAIL", "ERROR", "SKIP"}[o]
}

// Result is the outcome of one test on one engine.
type Result struct {
	Test    string
	Engine  string
	Outcome Outcome
	Got     uint64 // r0, when the program ran
	Err     error  // the failure, for Error; the expected failure, for a Pass of an error test
	Detail  string // what differed, for Fail
}

func (r Result) String() string {
	s := fmt.Sprintf("%s: %s [%s]", r.Outcome, r.Test, r.Engine)
	switch {
	case r.Detail != "":
		s += " " + r.Detail
	case r.Outcome == Error && r.Err != nil:
		s += " " + r.Err.Error()
	}
	return s
}

// Run runs one test on one engine. A test with "-- error" passes when
// assembling, loading or running fails; the upstream runner compares the
// message text as well, but error texts are each runtime's own.
func Run(t *Test, e Engine) Result {
	res := Result{Test: t.Name, Engine: e.Name}
	if !t.HasResult && !t.HasError {
		res.Outcome, res.Err = Skip, ErrNoExpectation
		return res
	}
	prog, err := Assemble(t)
	if errors.Is(err, ErrNoProgram) && !t.HasError {
		res.Outcome, res.Err = Skip, err
		return res
	}
	if err == nil {
		res.Got, err = e.Run(prog, t.Mem)
	}
	switch {
	case err != nil && t.HasError:
		res.Outcome, res.Err = Pass, err
	case err != nil:
		res.Outcome, res.Err = Error, err
	case !t.HasResult:
		res.Outcome = Fail
		res.Detail = fmt.Sprintf("returned %#x, expected an error %q", res.Got, t.Error)
	case res.Got != t.Result:
		res.Outcome = Fail
		res.Detail = fmt.Sprintf("returned %#x, expected %#x", res.Got, t.Result)
	default:
		res.Outcome = Pass
	}
	return res
}

// Files returns the *.data files named by paths: files as they are,
// directories by their direct entries, sorted (the upstream runner does not
// recurse either).
func Files(paths ...string) ([]string, error) {
	var out []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.data"))
		if err != nil {
			return nil, err
		}
		if len(m) == 0 {
			return nil, fmt.Errorf("%s: no *.data files", p)
		}
		sort.Strings(m)
		out = append(out, m...)
	}
	return out, nil
}

// Summary counts results by outcome.
type Summary struct {
	Passed, Failed, Errors, Skipped int
}

// Add counts r.
func (s *Summary) Add(r Result) {
	switch r.Outcome {
	case Pass:
		s.Passed++
	case Fail:
		s.Failed++
	case Error:
		s.Errors++
	case Skip:
		s.Skipped++
	}
}

// String is the runner's last line: "N passed, M failed", where failures
// include errors, followed by skips if there were any.
func (s Summary) String() string {
	line := fmt.Sprintf("%d passed, %d failed", s.Passed, s.Failed+s.Errors)
	if s.Skipped > 0 {
		line += fmt.Sprintf(" (%d skipped)", s.Skipped)
	}
	return line
}

// RunFiles runs every file on every engine, calling report with each result
// as it comes, and returns the totals. A file that cannot be read or parsed
// counts as an error on every engine, except the files the upstream runner
// skips (no expectation, an unknown section), which are skipped.
func RunFiles(files []string, engines []Engine, report func(Result)) Summary {
	var sum Summary
	for _, f := range files {
		t, err := ReadFile(f)
		name := strings.TrimSuffix(filepath.Base(f), ".data")
		for _, e := range engines {
			var r Result
			switch {
			case errors.Is(err, ErrNoExpectation), errors.Is(err, ErrUnknownSection):
				r = Result{Test: name, Engine: e.Name, Outcome: Skip, Err: err}
			case err != nil:
				r = Result{Test: name, Engine: e.Name, Outcome: Error, Err: err}
			default:
				r = Run(t, e)
			}
			sum.Add(r)
			if report != nil {
				report(r)
			}
		}
	}
	return sum
}

// EngineNames lists engines by name, for messages.
func EngineNames(engines []Engine) string {
	var names []string
	for _, e := range engines {
		names = append(names, e.Name)
	}
	return strings.Join(names, ", ")
}
