package kernel

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// ErrNotSupported is returned (wrapped) by Supported and Load when this
// process cannot load programs into the kernel: not Linux, no bpf syscall,
// or not enough privilege.
var ErrNotSupported = errors.New("kernel bpf not supported")

// ProgType is a program type, enum bpf_prog_type in include/uapi/linux/bpf.h.
// It fixes the context a program receives, its helpers and how it may be
// test-run.
type ProgType uint32

// Program types used by waggle. The values are Linux's.
const (
	SocketFilter ProgType = 1 // BPF_PROG_TYPE_SOCKET_FILTER: ctx is __sk_buff
	SchedCLS     ProgType = 3 // BPF_PROG_TYPE_SCHED_CLS: tc classifier, ctx is __sk_buff
	SchedACT     ProgType = 4 // BPF_PROG_TYPE_SCHED_ACT
	XDP          ProgType = 6 // BPF_PROG_TYPE_XDP: ctx is xdp_md
)

func (t ProgType) String() string {
	switch t {
	case SocketFilter:
		return "socket_filter"
	case SchedCLS:
		return "sched_cls"
	case SchedACT:
		return "sched_act"
	case XDP:
		return "xdp"
	}
	return fmt.Sprintf("ProgType(%d)", uint32(t))
}

// LoadOptions configure Load.
type LoadOptions struct {
	Type ProgType
	// License is the program's license; "" means "GPL", so GPL-only helpers
	// are available.
	License string
	// Name is the program name the kernel shows (bpftool, /proc); at most 15
	// bytes of it are used.
	Name string
	// ExpectedAttachType is bpf_attr.expected_attach_type (enum
	// bpf_attach_type), 0 for most types.
	ExpectedAttachType uint32
	// Flags is bpf_attr.prog_flags (BPF_F_STRICT_ALIGNMENT, ...).
	Flags uint32
	// LogLevel is the verifier's log level for a successful load (1 basic,
	// 2 verbose, 4 statistics, or-able). With 0 no log is kept on success,
	// which is much faster; a failing load is always repeated with level 1
	// so the error carries the log.
	LogLevel uint32
	// LogSize is the initial size of the log buffer in bytes, 0 for 1 MiB.
	// The buffer grows to the size the kernel asks for when it is too small.
	LogSize int
	// BTF is the program's BTF and its func and line info, nil for none.
	BTF *ProgramBTF
	// Cost, when not nil, receives what the load cost the calling thread.
	Cost *LoadCost
}

// ProgramBTF is the BTF a program is loaded with: bpf_attr's prog_btf_fd,
// func_info and line_info (records as the kernel reads them, struct
// bpf_func_info and struct bpf_line_info).
type ProgramBTF struct {
	// FD is a BTF object the kernel holds (BPF_BTF_LOAD).
	FD                               int
	FuncInfo, LineInfo               []byte
	FuncInfoRecSize, LineInfoRecSize uint32
}

// LoadCost is what a load cost: the time spent in the bpf(2) calls that
// load the program, where the verifier runs. Load measures it with the
// goroutine locked to its thread, so that CPU is this load's alone on a
// busy machine.
type LoadCost struct {
	// CPU is the thread's CPU time (CLOCK_THREAD_CPUTIME_ID) spent in the
	// calls.
	CPU time.Duration
	// Wall is the wall-clock time of the calls.
	Wall time.Duration
	// Calls counts the calls: more than one when the verifier gave up on
	// a pending signal (EAGAIN) and started again, or the log buffer
	// grew, or a failing load was repeated with a log.
	Calls int
}

// VerifierError is a failed BPF_PROG_LOAD. Error() is one line: the errno
// and the verifier's last message; "%+v" prints the whole log.
type VerifierError struct {
	Errno syscall.Errno
	// Log is the verifier log (its tail, if Truncated).
	Log string
	// Truncated reports that the log did not fit in the buffer.
	Truncated bool
}

func (e *VerifierError) Error() string {
	s := "load program: " + e.Errno.Error()
	if line := lastLogLine(e.Log); line != "" {
		s += ": " + line
	}
	return s
}

func (e *VerifierError) Unwrap() error { return e.Errno }

// Format implements fmt.Formatter: %+v adds the verifier log.
func (e *VerifierError) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('+'):
		fmt.Fprint(f, e.Error())
		if e.Log != "" {
			fmt.Fprintf(f, "\nverifier log:\n%s", strings.TrimRight(e.Log, "\n"))
			if e.Truncated {
				fmt.Fprint(f, "\n(log truncated)")
			}
		}
	default:
		fmt.Fprint(f, e.Error())
	}
}

// lastLogLine returns the line of a verifier log that says why it failed:
// the last non-empty line before the "processed N insns" statistics.
func lastLogLine(log string) string {
	lines := strings.Split(strings.TrimRight(log, "\n\x00"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l == "" || strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "verification time") ||
			strings.HasPrefix(l, "stack depth") {
			continue
		}
		return l
	}
	return ""
}

// RunOptions are the inputs of one BPF_PROG_TEST_RUN.
type RunOptions struct {
	// Data is the packet (data_in). XDP needs at least 14 bytes (ETH_HLEN).
	Data []byte
	// DataOut receives the packet after the run. nil allocates
	// len(Data)+256 bytes; pass a buffer to avoid the allocation. If the
	// packet grew beyond it, Run returns an error wrapping ENOSPC.
	DataOut []byte
	// Context is ctx_in (for XDP an xdp_md), nil for none.
	Context []byte
	// ContextOut receives ctx_out; nil for none.
	ContextOut []byte
	// Repeat runs the program this many times (0 and 1 both mean once). The
	// packet is not reset between runs.
	Repeat uint32
	// Flags is bpf_attr.test.flags (BPF_F_TEST_RUN_ON_CPU, ...); CPU goes
	// with BPF_F_TEST_RUN_ON_CPU.
	Flags uint32
	CPU   uint32
}

// RunResult is the output of one BPF_PROG_TEST_RUN.
type RunResult struct {
	// Retval is the program's return value: the low 32 bits of r0.
	Retval uint32
	// Data is the packet after the run, a prefix of RunOptions.DataOut.
	Data []byte
	// Context is the ctx after the run, a prefix of RunOptions.ContextOut.
	Context []byte
	// Duration is the mean time of one run, as the kernel measured it.
	Duration time.Duration
}
