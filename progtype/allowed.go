package progtype

import (
	"sort"

	"github.com/waggle-bpf/waggle/helpers"
)

// Which helpers each program type may call: the types' get_func_proto in
// net/core/filter.c, kernel/trace/bpf_trace.c, kernel/bpf/cgroup.c and
// kernel/bpf/helpers.c (Linux 6.18), for a program loaded with CAP_BPF and
// CAP_PERFMON (as root), GPL-licensed, not sleepable, and in a kernel
// built with the options a distribution enables (CONFIG_INET,
// CONFIG_CGROUPS, CONFIG_CGROUP_NET_CLASSID, CONFIG_XFRM,
// CONFIG_NET_CLS_ACT, CONFIG_IPV6_SEG6_BPF, CONFIG_BPF_KPROBE_OVERRIDE,
// ...) and not locked down. TestKernel_allowedHelpers compares every type,
// attach type and helper id with the running kernel; the helpers whose
// answer depends on the kernel's build (its config, its lockdown mode,
// its version) are listed there with what decides them.
//
// "Allowed" is get_func_proto's answer: that the type has the helper. The
// verifier may still refuse a call for another reason that holds for every
// program of a type: bpf_copy_from_user and bpf_copy_from_user_task might
// sleep and non-sleepable programs may not call them (check_helper_call);
// bpf_get_func_ip, which bpf_tracing_func_proto offers tracepoints, raw
// tracepoints and perf events, is refused to them by check_get_func_ip, so
// waggle does not allow it there.

// idSet is a set of helper ids.
type idSet map[int32]bool

func setOf(ids ...int32) idSet {
	s := make(idSet, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

// baseIDs is bpf_base_func_proto (kernel/bpf/helpers.c) with CAP_BPF and
// CAP_PERFMON: what every program type has. Since Linux 6.16 ("bpf: Allow
// some trace helpers for all prog types") it holds the current-task,
// signal, perf counter and stack helpers that only tracing programs had,
// and those of cgroup_current_func_proto (kernel/bpf/cgroup.c), which
// only the cgroup hooks running in a process had.
var baseIDs = setOf(
	idMapLookupElem, idMapUpdateElem, idMapDeleteElem, idMapPushElem, idMapPopElem,
	idMapPeekElem, idMapLookupPercpuElem, idGetPrandomU32, idGetSmpProcessorID,
	idGetNumaNodeID, idTailCall, idKtimeGetNs, idKtimeGetBootNs, idKtimeGetTaiNs,
	idRingbufOutput, idRingbufReserve, idRingbufSubmit, idRingbufDiscard, idRingbufQuery,
	idStrncmp, idStrtol, idStrtoul, idGetCurrentPidTgid, idGetNsCurrentPidTgid,
	// CAP_BPF
	idSpinLock, idSpinUnlock, idJiffies64, idPerCPUPtr, idThisCPUPtr, idTimerInit,
	idTimerSetCallback, idTimerStart, idTimerCancel, idKptrXchg, idForEachMapElem, idLoop,
	idUserRingbufDrain, idRingbufReserveDynptr, idRingbufSubmitDynptr, idRingbufDiscardDynptr,
	idDynptrFromMem, idDynptrRead, idDynptrWrite, idDynptrData, idCgrpStorageGet,
	idCgrpStorageDelete, idGetCurrentCgroupID, idGetCurrentAncestorCgID,
	// CAP_PERFMON
	idTracePrintk, idGetCurrentTask, idGetCurrentTaskBTF, idProbeReadUser, idProbeReadKernel,
	idProbeReadUserStr, idProbeReadKernelStr, idSnprintfBTF, idSnprintf, idTaskPtRegs,
	idTraceVprintk,
	// Linux 6.16
	idGetCurrentUIDGid, idGetCurrentComm, idGetCgroupClassid, idCurrentTaskUnderCgroup,
	idTaskStorageGet, idTaskStorageDelete, idSendSignal, idSendSignalThread, idPerfEventRead,
	idPerfEventReadValue, idGetTaskStack, idGetBranchSnapshot, idFindVMA, idCopyFromUser,
	idCopyFromUserTask,
)

// skBaseIDs is bpf_sk_base_func_proto (net/core/filter.c): the base and the
// socket casts.
var skBaseIDs = union(baseIDs, setOf(idSkcToTCP6Sock, idSkcToTCPSock, idSkcToTCPTimewaitSock,
	idSkcToTCPRequestSock, idSkcToUDP6Sock, idSkcToUnixSock, idSkcToMPTCPSock, idKtimeGetCoarseNs))

// sockFilterIDs is sk_filter_func_proto (bpf_get_netns_cookie since
// Linux 6.13).
var sockFilterIDs = union(skBaseIDs, setOf(idSkbLoadBytes, idSkbLoadBytesRelative,
	idGetSocketCookie, idGetNetnsCookie, idGetSocketUID, idPerfEventOutput))

// cgSKBIDs is cg_skb_func_proto, which falls back to sk_filter_func_proto
// (cgSKBAllowed adds cgroup_common_func_proto).
var cgSKBIDs = union(sockFilterIDs, setOf(idSkFullsock, idSkStorageGet, idSkStorageDelete,
	idPerfEventOutput, idSkbCgroupID, idSkbAncestorCgroupID, idSkCgroupID, idSkAncestorCgroupID,
	idSkLookupTCP, idSkLookupUDP, idSkRelease, idSkcLookupTCP, idTCPSock, idGetListenerSock,
	idSkbECNSetCE))

// tcIDs is tc_cls_act_func_proto (bpf_get_netns_cookie since Linux 6.13).
var tcIDs = union(skBaseIDs, setOf(idSkbStoreBytes, idSkbLoadBytes, idSkbLoadBytesRelative,
	idSkbPullData, idCsumDiff, idCsumUpdate, idCsumLevel, idL3CsumReplace, idL4CsumReplace,
	idCloneRedirect, idGetCgroupClassid, idSkbVlanPush, idSkbVlanPop, idSkbChangeProto,
	idSkbChangeType, idSkbAdjustRoom, idSkbChangeTail, idSkbChangeHead, idSkbGetTunnelKey,
	idSkbSetTunnelKey, idSkbGetTunnelOpt, idSkbSetTunnelOpt, idRedirect, idRedirectNeigh,
	idRedirectPeer, idGetRouteRealm, idGetHashRecalc, idSetHashInvalid, idSetHash,
	idPerfEventOutput, idGetSmpProcessorID, idSkbUnderCgroup, idGetSocketCookie,
	idGetNetnsCookie, idGetSocketUID, idFibLookup, idCheckMTU, idSkFullsock, idSkStorageGet,
	idSkStorageDelete, idSkbGetXfrmState, idSkbCgroupClassid, idSkbCgroupID,
	idSkbAncestorCgroupID, idSkLookupTCP, idSkLookupUDP, idSkRelease, idTCPSock,
	idGetListenerSock, idSkcLookupTCP, idTCPCheckSyncookie, idSkbECNSetCE, idTCPGenSyncookie,
	idSkAssign, idSkbSetTstamp, idTCPRawGenSyncookieV4, idTCPRawGenSyncookieV6,
	idTCPRawCheckSyncookieV4, idTCPRawCheckSyncookieV6))

// xdpIDs is xdp_func_proto.
var xdpIDs = union(skBaseIDs, setOf(idPerfEventOutput, idGetSmpProcessorID, idCsumDiff,
	idXDPAdjustHead, idXDPAdjustMeta, idRedirect, idRedirectMap, idXDPAdjustTail,
	idXDPGetBuffLen, idXDPLoadBytes, idXDPStoreBytes, idFibLookup, idCheckMTU,
	idSkLookupUDP, idSkLookupTCP, idSkRelease, idSkcLookupTCP, idTCPCheckSyncookie,
	idTCPGenSyncookie, idTCPRawGenSyncookieV4, idTCPRawGenSyncookieV6,
	idTCPRawCheckSyncookieV4, idTCPRawCheckSyncookieV6))

// sockAddrIDs is sock_addr_func_proto (sockAddrAllowed adds
// cgroup_common_func_proto and bpf_bind, which only connect programs
// have). bpf_setsockopt and bpf_getsockopt are there for every attach
// type, the recvmsg, getpeername and getsockname hooks included.
var sockAddrIDs = union(skBaseIDs, setOf(idGetSocketCookie, idGetNetnsCookie,
	idPerfEventOutput, idSkLookupTCP, idSkLookupUDP, idSkRelease, idSkcLookupTCP, idSkStorageGet,
	idSkStorageDelete, idSetsockopt, idGetsockopt))

// tracingIDs is what bpf_tracing_func_proto (kernel/trace/bpf_trace.c) and
// the four tracing types' own get_func_proto give all of them beyond the
// base: bpf_probe_write_user (unless the kernel is locked down), the
// legacy bpf_probe_read and bpf_probe_read_str (x86-64 has
// CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE), bpf_perf_event_output,
// the stack helpers and bpf_get_attach_cookie.
var tracingIDs = union(baseIDs, setOf(idProbeWriteUser, idProbeRead, idProbeReadStr,
	idPerfEventOutput, idGetStackid, idGetStack, idGetAttachCookie))

// kprobeIDs is kprobe_prog_func_proto (CONFIG_BPF_KPROBE_OVERRIDE gives
// bpf_override_return).
var kprobeIDs = union(tracingIDs, setOf(idGetFuncIP, idOverrideReturn))

// tracepointIDs is tp_prog_func_proto; raw tracepoints (raw_tp_prog_func_proto)
// allow the same set. bpf_get_func_ip is refused to both (check_get_func_ip).
var tracepointIDs = tracingIDs

// perfEventIDs is pe_prog_func_proto.
var perfEventIDs = union(tracingIDs, setOf(idPerfProgReadValue, idReadBranchRecords))

// hookIDs is what a user hook allows unless it says otherwise: the base
// set (the current-task helpers, signals and memory probes among them)
// and bpf_get_func_ip.
var hookIDs = union(baseIDs, setOf(idGetFuncIP))

func union(sets ...idSet) idSet {
	out := idSet{}
	for _, s := range sets {
		for id := range s {
			out[id] = true
		}
	}
	return out
}

func xdpAllowed(k *Kind, id int32) bool        { return xdpIDs[id] }
func sockFilterAllowed(k *Kind, id int32) bool { return sockFilterIDs[id] }
func tcAllowed(k *Kind, id int32) bool         { return tcIDs[id] }
func kprobeAllowed(k *Kind, id int32) bool     { return kprobeIDs[id] }
func tracepointAllowed(k *Kind, id int32) bool { return tracepointIDs[id] }
func rawTPAllowed(k *Kind, id int32) bool      { return tracepointIDs[id] }
func perfEventAllowed(k *Kind, id int32) bool  { return perfEventIDs[id] }

func sockAddrAllowed(k *Kind, id int32) bool {
	if ok, decided := cgroupCommonAllowed(k, id); decided {
		return ok
	}
	if id == idBind {
		return k.attach == AttachCgroupInet4Connect || k.attach == AttachCgroupInet6Connect
	}
	return sockAddrIDs[id]
}

func cgSKBAllowed(k *Kind, id int32) bool {
	if ok, decided := cgroupCommonAllowed(k, id); decided {
		return ok
	}
	return cgSKBIDs[id]
}

// Allowed reports whether programs of this Kind may call helper id, as the
// type's get_func_proto in Linux decides for a privileged, GPL program.
// Allowed does not mean implemented: see Helpers for the helpers this
// package implements, and package helpers for the generic ones.
func (k *Kind) Allowed(id int32) bool { return k.allowed(k, id) }

// AllowedHelpers returns the ids Allowed accepts, in increasing order.
func (k *Kind) AllowedHelpers() []int32 {
	var ids []int32
	for id := int32(1); int(id) < 256; id++ {
		if k.Allowed(id) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Helpers returns this package's implementations of the helpers specific
// to the Kind's program type that it allows (a new slice each call): the
// packet helpers of XDP and socket buffer programs, the task, memory-probe,
// stack, signal and perf counter helpers of tracing programs and hooks,
// the network helpers (routes, redirects, tunnels), the socket helpers of
// every type with sockets, the cgroup and cgroup storage helpers.
// bpf_redirect, bpf_fib_lookup, bpf_check_mtu and bpf_sk_assign have one
// implementation per family (XDP or socket buffer; sk_lookup's
// bpf_sk_assign). The generic helpers (maps, time, tail calls, ...) are
// package helpers'.
func (k *Kind) Helpers() helpers.Defs {
	var src []helpers.Def
	switch k.run {
	case runXDP:
		src = append(src, xdpDefs...)
		src = append(src, xdpNetDefs...)
		src = append(src, helpers.Syncookies()...)
	case runSKB:
		src = append(src, skbDefs...)
		src = append(src, helpers.Syncookies()...)
		src = append(src, netDefs...)
		src = append(src, skbSockDefs...)
		src = append(src, skbCgroupDefs...)
	case runSockOps:
		src = append(src, sockOpsDefs...)
	case runFlow:
		src = append(src, flowDefs...)
	case runSkLookup:
		src = append(src, skLookupDefs...)
	}
	switch {
	case k.typ == PerfEvent:
		src = append(src, perfEventDefs...)
	case k.typ == Kprobe && k.multiProbe():
		src = append(src, kprobeMultiDefs...)
	}
	src = append(src, taskDefs...)
	src = append(src, cgroupDefs...)
	src = append(src, socketDefs...)
	src = append(src, tracingDefs...)
	var out helpers.Defs
	seen := map[int32]bool{}
	for _, d := range src {
		if k.Allowed(d.ID) && !seen[d.ID] {
			seen[d.ID] = true
			out = append(out, d)
		}
	}
	return out
}

// lwtOutIDs is lwt_out_func_proto; lwt_in adds bpf_lwt_push_encap,
// lwt_xmit the packet-writing, tunnel and redirect helpers, lwt_seg6local
// the seg6 helpers (with CONFIG_IPV6_SEG6_BPF; it falls back to
// lwt_out_func_proto, bpf_skb_pull_data included).
var (
	lwtOutIDs = union(skBaseIDs, setOf(idSkbLoadBytes, idSkbPullData, idCsumDiff,
		idGetCgroupClassid, idGetRouteRealm, idGetHashRecalc, idPerfEventOutput,
		idGetSmpProcessorID, idSkbUnderCgroup))
	lwtInIDs   = union(lwtOutIDs, setOf(idLwtPushEncap))
	lwtXmitIDs = union(lwtOutIDs, setOf(idSkbGetTunnelKey, idSkbSetTunnelKey, idSkbGetTunnelOpt,
		idSkbSetTunnelOpt, idRedirect, idCloneRedirect, idSkbChangeTail, idSkbChangeHead,
		idSkbStoreBytes, idCsumUpdate, idCsumLevel, idL3CsumReplace, idL4CsumReplace,
		idSetHashInvalid, idLwtPushEncap))
	lwtSeg6LocalIDs = union(lwtOutIDs, setOf(idLwtSeg6StoreBytes, idLwtSeg6Action,
		idLwtSeg6AdjustSRH))
)

// cgSockIDs is sock_filter_func_proto (cgSockAllowed adds
// cgroup_common_func_proto). It falls back to bpf_base_func_proto, not
// bpf_sk_base_func_proto: no socket casts.
var cgSockIDs = union(baseIDs, setOf(idGetSocketCookie, idGetNetnsCookie, idPerfEventOutput,
	idSkStorageGet, idKtimeGetCoarseNs))

// Attach types waggle has no Kind of its own for that decide helpers of
// the Kinds it has (a sock_ops program may be loaded with any expected
// attach type, and cgroup_common_func_proto looks at it).
const (
	attachCgroupUnixRecvmsg AttachType = 51 // BPF_CGROUP_UNIX_RECVMSG
	attachCgroupUnixGetpeer AttachType = 52 // BPF_CGROUP_UNIX_GETPEERNAME
	attachCgroupUnixGetsock AttachType = 53 // BPF_CGROUP_UNIX_GETSOCKNAME
	attachKprobeSession     AttachType = 56 // BPF_TRACE_KPROBE_SESSION
	attachUprobeSession     AttachType = 57 // BPF_TRACE_UPROBE_SESSION
)

// cgroupCommonAllowed is cgroup_common_func_proto (kernel/bpf/cgroup.c),
// which cg_skb_func_proto, sock_filter_func_proto, sock_addr_func_proto
// and sock_ops_func_proto ask first: every program of these types has
// bpf_get_local_storage, and bpf_get_retval and bpf_set_retval unless its
// expected attach type is one of those listed here: the socket buffer
// hooks (BPF_CGROUP_INET_INGRESS, which is also expected_attach_type 0, as
// sock_ops programs are loaded, and _EGRESS), BPF_CGROUP_SOCK_OPS and the
// recvmsg, getpeername and getsockname hooks, whose return value is no
// errno. It reports whether id is one of these (decided) and then whether
// k may call it.
func cgroupCommonAllowed(k *Kind, id int32) (ok, decided bool) {
	switch id {
	case idGetLocalStorage:
		return true, true
	case idGetRetval, idSetRetval:
		switch k.attach {
		case AttachNone, AttachCgroupInetEgress, AttachCgroupSockOps, AttachCgroupUDP4Recvmsg,
			AttachCgroupUDP6Recvmsg, attachCgroupUnixRecvmsg, AttachCgroupInet4Getpeer,
			AttachCgroupInet6Getpeer, attachCgroupUnixGetpeer, AttachCgroupInet4Getsock,
			AttachCgroupInet6Getsock, attachCgroupUnixGetsock:
			return false, true
		}
		return true, true
	}
	return false, false
}

// sockOpsIDs is sock_ops_func_proto (sockOpsAllowed adds
// cgroup_common_func_proto).
var sockOpsIDs = union(skBaseIDs, setOf(idSetsockopt, idGetsockopt,
	idSockOpsCbFlagsSet, idSockMapUpdate, idSockHashUpdate, idGetSocketCookie,
	idPerfEventOutput, idSkStorageGet, idSkStorageDelete, idGetNetnsCookie, idLoadHdrOpt,
	idStoreHdrOpt, idReserveHdrOpt, idTCPSock))

// flowDissectorIDs is flow_dissector_func_proto; skLookupIDs is
// sk_lookup_func_proto.
var (
	flowDissectorIDs = union(skBaseIDs, setOf(idSkbLoadBytes))
	skLookupIDs      = union(skBaseIDs, setOf(idPerfEventOutput, idSkAssign, idSkRelease))
)

func lwtAllowed(k *Kind, id int32) bool {
	switch k.typ {
	case LWTIn:
		return lwtInIDs[id]
	case LWTXmit:
		return lwtXmitIDs[id]
	case LWTSeg6Local:
		return lwtSeg6LocalIDs[id]
	}
	return lwtOutIDs[id]
}

func cgSockAllowed(k *Kind, id int32) bool {
	if ok, decided := cgroupCommonAllowed(k, id); decided {
		return ok
	}
	return cgSockIDs[id]
}

func sockOpsAllowed(k *Kind, id int32) bool {
	if ok, decided := cgroupCommonAllowed(k, id); decided {
		return ok
	}
	return sockOpsIDs[id]
}

// multiProbe reports whether a kprobe Kind is a multi or session k- or
// uprobe, whose bpf_get_func_ip and bpf_get_attach_cookie differ
// (kprobe_prog_func_proto).
func (k *Kind) multiProbe() bool {
	switch k.attach {
	case AttachKprobeMulti, AttachUprobeMulti, attachKprobeSession, attachUprobeSession:
		return true
	}
	return false
}

func flowDissectorAllowed(k *Kind, id int32) bool { return flowDissectorIDs[id] }
func skLookupAllowed(k *Kind, id int32) bool      { return skLookupIDs[id] }
