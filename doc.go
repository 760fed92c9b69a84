// Package waggle runs eBPF programs in user space: it loads clang-built
// objects (or a *ebpf.CollectionSpec from cilium/ebpf, as bpf2go makes)
// into a Collection of Programs and Maps with the same shape as
// cilium/ebpf's, so code that tests programs with BPF_PROG_TEST_RUN runs
// them here unchanged, without root and without Linux.
//
//	coll, err := waggle.LoadCollection("xdp.o", nil)
//	...
//	ret, err := coll.Programs["xdp_prog"].Run(&waggle.RunOptions{Data: packet, DataOut: out})
//
// Programs keep Linux's semantics: XDP and TC return codes, adjust_head and
// adjust_tail reflected in DataOut, maps with the kernel's update flags and
// errno results, per-CPU values per worker, tail calls through prog arrays.
// A program runs only once waggle's verifier has accepted it, as Linux
// loads only what its verifier accepts.
//
// # Engines
//
// CollectionOptions.Engine chooses what runs the programs; the default
// (EngineAuto) picks one when the collection loads, and Collection.Engine
// says which:
//
//   - EngineJIT, x86-64 machine code, by default on linux/amd64: the
//     fastest, and like Linux's JIT it checks no memory access at run
//     time. The verifier's proof that every access stays in bounds is
//     what keeps a program inside its memory.
//   - EngineInterp, the interpreter in checked mode, by default elsewhere
//     and for CollectionOptions.Unverified programs: every access is
//     checked against the memory the run owns, and a bad one ends the run
//     with a *Fault wrapping ErrMemory. Name it to keep those checks for
//     verified programs too: a second line of defence against a verifier
//     bug, at about 18 times the JIT's time (the geomean of the README's
//     waggle bench table).
//   - EngineInterpFast, the interpreter without the checks.
//
// CollectionOptions.Unverified runs programs without the verifier, on the
// checked interpreter only (the unchecked engines refuse them,
// ErrUnverifiedFast). Every engine gives the same results.
//
// # Program by program
//
// Linux loads each program of an object on its own, and so does waggle:
// LoadCollection fails only for what every program shares (the object, its
// maps). Each Program is prepared (verified, its context accesses
// rewritten for its type, linked to the maps, its helpers resolved) when it
// is first used, or by Program.Prepare; one that cannot be prepared returns a
// *PrepareError naming it from Prepare, Run, Test, Benchmark and Exec, and
// fails the runs whose tail calls reach it, not the other programs. Where a
// cilium/ebpf user would expect NewCollection to fail for a bad program,
// call Prepare on the programs the test needs:
//
//	coll, err := waggle.LoadCollection("obj.o", nil)
//	...
//	if err := coll.Programs["xdp_prog"].Prepare(); err != nil {
//		t.Fatal(err) // program xdp_prog (section xdp): ...
//	}
//
// A program whose section names no type that libbpf knows (iproute2's
// "1/0", Cilium's old "from-netdev", the functions of an object with only
// .text) takes the type of the typed programs whose prog arrays hold it,
// then CollectionOptions.DefaultProgramType; ProgramTypes overrides any.
package waggle
