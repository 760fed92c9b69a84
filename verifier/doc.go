// Package verifier is waggle's eBPF verifier: abstract interpretation in
// the Linux verifier's model, which proves, before a program runs, that
// every path ends, stays inside the memory it may touch and calls helpers
// with the arguments they expect.
//
// Verify explores the program one path at a time from its entry, as
// kernel/bpf/verifier.c's do_check does. Every register has a type (not
// initialised, scalar, context, stack, map pointer, map value or NULL,
// packet, packet end, packet metadata, helper memory, socket, function,
// kernel object) and, for scalars and pointer offsets, the value domain of package
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
// Callbacks a helper calls at once (bpf_loop, bpf_for_each_map_elem) are
// explored as calls from the helper, again until their states converge.
// A bpf_timer's callback (bpf_timer_set_callback) runs later, on its own:
// it is explored as Linux explores an async callback, from a state of its
// own with one frame, an empty stack, no references and no lock, r1-r3
// the timer's map, a key and the value holding the timer; it must return
// 0, and the program goes on after the helper at once. The bpf_timer_*
// helpers take the struct bpf_timer of a map value (Map.Timer, from BTF)
// at its constant offset, bpf_timer_init the timer's own map (an inner
// map of a map-in-map is told apart by its lookup); no load, store or
// helper memory argument may touch the timer's or the spin lock's bytes;
// tracing programs may not refer to a map holding a timer or a spin lock,
// socket filters to one holding a spin lock. Target user refuses the
// bpf_timer_* helpers: waggle's runtime has no timers.
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
// Kernel objects (PTR_TO_BTF_ID) are typed by the kernel's BTF
// (Options.KernelTypes, /sys/kernel/btf/vmlinux by default, read once per
// KernelTypes): bpf_get_current_task_btf's trusted task, the kernel
// sockets of bpf_skc_to_*_sock, bpf_task_pt_regs's pt_regs, bpf_find_vma's
// vm_area_struct, __arg_trusted arguments of global functions. A load
// through one walks the struct to the member at its constant offset
// (btf_struct_access): a scalar, a pointer to a struct (trusted, RCU or
// untrusted as the kernel's BTF_TYPE_SAFE_* lists decide), or read-only
// untrusted memory for other pointers; writes, variable offsets and reads
// beyond the struct are refused with Linux's messages. Helpers take them
// by struct (btf_struct_ids_match), and a trusted one as memory a helper
// reads; a map pointer reads the kernel's struct of the map (struct
// bpf_array ...). The kernel turns these loads into probing loads that
// cannot fault; waggle's runtime has neither the objects nor the helpers,
// so such programs are verified for progtype.TargetLinux and TargetHost
// only (a map pointer load is refused for TargetUser).
//
// Scalars a safety check depended on are marked precise, back along the
// path that computed them (mark_chain_precision); a checkpoint compares
// only its precise scalars by range, the others by type. Copies of one
// unknown scalar, in registers or spilled to the stack, are linked: a
// bounds check on one bounds the others, shifted by the constant where
// one is the other plus a constant (BPF_ADD_CONST, negative and 32-bit
// constants included, as in Linux 6.18's stable series).
//
// Unprivileged programs (Options.Unprivileged: no CAP_BPF) follow Linux's
// extra rules: no pointer leaks, comparisons or arithmetic beyond what
// Spectre sanitation can mask (one mask per instruction over all paths),
// no uninitialised stack, no loops, no bpf-to-bpf calls, at most 4,096
// instructions; the paths a mispredicted branch or mask could take are
// explored too, and, as Linux 6.17 on does, a refusal on such a path
// places a speculation barrier there instead of refusing the program.
//
// bpf_fastcall spill and fill pairs around bpf_get_smp_processor_id leave
// a function's stack depth when nothing else touches their slots, as
// Linux counts it (Result.FastcallNops lists them).
//
// # What is missing
//
// Refused with an error that says so:
//   - kfuncs (calls of kernel functions by BTF id, and so the kfunc
//     dynptrs: skb and xdp dynptrs, slices, clones), kptrs, arenas,
//     workqueues and the other BTF-defined map fields but bpf_spin_lock
//     and bpf_timer;
//   - kernel variables (ldimm64 BTF ids, bpf_per_cpu_ptr,
//     bpf_this_cpu_ptr) and __user and __percpu kernel pointers;
//   - bpf_rcu_read_lock (a sleepable program's kernel object fields are
//     all untrusted).
//
// Verified differently from Linux, with the same verdicts on every
// program measured (see the README): some programs take more processed
// instructions than in Linux (checkpoints compare spilled scalars' links
// more strictly), and the log differs where exploration does.
package verifier
