// Package interp owns the eBPF interpreter: it executes every RFC 9669
// instruction with Linux's semantics and is the reference engine the JIT and
// the kernel are compared against. Engine{Mode} is the interpreter as an
// engine of the seam (internal/engine), which is how the runtime, the CLI
// and the test harnesses use it; Region, Args, Fault and the run errors
// are the seam's types under this package's names.
//
// A Program is validated and predecoded once (Load) and may then run on many
// goroutines at once, each with its own Machine (registers, call frames and a
// stack of 8 frames × 512 bytes, as the kernel's MAX_CALL_FRAMES and
// MAX_BPF_STACK allow).
//
// Two modes:
//
//   - Checked validates every load, store and atomic against the memory the
//     run owns (its live stack frames, each alone, the Regions in Args at
//     their current bounds, the program's Memory, what helpers lend for
//     the size they lend it) and returns a *Fault naming the instruction
//     and address instead of touching anything else. It never crashes the
//     process, whatever the bytecode, so it is the only mode for
//     unverified programs, and it is the oracle for verifier soundness
//     tests: each region is exactly what Linux's verifier lets a program
//     reach (a packet from data to data_end, a frame the 512 bytes below
//     its r10, a ring buffer record its reserved size), so a program the
//     kernel accepts never faults and one reaching past those edges does.
//     Options.StrictStack adds the unprivileged rule that a frame reads
//     only stack bytes it wrote.
//   - Fast accesses memory at the addresses the program computes, without
//     checks. It is for programs the verifier has accepted
//     (Options.Verified); Load refuses it for others unless
//     Options.UnsafeFastUnverified is set.
//
// A Machine of the Engine also runs a batch of XDP packets that take turns
// in one frame (engine.PacketBatcher), paying Run's setup once per batch
// rather than once per packet.
//
// Programs loaded with Options.Budgeted can be bounded (Args.Budget, an
// upper bound of the instructions a run executes) and stopped (Args.Stop)
// whatever they do, nested callbacks included.
//
// may_goto (Linux's BPF_JCOND) counts down as the kernel's verifier rewrites
// it: each frame (the run, a bpf-to-bpf call, a callback, a tail call's
// program) has isa.MaxLoops fall-throughs, after which its may_goto
// instructions jump.
//
// Addresses are real host addresses in both modes, so pointer values,
// comparisons and helper arguments look exactly as they do in the JIT and
// the kernel.
package interp
