package progtype

import (
	"sort"

	"github.com/waggle-bpf/waggle/helpers"
)

// Which helpers each program type may call: the types' get_func_proto in
// net/core/filter.c, kernel/trace/bpf_trace.c and kernel/bpf/helpers.c
// (Linux 6.12), for a program loaded with CAP_BPF and CAP_PERFMON (as
// root), GPL-licensed, not sleepable, and in a kernel built with the
// options a distribution enables (CONFIG_INET, CONFIG_CGROUPS,
// CONFIG_SOCK_CGROUP_DATA, CONFIG_XFRM, CONFIG_NET_CLS_ACT, ...).

// idSet is a set of helper ids.
type idSet map[int32]bool

func setOf(ids ...int32) idSet {
	s := make(idSet, len(ids))
	for _, id := range ids {
		s[id] = true
	}
	return s
}

// baseIDs is bpf_base_func_proto with CAP_BPF and CAP_PERFMON.
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
)

// skBaseIDs is bpf_sk_base_func_proto: the base and the socket casts.
var skBaseIDs = union(baseIDs, setOf(idSkcToTCP6Sock, idSkcToTCPSock, idSkcToTCPTimewaitSock,
	idSkcToTCPRequestSock, idSkcToUDP6Sock, idSkcToUnixSock, idSkcToMPTCPSock, idKtimeGetCoarseNs))

// sockFilterIDs is sk_filter_func_proto.
var sockFilterIDs = union(skBaseIDs, setOf(idSkbLoadBytes, idSkbLoadBytesRelative,
	idGetSocketCookie, idGetSocketUID, idPerfEventOutput))

// cgSKBIDs is cg_skb_func_proto (with cgroup_common_func_proto).
var cgSKBIDs = union(sockFilterIDs, setOf(idSkFullsock, idSkStorageGet, idSkStorageDelete,
	idPerfEventOutput, idSkbCgroupID, idSkbAncestorCgroupID, idSkCgroupID, idSkAncestorCgroupID,
	idSkLookupTCP, idSkLookupUDP, idSkRelease, idSkcLookupTCP, idTCPSock, idGetListenerSock,
	idSkbECNSetCE, idGetLocalStorage))

// tcIDs is tc_cls_act_func_proto.
var tcIDs = union(skBaseIDs, setOf(idSkbStoreBytes, idSkbLoadBytes, idSkbLoadBytesRelative,
	idSkbPullData, idCsumDiff, idCsumUpdate, idCsumLevel, idL3CsumReplace, idL4CsumReplace,
	idCloneRedirect, idGetCgroupClassid, idSkbVlanPush, idSkbVlanPop, idSkbChangeProto,
	idSkbChangeType, idSkbAdjustRoom, idSkbChangeTail, idSkbChangeHead, idSkbGetTunnelKey,
	idSkbSetTunnelKey, idSkbGetTunnelOpt, idSkbSetTunnelOpt, idRedirect, idRedirectNeigh,
	idRedirectPeer, idGetRouteRealm, idGetHashRecalc, idSetHashInvalid, idSetHash,
	idPerfEventOutput, idGetSmpProcessorID, idSkbUnderCgroup, idGetSocketCookie,
	idGetSocketUID, idFibLookup, idCheckMTU, idSkFullsock, idSkStorageGet, idSkStorageDelete,
	idSkbGetXfrmState, idSkbCgroupClassid, idSkbCgroupID, idSkbAncestorCgroupID,
	idSkLookupTCP, idSkLookupUDP, idSkRelease, idTCPSock, idGetListenerSock, idSkcLookupTCP,
	idTCPCheckSyncookie, idSkbECNSetCE, idTCPGenSyncookie, idSkAssign, idSkbSetTstamp,
	idTCPRawGenSyncookieV4, idTCPRawGenSyncookieV6, idTCPRawCheckSyncookieV4,
	idTCPRawCheckSyncookieV6))

// xdpIDs is xdp_func_proto.
var xdpIDs = union(skBaseIDs, setOf(idPerfEventOutput, idGetSmpProcessorID, idCsumDiff,
	idXDPAdjustHead, idXDPAdjustMeta, idRedirect, idRedirectMap, idXDPAdjustTail,
	idXDPGetBuffLen, idXDPLoadBytes, idXDPStoreBytes, idFibLookup, idCheckMTU,
	idSkLookupUDP, idSkLookupTCP, idSkRelease, idSkcLookupTCP, idTCPCheckSyncookie,
	idTCPGenSyncookie, idTCPRawGenSyncookieV4, idTCPRawGenSyncookieV6,
	idTCPRawCheckSyncookieV4, idTCPRawCheckSyncookieV6))

// sockAddrIDs is sock_addr_func_proto with cgroup_current_func_proto
// (cgroupAllowed adds cgroup_common_func_proto; sockAddrAllowed bpf_bind
// for connect programs only and the sockopts for all but recvmsg,
// getpeername and getsockname).
var sockAddrIDs = union(skBaseIDs, cgroupCurrentIDs, setOf(idGetSocketCookie, idGetNetnsCookie,
	idPerfEventOutput, idSkLookupTCP, idSkLookupUDP, idSkRelease, idSkcLookupTCP, idSkStorageGet,
	idSkStorageDelete))

// tracingIDs is bpf_tracing_func_proto (x86-64 has
// CONFIG_ARCH_HAS_NON_OVERLAPPING_ADDRESS_SPACE, so the legacy
// bpf_probe_read and bpf_probe_read_str exist).
var tracingIDs = union(baseIDs, setOf(idGetCurrentTask, idGetCurrentTaskBTF, idTaskPtRegs,
	idGetCurrentUIDGid, idGetCurrentComm, idTracePrintk, idGetSmpProcessorID, idGetNumaNodeID,
	idPerfEventRead, idGetPrandomU32, idProbeWriteUser, idProbeReadUser, idProbeReadKernel,
	idProbeReadUserStr, idProbeReadKernelStr, idProbeRead, idProbeReadStr, idCgrpStorageGet,
	idCgrpStorageDelete, idCurrentTaskUnderCgroup, idSendSignal, idSendSignalThread,
	idPerfEventReadValue, idJiffies64, idGetTaskStack, idCopyFromUser, idCopyFromUserTask,
	idSnprintfBTF, idPerCPUPtr, idThisCPUPtr, idTaskStorageGet, idTaskStorageDelete,
	idForEachMapElem, idSnprintf, idGetFuncIP, idGetBranchSnapshot, idFindVMA, idTraceVprintk))

// kprobeIDs is kprobe_prog_func_proto (CONFIG_BPF_KPROBE_OVERRIDE gives
// bpf_override_return).
var kprobeIDs = union(tracingIDs, setOf(idPerfEventOutput, idGetStackid, idGetStack,
	idOverrideReturn, idGetFuncIP, idGetAttachCookie))

// tracepointIDs is tp_prog_func_proto; raw tracepoints (raw_tp_prog_func_proto)
// allow the same set. bpf_get_func_ip is fentry-only there.
var tracepointIDs = without(union(tracingIDs, setOf(idPerfEventOutput, idGetStackid,
	idGetStack, idGetAttachCookie)), idGetFuncIP)

// perfEventIDs is pe_prog_func_proto.
var perfEventIDs = without(union(tracingIDs, setOf(idPerfEventOutput, idGetStackid, idGetStack,
	idPerfProgReadValue, idReadBranchRecords, idGetAttachCookie)), idGetFuncIP)

// hookIDs is what a user hook allows unless it says otherwise: the base
// set, the task helpers and the memory probes.
var hookIDs = union(baseIDs, setOf(idGetCurrentUIDGid, idGetCurrentComm, idGetCurrentTask,
	idProbeReadKernel, idProbeReadUser, idProbeReadKernelStr, idProbeReadUserStr, idSendSignal,
	idSendSignalThread, idGetFuncIP))

func union(sets ...idSet) idSet {
	out := idSet{}
	for _, s := range sets {
		for id := range s {
			out[id] = true
		}
	}
	return out
}

func without(s idSet, ids ...int32) idSet {
	for _, id := range ids {
		delete(s, id)
	}
	return s
}

func xdpAllowed(k *Kind, id int32) bool        { return xdpIDs[id] }
func sockFilterAllowed(k *Kind, id int32) bool { return sockFilterIDs[id] }
func tcAllowed(k *Kind, id int32) bool         { return tcIDs[id] }
func cgSKBAllowed(k *Kind, id int32) bool      { return cgSKBIDs[id] }
func kprobeAllowed(k *Kind, id int32) bool     { return kprobeIDs[id] }
func tracepointAllowed(k *Kind, id int32) bool { return tracepointIDs[id] }
func rawTPAllowed(k *Kind, id int32) bool      { return tracepointIDs[id] }
func perfEventAllowed(k *Kind, id int32) bool  { return perfEventIDs[id] }

func sockAddrAllowed(k *Kind, id int32) bool {
	if ok, decided := cgroupCommonAllowed(k, id); decided {
		return ok
	}
	switch id {
	case idBind:
		return k.attach == AttachCgroupInet4Connect || k.attach == AttachCgroupInet6Connect
	case idSetsockopt, idGetsockopt:
		switch k.attach {
		case AttachCgroupUDP4Recvmsg, AttachCgroupUDP6Recvmsg, AttachCgroupInet4Getpeer,
			AttachCgroupInet6Getpeer, AttachCgroupInet4Getsock, AttachCgroupInet6Getsock:
			return false
		}
		return true
	}
	return sockAddrIDs[id]
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
	case runSKB:
		src = append(src, skbDefs...)
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
// the seg6 helpers and not bpf_skb_pull_data.
var (
	lwtOutIDs = union(skBaseIDs, setOf(idSkbLoadBytes, idSkbPullData, idCsumDiff,
		idGetCgroupClassid, idGetRouteRealm, idGetHashRecalc, idPerfEventOutput,
		idGetSmpProcessorID, idSkbUnderCgroup))
	lwtInIDs   = union(lwtOutIDs, setOf(idLwtPushEncap))
	lwtXmitIDs = union(lwtOutIDs, setOf(idSkbGetTunnelKey, idSkbSetTunnelKey, idSkbGetTunnelOpt,
		idSkbSetTunnelOpt, idRedirect, idCloneRedirect, idSkbChangeTail, idSkbChangeHead,
		idSkbStoreBytes, idCsumUpdate, idCsumLevel, idL3CsumReplace, idL4CsumReplace,
		idSetHashInvalid, idLwtPushEncap))
	lwtSeg6LocalIDs = without(union(lwtOutIDs, setOf(idLwtSeg6StoreBytes, idLwtSeg6Action,
		idLwtSeg6AdjustSRH)), idSkbPullData)
)

// cgroupCurrentIDs is cgroup_current_func_proto: the cgroup hooks that run
// in the context of a process.
var cgroupCurrentIDs = setOf(idGetCurrentUIDGid, idGetCurrentComm, idGetCgroupClassid,
	idCurrentTaskUnderCgroup)

// cgSockIDs is sock_filter_func_proto with cgroup_current_func_proto
// (cgroupCommonAllowed adds cgroup_common_func_proto).
var cgSockIDs = union(baseIDs, cgroupCurrentIDs, setOf(idGetSocketCookie, idGetNetnsCookie,
	idPerfEventOutput, idSkStorageGet, idKtimeGetCoarseNs))

// cgroupCommonAllowed is cgroup_common_func_proto (kernel/bpf/cgroup.c):
// every cgroup hook has bpf_get_local_storage, and those whose return
// value can become an errno have bpf_get_retval and bpf_set_retval. It
// reports whether id is one of these (decided) and then whether k may
// call it.
func cgroupCommonAllowed(k *Kind, id int32) (ok, decided bool) {
	switch id {
	case idGetLocalStorage:
		return true, true
	case idGetRetval, idSetRetval:
		switch k.AttachPoint() {
		case AttachNone, AttachCgroupInetEgress, AttachCgroupSockOps, AttachCgroupUDP4Recvmsg,
			AttachCgroupUDP6Recvmsg, AttachCgroupInet4Getpeer, AttachCgroupInet6Getpeer,
			AttachCgroupInet4Getsock, AttachCgroupInet6Getsock:
			return false, true
		}
		return true, true
	}
	return false, false
}

// sockOpsIDs is sock_ops_func_proto.
var sockOpsIDs = union(skBaseIDs, setOf(idGetLocalStorage, idSetsockopt, idGetsockopt,
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
func sockOpsAllowed(k *Kind, id int32) bool       { return sockOpsIDs[id] }
func flowDissectorAllowed(k *Kind, id int32) bool { return flowDissectorIDs[id] }
func skLookupAllowed(k *Kind, id int32) bool      { return skLookupIDs[id] }
