// Package verifuzz measures a verifier with random programs: it runs the
// programs of fuzzgen.GeneratePtr (packet, map value, stack and context
// pointers with right and near-miss bounds checks, helper arguments,
// bpf-to-bpf calls, loops) through Linux's verifier, through the verifier
// under test, and through waggle's checked interpreter, and reports:
//
//   - the kernel's verdicts: the acceptance rate and the distribution of
//     its error messages;
//   - the verifier's disagreements with the kernel, "accepts what Linux
//     rejects" (a bug unless it is a documented kernel difference) apart
//     from "rejects what Linux accepts";
//   - escapes: programs the verifier accepted that made an out-of-bounds
//     access in the checked interpreter, on any of their inputs;
//   - differences between BPF_PROG_TEST_RUN and the checked interpreter
//     (return value, packet and map contents) on programs the kernel
//     accepted, which are bugs in waggle's runtime or in the generator.
//
// Verdicts is the entry point; Waggle adapts waggle's verifier to it.
//
// EngineRunner.Compare is the other use of the programs: it keeps those
// waggle's verifier accepts and runs them, on the same inputs and map
// contents, on the checked and the fast interpreter, the JIT and, as
// root, the kernel, and compares the return values, failures, packets
// and maps (FuzzEngines, TestEnginesGenerated; with
// fuzzgen.PtrConfig.Helpers, for calls of more helpers, and
// fuzzgen.PtrConfig.MoreMaps, for per-CPU, LPM trie and LRU maps).
// Programs use a fixed set of maps (fuzzgen.PtrMaps) that each kernel
// worker creates once and resets before every run; waggle runs each
// program in a collection of its own, with the maps it refers to,
// resetting them between inputs. Only the maps a program refers to are
// reset and compared: a run cannot change the others. The kernel's test
// run uses the per-CPU values of the CPU it runs on: the worker pins the
// run to a CPU (taking turns over the CPUs) and compares that CPU's
// values with waggle's CPU 0. Measured on the 2-core test machine (100,000 programs, two
// workers): 1,220 programs/s in all, the kernel verifying about 1,060
// programs/s per worker and the checked interpreter making about 4,500
// runs/s per worker (a run includes the map reset and dump), so a
// million programs take a quarter of an hour plus the verifier under
// test's own time.
//
// The tests:
//
//	go test ./internal/verifuzz -run TestKernelVerdicts -v     # generator and interpreter vs the kernel
//	WAGGLE_VFUZZ_WAGGLE=1 WAGGLE_VFUZZ_N=1000000 go test ./internal/verifuzz \
//	    -run TestWaggleVerifier -v -timeout 0                  # waggle's verifier: agreement, escapes
//	go test ./internal/verifuzz -run XXX -fuzz FuzzKernelVerdicts
//	WAGGLE_ENGINES_N=100000 go test ./internal/verifuzz \
//	    -run TestEnginesGenerated -v -timeout 0                # every engine, and the kernel as root
//	go test ./internal/verifuzz -run '^$' -fuzz FuzzEngines -fuzztime 10m
package verifuzz
