// Package progtype owns program types in user space: the context each type
// sees, the kernel-style rewrite of context accesses, the run-time state a
// run of each type works on, and the helpers specific to a type.
//
// # Types and contexts
//
// A Kind describes one program type (Lookup): XDP (struct xdp_md), socket
// filters, tc classifiers and actions and cgroup_skb (struct __sk_buff),
// cgroup socket address programs (struct bpf_sock_addr) and cgroup socket
// programs (struct bpf_sock),
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
// Where it cannot tell and the kernel, path by path, could, Kind.Rewrite
// settles the access with the type's rules or leaves the choice to run time
// (Program.Variants, which engines run when the base holds the context).
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
// # The host's network
//
// Input.Net is the host the network helpers consult (package netenv; the
// empty host when nil): bpf_fib_lookup, bpf_check_mtu, the socket lookups,
// bpf_redirect_peer's peer and bpf_clone_redirect's device. Input.Tunnel is
// the tunnel metadata a packet arrived with. Output reports what the
// program asked of the network: the redirect target (Redirect, with Neigh
// and Nexthop for bpf_redirect_neigh, Peer for bpf_redirect_peer), the
// tunnel metadata it set (Tunnel), the socket bpf_sk_assign chose
// (Assigned) and the copies bpf_clone_redirect sent (Clones).
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
//
// # Where waggle differs from Linux
//
// Measured against Linux 6.18 (the sources cited are 6.12's where they
// agree); each difference is deliberate or forced by user space:
//
//   - A BPF_STX of a value >= 0xffff to __sk_buff.queue_mapping is stored
//     truncated to 16 bits; the kernel skips such stores with a compare the
//     one-instruction rewrite cannot express. A BPF_ST of such a constant
//     is a no-op, as in the kernel.
//   - Reads before a tracepoint record (negative offsets), which
//     tp_prog_is_valid_access lets through by comparing a signed offset
//     as unsigned, are refused.
//   - __sk_buff.sk is refused: the packet's own socket is not laid out.
//   - Socket pointers from the lookup helpers point to struct bpf_sock
//     values waggle lays out for the run's host (netenv.Host); reading
//     src_ip6 and dst_ip6 of an IPv4 time-wait socket gives 0 where Linux
//     reads whatever lies at those offsets of its inet_timewait_sock.
//   - bpf_get_socket_cookie of a test run's packet is TestRunSocketCookie;
//     Linux draws a fresh cookie for every test run's socket.
//   - Lookups in another namespace (a socket lookup's netns id) find
//     nothing: a run sees one host.
//   - bpf_clone_redirect reports the copy in Output.Clones instead of
//     sending it; bpf_sk_assign works only with Input.Ingress (a test run
//     runs at neither ingress nor egress, so Linux answers -EOPNOTSUPP).
//   - bpf_get_hash_recalc hashes the flow with a fixed function; Linux keys
//     its hash at random at boot, so no value can match it.
//   - bpf_probe_read_* read only memory the run owns (the context, the
//     packet, Input.Memory, Task.Struct); the program's own stack is not
//     among it.
//   - Multi-buffer XDP (data_in beyond one page's linear part) is refused
//     with ErrUnsupported.
//   - Interface indexes in ctx_in are not checked against the host's
//     devices; a socket buffer holds at most 20 KiB, beyond which helpers
//     that grow it fail with -ENOMEM where the kernel would reallocate.
//   - bpf_get_stack and bpf_get_stackid fail with -EFAULT, as Linux does
//     when it cannot walk a stack; bpf_send_signal hands the signal to the
//     hook (Task.Signals) instead of delivering it.
package progtype

//go:generate make -C testdata
