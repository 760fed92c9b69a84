// Package progtype owns program types in user space: the context each type
// sees, the kernel-style rewrite of context accesses, the run-time state a
// run of each type works on, and the helpers specific to a type.
//
// # Types and contexts
//
// A Kind describes one program type (Lookup): XDP (struct xdp_md), socket
// filters, tc classifiers and actions, cgroup_skb and the lwt types
// (lwt_in, lwt_out, lwt_xmit, lwt_seg6local) (struct __sk_buff), flow
// dissectors (__sk_buff with flow_keys, struct bpf_flow_keys), cgroup_sock
// (struct bpf_sock), cgroup_sock_addr (struct bpf_sock_addr), sock_ops
// (struct bpf_sock_ops), sk_lookup (struct bpf_sk_lookup), kprobes and
// uprobes (struct pt_regs of x86-64), tracepoints (the raw record), raw
// tracepoints (u64 args[]), perf events (struct bpf_perf_event_data), and
// user hooks: program types a Go program defines for its own hook points,
// with a context it declares as a Go struct (NewHook) or a list of fields
// (NewHookFields).
//
// # What a run takes
//
// Each type's run starts from an Input as BPF_PROG_TEST_RUN's for that
// type, where Linux can test-run it:
//
//   - XDP, the socket buffer types and lwt: Data is the frame from its
//     Ethernet header, Context an optional xdp_md or __sk_buff; the lwt
//     types see the packet from its network header, as cgroup_skb.
//   - flow_dissector: Data is the frame; Context an optional
//     bpf_flow_keys holding only flags; Output.Data is the flow keys.
//   - sk_lookup: Context is the bpf_sk_lookup of the lookup.
//   - raw tracepoints, kprobes, tracepoints, perf events: Context is the
//     arguments, registers or record; Task the current task, Memory the
//     memory their pointers reach (writable regions are what
//     bpf_probe_write_user may write), PerfValue the counter
//     bpf_perf_prog_read_value reads.
//
// and, for the types Linux cannot test-run, from the context the hook
// would give:
//
//   - cgroup_sock: Context is the bpf_sock of the socket being created,
//     bound or released (without one, Socket laid out as a bpf_sock);
//     Output.Context returns the bound_dev_if, mark and priority the
//     program set.
//   - cgroup_sock_addr: Context is the bpf_sock_addr of the connect, bind,
//     sendmsg, recvmsg, getpeername or getsockname call; Output.Context
//     returns the address the program rewrote.
//   - sock_ops: Context is the bpf_sock_ops of the callback (op, args, the
//     addresses and ports, is_fullsock and the TCP state), Data the
//     segment skb_data points to; Output.Context returns reply and the TCP
//     state options changed.
//
// # Sockets
//
// One socket model serves every type: a socket is a netenv.Socket (its
// protocol, addresses, state, device, mark, priority, owner, cookie and
// options), and every socket a program can point to is laid out, for the
// run, as a struct bpf_sock followed by its struct bpf_tcp_sock in one
// arena: the sockets of the host (Input.Net), which the lookup helpers
// return, and the run's own socket, Input.Socket or the one the kernel
// would make. The own socket is the packet's for the socket buffer types
// (__sk_buff.sk and __sk_buff.family, local_ip4, ... read it; by default
// the test run's socket: no protocol, the packet's family and addresses,
// state TCP_CLOSE), the hook's for cgroup_sock and cgroup_sock_addr
// (bpf_sock_addr.sk), the callback's for sock_ops (bpf_sock_ops.sk, whose
// options bpf_setsockopt changes in Input.Socket). bpf_sk_release,
// bpf_sk_fullsock, bpf_tcp_sock, bpf_get_listener_sock and bpf_sk_assign
// take any of them; bpf_get_socket_cookie and bpf_get_socket_uid read the
// own socket. The sockets a Task creates belong to its cgroup.
//
// # Cgroups
//
// Task.Cgroup places the current task, and the sockets it creates, in a
// cgroup (a Cgroup chain of ids); cgroup arrays hold *Cgroup values for
// bpf_skb_under_cgroup and bpf_current_task_under_cgroup. A program using
// a cgroup storage map gets the storage of its attachment: the runtime
// binds one per (RootCgroupID, Kind.AttachPoint()) when it loads the
// program (maps.LocalStorage), and it lives as long as the map, as an
// attached program's storage lives as long as its attachment.
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
// Which instructions access the context is the verifier's finding
// (verifier.Result.CtxAccesses), which Kind.Convert rewrites. For a
// program that runs unverified, Kind.Rewrite leaves the choice to run time:
// every load and store whose conversion changes it runs converted when its
// base holds the context (Program.Variants), and one the rules refuse
// faults there (Program.Faults).
//
// # Runs
//
// A Run holds the state of one run: the shadow struct, the packet buffer
// laid out as BPF_PROG_TEST_RUN lays it out (XDP_PACKET_HEADROOM of
// headroom, the skb_shared_info tailroom), what helpers change. Engines run
// the rewritten program with r1 = Run.Ctx(), the memory of Run.Regions(),
// and helpers.State.Hook = the Run; Run.Finish returns what
// BPF_PROG_TEST_RUN returns (retval, data_out, ctx_out), so the root
// package's Program.Run mirrors cilium/ebpf's. A caller running a program
// at a high rate resets one Run for each input (Program.ResetRun, or
// Program.ResetRunData for a new packet and context) and takes only the
// parts of the result it wants, without copies (Run.FinishInto): none of
// these allocate once the Run has been used.
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
// Kind.TargetHelpers gives the helpers a program may call for a Target,
// with their prototypes, for the verifier: TargetUser those waggle
// implements, TargetLinux every helper Kind.Allowed accepts (waggle has
// the prototypes of those it does not implement), TargetHost those the
// running kernel offers the type (probed with cilium/ebpf's features
// package); Kind.HelperUnavailable says why one is missing.
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
//   - Loads through socket pointers (__sk_buff.sk, bpf_sock_addr.sk,
//     bpf_sock_ops.sk, what the lookups and casts return) read a struct
//     bpf_sock image as it is: a 4-byte load of rx_queue_mapping gives
//     0xffffffff for no queue where the kernel's rewrite gives a 64-bit -1
//     (the cgroup_sock context itself gives -1). The struct bpf_tcp_sock
//     of a host's socket, or of an own socket outside sock_ops, is a new
//     socket's (tcp_init_sock): the model has no TCP state. Reading
//     src_ip6 and dst_ip6 of an IPv4 time-wait socket gives 0 where Linux
//     reads whatever lies at those offsets of its inet_timewait_sock.
//   - bpf_get_socket_cookie of a test run's packet is TestRunSocketCookie;
//     Linux draws a fresh cookie for every test run's socket.
//   - A cgroup storage lives as long as its map; the kernel's test run
//     gives each run (with its repeats) a new, zeroed one.
//   - sock_ops: a write to sk_txhash without a full socket is dropped
//     from ctx_out, as the kernel drops it, but a later read in the same
//     run sees it. Socket options follow Linux's code with its default
//     sysctls (net.core.wmem_max and rmem_max 212992, tcp_rmem[2]
//     6291456, HZ 250); TCP_BPF_IW takes syn_data as 0; SO_RCVLOWAT does
//     not grow the receive buffer; no SYN is ever saved; TCP_CONGESTION
//     chooses among the host's congestion controls
//     (netenv.Config.CongestionControls).
//   - sk_lookup programs have no sockets to select (there are no
//     sockmaps): bpf_sk_assign takes only NULL.
//   - A flow dissector's bpf_skb_load_bytes fails with -EFAULT, as in the
//     kernel's test run, which has no sk_buff behind the context.
//   - bpf_perf_event_read and bpf_perf_event_read_value read the counters
//     a Go program installs in a perf event array
//     (maps.PerfCounters.SetCounter); a slot with an output ring reads 0.
//   - bpf_get_local_storage, bpf_skb_under_cgroup and the cgroup id
//     helpers see the cgroups the run is given, not the process's.
//   - Lookups in another namespace (a socket lookup's netns id) find
//     nothing: a run sees one host.
//   - bpf_clone_redirect reports the copy in Output.Clones instead of
//     sending it; bpf_sk_assign works only with Input.Ingress (a test run
//     runs at neither ingress nor egress, so Linux answers -EOPNOTSUPP).
//   - bpf_get_hash_recalc hashes the flow keys Linux's dissector takes
//     with a fixed function; Linux keys its hash at random at boot, so no
//     value can match it, but packets hash alike exactly when they do in
//     Linux.
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
//   - Kind.Allowed is Linux 6.18's answer in a distribution's build: it
//     allows bpf_override_return to kprobes (CONFIG_BPF_KPROBE_OVERRIDE),
//     the seg6 helpers to lwt_seg6local (CONFIG_IPV6_SEG6_BPF) and
//     bpf_probe_write_user to the tracing types, which a kernel built
//     without them, or locked down, refuses; and the helpers older kernels
//     did not give a type yet (TestKernel_allowedHelpers lists them all).
//   - Kind.Allowed does not look at a program's license: the root
//     package's preparation refuses a GPL-only helper (Proto.GPLOnly, as
//     the kernel's prototypes say) to a program whose license is not
//     GPL-compatible, as Linux does; a Kind used on its own does not.
package progtype

//go:generate make -C testdata
