package progtype

import (
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/maps"
)

// The helpers of tracing programs and user hooks that ask about the
// current task, read memory through unchecked pointers, or reach the
// kernel's stack unwinder and signals. In user space the hook that runs
// the program stands in for the kernel: Input.Task is the current task,
// Input.Memory and the run's own memory are what may be read.

// taskOf returns the current task of the calling program's run, or nil.
func taskOf(env helpers.Env) (*Task, error) {
	r, err := runOf(env)
	if err != nil {
		return nil, err
	}
	return r.in.Task, nil
}

// GetCurrentPidTgid is bpf_get_current_pid_tgid (kernel/bpf/helpers.c):
// tgid << 32 | pid of the current task; -EINVAL without one.
func GetCurrentPidTgid(env helpers.Env, args *[5]uint64) (uint64, error) {
	t, err := taskOf(env)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return errno(maps.EINVAL), nil
	}
	return uint64(t.TGID)<<32 | uint64(t.PID), nil
}

// GetCurrentUIDGid is bpf_get_current_uid_gid: gid << 32 | uid of the
// current task; -EINVAL without one.
func GetCurrentUIDGid(env helpers.Env, args *[5]uint64) (uint64, error) {
	t, err := taskOf(env)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return errno(maps.EINVAL), nil
	}
	return uint64(t.GID)<<32 | uint64(t.UID), nil
}

// taskCommLen is TASK_COMM_LEN.
const taskCommLen = 16

// GetCurrentComm is bpf_get_current_comm: the current task's name,
// NUL-terminated and zero-padded to size (strscpy_pad); without a task the
// buffer is zeroed and the result is -EINVAL.
func GetCurrentComm(env helpers.Env, args *[5]uint64) (uint64, error) {
	t, err := taskOf(env)
	if err != nil {
		return 0, err
	}
	buf, err := env.Memory(args[0], uint64(uint32(args[1])), true)
	if err != nil {
		return 0, err
	}
	clear(buf)
	if t == nil {
		return errno(maps.EINVAL), nil
	}
	comm := t.Comm
	if len(comm) > taskCommLen-1 {
		comm = comm[:taskCommLen-1]
	}
	if len(buf) > 0 {
		copy(buf[:len(buf)-1], comm)
	}
	return 0, nil
}

// pidnsInfoSize is sizeof(struct bpf_pidns_info): pid and tgid, u32 each.
const pidnsInfoSize = 8

// GetNsCurrentPidTgid is bpf_get_ns_current_pid_tgid(dev, ino, nsdata,
// size) (kernel/bpf/helpers.c): the current task's pid and tgid as seen
// in the pid namespace dev and ino name, written to the struct
// bpf_pidns_info at nsdata. The task's numbers are those of its own
// namespace (Task.PIDNamespace), so any other namespace, a size other than
// 8 or a device number wider than the kernel's 32-bit dev_t gives
// -EINVAL, and nsdata is zeroed, as in Linux.
func GetNsCurrentPidTgid(env helpers.Env, args *[5]uint64) (uint64, error) {
	t, err := taskOf(env)
	if err != nil {
		return 0, err
	}
	buf, err := env.Memory(args[2], uint64(uint32(args[3])), true)
	if err != nil {
		return 0, err
	}
	dev, ino := args[0], args[1]
	if len(buf) != pidnsInfoSize || dev != uint64(uint32(dev)) || t == nil ||
		t.PIDNamespace == (Namespace{}) || t.PIDNamespace != (Namespace{Dev: dev, Ino: ino}) {
		clear(buf)
		return errno(maps.EINVAL), nil
	}
	le.PutUint32(buf, t.PID)
	le.PutUint32(buf[4:], t.TGID)
	return 0, nil
}

// GetCurrentTask is bpf_get_current_task: the address of the current
// task's struct (Task.Struct), which bpf_probe_read_kernel can read; 0
// when the hook gives none.
func GetCurrentTask(env helpers.Env, args *[5]uint64) (uint64, error) {
	t, err := taskOf(env)
	if err != nil {
		return 0, err
	}
	if t == nil {
		return 0, nil
	}
	return mem.Addr(t.Struct), nil
}

// probeRead is bpf_probe_read_kernel/_user: copy size bytes from an
// unchecked address into the program's buffer; an address the run does
// not own (Input.Memory, Task.Struct, the context, the packet) gives
// -EFAULT and a zeroed buffer, as a faulting read does in Linux.
//
// The source is checked against the run's regions, not with env.Memory:
// an engine's Memory may trust the addresses it is given (the
// interpreter's fast mode does, for pointers the verifier checked), and
// this one is unchecked by design. The program's own stack is not among
// the regions, so probing it gives -EFAULT, where Linux would copy it.
func probeRead(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	n := uint64(uint32(args[1]))
	dst, err := env.Memory(args[0], n, true)
	if err != nil {
		return 0, err
	}
	src, ok := r.probeMemory(args[2], n)
	if !ok {
		clear(dst)
		return errno(maps.EFAULT), nil
	}
	copy(dst, src)
	return 0, nil
}

// probeReadStr is the string variant: copy up to size-1 bytes up to a NUL,
// NUL-terminate, and return the bytes written including the NUL
// (strncpy_from_kernel_nofault in mm/maccess.c); bytes past the NUL are
// left alone. A fault before the NUL gives -EFAULT and a zeroed buffer.
// The user variant returns 0, not 1, for an empty string
// (strncpy_from_user_nofault).
func probeReadStr(user bool) helpers.Func {
	return func(env helpers.Env, args *[5]uint64) (uint64, error) {
		r, err := runOf(env)
		if err != nil {
			return 0, err
		}
		n := uint64(uint32(args[1]))
		dst, err := env.Memory(args[0], n, true)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			return 0, nil
		}
		src := args[2]
		for i := uint64(0); i < n; i++ {
			b, ok := r.probeMemory(src+i, 1)
			if !ok {
				clear(dst)
				return errno(maps.EFAULT), nil
			}
			dst[i] = b[0]
			if b[0] == 0 {
				if user && i == 0 {
					return 0, nil
				}
				return i + 1, nil
			}
		}
		dst[n-1] = 0
		return n, nil
	}
}

// GetFuncIP is bpf_get_func_ip: the address of the probed function
// (Input.FuncIP); 0 where the kernel has none (a kprobe not at a
// function's entry).
func GetFuncIP(env helpers.Env, args *[5]uint64) (uint64, error) {
	r, err := runOf(env)
	if err != nil {
		return 0, err
	}
	return r.in.FuncIP, nil
}

// Stack helper flags (include/uapi/linux/bpf.h).
const (
	flagSkipFieldMask = 0xff
	flagUserStack     = 1 << 8
	flagFastStackCmp  = 1 << 9
	flagReuseStackID  = 1 << 10
	flagUserBuildID   = 1 << 11
)

// GetStackid is bpf_get_stackid (kernel/bpf/stackmap.c): user space has no
// kernel or user stack to walk, so after the flag check it fails as the
// kernel does when it cannot fetch a stack trace, with -EFAULT.
func GetStackid(env helpers.Env, args *[5]uint64) (uint64, error) {
	if args[2]&^(flagSkipFieldMask|flagUserStack|flagFastStackCmp|flagReuseStackID) != 0 {
		return errno(maps.EINVAL), nil
	}
	return errno(maps.EFAULT), nil
}

// GetStack is bpf_get_stack: as bpf_get_stackid, the stack is unavailable;
// the buffer is zeroed and the result is -EFAULT (-EINVAL for bad flags or
// a size that is not a multiple of the entry size).
func GetStack(env helpers.Env, args *[5]uint64) (uint64, error) {
	n := uint64(uint32(args[2]))
	buf, err := env.Memory(args[1], n, true)
	if err != nil {
		return 0, err
	}
	clear(buf)
	flags := args[3]
	if flags&^(flagSkipFieldMask|flagUserStack|flagUserBuildID) != 0 {
		return errno(maps.EINVAL), nil
	}
	elem := uint64(8)
	if flags&flagUserBuildID != 0 {
		if flags&flagUserStack == 0 {
			return errno(maps.EINVAL), nil
		}
		elem = 32 // sizeof(struct bpf_stack_build_id)
	}
	if n%elem != 0 {
		return errno(maps.EINVAL), nil
	}
	return errno(maps.EFAULT), nil
}

// sendSignal is bpf_send_signal (thread false) and bpf_send_signal_thread
// (kernel/trace/bpf_trace.c). The kernel queues the signal for the current
// task; in user space it is handed to the hook on Task.Signals without
// blocking. No task or no channel: -EPERM, as for a kernel thread; a
// signal above 64: -EINVAL; a full channel: -EBUSY, as when the kernel's
// irq work is busy.
func sendSignal(thread bool) helpers.Func {
	return func(env helpers.Env, args *[5]uint64) (uint64, error) {
		t, err := taskOf(env)
		if err != nil {
			return 0, err
		}
		if t == nil || t.Signals == nil {
			return errno(maps.EPERM), nil
		}
		sig := uint32(args[0])
		if sig > 64 {
			return errno(maps.EINVAL), nil
		}
		select {
		case t.Signals <- Signal{Sig: sig, Thread: thread}:
			return 0, nil
		default:
			return errno(maps.EBUSY), nil
		}
	}
}

var protoProbeRead = helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero, helpers.ArgAnything}, GPLOnly: true}

// protoProbeReadStr is the string variants': they return a negative errno
// or the bytes copied, at most the size (do_refine_retval_range).
var protoProbeReadStr = helpers.Proto{Args: protoProbeRead.Args, GPLOnly: true, RetBound: helpers.RetErrnoOrSize, RetSizeArg: 1}

// perfEventDefs are the helpers whose perf_event prototype differs from
// the other types': bpf_get_stackid_proto_pe is not gpl_only. Kind.Helpers
// puts them first.
var perfEventDefs = helpers.Defs{
	{ID: idGetStackid, Name: "get_stackid", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgAnything}}, Func: GetStackid},
}

// kprobeMultiDefs are the helpers whose prototype differs for multi and
// session probes: bpf_get_func_ip_proto_kprobe_multi and _uprobe_multi
// are not gpl_only.
var kprobeMultiDefs = helpers.Defs{
	{ID: idGetFuncIP, Name: "get_func_ip", Proto: protoCtx, Func: GetFuncIP},
}

// taskDefs are the helpers of tracing programs and hooks.
var taskDefs = helpers.Defs{
	{ID: idGetCurrentPidTgid, Name: "get_current_pid_tgid", Proto: helpers.Proto{}, Func: GetCurrentPidTgid},
	{ID: idGetCurrentUIDGid, Name: "get_current_uid_gid", Proto: helpers.Proto{}, Func: GetCurrentUIDGid},
	{ID: idGetCurrentComm, Name: "get_current_comm", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}, Func: GetCurrentComm},
	{ID: idGetNsCurrentPidTgid, Name: "get_ns_current_pid_tgid", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything, helpers.ArgAnything, helpers.ArgPtrToUninitMem, helpers.ArgConstSize}}, Func: GetNsCurrentPidTgid},
	{ID: idGetCurrentTask, Name: "get_current_task", Proto: helpers.Proto{GPLOnly: true}, Func: GetCurrentTask},
	{ID: idProbeRead, Name: "probe_read", Proto: protoProbeRead, Func: probeRead},
	{ID: idProbeReadStr, Name: "probe_read_str", Proto: protoProbeReadStr, Func: probeReadStr(false)},
	{ID: idProbeReadKernel, Name: "probe_read_kernel", Proto: protoProbeRead, Func: probeRead},
	{ID: idProbeReadUser, Name: "probe_read_user", Proto: protoProbeRead, Func: probeRead},
	{ID: idProbeReadKernelStr, Name: "probe_read_kernel_str", Proto: protoProbeReadStr, Func: probeReadStr(false)},
	{ID: idProbeReadUserStr, Name: "probe_read_user_str", Proto: protoProbeReadStr, Func: probeReadStr(true)},
	{ID: idGetFuncIP, Name: "get_func_ip", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx}, GPLOnly: true}, Func: GetFuncIP},
	{ID: idGetStackid, Name: "get_stackid", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgConstMapPtr, helpers.ArgAnything}, GPLOnly: true}, Func: GetStackid},
	{ID: idGetStack, Name: "get_stack", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgPtrToCtx, helpers.ArgPtrToUninitMem, helpers.ArgConstSizeOrZero, helpers.ArgAnything}, GPLOnly: true, RetBound: helpers.RetErrnoOrSize, RetSizeArg: 2}, Func: GetStack},
	{ID: idSendSignal, Name: "send_signal", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything}}, Func: sendSignal(false)},
	{ID: idSendSignalThread, Name: "send_signal_thread", Proto: helpers.Proto{Args: []helpers.ArgType{helpers.ArgAnything}}, Func: sendSignal(true)},
}
