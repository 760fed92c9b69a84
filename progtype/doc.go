// Package progtype owns program types in user space: the context each type
// sees, the kernel-style rewrite of context accesses, the run-time state a
// run of each type works on, and the helpers specific to a type.
//
// # Types and contexts
//
// A Kind describes one program type (Lookup): XDP (struct xdp_md), socket
// filters, tc classifiers and actions and cgroup_skb (struct __sk_buff),
// kprobes and uprobes (struct pt_regs of x86-64), tracepoints (the raw
// record), raw tracepoints (u64 args[]), perf events (struct
// bpf_perf_event_data), and user hooks: program types a Go program defines
// for its own hook points, with a context it declares as a Go struct
// (NewHook) or a list of fields (NewHookFields).
//
// # The rewrite
//
// Programs address their context in its UAPI layout; waggle lays the
// context out as a flat shadow struct (Layout) and rewrites every context
// access to it, one instruction for one, as the kernel's
// convert_ctx_accesses does (kernel/bpf/verifier.c with each type's
// convert_ctx_access in net/core/filter.c): the 4-byte load of
// xdp_md.data becomes an 8-byte load of a pointer. Slot indices, jumps and
// error messages stay valid. Accesses the kernel refuses are errors naming
// the instruction, the field and the rule:
//
//	instruction 7: write to __sk_buff.len: the field is read-only
//
// Which instructions access the context is found by ContextAccesses, a
// small data-flow analysis that stands in for the verifier until it exists.
//
// # Runs
//
// A Run holds the state of one run: the shadow struct, the packet buffer
// laid out as BPF_PROG_TEST_RUN lays it out (XDP_PACKET_HEADROOM of
// headroom, the skb_shared_info tailroom), what helpers change. Engines run
// the rewritten program with r1 = Run.Ctx(), the memory of Run.Regions(),
// and helpers.State.Hook = the Run; Run.Finish returns what
// BPF_PROG_TEST_RUN returns (retval, data_out, ctx_out), so the root
// package's Program.Run mirrors cilium/ebpf's.
//
// # Helpers
//
// Kind.Helpers returns the type-specific helpers (bpf_xdp_adjust_head,
// bpf_skb_store_bytes, bpf_l4_csum_replace, bpf_skb_vlan_push,
// bpf_get_current_pid_tgid, bpf_probe_read_kernel, ...) as helpers.Defs with
// Linux ids and prototypes; Kind.Allowed is the type's get_func_proto. A
// helper waggle cannot honour in user space returns the errno Linux returns
// when the feature is absent.
//
// Everything is checked against the kernel: the tests load the same
// programs into Linux and run them with BPF_PROG_TEST_RUN when they can.
package progtype

//go:generate make -C testdata
