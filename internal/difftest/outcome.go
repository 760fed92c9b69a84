package difftest

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/interp"
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

// Interp runs generated programs in the interpreter. It stands in for the
// kernel's XDP context with a fake one of two u64 words {data, data_end},
// which is what fuzzgen.ForInterp's loads read. It reuses its buffers and
// machine, so use one per goroutine.
type Interp struct {
	m      *interp.Machine
	ctx    []byte
	pkt    []byte
	Budget uint64 // instructions allowed per run (interp.Args.Budget)
}

// NewInterp returns an Interp.
func NewInterp() *Interp {
	return &Interp{m: interp.NewMachine(), ctx: mem.Aligned(16), Budget: 1 << 20}
}

// Run runs insns (in the kernel's form: fuzzgen.ForInterp is applied here)
// on a copy of packet in the given mode. An interpreter panic, or in fast
// mode a memory fault, becomes an Outcome error rather than a crash, so a
// differential test reports it like any other difference.
func (e *Interp) Run(insns []isa.Instruction, packet []byte, mode interp.Mode) (o Outcome) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			o = Outcome{Err: fmt.Errorf("interp (%s) panicked: %v", mode, r)}
		}
	}()
	// Fast mode runs unverified here: the generator's programs are ones
	// Linux's verifier accepts, and a fault is caught above.
	p, err := interp.Load(fuzzgen.ForInterp(insns), interp.Options{Mode: mode, Budgeted: true, UnsafeFastUnverified: mode == interp.Fast})
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
	args := interp.Args{
		Regs:    [5]uint64{mem.Addr(e.ctx)},
		Regions: []interp.Region{{Data: e.ctx}, {Data: pkt, Writable: true}},
		Budget:  e.Budget,
	}
	r0, err := e.m.Run(p, &args)
	return Outcome{Ret: r0, Packet: bytes.Clone(pkt), Err: err}
}

func putU64(b []byte, v uint64) {
	_ = b[7]
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}
