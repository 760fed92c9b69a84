package progtype

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/maps"
)

// Target is what a program is verified for: which helpers its calls may
// reach. Kernel builds differ (Debian's Linux 6.18 for one machine may
// refuse bpf_xdp_adjust_meta in XDP programs where upstream allows it),
// and waggle's runtime implements most, not all, of Linux's helpers.
type Target uint8

// Targets.
const (
	// TargetUser is waggle's user-space runtime: the helpers it
	// implements that the program type may call (Kind.Helpers and the
	// generic ones Kind.Allowed accepts). It is the default.
	TargetUser Target = iota
	// TargetLinux is upstream Linux 6.18: every helper the program type's
	// get_func_proto offers (Kind.Allowed), implemented in waggle or not;
	// the verifier checks calls to those waggle lacks from their
	// prototypes. Without CAP_BPF (verifier.Options.Unprivileged) the
	// helpers bpf_base_func_proto and bpf_sk_base_func_proto gate behind
	// CAP_BPF or CAP_PERFMON are not offered.
	TargetLinux
	// TargetHost is the running kernel: TargetLinux's helpers that this
	// kernel lets the program type call, probed with cilium/ebpf's
	// features package (a tiny BPF_PROG_LOAD per program type and helper,
	// cached for the process), and the program and map types it has.
	// Probing needs a Linux kernel and root (CAP_BPF and the capabilities
	// the program type asks for).
	TargetHost
)

var targetNames = [...]string{TargetUser: "user", TargetLinux: "linux", TargetHost: "host"}

// String returns the target's name: user, linux or host.
func (t Target) String() string {
	if int(t) < len(targetNames) {
		return targetNames[t]
	}
	return fmt.Sprintf("target(%d)", uint8(t))
}

// TargetNames returns the names ParseTarget accepts, the default first.
func TargetNames() []string { return append([]string(nil), targetNames[:]...) }

// ParseTarget returns the target named s (user, linux or host).
func ParseTarget(s string) (Target, error) {
	for i, n := range targetNames {
		if s == n {
			return Target(i), nil
		}
	}
	return 0, fmt.Errorf("unknown target %q: want %s", s, strings.Join(TargetNames(), ", "))
}

// ErrHostProbe is wrapped by the errors of TargetHost when the running
// kernel cannot be probed (not Linux, or no permission to load programs):
// the target cannot be decided, which says nothing of the program.
var ErrHostProbe = errors.New("cannot probe the running kernel")

// HelperCalls returns the helper ids a program calls, each once, in the
// order of their first call.
func HelperCalls(insns []isa.Instruction) []int32 {
	var ids []int32
	seen := map[int32]bool{}
	for _, ins := range insns {
		if ins.IsHelperCall() && !seen[ins.Imm] {
			seen[ins.Imm] = true
			ids = append(ids, ins.Imm)
		}
	}
	return ids
}

// TargetHelpers returns the prototypes, by id, of the helpers a program of
// this Kind may call on target t; unprivileged applies the capability
// gates of TargetLinux and TargetHost. calls are the helper ids the
// program calls (HelperCalls): TargetHost probes only those, and its
// result holds only those. An error means the target cannot be decided:
// a user hook has no kernel program type, or the kernel could not be
// probed (not Linux, not root).
func (k *Kind) TargetHelpers(t Target, unprivileged bool, calls []int32) (map[int32]helpers.Proto, error) {
	switch t {
	case TargetUser:
		out := map[int32]helpers.Proto{}
		for _, d := range helpers.Generic() {
			if k.Allowed(d.ID) {
				out[d.ID] = d.Proto
			}
		}
		for _, d := range k.Helpers() {
			out[d.ID] = d.Proto
		}
		return out, nil
	case TargetLinux:
		if k.hook != nil {
			return nil, fmt.Errorf("%s is a user hook, which runs only in waggle: target linux needs a kernel program type", k)
		}
		return k.linuxHelpers(unprivileged), nil
	case TargetHost:
		if k.hook != nil {
			return nil, fmt.Errorf("%s is a user hook, which runs only in waggle: target host needs a kernel program type", k)
		}
		return k.HostHelpers(k.linuxHelpers(unprivileged), calls)
	}
	return nil, fmt.Errorf("unknown target %d: want %s", t, strings.Join(TargetNames(), ", "))
}

// HostHelpers narrows linux, the Kind's TargetLinux table, to TargetHost's
// for a program that calls the helpers calls: those of them the running
// kernel lets the Kind's type call, probed. Callers that keep the linux
// table (it is the same for every program of a type) use it to avoid
// building it again.
func (k *Kind) HostHelpers(linux map[int32]helpers.Proto, calls []int32) (map[int32]helpers.Proto, error) {
	if k.hook != nil {
		return nil, fmt.Errorf("%s is a user hook, which runs only in waggle: target host needs a kernel program type", k)
	}
	out := map[int32]helpers.Proto{}
	for _, id := range calls {
		p, ok := linux[id]
		if !ok {
			continue
		}
		has, err := k.hostHasHelper(id)
		if err != nil {
			return nil, err
		}
		if has {
			out[id] = p
		}
	}
	return out, nil
}

// linuxHelpers is TargetLinux's table: the prototype of every helper
// Allowed accepts (waggle's implementation's where it has one) less the
// capability-gated ones when unprivileged.
func (k *Kind) linuxHelpers(unprivileged bool) map[int32]helpers.Proto {
	out := map[int32]helpers.Proto{}
	add := func(d helpers.Def) {
		if _, ok := out[d.ID]; ok || !k.Allowed(d.ID) || unprivileged && k.capGated(d.ID) {
			return
		}
		out[d.ID] = d.Proto
	}
	for _, d := range k.Helpers() {
		add(d)
	}
	for _, d := range helpers.Generic() {
		add(d)
	}
	for _, d := range protoOnlyDefs {
		if d.ID == idSkStorageGet && k.typ == CgroupSock {
			d.Proto = protoSkStorageGetCgSock
		}
		add(d)
	}
	return out
}

// capBPFIDs are the helpers bpf_base_func_proto offers only with CAP_BPF.
var capBPFIDs = setOf(idSpinLock, idSpinUnlock, idJiffies64, idPerCPUPtr, idThisCPUPtr,
	idTimerInit, idTimerSetCallback, idTimerStart, idTimerCancel, idKptrXchg, idForEachMapElem,
	idLoop, idUserRingbufDrain, idRingbufReserveDynptr, idRingbufSubmitDynptr,
	idRingbufDiscardDynptr, idDynptrFromMem, idDynptrRead, idDynptrWrite, idDynptrData,
	idCgrpStorageGet, idCgrpStorageDelete, idGetCurrentCgroupID, idGetCurrentAncestorCgID)

// capPerfmonIDs are the helpers bpf_base_func_proto offers only with
// CAP_PERFMON, and the socket casts bpf_sk_base_func_proto offers only
// with CAP_PERFMON. The tracing helpers Linux 6.16 moved into
// bpf_base_func_proto ("bpf: Allow some trace helpers for all prog
// types") are taken to be behind its CAP_PERFMON check, after
// bpf_trace_vprintk, as tracing helpers; 6.12's source, which has them
// only for tracing types, cannot confirm it.
var capPerfmonIDs = setOf(idTracePrintk, idGetCurrentTask, idGetCurrentTaskBTF,
	idProbeReadUser, idProbeReadKernel, idProbeReadUserStr, idProbeReadKernelStr, idSnprintfBTF,
	idSnprintf, idTaskPtRegs, idTraceVprintk,
	// Linux 6.16
	idGetCurrentUIDGid, idGetCurrentComm, idGetCgroupClassid, idCurrentTaskUnderCgroup,
	idTaskStorageGet, idTaskStorageDelete, idSendSignal, idSendSignalThread, idPerfEventRead,
	idPerfEventReadValue, idGetTaskStack, idGetBranchSnapshot, idFindVMA, idCopyFromUser,
	idCopyFromUserTask,
	// bpf_sk_base_func_proto
	idSkcToTCP6Sock, idSkcToTCPSock, idSkcToTCPTimewaitSock, idSkcToTCPRequestSock,
	idSkcToUDP6Sock, idSkcToUnixSock, idSkcToMPTCPSock)

// capGated reports whether a program of k gets helper id only with CAP_BPF
// or CAP_PERFMON: whether the type's get_func_proto leaves it to the
// gated part of bpf_base_func_proto or bpf_sk_base_func_proto. Types
// that offer one of these helpers themselves offer it without the
// capability: tc and LWT (bpf_get_cgroup_classid of the packet's
// socket), the cgroup socket hooks (cgroup_current_func_proto). The
// tracing types are never gated here: loading them needs CAP_PERFMON,
// which the helpers' gates ask for.
func (k *Kind) capGated(id int32) bool {
	if !capBPFIDs[id] && !capPerfmonIDs[id] {
		return false
	}
	switch k.typ {
	case Kprobe, Tracepoint, RawTracepoint, PerfEvent:
		return false
	case SchedCLS, SchedACT, LWTIn, LWTOut, LWTXmit, LWTSeg6Local:
		return id != idGetCgroupClassid
	case CgroupSock, CgroupSockAddr:
		switch id {
		case idGetCurrentUIDGid, idGetCurrentComm, idGetCgroupClassid, idCurrentTaskUnderCgroup:
			return false
		}
	}
	return true
}

// HelperUnavailable says why a program of this Kind may not call helper id
// on target t, and what to do about it; why is "" when it may. It is what
// verifier errors say beside Linux's message.
func (k *Kind) HelperUnavailable(t Target, unprivileged bool, id int32) (why, hint string) {
	name := "bpf_" + helpers.Name(id)
	if helpers.Name(id) == "" {
		return fmt.Sprintf("Linux has no helper %d", id), "call a helper Linux has"
	}
	if !k.Allowed(id) {
		return fmt.Sprintf("%s programs may not call %s, as in Linux", k, name),
			"call it from a program type that may, or do without it"
	}
	if t != TargetUser && k.hook == nil && unprivileged && k.capGated(id) {
		return fmt.Sprintf("target %s: %s needs CAP_BPF or CAP_PERFMON, which an unprivileged program lacks", t, name),
			"load the program with CAP_BPF and CAP_PERFMON, or do without " + name
	}
	switch t {
	case TargetUser:
		if _, ok := k.Helpers().ByID(id); ok {
			return "", ""
		}
		if _, ok := helpers.Generic().ByID(id); ok {
			return "", ""
		}
		return fmt.Sprintf("target user: waggle's user-space runtime does not implement %s", name),
			"to run the program in waggle, do without " + name + "; to check it for a kernel, verify with target linux or host (--target)"
	case TargetLinux:
		return "", ""
	case TargetHost:
		has, err := k.hostHasHelper(id)
		switch {
		case err != nil:
			return err.Error(), "probe as root, or verify with target linux (--target)"
		case !has:
			return fmt.Sprintf("target host: the running kernel does not let %s programs call %s, though upstream Linux does (probed)", k, name),
				"this kernel's build lacks it: do without " + name + " here, or run on a kernel that has it (target linux checks against upstream Linux 6.18)"
		}
	}
	return "", ""
}

// hostHasHelper probes whether the running kernel lets programs of k's
// type call helper id. The probe loads a program of the type with the
// attach type cilium/ebpf chooses; Allowed decides what depends on the
// attach type.
func (k *Kind) hostHasHelper(id int32) (bool, error) {
	if err := hostCanProbe(); err != nil {
		return false, err
	}
	err := features.HaveProgramHelper(ebpf.ProgramType(k.typ), asm.BuiltinFunc(id))
	var ve *ebpf.VerifierError
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return false, nil
	case errors.As(err, &ve):
		// The kernel has the helper for the type and refused the probe
		// for something else (bpf_copy_from_user: "helper call might
		// sleep in a non-sleepable prog"): the verifier decides the call.
		return true, nil
	}
	return false, fmt.Errorf("target host: %w: probing whether it lets %s programs call bpf_%s: %w%s", ErrHostProbe, k, helpers.Name(id), err, asRoot(err))
}

// HostProgramType reports, by probing the running kernel, whether it has
// the Kind's program type: nil if it has, an error that says why not.
func (k *Kind) HostProgramType() error {
	if k.hook != nil {
		return fmt.Errorf("%s is a user hook, which runs only in waggle: target host needs a kernel program type", k)
	}
	if err := hostCanProbe(); err != nil {
		return err
	}
	err := features.HaveProgramType(ebpf.ProgramType(k.typ))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("the running kernel has no %s programs (target host, probed)", k.typ)
	}
	return fmt.Errorf("target host: %w: probing it for %s programs: %w%s", ErrHostProbe, k.typ, err, asRoot(err))
}

// HostMapType reports, by probing the running kernel, whether it has maps
// of type t: nil if it has, an error that says why not.
func HostMapType(t maps.Type) error {
	if err := hostCanProbe(); err != nil {
		return err
	}
	err := features.HaveMapType(ebpf.MapType(t))
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ebpf.ErrNotSupported):
		return fmt.Errorf("the running kernel has no %s maps (target host, probed)", t)
	}
	return fmt.Errorf("target host: %w: probing it for %s maps: %w%s", ErrHostProbe, t, err, asRoot(err))
}

// asRoot is the advice for a probe that failed for want of permission.
func asRoot(err error) string {
	if errors.Is(err, os.ErrPermission) {
		return " (probing loads programs and creates maps in the kernel: run as root)"
	}
	return ""
}

// hostCanProbe says why the running system cannot be probed, if it cannot.
func hostCanProbe() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("target host: %w: it probes a Linux kernel, and this is %s: verify with target linux", ErrHostProbe, runtime.GOOS)
	}
	return nil
}
