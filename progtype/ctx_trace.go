package progtype

import "fmt"

// Sizes of the tracing contexts.
const (
	// PtRegsSize is sizeof(struct pt_regs) on x86-64
	// (arch/x86/include/uapi/asm/ptrace.h): 21 unsigned longs.
	PtRegsSize = 21 * 8
	// RawTracepointArgs is MAX_BPF_FUNC_ARGS (include/linux/bpf.h): a raw
	// tracepoint's context holds at most this many u64 arguments.
	RawTracepointArgs = 12
	// PerfEventDataSize is sizeof(struct bpf_perf_event_data)
	// (include/uapi/linux/bpf_perf_event.h): pt_regs, sample_period, addr.
	PerfEventDataSize = PtRegsSize + 16
	// MaxTraceRecord is PERF_MAX_TRACE_SIZE (include/linux/trace_events.h):
	// the largest tracepoint record a program may read.
	MaxTraceRecord = 2048
	// traceEntrySize is the part of a tracepoint record programs may not
	// read (tp_prog_is_valid_access refuses offsets below sizeof(void *)).
	traceEntrySize = 8
)

// ptRegsNames are the members of x86-64 struct pt_regs, in order.
var ptRegsNames = [...]string{
	"r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8",
	"ax", "cx", "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
}

// PtRegs is x86-64 struct pt_regs (arch/x86/include/uapi/asm/ptrace.h, as
// struct user_pt_regs programs see through PT_REGS_*() in bpf_tracing.h),
// the context of kprobe and uprobe programs and the first member of a
// perf_event program's context. Its bytes (Bytes) are what a kprobe run
// takes as its context.
type PtRegs struct {
	R15, R14, R13, R12, BP, BX, R11, R10, R9, R8      uint64
	AX, CX, DX, SI, DI, OrigAX, IP, CS, Flags, SP, SS uint64
}

// Bytes returns the 168-byte little-endian image of the registers.
func (r *PtRegs) Bytes() []byte {
	v := [...]uint64{r.R15, r.R14, r.R13, r.R12, r.BP, r.BX, r.R11, r.R10, r.R9, r.R8,
		r.AX, r.CX, r.DX, r.SI, r.DI, r.OrigAX, r.IP, r.CS, r.Flags, r.SP, r.SS}
	b := make([]byte, PtRegsSize)
	for i, x := range v {
		le.PutUint64(b[i*8:], x)
	}
	return b
}

func ptRegsFields(base int) []Field {
	fs := make([]Field, len(ptRegsNames))
	for i, n := range ptRegsNames {
		fs[i] = Field{Name: n, Off: base + i*8, Size: 8, Runtime: base + i*8}
	}
	return fs
}

// identityLayout builds a read-only layout whose runtime form is the UAPI
// form itself: the tracing contexts need no rewrite, as in the kernel
// (kprobe, tracepoint and raw_tracepoint have no convert_ctx_access).
func identityLayout(name string, size int, fields []Field) *Layout {
	return &Layout{Name: name, Size: size, RuntimeSize: (size + 7) / 8 * 8, Fields: fields}
}

var (
	ptRegsLayout = identityLayout("pt_regs", PtRegsSize, ptRegsFields(0))

	rawTPLayout = identityLayout("bpf_raw_tracepoint_args", RawTracepointArgs*8, []Field{
		{Name: "args", Kind: Array, Off: 0, Size: RawTracepointArgs * 8, Elem: 8},
	})

	perfEventLayout = identityLayout("bpf_perf_event_data", PerfEventDataSize, append(ptRegsFields(0),
		Field{Name: "sample_period", Off: PtRegsSize, Size: 8, Runtime: PtRegsSize},
		Field{Name: "addr", Off: PtRegsSize + 8, Size: 8, Runtime: PtRegsSize + 8}))

	tracepointLayout = identityLayout("tracepoint record", MaxTraceRecord, []Field{
		{Name: "common", Kind: Array, Off: 0, Size: traceEntrySize, Elem: 1},
		{Name: "fields", Kind: Array, Off: traceEntrySize, Size: MaxTraceRecord - traceEntrySize, Elem: 1, Runtime: traceEntrySize},
	})
)

// readOnlyRule checks what every tracing context shares: reads only,
// inside the struct, naturally aligned.
func readOnlyRule(l *Layout, a ctxAccess) string {
	if a.write {
		return fmt.Sprintf("%s is read-only", l.Name)
	}
	if a.off < 0 || a.off >= l.Size {
		return fmt.Sprintf("offset %d is outside %s (%d bytes)", a.off, l.Name, l.Size)
	}
	if a.off+a.size > l.Size {
		return fmt.Sprintf("%s access at offset %d runs past the end of %s (%d bytes)", sized(a.size), a.off, l.Name, l.Size)
	}
	if a.off%a.size != 0 {
		return fmt.Sprintf("%s access at offset %d is misaligned", sized(a.size), a.off)
	}
	return ""
}

// kprobeRules is kprobe_prog_is_valid_access (kernel/trace/bpf_trace.c):
// reads of pt_regs of any size, aligned and inside the struct.
func kprobeRules(k *Kind, a ctxAccess) (conversion, string) {
	if r := readOnlyRule(ptRegsLayout, a); r != "" {
		return conversion{}, r
	}
	return conversion{off: a.off}, ""
}

// tracepointRules is tp_prog_is_valid_access: reads from offset 8 (past the
// common fields of struct trace_entry) up to PERF_MAX_TRACE_SIZE, aligned.
func tracepointRules(k *Kind, a ctxAccess) (conversion, string) {
	if r := readOnlyRule(tracepointLayout, a); r != "" {
		return conversion{}, r
	}
	if a.off < traceEntrySize {
		return conversion{}, "the first 8 bytes of a tracepoint record (struct trace_entry) are not readable"
	}
	return conversion{off: a.off}, ""
}

// rawTPRules is raw_tp_prog_is_valid_access (bpf_tracing_ctx_access in
// include/linux/bpf.h): reads inside u64 args[MAX_BPF_FUNC_ARGS], aligned.
func rawTPRules(k *Kind, a ctxAccess) (conversion, string) {
	if r := readOnlyRule(rawTPLayout, a); r != "" {
		return conversion{}, r
	}
	return conversion{off: a.off}, ""
}

// perfEventRules is pe_prog_is_valid_access: pt_regs members are read with
// 8-byte loads; sample_period and addr also narrower.
func perfEventRules(k *Kind, a ctxAccess) (conversion, string) {
	if r := readOnlyRule(perfEventLayout, a); r != "" {
		return conversion{}, r
	}
	if a.off < PtRegsSize && a.size != 8 {
		return conversion{}, fmt.Sprintf("%s load; registers are read with 8-byte loads", sized(a.size))
	}
	return conversion{off: a.off}, ""
}
