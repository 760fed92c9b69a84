// Package scalar owns the verifier's abstract domain for scalar registers:
// a tnum (which bits are known, and their values) together with signed and
// unsigned bounds on the full 64 bits and on the low 32 bits, as the Linux
// verifier tracks them in struct bpf_reg_state.
//
// A Value describes a set of 64-bit numbers: every number that satisfies all
// nine constraints at once. The transfer functions keep that set a superset
// of what the concrete instruction can produce (soundness) and prove the
// bounds the kernel proves, no more and no less (precision), so that a
// program the kernel accepts because of a bound is accepted here too, and
// waggle's log reads like the kernel's:
//
//   - ALU applies one BPF_ALU or BPF_ALU64 instruction to scalar operands
//     (check_alu_op, adjust_scalar_min_max_vals), including the cases where
//     the kernel gives up and returns an unknown scalar; Fork is the
//     kernel's split of the path before an and/or on a register that is -1
//     or 0 (maybe_fork_scalars).
//   - BranchTaken says whether a conditional jump is always, never or maybe
//     taken (is_scalar_branch_taken), and Refine (RefineSelf for a register
//     compared with itself) narrows both operands on each side of a jump
//     that may go either way (reg_set_min_max, regs_refine_cond_op).
//   - Sync makes the nine facts agree (reg_bounds_sync).
//   - String prints a Value as the kernel's verifier log prints a scalar
//     register (print_reg_state, print_scalar_ranges).
//
// # Which kernel
//
// The code follows Linux 6.12's kernel/bpf/verifier.c and tnum.c (Debian's
// linux-source-6.12) where 6.18, the kernel of the verifier's "linux"
// target, behaves the same, and 6.18 where its log shows it differs: neg
// and byte swaps are tracked, mul keeps signed bounds, add and sub keep an
// unsigned range whose both ends wrap, tnum_mul takes unions, movsx keeps a
// 32-bit range that already fits, a tnum and a range that share one number
// make a constant. The tests compare every scalar the 6.18 verifier prints
// for thousands of generated programs with what this package computes.
//
// The package is pure arithmetic: no registers, stack, pointers, ids
// (linked registers) or paths. The verifier builds on it.
package scalar
