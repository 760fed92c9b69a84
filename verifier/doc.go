// Package verifier is waggle's eBPF verifier: abstract interpretation in
// the Linux verifier's model, which proves, before a program runs, that
// every path ends, stays inside the memory it may touch and calls helpers
// with the arguments they expect.
//
// Verify explores the program one path at a time from its entry, as
// kernel/bpf/verifier.c's do_check does. Every register has a type (not
// initialised, scalar, context, stack, map pointer, map value or NULL,
// packet, packet end, packet metadata, helper memory, socket, function)
// and, for scalars and pointer offsets, the value domain of package
// scalar: a tnum with signed and unsigned 64- and 32-bit bounds. Stack
// slots hold spilled registers or byte kinds (data, zero, uninitialised).
// Conditional jumps narrow both sides; NULL checks settle every copy of a
// pointer; comparisons of packet pointers with the packet's end prove a
// readable range for every pointer of the same origin. Helper calls are
// checked against the prototypes of package helpers; references (ring
// buffer records, sockets, ring buffer dynptrs) must be released on every
// path. Dynptrs (struct bpf_dynptr) live in two stack slots of their own
// kind, created and used only through helpers (dynptr.go); the callback
// of bpf_user_ringbuf_drain gets a const one.
//
// States are pruned as the kernel prunes them: at jump targets and after
// calls a checkpoint is stored, and a path that reaches a checkpoint whose
// exploration finished and that covers it (every range of the old state
// holds the new one's, types and ids agree) ends there. Registers dead at
// a checkpoint (by a liveness analysis of the code) are not compared.
// Exploration stops at 1,000,000 processed instructions, as the kernel's.
//
// Global functions (BTF linkage global in the program's func info) are
// verified as Linux verifies them: once, on their own, for any arguments
// their BTF prototype allows (the context, scalars, sized memory that may
// be NULL unless __arg_nonnull, an initialised dynptr they may only read
// through), not for what a caller passes. A call
// checks the caller's registers against the prototype and returns an
// unknown scalar; the memory it passes may have been written. A global
// function only ever called from dead code is not verified. Without BTF,
// every function is static.
//
// A rejection is an *Error: the instruction, its source line, the branch
// decisions that led there, the registers, and a hint that says what to
// change. Options.Log receives a kernel-style log of every processed
// instruction.
//
// Options.Target says what the program is verified for, which decides the
// helpers it may call: waggle's runtime (progtype.TargetUser, the
// default), upstream Linux 6.18 (progtype.TargetLinux: every helper the
// program type's get_func_proto offers, from its prototype) or the
// running kernel (progtype.TargetHost: probed). A call to a helper the
// target lacks is refused with Linux's "program of this type cannot use
// helper" and why.
//
// # What is missing
//
// This is the first part of the verifier (issue 7). Not done yet:
//   - precision tracking: every scalar is compared exactly when states are
//     pruned, where the kernel ignores scalars no safety check depended on;
//     loops whose counters change each round (may_goto, callbacks writing
//     to the caller's stack) therefore do not converge and hit the budget;
//   - global functions' __arg_trusted arguments;
//   - bpf_spin_lock, timers, kptrs, kfuncs (so the kfunc dynptrs: skb and
//     xdp dynptrs, slices, clones) and BTF-typed kernel pointers; socket
//     field access is checked by size only;
//   - the unprivileged rules beyond pointer leaks, pointer comparisons,
//     uninitialised stack and loops (Spectre sanitation).
package verifier
