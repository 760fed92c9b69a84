package progtype

import "github.com/waggle-bpf/waggle/helpers"

// protoOnlyDefs are the prototypes of the helpers Linux offers the program
// types waggle runs that waggle does not implement in user space: the
// verifier checks calls to them for TargetLinux and TargetHost, and the
// runtime cannot run them. Written from the bpf_func_proto definitions
// of Linux 6.12 (kernel/bpf/helpers.c, kernel/bpf/*storage.c,
// kernel/bpf/ringbuf.c, kernel/bpf/stackmap.c, kernel/bpf/task_iter.c,
// kernel/trace/bpf_trace.c, net/core/filter.c, net/core/sock_map.c,
// net/core/bpf_sk_storage.c, net/ipv6/seg6_local.c). No change to these
// prototypes up to 6.18 is known here (6.16 moved the task, signal and
// copy_from_user helpers into bpf_base_func_proto with their prototypes;
// 6.13 gave tc and socket filters bpf_get_netns_cookie, which waggle
// implements); the 6.18 source was not at hand to check.
// TestProtosMatchLinux compares them with 6.12's field by field. Func is
// nil in every one.
var protoOnlyDefs = helpers.Defs{
	// Sockets in sock_ops programs.
	{ID: idSockMapUpdate, Name: "sock_map_update", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgPtrToMapKey, helpers.ArgAnything}}},
	{ID: idSockHashUpdate, Name: "sock_hash_update", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgPtrToMapKey, helpers.ArgAnything}}},
	{ID: idLoadHdrOpt, Name: "load_hdr_opt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToMem | helpers.ArgWrite, helpers.ArgConstSize, helpers.ArgAnything}}},
	{ID: idStoreHdrOpt, Name: "store_hdr_opt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize, helpers.ArgAnything}, ChangesPktData: true}},
	{ID: idReserveHdrOpt, Name: "reserve_hdr_opt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything}}},

	// cgroup_sock_addr programs (sock_addr_func_proto; bpf_bind only at
	// connect).
	{ID: idSetsockopt, Name: "setsockopt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}},
	{ID: idGetsockopt, Name: "getsockopt", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}},
	{ID: idBind, Name: "bind", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}},

	// Kprobes and perf events.
	{ID: idOverrideReturn, Name: "override_return", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything}}},
	{ID: idReadBranchRecords, Name: "read_branch_records", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToMem | helpers.ArgMaybeNull, helpers.ArgConstSizeOrZero, helpers.ArgAnything}}},
	{ID: idGetAttachCookie, Name: "get_attach_cookie", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx}}},

	// Socket buffers: xfrm, LWT and seg6.
	{ID: idSkbGetXfrmState, Name: "skb_get_xfrm_state", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize, helpers.ArgAnything}}},
	{ID: idLwtPushEncap, Name: "lwt_push_encap", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}, ChangesPktData: true}},
	{ID: idLwtSeg6StoreBytes, Name: "lwt_seg6_store_bytes", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}, ChangesPktData: true}},
	{ID: idLwtSeg6AdjustSRH, Name: "lwt_seg6_adjust_srh", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgAnything}, ChangesPktData: true}},
	{ID: idLwtSeg6Action, Name: "lwt_seg6_action", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgAnything, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}, ChangesPktData: true}},

	// SYN cookies with a socket (the socket-less ones are package
	// helpers' Syncookies).
	{ID: idTCPCheckSyncookie, Name: "tcp_check_syncookie", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}},
	{ID: idTCPGenSyncookie, Name: "tcp_gen_syncookie", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize}}},

	// Socket storage and cgroups of sockets.
	{ID: idSkStorageGet, Name: "sk_storage_get", Proto: helpers.Proto{Ret: helpers.RetPtrToMapValueOrNull, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDSockCommon, helpers.ArgPtrToMapValueOrNull, helpers.ArgAnything}}},
	{ID: idSkStorageDelete, Name: "sk_storage_delete", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDSockCommon}}},
	{ID: idSkCgroupID, Name: "sk_cgroup_id", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon}}},
	{ID: idSkAncestorCgroupID, Name: "sk_ancestor_cgroup_id", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon, helpers.ArgAnything}}},

	// Casts of sockets to BTF-typed kernel sockets.
	{ID: idSkcToTCP6Sock, Name: "skc_to_tcp6_sock", Proto: skcCast("tcp6_sock", true)},
	{ID: idSkcToTCPSock, Name: "skc_to_tcp_sock", Proto: skcCast("tcp_sock", true)},
	{ID: idSkcToTCPTimewaitSock, Name: "skc_to_tcp_timewait_sock", Proto: skcCast("tcp_timewait_sock", true)},
	{ID: idSkcToTCPRequestSock, Name: "skc_to_tcp_request_sock", Proto: skcCast("tcp_request_sock", true)},
	{ID: idSkcToUDP6Sock, Name: "skc_to_udp6_sock", Proto: skcCast("udp6_sock", true)},
	{ID: idSkcToUnixSock, Name: "skc_to_unix_sock", Proto: skcCast("unix_sock", false)}, // no is_ptr_cast_function
	{ID: idSkcToMPTCPSock, Name: "skc_to_mptcp_sock", Proto: helpers.Proto{Ret: helpers.RetPtrToBTFIDOrNull, Args: []helpers.ArgType{helpers.ArgPtrToSockCommon}, RetBTF: "mptcp_sock", Cast: true}},

	// Tasks, user memory, kernel variables.
	{ID: idGetTaskStack, Name: "get_task_stack", Proto: helpers.Proto{ArgBTF: taskArg(0), Args: []helpers.ArgType{helpers.ArgPtrToBTFID, helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero, helpers.ArgAnything}, RetBound: helpers.RetErrnoOrSize, RetSizeArg: 2}},
	{ID: idCopyFromUser, Name: "copy_from_user", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero, helpers.ArgAnything}}},
	{ID: idCopyFromUserTask, Name: "copy_from_user_task", Proto: helpers.Proto{ArgBTF: taskArg(3), GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero, helpers.ArgAnything, helpers.ArgPtrToBTFID, helpers.ArgAnything}}},
	{ID: idSnprintfBTF, Name: "snprintf_btf", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToMem, helpers.ArgConstSize, helpers.ArgPtrToMem | helpers.ArgReadOnly, helpers.ArgConstSize, helpers.ArgAnything}}},
	{ID: idPerCPUPtr, Name: "per_cpu_ptr", Proto: helpers.Proto{Ret: helpers.RetPtrToMemOrBTFID | helpers.RetMaybeNull | helpers.RetReadOnly, Args: []helpers.ArgType{helpers.ArgPtrToPercpuBTFID, helpers.ArgAnything}}},
	{ID: idThisCPUPtr, Name: "this_cpu_ptr", Proto: helpers.Proto{Ret: helpers.RetPtrToMemOrBTFID | helpers.RetReadOnly, Args: []helpers.ArgType{helpers.ArgPtrToPercpuBTFID}}},
	{ID: idTaskStorageGet, Name: "task_storage_get", Proto: helpers.Proto{ArgBTF: taskArg(1), Ret: helpers.RetPtrToMapValueOrNull, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDOrNull, helpers.ArgPtrToMapValueOrNull, helpers.ArgAnything}}},
	{ID: idTaskStorageDelete, Name: "task_storage_delete", Proto: helpers.Proto{ArgBTF: taskArg(1), Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDOrNull}}},
	{ID: idGetCurrentTaskBTF, Name: "get_current_task_btf", Proto: helpers.Proto{GPLOnly: true, Ret: helpers.RetPtrToBTFIDTrusted, RetBTF: "task_struct"}},
	{ID: idTaskPtRegs, Name: "task_pt_regs", Proto: helpers.Proto{ArgBTF: taskArg(0), RetBTF: "pt_regs", GPLOnly: true, Ret: helpers.RetPtrToBTFID, Args: []helpers.ArgType{helpers.ArgPtrToBTFID}}},
	{ID: idGetBranchSnapshot, Name: "get_branch_snapshot", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero}}},
	{ID: idFindVMA, Name: "find_vma", Proto: helpers.Proto{ArgBTF: taskArg(0), Args: []helpers.ArgType{helpers.ArgPtrToBTFID, helpers.ArgAnything, helpers.ArgPtrToFunc, helpers.ArgPtrToStackOrNull, helpers.ArgAnything}, Callback: callbackOf(idFindVMA)}},
	{ID: idCgrpStorageGet, Name: "cgrp_storage_get", Proto: helpers.Proto{ArgBTF: [5]string{1: "cgroup"}, Ret: helpers.RetPtrToMapValueOrNull, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDOrNull, helpers.ArgPtrToMapValueOrNull, helpers.ArgAnything}}},
	{ID: idCgrpStorageDelete, Name: "cgrp_storage_delete", Proto: helpers.Proto{ArgBTF: [5]string{1: "cgroup"}, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToBTFIDOrNull}}},

	// Timers and kptrs.
	{ID: idTimerInit, Name: "timer_init", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToTimer, helpers.ArgConstMapPtr, helpers.ArgAnything}}},
	{ID: idTimerSetCallback, Name: "timer_set_callback", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToTimer, helpers.ArgPtrToFunc}, Callback: callbackOf(idTimerSetCallback)}},
	{ID: idTimerStart, Name: "timer_start", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToTimer, helpers.ArgAnything, helpers.ArgAnything}}},
	{ID: idTimerCancel, Name: "timer_cancel", Proto: helpers.Proto{GPLOnly: true, Args: []helpers.ArgType{helpers.ArgPtrToTimer}}},
	{ID: idKptrXchg, Name: "kptr_xchg", Proto: helpers.Proto{Ret: helpers.RetPtrToBTFIDOrNull, Args: []helpers.ArgType{helpers.ArgKptrXchgDest, helpers.ArgPtrToBTFIDOrNull | helpers.ArgRelease}, Acquire: true}},
}

// skcCast is bpf_skc_to_*_sock: a socket of any kind to a BTF-typed
// kernel socket of one kind (ret_btf_id: the btf_sock_ids entry), or
// NULL. cast says whether is_ptr_cast_function counts it.
func skcCast(ret string, cast bool) helpers.Proto {
	return helpers.Proto{Ret: helpers.RetPtrToBTFIDOrNull, Args: []helpers.ArgType{helpers.ArgPtrToBTFIDSockCommon}, RetBTF: ret, Cast: cast}
}

// taskArg is the ArgBTF of a helper whose argument i (0-based) is a
// task (btf_tracing_ids[BTF_TRACING_TYPE_TASK]).
func taskArg(i int) [5]string {
	var a [5]string
	a[i] = "task_struct"
	return a
}

// protoSkStorageGetCgSock is bpf_sk_storage_get in cgroup_sock programs
// (bpf_sk_storage_get_cg_sock_proto): the socket is the context.
var protoSkStorageGetCgSock = helpers.Proto{Ret: helpers.RetPtrToMapValueOrNull, Args: []helpers.ArgType{helpers.ArgConstMapPtr, helpers.ArgPtrToCtx, helpers.ArgPtrToMapValueOrNull, helpers.ArgAnything}}

func callbackOf(id int32) *helpers.Callback {
	c, ok := helpers.CallbackOf(id)
	if !ok {
		return nil
	}
	return &c
}
