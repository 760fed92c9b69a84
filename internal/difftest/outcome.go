package difftest

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
)

// Outcome is what one engine made of a program and its input packet.
type Outcome struct {
	// Ret is r0 at exit. The kernel's XDP test run reports only its low 32
	// bits, so kernel outcomes have the high half zero.
	Ret uint64
	// Packet is the packet after the run.
	Packet []byte
	// Err is a load or run failure (for the kernel, a *kernel.VerifierError
	// when the verifier rejected the program).
	Err error
}

func (o Outcome) String() string {
	if o.Err != nil {
		return "error: " + o.Err.Error()
	}
	return fmt.Sprintf("r0 %#x, packet % x", o.Ret, o.Packet)
}

// agrees reports whether an engine's outcome e matches the kernel's k: no
// errors, the same low 32 bits of r0 (all the kernel reports) and the same
// packet.
func agrees(k, e Outcome) bool {
	return k.Err == nil && e.Err == nil && uint32(k.Ret) == uint32(e.Ret) && bytes.Equal(k.Packet, e.Packet)
}

// same reports whether two waggle outcomes are identical: all 64 bits of
// r0, the packet, and success.
func same(a, b Outcome) bool {
	return a.Err == nil && b.Err == nil && a.Ret == b.Ret && bytes.Equal(a.Packet, b.Packet)
}

// RequireNoDiff fails tb when the outcomes of two engines differ. want is
// the reference (the kernel's, when one of them is the kernel, so only the
// low 32 bits of r0 are compared).
func RequireNoDiff(tb testing.TB, want, got Outcome) {
	tb.Helper()
	if !agrees(want, got) {
		tb.Fatalf("engines differ:\nwant %v\ngot  %v", want, got)
	}
}

// Checked returns the checked interpreter, the reference engine: it
// checks every memory access.
func Checked() engine.Engine { return mustEngine(engines.Interp) }

// Fast returns the interpreter without memory checks.
func Fast() engine.Engine { return mustEngine(engines.InterpFast) }

// JIT returns the JIT. A fault in machine code kills the process (Go
// cannot recover from it), so run a program on it only after the
// checked interpreter ran it on the same input without a fault.
func JIT() engine.Engine { return mustEngine(engines.JIT) }

func mustEngine(name string) engine.Engine {
	e, err := engines.ByName(name)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	return e
}

// Interp runs generated programs on waggle's engines (through the seam,
// internal/engine). It stands in for the kernel's XDP context with a fake
// one of two u64 words {data, data_end}, which is what fuzzgen.ForInterp's
// loads read. It reuses its buffers and machines, so use one per
// goroutine.
type Interp struct {
	machines map[engine.Engine]engine.Machine
	ctx      []byte
	pkt      []byte
	Budget   uint64 // instructions allowed per run (engine.Args.Budget)
	// BlindConstants loads programs with engine.Options.BlindConstants.
	BlindConstants bool
}

// NewInterp returns an Interp.
func NewInterp() *Interp {
	return &Interp{machines: map[engine.Engine]engine.Machine{}, ctx: mem.Aligned(16), Budget: 1 << 20}
}

// Run runs insns (in the kernel's form: fuzzgen.ForInterp is applied here)
// on a copy of packet on engine eng. An engine panic, or on an engine that
// does not check memory a memory fault, becomes an Outcome error rather
// than a crash, so a differential test reports it like any other
// difference.
func (e *Interp) Run(insns []isa.Instruction, packet []byte, eng engine.Engine) (o Outcome) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			o = Outcome{Err: fmt.Errorf("%s panicked: %v", eng.Name(), r)}
		}
	}()
	// An unchecked engine runs unverified here: the generator's programs
	// are ones Linux's verifier accepts, and a fault is caught above.
	p, err := eng.Load(fuzzgen.ForInterp(insns), engine.Options{Budgeted: true, UnsafeFastUnverified: !eng.Checked(), BlindConstants: e.BlindConstants})
	if err != nil {
		return Outcome{Err: err}
	}
	if cap(e.pkt) < len(packet) {
		e.pkt = mem.Aligned(len(packet))
	}
	pkt := e.pkt[:len(packet)]
	copy(pkt, packet)
	data := mem.Addr(pkt)
	putU64(e.ctx[0:], data)
	putU64(e.ctx[8:], data+uint64(len(pkt)))
	args := engine.Args{
		Regs:    [5]uint64{mem.Addr(e.ctx)},
		Regions: []engine.Region{{Data: e.ctx}, {Data: pkt, Writable: true}},
		Budget:  e.Budget,
	}
	m := e.machines[eng]
	if m == nil {
		m = eng.NewMachine()
		e.machines[eng] = m
	}
	r0, err := m.Run(p, &args)
	return Outcome{Ret: r0, Packet: bytes.Clone(pkt), Err: err}
}

func putU64(b []byte, v uint64) {
	_ = b[7]
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
