//go:build linux

package progtype_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
)

// The kernel differential tests: the same program and input through
// BPF_PROG_TEST_RUN and through the rewrite and the interpreter must give
// the same verdict, packet and context. They need root and skip without.

func mustKernel(tb testing.TB) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("kernel: %v", err)
	}
}

// mustKernelLoad loads prog into the kernel for a comparison. It skips the
// test, naming what is missing, when this kernel build does not offer the
// program's helpers to its type (one build refuses bpf_xdp_adjust_meta in
// XDP, another accepts it); any other refusal fails the test.
func mustKernelLoad(tb testing.TB, prog []isa.Instruction, typ progtype.Type) *kernel.Program {
	tb.Helper()
	if err := kernel.HelpersSupported(kernel.ProgType(typ), prog); err != nil {
		tb.Skipf("kernel comparison: %v", err)
	}
	kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(typ)})
	if err != nil {
		tb.Fatalf("kernel refused the program: %+v", err)
	}
	return kp
}

// accessProgram is a program that makes one context access through r1 and
// returns 1.
func accessProgram(off, size int, write, signExt, imm bool) []isa.Instruction {
	sz := map[int]isa.Size{1: isa.SizeB, 2: isa.SizeH, 4: isa.SizeW, 8: isa.SizeDW}[size]
	var acc isa.Instruction
	switch {
	case !write && signExt:
		acc = isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEMSX) | isa.Opcode(sz), Dst: isa.R2, Src: isa.R1, Off: int16(off)}
	case !write:
		acc = isa.Instruction{Op: isa.Opcode(isa.ClassLDX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(sz), Dst: isa.R2, Src: isa.R1, Off: int16(off)}
	case imm:
		acc = isa.Instruction{Op: isa.Opcode(isa.ClassST) | isa.Opcode(isa.ModeMEM) | isa.Opcode(sz), Dst: isa.R1, Off: int16(off), Imm: 7}
	default:
		acc = isa.Instruction{Op: isa.Opcode(isa.ClassSTX) | isa.Opcode(isa.ModeMEM) | isa.Opcode(sz), Dst: isa.R1, Src: isa.R2, Off: int16(off)}
	}
	mov := isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov)
	return []isa.Instruction{
		{Op: mov, Dst: isa.R2, Imm: 0},
		acc,
		// 1 is a return value every type takes (cgroup_sock_addr's
		// recvmsg, getpeername and getsockname hooks take only 1).
		{Op: mov, Dst: isa.R0, Imm: 1},
		{Op: isa.OpExit},
	}
}

// sweepTypes are the types whose access rules are compared with the
// kernel's, with the size of their context.
var sweepTypes = []struct {
	typ    progtype.Type
	size   int
	attach progtype.AttachType
}{
	{progtype.XDP, 24, 0},
	{progtype.SocketFilter, 192, 0},
	{progtype.SchedCLS, 192, 0},
	{progtype.SchedACT, 192, 0},
	{progtype.CgroupSKB, 192, 0},
	{progtype.Kprobe, progtype.PtRegsSize, 0},
	{progtype.RawTracepoint, 8 * progtype.RawTracepointArgs, 0},
	{progtype.PerfEvent, progtype.PerfEventDataSize, 0},
	{progtype.Tracepoint, 64, 0},
	{progtype.LWTIn, 192, 0},
	{progtype.LWTOut, 192, 0},
	{progtype.LWTXmit, 192, 0},
	{progtype.LWTSeg6Local, 192, 0},
	{progtype.FlowDissector, 192, progtype.AttachFlowDissector},
	{progtype.CgroupSock, progtype.BpfSockSize, progtype.AttachCgroupInetSockCreate},
	{progtype.CgroupSock, progtype.BpfSockSize, progtype.AttachCgroupInet4PostBind},
	{progtype.CgroupSock, progtype.BpfSockSize, progtype.AttachCgroupInet6PostBind},
	{progtype.SockOps, progtype.SockOpsSize, 0},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupInet4Connect},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupInet6Bind},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupUDP4Sendmsg},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupUDP6Sendmsg},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupUDP4Recvmsg},
	{progtype.CgroupSockAddr, 72, progtype.AttachCgroupInet6Getpeer},
	{progtype.SkLookup, progtype.SkLookupSize, progtype.AttachSkLookup},
}

// accessForms are the kinds of access the sweep tries.
var accessForms = []struct {
	name                string
	write, signExt, imm bool
}{
	{"ldx", false, false, false},
	{"ldsx", false, true, false},
	{"stx", true, false, false},
	{"st", true, false, true},
}

// TestKernel_accessRules loads, for every program type, offset, size and
// form of access, a program making that one context access into the kernel
// and asks the rewrite; both must accept or both refuse.
func TestKernel_accessRules(t *testing.T) {
	mustKernel(t)
	var total, accepted atomic.Int64
	forms := accessForms
	if testing.Short() {
		forms = forms[:1:1]
		forms = append(forms, accessForms[2])
	}
	t.Cleanup(func() { t.Logf("%d accesses compared, %d accepted by both", total.Load(), accepted.Load()) })
	for _, st := range sweepTypes {
		k, err := progtype.LookupAttach(st.typ, st.attach)
		if err != nil {
			t.Fatal(err)
		}
		name := st.typ.String()
		if st.attach != 0 {
			name += fmt.Sprintf("/attach%d", st.attach)
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := kernel.ProgramTypeSupported(kernel.ProgType(st.typ)); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
			for off := -8; off < st.size+8; off++ {
				for _, size := range []int{1, 2, 4, 8} {
					for _, f := range forms {
						if f.signExt && size == 8 {
							continue // there is no 8-byte sign-extending load
						}
						prog := accessProgram(off, size, f.write, f.signExt, f.imm)
						kp, kerr := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(st.typ), ExpectedAttachType: uint32(st.attach)})
						if kerr == nil {
							kp.Close()
						}
						_, werr := k.Convert(prog, []int{1})
						total.Add(1)
						if why := knownAccessDiff(st.typ, off, size, f.write); why != "" && kerr == nil && werr != nil {
							continue
						}
						if (kerr == nil) != (werr == nil) {
							var ve *kernel.VerifierError
							klog := fmt.Sprint(kerr)
							if errors.As(kerr, &ve) {
								klog = lastLine(ve.Log)
							}
							t.Errorf("%s off %d size %d: kernel %v, waggle %v", f.name, off, size, klog, werr)
						}
						if werr == nil {
							accepted.Add(1)
						}
					}
				}
			}
		})
	}
}

// knownAccessDiff explains the accesses the kernel accepts and waggle
// refuses on purpose.
func knownAccessDiff(t progtype.Type, off, size int, write bool) string {
	switch {
	case t == progtype.Tracepoint && off < 0 && !write:
		// tp_prog_is_valid_access compares a negative int offset with
		// sizeof(void *) as unsigned, so it lets programs read before
		// the trace record; waggle keeps reads inside it.
		return "the kernel accepts reads before a tracepoint record"
	}
	return ""
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "processed") && !strings.HasPrefix(l, "verification time") {
			return l
		}
	}
	return ""
}

// errnoOf returns the errno an error wraps, 0 for none.
func errnoOf(err error) int {
	var e syscall.Errno
	if errors.As(err, &e) {
		return int(e)
	}
	return 0
}

// diffInput is one input of a differential run.
type diffInput struct {
	name string
	in   progtype.Input
}

// skbPackets are the packets the socket buffer types are run on.
func skbInputs() []diffInput {
	ctx := make([]byte, 192)
	le32 := func(off int, v uint32) {
		ctx[off], ctx[off+1], ctx[off+2], ctx[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le32(8, 0xdeadbeef) // mark
	le32(32, 0x10007)   // priority
	le32(36, 3)         // ingress_ifindex
	le32(40, 1)         // ifindex
	for i := 0; i < 5; i++ {
		le32(48+4*i, 0x01020304*uint32(i+1))
	}
	le32(152, 0x9abcdef0) // tstamp
	le32(156, 0x12345678)
	le32(164, 3)    // gso_segs
	le32(176, 1400) // gso_size
	le32(184, 0x55667788)
	le32(188, 0x11223344) // hwtstamp
	withWire := append([]byte(nil), ctx...)
	le32w := func(b []byte, off int, v uint32) {
		b[off], b[off+1], b[off+2], b[off+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	le32w(withWire, 160, 200)
	var out []diffInput
	for _, p := range testPackets()[:2] {
		out = append(out, diffInput{p.name + "+csum", progtype.Input{Data: p.data, Context: ctx, Flags: progtype.FlagSkbChecksumComplete}})
	}
	out = append(out, diffInput{"vlan+csum", progtype.Input{Data: testPackets()[5].data, Flags: progtype.FlagSkbChecksumComplete}})
	for _, p := range testPackets() {
		out = append(out,
			diffInput{p.name, progtype.Input{Data: p.data}},
			diffInput{p.name + "+ctx", progtype.Input{Data: p.data, Context: ctx}},
			diffInput{p.name + "+wire", progtype.Input{Data: p.data, Context: withWire}},
		)
	}
	return out
}

// xdpInputs are the inputs XDP programs run on.
func xdpInputs() []diffInput {
	udp := ipv4UDP()
	ctx := func(data, end, ifindex, rxq uint32) []byte {
		b := make([]byte, 24)
		for i, v := range []uint32{data, end, 0, ifindex, rxq} {
			b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
		return b
	}
	meta := append([]byte{1, 2, 3, 4, 5, 6, 7, 8}, udp...)
	return []diffInput{
		{"plain", progtype.Input{Data: udp}},
		{"ctx", progtype.Input{Data: udp, Context: ctx(0, uint32(len(udp)), 0, 0)}},
		{"ctx_lo", progtype.Input{Data: udp, Context: ctx(0, uint32(len(udp)), 1, 0)}},
		{"meta", progtype.Input{Data: meta, Context: ctx(8, uint32(len(meta)), 1, 0)}},
		{"ipv6", progtype.Input{Data: ipv6TCP()}},
	}
}

// rawTPInputs are raw tracepoint arguments.
func rawTPInputs() []diffInput {
	args := make([]byte, 96)
	for i := range args {
		args[i] = byte(0x80 + i*7)
	}
	return []diffInput{{"args", progtype.Input{Context: args}}, {"short", progtype.Input{Context: args[:16]}}}
}

// diffRun runs prog on in in the kernel and in waggle and reports any
// difference in the error, the return value, the packet and the context.
func diffRun(t *testing.T, k *progtype.Kind, prog []isa.Instruction, kp *kernel.Program, name string, in progtype.Input) bool {
	t.Helper()
	return diffRunRepeat(t, k, prog, kp, name, in, 0)
}

// diffRunRepeat is diffRun with BPF_PROG_TEST_RUN's repeat.
func diffRunRepeat(t *testing.T, k *progtype.Kind, prog []isa.Instruction, kp *kernel.Program, name string, in progtype.Input, repeat uint32) bool {
	t.Helper()
	opts := &kernel.RunOptions{Data: in.Data, Context: in.Context, Flags: in.Flags, Repeat: repeat}
	if len(in.Data) > 0 {
		opts.DataOut = make([]byte, 20000)
	}
	switch k.Type() {
	case progtype.XDP:
		if in.Context != nil {
			opts.ContextOut = make([]byte, 24)
		}
	case progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB,
		progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit:
		opts.ContextOut = make([]byte, 192)
	case progtype.SkLookup:
		opts.ContextOut = make([]byte, progtype.SkLookupSize)
	case progtype.FlowDissector:
		if in.Context != nil {
			opts.ContextOut = make([]byte, progtype.FlowKeysSize)
		}
	}
	kres, kerr := kp.Run(opts)
	wres, werr := runProg(t, checked, k, prog, in, int(repeat))
	if kerr != nil || werr != nil {
		if kerr == nil || werr == nil || errnoOf(kerr) != waggleErrno(werr) {
			t.Errorf("%s: kernel error %v, waggle error %v", name, kerr, werr)
			return false
		}
		return true
	}
	ok := true
	if kres.Retval != wres.Retval {
		t.Errorf("%s: retval kernel %#x, waggle %#x", name, kres.Retval, wres.Retval)
		ok = false
	}
	if !bytesEqual(kres.Data, wres.Data) {
		t.Errorf("%s: data out differs\nkernel %x\nwaggle %x", name, kres.Data, wres.Data)
		ok = false
	}
	if opts.ContextOut != nil && !bytesEqual(kres.Context, wres.Context) {
		t.Errorf("%s: ctx out differs\nkernel %x\nwaggle %x", name, kres.Context, wres.Context)
		ok = false
	}
	return ok
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// fieldTypes are the types whose context values are compared.
var fieldTypes = []struct {
	typ    progtype.Type
	size   int
	inputs func() []diffInput
}{
	{progtype.XDP, 24, xdpInputs},
	{progtype.SocketFilter, 192, skbInputs},
	{progtype.SchedCLS, 192, skbInputs},
	{progtype.SchedACT, 192, skbInputs},
	{progtype.CgroupSKB, 192, skbInputs},
	{progtype.RawTracepoint, 96, rawTPInputs},
	{progtype.LWTIn, 192, skbInputs},
	{progtype.LWTOut, 192, skbInputs},
	{progtype.LWTXmit, 192, skbInputs},
}

// TestKernel_fields reads every readable byte range of every context field
// (each size and offset the kernel accepts, zero- and sign-extending) and
// writes every writable one, on many inputs, in the kernel and in waggle.
func TestKernel_fields(t *testing.T) {
	mustKernel(t)
	progs, runs := 0, 0
	fields := map[string]bool{}
	for _, ft := range fieldTypes {
		k := mustKind(t, ft.typ)
		inputs := ft.inputs()
		if testing.Short() && len(inputs) > 4 {
			inputs = inputs[:4]
		}
		t.Run(ft.typ.String(), func(t *testing.T) {
			if err := kernel.ProgramTypeSupported(kernel.ProgType(ft.typ)); err != nil {
				t.Skipf("kernel comparison: %v", err)
			}
			for off := 0; off < ft.size; off++ {
				for _, size := range []int{1, 2, 4, 8} {
					for _, f := range accessForms {
						if f.signExt && size == 8 {
							continue
						}
						if _, err := k.CheckAccess(off, size, f.write, f.signExt); err != nil {
							continue
						}
						fld := k.Context().Field(off)
						if fld.Kind == progtype.Pointer {
							continue // addresses differ; see TestKernel_programs
						}
						for _, prog := range fieldPrograms(k, off, size, f.write, f.signExt, f.imm) {
							kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(ft.typ)})
							if err != nil {
								t.Fatalf("%s off %d size %d: kernel refused the program: %v", f.name, off, size, err)
							}
							progs++
							fields[ft.typ.String()+"."+fld.Name] = true
							for _, in := range inputs {
								runs++
								if !diffRun(t, k, prog, kp, fmt.Sprintf("%s off %d size %d on %s", f.name, off, size, in.name), in.in) {
									t.Logf("program:\n%s", disasm(prog))
								}
							}
							kp.Close()
						}
					}
				}
			}
		})
	}
	t.Logf("%d programs, %d fields, %d runs compared", progs, len(fields), runs)
}

// fieldPrograms are the programs that read (returning the low and the high
// half of what they read) or write (then read back the field) one access.
func fieldPrograms(k *progtype.Kind, off, size int, write, signExt, imm bool) [][]isa.Instruction {
	ld := map[int]string{1: "u8", 2: "u16", 4: "u32", 8: "u64"}[size]
	if signExt {
		ld = map[int]string{1: "s8", 2: "s16", 4: "s32"}[size]
	}
	// cgroup_skb programs must return 0 or 1: they leave what they read
	// in cb[0] and cb[1], which ctx_out carries.
	exit := "exit"
	if k.Type() == progtype.CgroupSKB {
		exit = "r2 = r0\nr2 >>= 32\n*(u32 *)(r1 + 52) = r2\n*(u32 *)(r1 + 48) = r0\nr0 = 1\nexit"
	}
	if !write {
		lo := fmt.Sprintf("r0 = *(%s *)(r1 %+d)\n%s", ld, off, exit)
		hi := fmt.Sprintf("r0 = *(%s *)(r1 %+d)\nr0 >>= 32\n%s", ld, off, exit)
		return [][]isa.Instruction{mustParseNoTB(lo), mustParseNoTB(hi)}
	}
	f := k.Context().Field(off)
	back := fmt.Sprintf("r0 = *(u32 *)(r1 %+d)", f.Off)
	if f.Size == 8 {
		back = fmt.Sprintf("r0 = *(u64 *)(r1 %+d)\nr0 >>= 8", f.Off)
	}
	if f.Kind == progtype.Array {
		back = fmt.Sprintf("r0 = *(u32 *)(r1 %+d)", off&^3)
	}
	var progs [][]isa.Instruction
	for _, v := range []string{"0x12345678", "0xffff", "0xfffe", "-0x2"} {
		if f.Name == "queue_mapping" && !imm && v != "0xfffe" {
			// The kernel ignores stores of values >= NO_QUEUE_MAPPING
			// with a compare the one-instruction rewrite cannot
			// express; waggle stores them truncated (see skbRules).
			continue
		}
		store := fmt.Sprintf("r2 = %s ll\n*(%s *)(r1 %+d) = r2", v, ld, off)
		if imm {
			store = fmt.Sprintf("*(%s *)(r1 %+d) = %s", ld, off, v)
		}
		progs = append(progs, mustParseNoTB(store+"\n"+back+"\n"+exit))
	}
	return progs
}

// programCase is a hand-written program run on several inputs.
type programCase struct {
	name   string
	typ    progtype.Type
	src    string
	inputs func() []diffInput
	repeat uint32
}

// xdpEpilogue returns data_end - data and data - data_meta, with the
// helper's result in r7: r0 = r7 << 16 ^ (data_end - data) ^ (data - data_meta) << 12.
const xdpEpilogue = `
	r2 = *(u32 *)(r6 + 0)
	r3 = *(u32 *)(r6 + 4)
	r4 = *(u32 *)(r6 + 8)
	r0 = r3
	r0 -= r2
	r2 -= r4
	r2 <<= 12
	r0 ^= r2
	r7 <<= 16
	r0 ^= r7
	exit`

// skbEpilogue returns len and data_end - data with the helper's result
// in r7, and stores the protocol and the VLAN fields in cb[0..2].
const skbEpilogue = `
	r2 = *(u32 *)(r6 + 16)
	*(u32 *)(r6 + 48) = r2
	r2 = *(u32 *)(r6 + 20)
	r3 = *(u32 *)(r6 + 24)
	r2 <<= 16
	r2 |= r3
	*(u32 *)(r6 + 52) = r2
	r2 = *(u32 *)(r6 + 28)
	*(u32 *)(r6 + 56) = r2
	r2 = *(u32 *)(r6 + 68)
	*(u32 *)(r6 + 60) = r2
	r2 = *(u32 *)(r6 + 76)
	r3 = *(u32 *)(r6 + 80)
	r0 = r3
	r0 -= r2
	r0 <<= 12
	r2 = *(u32 *)(r6 + 0)
	r0 ^= r2
	r7 <<= 20
	r0 ^= r7
	exit`

func xdpCall(id int, args string) string {
	return "r6 = r1\n" + args + fmt.Sprintf("\ncall %d\nr7 = r0\n", id) + xdpEpilogue
}

func skbCall(id int, args string) string {
	return "r6 = r1\n" + args + fmt.Sprintf("\ncall %d\nr7 = r0\n", id) + skbEpilogue
}

func tcOnly(id int, args string) programCase {
	return programCase{typ: progtype.SchedCLS, src: skbCall(id, args), inputs: skbInputs}
}

// programCases exercise the helpers and the packet layouts.
func programCases() []programCase {
	var cs []programCase
	add := func(name string, typ progtype.Type, src string, inputs func() []diffInput) {
		cs = append(cs, programCase{name: name, typ: typ, src: src, inputs: inputs})
	}
	add("xdp_fields", progtype.XDP, `
		r6 = r1
		r2 = *(u32 *)(r6 + 0)
		r3 = *(u32 *)(r6 + 4)
		r5 = r2
		r5 += 8
		if r5 > r3 goto out
		r4 = *(u32 *)(r6 + 12)
		*(u32 *)(r2 + 0) = r4
		r4 = *(u32 *)(r6 + 16)
		*(u32 *)(r2 + 4) = r4
	out:
		r7 = 0`+xdpEpilogue, xdpInputs)
	for _, off := range []int{-14, 14, -1, -256, -216, -215, -212, 100, 28, 29, -40} {
		add(fmt.Sprintf("xdp_adjust_head_%d", off), progtype.XDP, xdpCall(44, fmt.Sprintf("r2 = %d", off))+"", xdpInputs)
	}
	for _, off := range []int{10, -10, 3000, 3500, 4000, -28, -29, -1000} {
		add(fmt.Sprintf("xdp_adjust_tail_%d", off), progtype.XDP, xdpCall(65, fmt.Sprintf("r2 = %d", off)), xdpInputs)
	}
	for _, off := range []int{-4, -8, -3, -32, -36, -216, -220, -252, -256, 4, 8} {
		add(fmt.Sprintf("xdp_adjust_meta_%d", off), progtype.XDP, xdpCall(54, fmt.Sprintf("r2 = %d", off)), xdpInputs)
	}
	add("xdp_meta_then_head", progtype.XDP, `
		r6 = r1
		r2 = -8
		call 54
		r2 = *(u32 *)(r6 + 8)
		r3 = *(u32 *)(r6 + 0)
		r4 = r2
		r4 += 8
		if r4 > r3 goto out
		r5 = 0x11223344
		*(u32 *)(r2 + 0) = r5
		*(u32 *)(r2 + 4) = r5
		r1 = r6
		r2 = -14
		call 44
		r1 = r6
		r2 = 20
		call 65
	out:
		r7 = 0`+xdpEpilogue, xdpInputs)
	add("xdp_write_head", progtype.XDP, `
		r6 = r1
		r2 = -20
		call 44
		r7 = r0
		r2 = *(u32 *)(r6 + 0)
		r3 = *(u32 *)(r6 + 4)
		r4 = r2
		r4 += 20
		if r4 > r3 goto out
		r5 = 0x5a5a5a5a
		*(u32 *)(r2 + 0) = r5
		*(u32 *)(r2 + 16) = r5
	out:`+xdpEpilogue, xdpInputs)
	for _, c := range []struct{ ifindex, flags int }{{5, 0}, {5, 1}, {0, 0}} {
		add(fmt.Sprintf("xdp_redirect_%d_%d", c.ifindex, c.flags), progtype.XDP,
			fmt.Sprintf("r1 = %d\nr2 = %d\ncall 23\nexit", c.ifindex, c.flags), xdpInputs)
	}
	add("xdp_csum_diff", progtype.XDP, `
		r1 = 0x0a000001
		*(u32 *)(r10 - 8) = r1
		r1 = 0x0a000102
		*(u32 *)(r10 - 4) = r1
		r1 = 0x7f000001
		*(u32 *)(r10 - 16) = r1
		r1 = 0xc0a80001
		*(u32 *)(r10 - 12) = r1
		r1 = r10
		r1 += -8
		r2 = 8
		r3 = r10
		r3 += -16
		r4 = 8
		r5 = 0x1234
		call 28
		exit`, xdpInputs)
	for _, c := range []struct{ from, to, seed string }{{"0", "4", "0"}, {"4", "0", "0xffff"}, {"8", "8", "0xfffffff0"}, {"3", "4", "0"}} {
		add("xdp_csum_diff_"+c.from+"_"+c.to, progtype.XDP, fmt.Sprintf(`
			r1 = -1
			*(u64 *)(r10 - 8) = r1
			r1 = 0x1234567
			*(u64 *)(r10 - 16) = r1
			r1 = r10
			r1 += -8
			r2 = %s
			r3 = r10
			r3 += -16
			r4 = %s
			r5 = %s
			call 28
			exit`, c.from, c.to, c.seed), xdpInputs)
	}
	for _, c := range []struct{ off, n int }{{0, 4}, {10, 4}, {38, 4}, {39, 4}, {0, 42}} {
		add(fmt.Sprintf("xdp_load_store_bytes_%d_%d", c.off, c.n), progtype.XDP, fmt.Sprintf(`
			r6 = r1
			r2 = %d
			r3 = r10
			r3 += -64
			r4 = %d
			call 189
			r7 = r0
			r1 = r6
			r2 = 0
			r3 = r10
			r3 += -64
			r4 = %d
			call 190
			r7 <<= 8
			r7 ^= r0
		`, c.off, c.n, c.n)+xdpEpilogue, xdpInputs)
	}
	add("xdp_get_buff_len", progtype.XDP, "call 188\nexit", xdpInputs)
	cs = append(cs, skbProgramCases()...)
	cs = append(cs, programCase{name: "xdp_repeat_head", typ: progtype.XDP, src: xdpCall(44, "r2 = -2"), inputs: xdpInputs, repeat: 5})
	cs = append(cs, programCase{name: "xdp_repeat_meta_tail", typ: progtype.XDP, src: `
		r6 = r1
		r2 = -4
		call 54
		r1 = r6
		r2 = 3
		call 65
		r7 = r0` + xdpEpilogue, inputs: xdpInputs, repeat: 7})
	return cs
}

// TestKernel_programs runs hand-written programs that use the helpers
// specific to XDP and socket buffer programs.
func TestKernel_programs(t *testing.T) {
	mustKernel(t)
	runs := 0
	for _, c := range programCases() {
		t.Run(c.name, func(t *testing.T) {
			k := mustKind(t, c.typ)
			prog := mustParse(t, c.src)
			kp := mustKernelLoad(t, prog, c.typ)
			defer kp.Close()
			for _, in := range c.inputs() {
				runs++
				diffRunRepeat(t, k, prog, kp, in.name, in.in, c.repeat)
			}
		})
	}
	t.Logf("%d programs, %d runs compared", len(programCases()), runs)
}

// storeStack puts v in the 4 bytes at r10-8 and the next 4 bytes at r10-4.
const storeStack = `
	r2 = 0x0a000063
	*(u32 *)(r10 - 8) = r2
	r2 = 0x11223344
	*(u32 *)(r10 - 4) = r2`

// skbProgramCases exercise the socket buffer helpers.
func skbProgramCases() []programCase {
	var cs []programCase
	add := func(name string, typ progtype.Type, src string) {
		cs = append(cs, programCase{name: name, typ: typ, src: src, inputs: skbInputs})
	}
	tc := func(name, src string) { add(name, progtype.SchedCLS, src) }
	tc("tc_fields", `
		r6 = r1
		r2 = *(u32 *)(r6 + 76)
		r3 = *(u32 *)(r6 + 80)
		r4 = *(u32 *)(r6 + 140)
		r7 = r2
		r7 -= r4
		r5 = r2
		r5 += 16
		if r5 > r3 goto out
		r4 = *(u32 *)(r6 + 4)
		*(u32 *)(r2 + 0) = r4
		r4 = *(u32 *)(r6 + 40)
		*(u32 *)(r2 + 4) = r4
		r4 = *(u32 *)(r6 + 160)
		*(u32 *)(r2 + 8) = r4
		r4 = *(u32 *)(r6 + 0)
		*(u32 *)(r2 + 12) = r4
	out:`+skbEpilogue)
	for _, c := range []struct {
		off, n int
		flags  string
	}{{0, 4, "0"}, {30, 4, "0"}, {30, 4, "1"}, {30, 4, "2"}, {30, 4, "3"}, {30, 4, "4"}, {38, 8, "0"}, {39, 8, "0"}, {-1, 4, "0"}, {0x7fffffff, 4, "0"}} {
		tc(fmt.Sprintf("skb_store_bytes_%d_%d_%s", c.off, c.n, c.flags), skbCall(9, fmt.Sprintf(`
			r2 = 0x0a000063
			*(u32 *)(r10 - 8) = r2
			r2 = 0x11223344
			*(u32 *)(r10 - 4) = r2
			r1 = r6
			r2 = %d
			r3 = r10
			r3 += -8
			r4 = %d
			r5 = %s`, c.off, c.n, c.flags)))
	}
	for _, typ := range []progtype.Type{progtype.SchedCLS, progtype.SocketFilter, progtype.CgroupSKB} {
		for _, c := range []struct{ off, n int }{{0, 4}, {14, 8}, {38, 4}, {39, 8}, {0, 64}, {-1, 4}} {
			src := fmt.Sprintf(zeroStack+`
				r6 = r1
				r2 = %d
				r3 = r10
				r3 += -64
				r4 = %d
				call 26
				r7 = r0
				r0 = *(u32 *)(r10 - 64)
				r1 = *(u32 *)(r10 - 60)
				r0 ^= r1
				r1 = *(u32 *)(r10 %+d)
				r0 ^= r1
				r7 <<= 20
				r0 ^= r7
				exit`, c.off, c.n, -64+((c.n-4)&^3))
			for r := 0; r < 3; r++ {
				src2 := fmt.Sprintf(zeroStack+`
				r6 = r1
				r2 = %d
				r3 = r10
				r3 += -64
				r4 = %d
				r5 = %d
				call 68
				r7 = r0
				r0 = *(u32 *)(r10 - 64)
				r1 = *(u32 *)(r10 %+d)
				r0 ^= r1
				r7 <<= 20
				r0 ^= r7
				exit`, c.off, c.n, r, -64+((c.n-4)&^3))
				if typ == progtype.CgroupSKB {
					src2 = cgWrap(src2)
				}
				add(fmt.Sprintf("%s_load_bytes_relative_%d_%d_%d", typ, c.off, c.n, r), typ, src2)
			}
			if typ == progtype.CgroupSKB {
				src = cgWrap(src)
			}
			add(fmt.Sprintf("%s_load_bytes_%d_%d", typ, c.off, c.n), typ, src)
		}
	}
	// cgroup_skb's data_end is data + len.
	add("cgroup_skb_data_end", progtype.CgroupSKB, `
		r2 = *(u32 *)(r1 + 76)
		r3 = *(u32 *)(r1 + 80)
		r4 = *(u32 *)(r1 + 0)
		r4 &= 0xffff
		r2 += r4
		r0 = 0
		if r2 > r3 goto out
		r2 += 1
		r0 = 1
		if r2 > r3 goto out
		r0 = 0
	out:
		exit`)
	add("socket_filter_ld_abs", progtype.SocketFilter, `
		r6 = r1
		r0 = *(u8 *)skb[0]
		r7 = r0
		r0 = *(u16 *)skb[2]
		r7 ^= r0
		r0 = *(u32 *)skb[16]
		r7 ^= r0
		r8 = 4
		r0 = *(u32 *)skb[r8 + 8]
		r7 ^= r0
		r0 = r7
		exit`)
	add("socket_filter_ld_abs_out", progtype.SocketFilter, `
		r6 = r1
		r0 = *(u32 *)skb[1000]
		r0 = 5
		exit`)
	add("tc_ld_abs", progtype.SchedCLS, `
		r6 = r1
		r0 = *(u16 *)skb[12]
		exit`)
	// l3_csum_replace: rewrite the IPv4 destination, then fix the header
	// checksum by the field (4 or 2 bytes) or by a csum_diff.
	for _, c := range []struct{ off, flags string }{{"24", "4"}, {"24", "2"}, {"25", "4"}, {"24", "0x14"}, {"24", "3"}, {"100", "4"}} {
		tc("l3_csum_replace_"+c.off+"_"+c.flags, `
			r6 = r1
			r2 = 0x0300000a
			*(u32 *)(r10 - 8) = r2
			r1 = r6
			r2 = 30
			r3 = r10
			r3 += -8
			r4 = 4
			r5 = 0
			call 9
			r1 = r6
			r2 = `+c.off+`
			r3 = 0x0200000a
			r4 = 0x0300000a
			r5 = `+c.flags+`
			call 10
			r7 = r0`+skbEpilogue)
	}
	tc("l3_csum_replace_diff", `
		r6 = r1
		r2 = 0x0200000a
		*(u32 *)(r10 - 8) = r2
		r2 = 0x0300000a
		*(u32 *)(r10 - 4) = r2
		r1 = r10
		r1 += -8
		r2 = 4
		r3 = r10
		r3 += -4
		r4 = 4
		r5 = 0
		call 28
		r8 = r0
		r1 = r6
		r2 = 30
		r3 = r10
		r3 += -4
		r4 = 4
		r5 = 0
		call 9
		r1 = r6
		r2 = 24
		r3 = 0
		r4 = r8
		r5 = 0
		call 10
		r7 = r0`+skbEpilogue)
	// l4_csum_replace on the UDP checksum (zero in the test packet, so
	// MARK_MANGLED_0 matters) and on a non-zero one set first.
	for _, flags := range []string{"0x14", "0x34", "0x74", "0x12", "4", "0x24", "0x94", "0x104", "0"} {
		for _, preset := range []string{"0", "0x1234"} {
			tc("l4_csum_replace_"+flags+"_"+preset, `
				r6 = r1
				r2 = `+preset+`
				*(u16 *)(r10 - 2) = r2
				r1 = r6
				r2 = 40
				r3 = r10
				r3 += -2
				r4 = 2
				r5 = 0
				call 9
				r1 = r6
				r2 = 40
				r3 = 0x0200000a
				r4 = 0x0300000a
				r5 = `+flags+`
				call 11
				r7 = r0`+skbEpilogue)
		}
	}
	tc("csum_update", skbCall(40, "r2 = 0x1234"))
	tc("csum_level_query", skbCall(135, "r2 = 0"))
	tc("csum_level_inc_query", `
		r6 = r1
		r2 = 1
		call 135
		r1 = r6
		r2 = 0
		call 135
		r7 = r0`+skbEpilogue)
	for _, c := range []string{"14", "0", "1", "100"} {
		tc("skb_pull_data_"+c, skbCall(39, "r2 = "+c))
	}
	for _, c := range []string{"0", "3", "4", "1"} {
		tc("skb_change_type_"+c, skbCall(32, "r2 = "+c))
	}
	for _, c := range []struct{ room, flags string }{{"14", "0"}, {"1", "0"}, {"0", "0"}, {"14", "1"}, {"16000", "0"}, {"17000", "0"}, {"-1", "0"}} {
		tc("skb_change_head_"+c.room+"_"+c.flags, skbCall(43, "r2 = "+c.room+"\nr3 = "+c.flags))
	}
	for _, c := range []struct{ n, flags string }{{"100", "0"}, {"60", "0"}, {"20", "0"}, {"14", "0"}, {"13", "0"}, {"16064", "0"}, {"16065", "0"}, {"100", "1"}} {
		tc("skb_change_tail_"+c.n+"_"+c.flags, skbCall(38, "r2 = "+c.n+"\nr3 = "+c.flags))
	}
	for _, c := range []struct{ diff, mode, flags string }{
		{"8", "0", "0"}, {"-8", "0", "0"}, {"8", "1", "0"}, {"-4", "1", "0"}, {"20", "1", "0x12"},
		{"28", "0", "0x12"}, {"20", "1", "0xa"}, {"20", "1", "0x6"}, {"0x1000", "0", "0"},
		{"-20", "1", "0x80"}, {"-20", "1", "0x100"}, {"8", "1", "0x80"}, {"8", "2", "0"},
		{"-40", "0", "0"}, {"-1", "0", "0x20"}, {"0", "0", "0"}, {"20", "1", "0x0e00000000000052"},
		{"10", "1", "0x0e00000000000052"}, {"8", "0", "0x400"},
	} {
		tc("skb_adjust_room_"+c.diff+"_"+c.mode+"_"+c.flags, skbCall(50, "r2 = "+c.diff+"\nr3 = "+c.mode+"\nr4 = "+c.flags+" ll"))
	}
	tc("skb_adjust_room_twice", `
		r6 = r1
		r2 = 20
		r3 = 1
		r4 = 2
		call 50
		r1 = r6
		r2 = 20
		r3 = 1
		r4 = 2
		call 50
		r7 = r0`+skbEpilogue)
	for _, p := range []string{"0x81", "0xa888", "0x8", "0"} {
		tc("skb_vlan_push_"+p, skbCall(18, "r2 = "+p+"\nr3 = 0x2345"))
		tc("skb_vlan_push_twice_"+p, `
			r6 = r1
			r2 = `+p+`
			r3 = 0x17
			call 18
			r1 = r6
			r2 = 0x81
			r3 = 0xfff
			call 18
			r7 = r0`+skbEpilogue)
	}
	tc("skb_vlan_pop", skbCall(19, ""))
	tc("skb_vlan_pop_twice", `
		r6 = r1
		call 19
		r1 = r6
		call 19
		r7 = r0`+skbEpilogue)
	tc("skb_vlan_push_pop", `
		r6 = r1
		r2 = 0x81
		r3 = 0x55
		call 18
		r1 = r6
		r2 = 0x81
		r3 = 0x66
		call 18
		r1 = r6
		call 19
		r7 = r0`+skbEpilogue)
	tc("skb_vlan_push_write", `
		r6 = r1
		r2 = 0x81
		r3 = 0x55
		call 18
		r2 = *(u32 *)(r6 + 76)
		r3 = *(u32 *)(r6 + 80)
		r4 = r2
		r4 += 14
		if r4 > r3 goto out
		r5 = 0x77
		*(u8 *)(r2 + 13) = r5
	out:
		r7 = 0`+skbEpilogue)
	tc("set_hash", `
		r6 = r1
		r2 = 0x1234
		call 48
		r1 = r6
		call 34
		r7 = r0`+skbEpilogue)
	tc("set_hash_invalid", `
		r6 = r1
		r2 = 0x1234
		call 48
		r1 = r6
		call 41
		r7 = 0`+skbEpilogue)
	tc("get_hash_recalc_nonzero", `
		call 34
		if r0 == 0 goto out
		r0 = 1
	out:
		exit`)
	tc("store_bytes_invalidate_hash", `
		r6 = r1
		r2 = 0x99
		call 48
		r2 = 0
		*(u32 *)(r10 - 4) = r2
		r1 = r6
		r2 = 60
		r3 = r10
		r3 += -4
		r4 = 1
		r5 = 2
		call 9
		r7 = r0`+skbEpilogue)
	for _, c := range []struct{ ifindex, flags string }{{"3", "0"}, {"3", "1"}, {"3", "2"}, {"0", "0"}} {
		tc("redirect_"+c.ifindex+"_"+c.flags, "r1 = "+c.ifindex+"\nr2 = "+c.flags+"\ncall 23\nexit")
	}
	for _, proto := range []string{"0xdd86", "0x8", "0x81"} {
		tc("skb_change_proto_"+proto, skbCall(31, "r2 = "+proto+"\nr3 = 0"))
	}
	tc("skb_change_proto_flags", skbCall(31, "r2 = 0xdd86\nr3 = 1"))
	tc("tc_csum_diff", `
		r1 = 0x0a000001
		*(u32 *)(r10 - 8) = r1
		r1 = 0x7f000001
		*(u32 *)(r10 - 4) = r1
		r1 = r10
		r1 += -8
		r2 = 4
		r3 = r10
		r3 += -4
		r4 = 4
		r5 = 0
		call 28
		exit`)
	return cs
}

// zeroStack clears the 64 bytes of stack the load helpers' tests use, so
// they never read what an earlier run left there.
const zeroStack = `
	*(u64 *)(r10 - 64) = 0
	*(u64 *)(r10 - 56) = 0
	*(u64 *)(r10 - 48) = 0
	*(u64 *)(r10 - 40) = 0
	*(u64 *)(r10 - 32) = 0
	*(u64 *)(r10 - 24) = 0
	*(u64 *)(r10 - 16) = 0
	*(u64 *)(r10 - 8) = 0`

// cgWrap makes a program returning r0 a cgroup_skb program: the value goes
// to cb[0] and the program returns 1.
func cgWrap(src string) string {
	return strings.Replace(src, "exit", "r1 = r6\n*(u32 *)(r1 + 48) = r0\nr0 = 1\nexit", 1)
}

// TestKernel_clang runs the clang-built programs of testdata/flow.c in the
// kernel and in waggle.
func TestKernel_clang(t *testing.T) {
	mustKernel(t)
	for _, c := range clangPrograms {
		t.Run(c.section, func(t *testing.T) {
			if c.noKernel != "" {
				t.Skip(c.noKernel)
			}
			prog := loadClang(t, c)
			k := mustKind(t, c.typ)
			kp := mustKernelLoad(t, prog, c.typ)
			defer kp.Close()
			inputs := xdpInputs()
			if c.typ != progtype.XDP {
				inputs = skbInputs()
			}
			for _, in := range inputs {
				diffRun(t, k, prog, kp, in.name, in.in)
			}
		})
	}
}

// TestKernel_fuzzgen runs generated XDP programs, rewritten by progtype and
// laid out as a test run, in the kernel and in waggle.
func TestKernel_fuzzgen(t *testing.T) {
	mustKernel(t)
	n := 300
	if testing.Short() {
		n = 30
	}
	k := mustKind(t, progtype.XDP)
	for seed := uint64(0); seed < uint64(n); seed++ {
		p := fuzzgen.Generate(seed, fuzzgen.Config{})
		kp, err := kernel.Load(p.Insns, kernel.LoadOptions{Type: kernel.XDP})
		if err != nil {
			t.Fatalf("seed %d: kernel: %v", seed, err)
		}
		diffRun(t, k, p.Insns, kp, fmt.Sprintf("seed %d", seed), progtype.Input{Data: p.Packet})
		kp.Close()
	}
}
