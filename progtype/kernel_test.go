//go:build linux

package progtype_test

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

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

// accessProgram is a program that makes one context access through r1.
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
		{Op: mov, Dst: isa.R0, Imm: 0},
		{Op: isa.OpExit},
	}
}

// sweepTypes are the types whose access rules are compared with the
// kernel's, with the size of their context.
var sweepTypes = []struct {
	typ  progtype.Type
	size int
}{
	{progtype.XDP, 24},
	{progtype.SocketFilter, 192},
	{progtype.SchedCLS, 192},
	{progtype.SchedACT, 192},
	{progtype.CgroupSKB, 192},
	{progtype.Kprobe, progtype.PtRegsSize},
	{progtype.RawTracepoint, 8 * progtype.RawTracepointArgs},
	{progtype.PerfEvent, progtype.PerfEventDataSize},
	{progtype.Tracepoint, 64},
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
	total, accepted := 0, 0
	for _, st := range sweepTypes {
		k := mustKind(t, st.typ)
		t.Run(st.typ.String(), func(t *testing.T) {
			for off := -8; off < st.size+8; off++ {
				for _, size := range []int{1, 2, 4, 8} {
					for _, f := range accessForms {
						if f.signExt && size == 8 {
							continue // there is no 8-byte sign-extending load
						}
						prog := accessProgram(off, size, f.write, f.signExt, f.imm)
						kp, kerr := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(st.typ)})
						if kerr == nil {
							kp.Close()
						}
						_, werr := k.Convert(prog, []int{1})
						total++
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
							accepted++
						}
					}
				}
			}
		})
	}
	t.Logf("%d accesses compared, %d accepted by both", total, accepted)
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
	case (t == progtype.SocketFilter || t == progtype.SchedCLS || t == progtype.SchedACT || t == progtype.CgroupSKB) &&
		off == 168 && size == 8 && !write:
		return "waggle does not support __sk_buff.sk"
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
	for _, p := range testPackets() {
		out = append(out,
			diffInput{p.name, progtype.Input{Data: p.data}},
			diffInput{p.name + "+ctx", progtype.Input{Data: p.data, Context: ctx}},
			diffInput{p.name + "+wire", progtype.Input{Data: p.data, Context: withWire}},
		)
	}
	return out
}

type testPacket struct {
	name string
	data []byte
}

// testPackets covers the Ethernet parsing of the socket buffer set-up:
// protocols, VLAN tags, destination kinds.
func testPackets() []testPacket {
	udp := ipv4UDP()
	bcast := append([]byte(nil), udp...)
	copy(bcast, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	mcast := append([]byte(nil), udp...)
	copy(mcast, []byte{0x01, 0x00, 0x5e, 0, 0, 1})
	other := append([]byte(nil), udp...)
	copy(other, []byte{0x02, 0, 0, 0, 0, 9})
	vlan := append(append(append([]byte(nil), udp[:12]...), 0x81, 0x00, 0x00, 0x2a), udp[12:]...)
	qinq := append(append(append([]byte(nil), udp[:12]...), 0x88, 0xa8, 0x00, 0x07, 0x81, 0x00, 0x00, 0x2a), udp[12:]...)
	arp := append([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06}, make([]byte, 28)...)
	llc := append([]byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x30}, make([]byte, 48)...)
	ipx := append([]byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x00, 0x30, 0xff, 0xff}, make([]byte, 46)...)
	return []testPacket{
		{"ipv4_udp", udp}, {"ipv6_tcp", ipv6TCP()}, {"broadcast", bcast}, {"multicast", mcast},
		{"otherhost", other}, {"vlan", vlan}, {"qinq", qinq}, {"arp", arp}, {"llc", llc}, {"ipx", ipx},
	}
}

// ipv6TCP is an Ethernet + IPv6 + TCP packet.
func ipv6TCP() []byte {
	p := []byte{0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 0x86, 0xdd,
		0x60, 0, 0, 0, 0, 20, 6, 64}
	for i := 0; i < 16; i++ {
		p = append(p, 0x20, byte(i))[:len(p)+1]
	}
	for i := 0; i < 16; i++ {
		p = append(p, byte(0x30+i))
	}
	p = append(p, 0x1f, 0x90, 0x00, 0x50, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0)
	return p
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
	opts := &kernel.RunOptions{Data: in.Data, Context: in.Context, Flags: in.Flags}
	if len(in.Data) > 0 {
		opts.DataOut = make([]byte, len(in.Data)+512)
	}
	switch k.Type() {
	case progtype.XDP:
		if in.Context != nil {
			opts.ContextOut = make([]byte, 24)
		}
	case progtype.SocketFilter, progtype.SchedCLS, progtype.SchedACT, progtype.CgroupSKB:
		opts.ContextOut = make([]byte, 192)
	}
	kres, kerr := kp.Run(opts)
	wres, werr := runProg(t, interpChecked, k, prog, in, 1)
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
		t.Run(ft.typ.String(), func(t *testing.T) {
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
