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
// Verdicts is the entry point. Programs use a fixed set of maps
// (fuzzgen.PtrMaps) that each worker creates once, in the kernel and in
// waggle, and resets before every run, so that a million programs take
// minutes rather than hours.
package verifuzz
