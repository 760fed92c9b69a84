// Package difftest owns the differential tests between waggle's engines and
// the Linux kernel: it runs the same program on the same input through
// BPF_PROG_TEST_RUN and through the interpreter (checked and fast mode) and
// requires the same return value and output packet.
//
// Programs come from internal/fuzzgen. On a difference the program is
// minimised (greedy deletion and simplification of instructions, then of the
// input, while the difference persists) and printed in the conformance
// suite's .data format with its disassembly, ready to become a regression
// case in testdata.
//
// The kernel is not an infallible oracle: Linux 6.18 mis-verifies some
// programs with atomics on stack slots (see testdata/kernel-bugs). A
// difference is attributed to one of those known bugs only when a
// semantically neutral rewrite of one specific instruction makes the kernel
// agree with waggle, and waggle's own result does not change under the
// rewrite:
//
//   - cmpxchg32-zext-after-pruning: inserting "w0 = w0" after one 32-bit
//     cmpxchg (the zero-extension the verifier failed to insert).
//   - atomic-fetch-precision: replacing one fetching stack atomic (fetch
//     add/or/and/xor, xchg, cmpxchg; 32 or 64 bits) by the equivalent plain
//     load, operation and store, so the verifier's precision tracking of the
//     fetched register is no longer involved.
//
// Any other difference fails the test.
package difftest
