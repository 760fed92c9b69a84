//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/waggle-bpf/waggle/isa"
)

// mustSupported skips the test when this process cannot use the kernel.
func mustSupported(tb testing.TB) {
	tb.Helper()
	if err := Supported(); err != nil {
		tb.Skipf("kernel: %v", err)
	}
}

func mustLoad(tb testing.TB, prog []isa.Instruction, typ ProgType) *Program {
	tb.Helper()
	p, err := Load(prog, LoadOptions{Type: typ})
	if err != nil {
		tb.Fatalf("load: %+v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// Opcode shorthands for hand-built programs.
const (
	mov64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov)
	mov64X = mov64 | isa.Opcode(isa.SourceX)
	mov32X = isa.Opcode(isa.ClassALU) | isa.Opcode(isa.ALUMov) | isa.Opcode(isa.SourceX)
	div64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUDiv)
	mod64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMod)
	ldxw   = isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeW)
	ldxb   = isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeB)
	stb    = isa.Opcode(isa.ClassST) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeB)
	add64  = isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUAdd)
	jgtX   = isa.Opcode(isa.ClassJMP) | isa.Opcode(isa.JumpGT) | isa.Opcode(isa.SourceX)
	exit   = isa.OpExit
)

func TestProgram_Run(t *testing.T) {
	mustSupported(t)
	for _, tc := range []struct {
		name string
		typ  ProgType
		prog []isa.Instruction
		want uint32
	}{
		{"xdp_const", XDP, []isa.Instruction{{Op: mov64, Imm: 42}, {Op: exit}}, 42},
		{"socket_filter_const", SocketFilter, []isa.Instruction{{Op: mov64, Imm: 7}, {Op: exit}}, 7},
		{"sched_cls_const", SchedCLS, []isa.Instruction{{Op: mov64, Imm: 1}, {Op: exit}}, 1},
		// r0 = -7; r0 s/= 2: -3 only if offset 1 reaches the kernel; the
		// unsigned division would give 0x7ffffffffffffffc.
		{"sdiv_keeps_offset", XDP, []isa.Instruction{{Op: mov64, Imm: -7}, {Op: div64, Off: 1, Imm: 2}, {Op: exit}}, uint32(0xfffffffd)},
		{"div_unsigned", XDP, []isa.Instruction{{Op: mov64, Imm: -7}, {Op: div64, Imm: 2}, {Op: exit}}, 0xfffffffc},
		// r0 = -7; r0 s%= 4: -3 (the unsigned modulo gives 1).
		{"smod_keeps_offset", XDP, []isa.Instruction{{Op: mov64, Imm: -7}, {Op: mod64, Off: 1, Imm: 4}, {Op: exit}}, uint32(0xfffffffd)},
		// r1 = 0x80; w0 = (s8)w1: 0xffffff80 (a plain mov gives 0x80).
		{"movsx_keeps_offset", XDP, []isa.Instruction{{Op: mov64, Dst: 1, Imm: 0x80}, {Op: mov32X, Dst: 0, Src: 1, Off: 8}, {Op: exit}}, 0xffffff80},
		{"lddw", XDP, append(lddw(0, 0x1122334455667788), isa.Instruction{Op: exit}), 0x55667788},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustLoad(t, tc.prog, tc.typ)
			res, err := p.Run(&RunOptions{Data: make([]byte, 64)})
			if err != nil {
				t.Fatal(err)
			}
			if res.Retval != tc.want {
				t.Errorf("retval %#x, want %#x", res.Retval, tc.want)
			}
			if len(res.Data) != 64 {
				t.Errorf("data out is %d bytes, want 64", len(res.Data))
			}
		})
	}
}

func lddw(dst isa.Register, v uint64) []isa.Instruction {
	p := isa.LoadImm64(dst, 0, v)
	return p[:]
}

// TestProgram_RunPacket checks data in and out: the program reads byte 0 of
// the packet, writes 0xab into byte 1 and returns the byte it read.
func TestProgram_RunPacket(t *testing.T) {
	mustSupported(t)
	prog := []isa.Instruction{
		{Op: ldxw, Dst: 2, Src: 1, Off: 0}, // r2 = xdp_md.data
		{Op: ldxw, Dst: 3, Src: 1, Off: 4}, // r3 = xdp_md.data_end
		{Op: mov64, Dst: 0, Imm: 99},
		{Op: mov64X, Dst: 4, Src: 2},
		{Op: add64, Dst: 4, Imm: 2},
		{Op: jgtX, Dst: 4, Src: 3, Off: 2}, // if data+2 > data_end goto exit
		{Op: ldxb, Dst: 0, Src: 2, Off: 0},
		{Op: stb, Dst: 2, Off: 1, Imm: 0xab},
		{Op: exit},
	}
	p := mustLoad(t, prog, XDP)
	in := make([]byte, 20)
	in[0] = 0x5a
	out := make([]byte, 100)
	res, err := p.Run(&RunOptions{Data: in, DataOut: out, Repeat: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retval != 0x5a || len(res.Data) != 20 || res.Data[1] != 0xab || in[1] != 0 {
		t.Fatalf("retval %#x, data %x", res.Retval, res.Data)
	}
	if res.Duration <= 0 {
		t.Errorf("duration %v", res.Duration)
	}
	// Too small an output buffer is an error, not a silent truncation.
	if _, err := p.Run(&RunOptions{Data: in, DataOut: make([]byte, 4)}); err == nil {
		t.Error("run with a 4-byte output buffer: no error")
	}
}

// TestProgram_RunContext passes a __sk_buff in and out: the program returns
// skb->mark and sets skb->priority.
func TestProgram_RunContext(t *testing.T) {
	mustSupported(t)
	const stw = isa.Opcode(isa.ClassST) | isa.Opcode(isa.ModeMEM) | isa.Opcode(isa.SizeW)
	prog := []isa.Instruction{
		{Op: ldxw, Dst: 0, Src: 1, Off: 8}, // r0 = skb->mark
		{Op: stw, Dst: 1, Off: 32, Imm: 7}, // skb->priority = 7
		{Op: exit},
	}
	p := mustLoad(t, prog, SchedCLS)
	ctx := make([]byte, 36) // __sk_buff up to priority; len and pkt_type must be 0
	ctx[8], ctx[9] = 0x34, 0x12
	res, err := p.Run(&RunOptions{Data: make([]byte, 64), Context: ctx, ContextOut: make([]byte, 256)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Retval != 0x1234 {
		t.Errorf("retval %#x, want 0x1234", res.Retval)
	}
	if len(res.Context) < 36 || res.Context[32] != 7 {
		t.Errorf("ctx out % x, want priority 7 at offset 32", res.Context)
	}
}

func TestLoad_VerifierError(t *testing.T) {
	mustSupported(t)
	for _, tc := range []struct {
		name string
		prog []isa.Instruction
		want string // in the one-line error
	}{
		{"r0_not_set", []isa.Instruction{{Op: exit}}, "R0 !read_ok"},
		// A reserved field must reach the verifier intact.
		{"mov_imm_offset", []isa.Instruction{{Op: mov64, Off: 1, Imm: 1}, {Op: exit}}, "BPF_MOV uses reserved fields"},
		{"div_by_zero_imm", []isa.Instruction{{Op: mov64, Imm: 1}, {Op: div64, Imm: 0}, {Op: exit}}, "div by zero"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Load(tc.prog, LoadOptions{Type: XDP})
			if err == nil {
				p.Close()
				t.Fatal("loaded")
			}
			var verr *VerifierError
			if !errors.As(err, &verr) {
				t.Fatalf("error %T %v, want *VerifierError", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q, want one line containing %q", err, tc.want)
			}
			if full := fmt.Sprintf("%+v", err); !strings.Contains(full, "verifier log:") {
				t.Errorf("%%+v has no log: %q", full)
			}
		})
	}
}

func TestLoad_Log(t *testing.T) {
	mustSupported(t)
	// A 64-byte buffer is too small for the log: Load must grow it.
	p, err := Load([]isa.Instruction{{Op: mov64, Imm: 1}, {Op: exit}}, LoadOptions{Type: XDP, LogLevel: 1, LogSize: 64})
	if err != nil {
		t.Fatalf("%+v", err)
	}
	defer p.Close()
	if !strings.Contains(p.VerifierLog(), "processed 2 insns") {
		t.Errorf("log %q", p.VerifierLog())
	}
}

// TestLoad_Cost: Cost counts the bpf(2) calls of a load and their time,
// including the repeat with a log of a failing load and the calls that
// grew the log buffer.
func TestLoad_Cost(t *testing.T) {
	mustSupported(t)
	good := []isa.Instruction{{Op: mov64, Imm: 1}, {Op: exit}}
	for _, tc := range []struct {
		name      string
		prog      []isa.Instruction
		opts      LoadOptions
		minCalls  int
		wantError bool
	}{
		{"no log", good, LoadOptions{Type: XDP}, 1, false},
		{"stats", good, LoadOptions{Type: XDP, LogLevel: 4}, 1, false},
		// 64 bytes hold no log line: at least one call grows the buffer.
		{"log grows", good, LoadOptions{Type: XDP, LogLevel: 1, LogSize: 64}, 2, false},
		// Refused without a log, then again with one.
		{"refused", []isa.Instruction{{Op: exit}}, LoadOptions{Type: XDP}, 2, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var cost LoadCost
			tc.opts.Cost = &cost
			p, err := Load(tc.prog, tc.opts)
			if (err != nil) != tc.wantError {
				t.Fatalf("error %v, want one: %v", err, tc.wantError)
			}
			if p != nil {
				p.Close()
			}
			if cost.Calls < tc.minCalls || cost.Wall <= 0 || cost.CPU < 0 {
				t.Errorf("cost %+v, want at least %d calls and some time", cost, tc.minCalls)
			}
		})
	}
}

func TestLoad_BadBytecode(t *testing.T) {
	for _, code := range [][]byte{nil, make([]byte, 7)} {
		if _, err := LoadBytes(code, LoadOptions{Type: XDP}); err == nil {
			t.Errorf("LoadBytes(%d bytes): no error", len(code))
		}
	}
}

func TestProgram_Xlated(t *testing.T) {
	mustSupported(t)
	// xdp_md.data (4 bytes) becomes an 8-byte load of xdp_buff.data.
	p := mustLoad(t, []isa.Instruction{{Op: ldxw, Dst: 0, Src: 1, Off: 0}, {Op: mov64, Imm: 0}, {Op: exit}}, XDP)
	x, err := p.Xlated()
	if err != nil {
		t.Fatal(err)
	}
	if len(x) != 3 || x[0].Op.Size() != isa.SizeDW {
		t.Errorf("xlated %v", x)
	}
}

func TestProgram_Close(t *testing.T) {
	mustSupported(t)
	p := mustLoad(t, []isa.Instruction{{Op: mov64}, {Op: exit}}, XDP)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if p.FD() != -1 {
		t.Error("fd after close", p.FD())
	}
	if _, err := p.Run(&RunOptions{Data: make([]byte, 14)}); !errors.Is(err, ErrClosed) {
		t.Errorf("run after close: %v", err)
	}
	if _, err := p.Xlated(); !errors.Is(err, ErrClosed) {
		t.Errorf("xlated after close: %v", err)
	}
}

// TestAttrLayout pins the offsets of the bpf_attr members against
// include/uapi/linux/bpf.h.
func TestAttrLayout(t *testing.T) {
	var l progLoadAttr
	var r testRunAttr
	var i progInfo
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"prog_load.insns", unsafe.Offsetof(l.insns), 8},
		{"prog_load.log_buf", unsafe.Offsetof(l.logBuf), 32},
		{"prog_load.prog_name", unsafe.Offsetof(l.progName), 48},
		{"prog_load.expected_attach_type", unsafe.Offsetof(l.expectedAttachType), 68},
		{"prog_load.func_info", unsafe.Offsetof(l.funcInfo), 80},
		{"prog_load.line_info", unsafe.Offsetof(l.lineInfo), 96},
		{"prog_load.fd_array", unsafe.Offsetof(l.fdArray), 120},
		{"prog_load.log_true_size", unsafe.Offsetof(l.logTrueSize), 140},
		{"sizeof(prog_load)", unsafe.Sizeof(l), 144},
		{"test.data_in", unsafe.Offsetof(r.dataIn), 16},
		{"test.repeat", unsafe.Offsetof(r.repeat), 32},
		{"test.ctx_in", unsafe.Offsetof(r.ctxIn), 48},
		{"test.batch_size", unsafe.Offsetof(r.batchSize), 72},
		{"sizeof(test)", unsafe.Sizeof(r), 80},
		{"prog_info.xlated_prog_insns", unsafe.Offsetof(i.xlatedProgInsns), 32},
	} {
		if tc.got != tc.want {
			t.Errorf("%s at %d, want %d", tc.name, tc.got, tc.want)
		}
	}
}
