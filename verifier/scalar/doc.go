// Package scalar owns the verifier's abstract domain for scalar registers:
// a tnum (which bits are known, and their values) together with signed and
// unsigned bounds on the full 64 bits and on the low 32 bits, as the Linux
// verifier tracks them in struct bpf_reg_state (kernel/bpf/verifier.c and
// kernel/bpf/tnum.c of Linux 6.12).
//
// A Value describes a set of 64-bit numbers: every number that satisfies all
// nine constraints at once. The transfer functions keep that set a superset
// of what the concrete instruction can produce (soundness) and, wherever
// the kernel can prove a bound, prove the same bound (precision), so that a
// program the kernel accepts because of a bound is accepted here too:
//
//   - ALU applies one BPF_ALU or BPF_ALU64 instruction to scalar operands,
//     as adjust_scalar_min_max_vals and check_alu_op do, including the cases
//     where the kernel gives up and returns an unknown scalar (div, mod, neg,
//     byte swaps, shifts by a non-constant or too wide amount).
//   - BranchTaken says whether a conditional jump is always, never or maybe
//     taken (is_scalar_branch_taken), and Refine narrows both operands on
//     each side of a jump that may go either way (reg_set_min_max).
//   - String prints a Value the way the kernel's verifier log prints a
//     scalar register (print_reg_state and print_scalar_ranges), so that
//     waggle's log can be diffed against the kernel's.
//
// The package is pure arithmetic: no registers, stack, pointers or paths.
// The verifier builds on it.
package scalar
