package waggle

import (
	"fmt"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
)

// Engine selects what executes a collection's programs
// (CollectionOptions.Engine). Every engine runs every program with the
// same results; they differ in speed and in what they check at run time.
type Engine int

const (
	// EngineAuto, the zero value and so the default, picks an engine when
	// the collection loads (Collection.Engine says which): EngineJIT
	// where the JIT runs (linux/amd64) for programs the verifier accepts,
	// EngineInterp for CollectionOptions.Unverified programs and on
	// every other platform. The JIT checks no memory access at run time:
	// the verifier's proof is what keeps a program inside its memory, as
	// in Linux. Ask for EngineInterp to have every access checked as
	// well.
	EngineAuto Engine = iota
	// EngineInterp is the interpreter in checked mode: every load, store
	// and atomic operation is checked against the memory the run owns
	// (its stack, its context and packet, the values of the maps it
	// references), and a bad one ends the run with a *Fault wrapping
	// ErrMemory instead of touching anything else. It is the only engine
	// for CollectionOptions.Unverified programs, and a second line of
	// defence for verified ones (a verifier bug becomes a fault, not a
	// corrupted process).
	EngineInterp
	// EngineInterpFast is the interpreter without memory checks, for
	// programs the verifier accepted, whose accesses it proved in bounds.
	// With CollectionOptions.Unverified it is refused (ErrUnverifiedFast)
	// unless CollectionOptions.UnsafeFastUnverified is set.
	EngineInterpFast
	// EngineJIT compiles programs to x86-64 machine code (linux/amd64),
	// for programs the verifier accepted: the fastest engine, checking no
	// memory access, like EngineInterpFast. Elsewhere loading fails with
	// an error saying why.
	EngineJIT
)

// Engines lists the concrete engines, in the order of the constants:
// what an engine-matrix test runs each case on. EngineAuto is not one of
// them: it picks one of these.
func Engines() []Engine { return []Engine{EngineInterp, EngineInterpFast, EngineJIT} }

// autoName is EngineAuto's name.
const autoName = "auto"

// String returns the engine's name, as the CLI's --engine flag spells it:
// "auto", "interp", "interp-fast", "jit".
func (e Engine) String() string {
	if e == EngineAuto {
		return autoName
	}
	if impl, err := e.impl(); err == nil {
		return impl.Name()
	}
	return fmt.Sprintf("Engine(%d)", int(e))
}

// ParseEngine returns the engine String names ("auto", "interp",
// "interp-fast", "jit").
func ParseEngine(name string) (Engine, error) {
	if name == autoName {
		return EngineAuto, nil
	}
	for _, e := range Engines() {
		if e.String() == name {
			return e, nil
		}
	}
	return 0, fmt.Errorf("unknown engine %q (want one of %v)", name, append([]Engine{EngineAuto}, Engines()...))
}

// Resolve returns the engine e stands for in a collection whose programs
// are verified (or, with verified false, CollectionOptions.Unverified):
// e itself, or EngineAuto's choice on this platform, which
// Collection.Engine reports once a collection exists.
func (e Engine) Resolve(verified bool) Engine {
	if e != EngineAuto {
		return e
	}
	if verified && engines.JITSupported() == nil {
		return EngineJIT
	}
	return EngineInterp
}

// impl returns the engine behind e.
func (e Engine) impl() (engine.Engine, error) {
	all := engines.All() // in the order of Engines
	i := int(e) - int(EngineInterp)
	if e == EngineAuto || i < 0 || i >= len(all) {
		return nil, fmt.Errorf("unknown engine %d: %w", int(e), engine.ErrNotSupported)
	}
	return all[i], nil
}

// Fault describes a run that stopped at an instruction: a memory access
// the checked engine refused, an exhausted budget, a call too deep or a
// failing helper. Its Err is one of the errors below.
type Fault = engine.Fault

// Errors a run can end with (errors.Is): a *Fault wraps one of them.
var (
	// ErrMemory: a checked run accessed memory outside what it owns.
	ErrMemory = engine.ErrMemory
	// ErrBudget: a run used up its budget (CollectionOptions.Budget).
	ErrBudget = engine.ErrBudget
	// ErrStopped: a run's context ended (RunContext, ExecContext).
	ErrStopped = engine.ErrStopped
	// ErrCallDepth: bpf-to-bpf calls and callbacks nested too deep.
	ErrCallDepth = engine.ErrCallDepth
	// ErrHelper: a helper failed.
	ErrHelper = engine.ErrHelper
	// ErrUnreleased: a run ended holding a lock or ring buffer records.
	ErrUnreleased = engine.ErrUnreleased
	// ErrContext: a run accessed its context as its type forbids.
	ErrContext = engine.ErrContext
)
