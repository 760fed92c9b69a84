//go:build linux

package progtype_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/waggle-bpf/waggle/internal/cgroupv2"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
)

// The kernel differential tests of the program types Linux test-runs
// beyond XDP, the socket buffer types and raw tracepoints: lwt_in, lwt_out
// and lwt_xmit (bpf_prog_test_run_skb), flow_dissector and sk_lookup; and
// the socket behind __sk_buff.sk, ECN marking and the cgroup helpers of
// the socket buffer types.

// mustKernelLoadAttach loads prog with an expected attach type, skipping
// when the kernel lacks the type or the program's helpers.
func mustKernelLoadAttach(tb testing.TB, prog []isa.Instruction, typ progtype.Type, attach progtype.AttachType) *kernel.Program {
	tb.Helper()
	if err := kernel.ProgramTypeSupported(kernel.ProgType(typ)); err != nil {
		tb.Skipf("kernel comparison: %v", err)
	}
	if err := kernel.HelpersSupported(kernel.ProgType(typ), prog); err != nil {
		tb.Skipf("kernel comparison: %v", err)
	}
	kp, err := kernel.Load(prog, kernel.LoadOptions{Type: kernel.ProgType(typ), ExpectedAttachType: uint32(attach)})
	if err != nil {
		tb.Fatalf("kernel refused the program: %+v", err)
	}
	return kp
}

// typeCase is a program run on inputs in both worlds.
type typeCase struct {
	name   string
	typ    progtype.Type
	attach progtype.AttachType
	src    string
	inputs func() []diffInput
}

func (c typeCase) run(t *testing.T) int {
	t.Helper()
	k, err := progtype.LookupAttach(c.typ, c.attach)
	if err != nil {
		t.Fatal(err)
	}
	prog := mustParse(t, c.src)
	kp := mustKernelLoadAttach(t, prog, c.typ, c.attach)
	defer kp.Close()
	n := 0
	for _, in := range c.inputs() {
		n++
		if !diffRun(t, k, prog, kp, in.name, in.in) {
			t.Logf("program:\n%s", disasm(prog))
		}
	}
	return n
}

// ecnInputs are IPv4 and IPv6 packets with each ECN codepoint, with and
// without CHECKSUM_COMPLETE.
func ecnInputs() []diffInput {
	var out []diffInput
	for ecn := byte(0); ecn < 4; ecn++ {
		v4 := ipv4UDP()
		v4[15] = 0xb8 | ecn
		v6 := ipv6TCP()
		v6[15] = v6[15]&^0x30 | ecn<<4
		for _, flags := range []uint32{0, progtype.FlagSkbChecksumComplete} {
			out = append(out,
				diffInput{fmt.Sprintf("ipv4/ecn%d/flags%d", ecn, flags), progtype.Input{Data: v4, Flags: flags}},
				diffInput{fmt.Sprintf("ipv6/ecn%d/flags%d", ecn, flags), progtype.Input{Data: v6, Flags: flags}})
		}
	}
	out = append(out, diffInput{"arp", progtype.Input{Data: testPackets()[7].data}})
	return out
}

// lwtCases are programs of the lwt types using their helpers.
func lwtCases() []typeCase {
	var cs []typeCase
	for _, typ := range []progtype.Type{progtype.LWTIn, progtype.LWTOut, progtype.LWTXmit} {
		add := func(name, src string) {
			cs = append(cs, typeCase{name: typ.String() + "/" + name, typ: typ, src: src, inputs: skbInputs})
		}
		add("fields", "r6 = r1\nr7 = 0\n"+skbEpilogue)
		add("load_bytes", `
			r6 = r1
			r1 = r6
			r2 = 2
			r3 = r10
			r3 += -16
			r4 = 8
			call 26
			r7 = r0
			r2 = *(u32 *)(r10 - 16)
			*(u32 *)(r6 + 64) = r2`+skbEpilogue)
		add("load_bytes_past", skbCall(26, "r2 = 60\nr3 = r10\nr3 += -16\nr4 = 16"))
		add("pull_data", skbCall(39, "r2 = 30"))
		add("csum_diff", skbCall(28, storeStack+"\nr1 = r10\nr1 += -8\nr2 = 4\nr3 = r10\nr3 += -8\nr4 = 8\nr5 = 0x1234"))
		if typ == progtype.LWTXmit {
			add("store_bytes", skbCall(9, storeStack+"\nr2 = 12\nr3 = r10\nr3 += -8\nr4 = 4\nr5 = 2"))
			add("l3_csum_replace", skbCall(10, "r2 = 10\nr3 = 0x0100000a\nr4 = 0x0200000a\nr5 = 4"))
			add("l4_csum_replace", skbCall(11, "r2 = 26\nr3 = 0x0100000a\nr4 = 0x0300000a\nr5 = 0x14"))
			add("change_tail", skbCall(38, "r2 = 100\nr3 = 0"))
			add("change_head", skbCall(43, "r2 = 14\nr3 = 0"))
			add("csum_level", skbCall(135, "r2 = 2"))
			add("redirect", skbCall(23, "r1 = 3\nr2 = 0"))
		}
	}
	return cs
}

// skCases read the test run's socket through __sk_buff.sk.
func skCases() []typeCase {
	var cs []typeCase
	for _, typ := range []progtype.Type{progtype.SchedCLS, progtype.CgroupSKB} {
		add := func(name, body string) {
			cs = append(cs, typeCase{name: typ.String() + "/" + name, typ: typ, inputs: skbInputs, src: `
				r6 = r1
				r7 = 0
				r2 = *(u64 *)(r6 + 168)
				if r2 == 0 goto out
				r7 = 1
				r8 = r2
				` + body + `
			out:
				r0 = r7
				if r0 < 2 goto done
				r0 = 1
			done:
				exit`})
		}
		add("common", `
			r2 = *(u32 *)(r8 + 4)
			*(u32 *)(r6 + 48) = r2
			r2 = *(u32 *)(r8 + 24)
			*(u32 *)(r6 + 52) = r2
			r2 = *(u32 *)(r8 + 52)
			*(u32 *)(r6 + 56) = r2
			r2 = *(u32 *)(r8 + 72)
			r3 = *(u32 *)(r8 + 44)
			r2 <<= 16
			r2 |= r3
			*(u32 *)(r6 + 60) = r2
			r2 = *(u32 *)(r8 + 76)
			*(u32 *)(r6 + 64) = r2`)
		add("ip6", `
			r2 = *(u32 *)(r8 + 28)
			*(u32 *)(r6 + 48) = r2
			r2 = *(u32 *)(r8 + 40)
			*(u32 *)(r6 + 52) = r2
			r2 = *(u32 *)(r8 + 56)
			*(u32 *)(r6 + 56) = r2
			r2 = *(u32 *)(r8 + 68)
			*(u32 *)(r6 + 60) = r2
			r2 = *(u16 *)(r8 + 48)
			*(u32 *)(r6 + 64) = r2`)
		add("fullsock", `
			r1 = r8
			call 95
			if r0 == 0 goto out
			r8 = r0
			r2 = *(u32 *)(r8 + 0)
			*(u32 *)(r6 + 48) = r2
			r2 = *(u32 *)(r8 + 8)
			*(u32 *)(r6 + 52) = r2
			r2 = *(u32 *)(r8 + 12)
			*(u32 *)(r6 + 56) = r2
			r2 = *(u32 *)(r8 + 16)
			r3 = *(u32 *)(r8 + 20)
			r2 ^= r3
			*(u32 *)(r6 + 60) = r2
			r1 = r8
			call 96
			r2 = 2
			if r0 == 0 goto +1
			r2 = 3
			*(u32 *)(r6 + 64) = r2`)
	}
	return cs
}

// TestKernel_types runs the programs of the types Linux test-runs beyond
// XDP and the classic socket buffer types.
func TestKernel_types(t *testing.T) {
	mustKernel(t)
	var cs []typeCase
	cs = append(cs, lwtCases()...)
	cs = append(cs, skCases()...)
	for _, typ := range []progtype.Type{progtype.SchedCLS, progtype.CgroupSKB} {
		cs = append(cs, typeCase{name: typ.String() + "/ecn_set_ce", typ: typ, inputs: ecnInputs, src: `
			r6 = r1
			call 97
			r7 = r0
			r2 = *(u32 *)(r6 + 0)
			*(u32 *)(r6 + 48) = r2
			r0 = r7
			if r0 < 2 goto done
			r0 = 0
		done:
			exit`})
	}
	cs = append(cs, flowCases()...)
	cs = append(cs, skLookupCases()...)
	runs := 0
	for _, c := range cs {
		t.Run(c.name, func(t *testing.T) { runs += c.run(t) })
	}
	t.Logf("%d programs, %d runs compared", len(cs), runs)
}

// flowInputs are frames for flow dissectors, with and without flags in
// ctx_in.
func flowInputs() []diffInput {
	var out []diffInput
	flags := make([]byte, progtype.FlowKeysSize)
	binary.LittleEndian.PutUint32(flags[48:], progtype.FlowDissectorFParseFirstFrag|progtype.FlowDissectorFStopAtEncap)
	for _, p := range testPackets() {
		out = append(out,
			diffInput{p.name, progtype.Input{Data: p.data}},
			diffInput{p.name + "+flags", progtype.Input{Data: p.data, Context: flags}})
	}
	short := ipv4UDP()[:20]
	out = append(out, diffInput{"short", progtype.Input{Data: short}})
	return out
}

// flowCases are flow dissectors: a parser of IPv4 and IPv6 over Ethernet
// that fills the keys, one that writes offsets out of range (clamped
// after the run), one that reads what the set-up left, and
// bpf_skb_load_bytes, which a test run has no sk_buff for.
func flowCases() []typeCase {
	add := func(name, src string) typeCase {
		return typeCase{name: "flow_dissector/" + name, typ: progtype.FlowDissector, attach: progtype.AttachFlowDissector, src: src, inputs: flowInputs}
	}
	return []typeCase{
		add("parse", `
			r2 = *(u32 *)(r1 + 76)
			r3 = *(u32 *)(r1 + 80)
			r6 = *(u64 *)(r1 + 144)
			r0 = 2
			r4 = r2
			r4 += 54
			if r4 > r3 goto drop
			r4 = *(u16 *)(r2 + 12)
			if r4 == 0x8 goto ipv4
			if r4 == 0xdd86 goto ipv6
			goto drop
		ipv4:
			r4 = 0x800
			*(u16 *)(r6 + 4) = r4
			r4 = *(u8 *)(r2 + 23)
			*(u8 *)(r6 + 9) = r4
			r4 = *(u32 *)(r2 + 26)
			*(u32 *)(r6 + 16) = r4
			r4 = *(u32 *)(r2 + 30)
			*(u32 *)(r6 + 20) = r4
			r4 = *(u8 *)(r2 + 14)
			r4 &= 0xf
			r4 <<= 2
			r4 += 14
			*(u16 *)(r6 + 2) = r4
			r2 += r4
			goto ports
		ipv6:
			r4 = 0x86dd
			*(u16 *)(r6 + 4) = r4
			r4 = *(u8 *)(r2 + 20)
			*(u8 *)(r6 + 9) = r4
			r4 = *(u64 *)(r2 + 22)
			*(u64 *)(r6 + 16) = r4
			r4 = *(u64 *)(r2 + 30)
			*(u64 *)(r6 + 24) = r4
			r4 = 54
			*(u16 *)(r6 + 2) = r4
			r2 += r4
		ports:
			r4 = r2
			r4 += 4
			if r4 > r3 goto drop
			r4 = *(u16 *)(r2 + 0)
			*(u16 *)(r6 + 12) = r4
			r4 = *(u16 *)(r2 + 2)
			*(u16 *)(r6 + 14) = r4
			r0 = 0
		drop:
			exit`),
		add("clamp", `
			r6 = *(u64 *)(r1 + 144)
			r2 = 0xfff0
			*(u16 *)(r6 + 0) = r2
			r2 = 3
			*(u16 *)(r6 + 2) = r2
			r0 = 0
			exit`),
		add("setup", `
			r6 = *(u64 *)(r1 + 144)
			r0 = *(u32 *)(r6 + 48)
			r2 = *(u16 *)(r6 + 10)
			r2 <<= 8
			r0 ^= r2
			r2 = *(u32 *)(r6 + 0)
			r0 ^= r2
			r2 = *(u64 *)(r6 + 16)
			r0 ^= r2
			exit`),
		add("load_bytes", `
			r6 = *(u64 *)(r1 + 144)
			r2 = 0
			r3 = r10
			r3 += -8
			r4 = 4
			call 26
			*(u32 *)(r6 + 52) = r0
			r2 = *(u32 *)(r10 - 8)
			*(u32 *)(r6 + 48) = r2
			r0 = 0
			exit`),
	}
}

// skLookupCtx builds a struct bpf_sk_lookup.
func skLookupCtx(family, proto uint32, remote, local []byte, rport, lport uint16) []byte {
	b := make([]byte, progtype.SkLookupSize)
	le := binary.LittleEndian
	le.PutUint32(b[8:], family)
	le.PutUint32(b[12:], proto)
	if len(remote) == 4 {
		copy(b[16:], remote)
		copy(b[40:], local)
	} else {
		copy(b[20:], remote)
		copy(b[44:], local)
	}
	binary.BigEndian.PutUint16(b[36:], rport)
	le.PutUint32(b[60:], uint32(lport))
	return b
}

// skLookupInputs are lookups of IPv4 and IPv6, and contexts the test run
// refuses.
func skLookupInputs() []diffInput {
	v4 := skLookupCtx(2, 6, []byte{10, 0, 0, 1}, []byte{192, 168, 7, 9}, 40000, 8080)
	v6 := skLookupCtx(10, 17, bytes.Repeat([]byte{0xfe, 0x80}, 8), bytes.Repeat([]byte{0x20, 0x01}, 8), 53, 5353)
	truncated := skLookupCtx(0x10002, 0x10006, []byte{1, 2, 3, 4}, []byte{5, 6, 7, 8}, 1, 2)
	badPort := append([]byte(nil), v4...)
	binary.LittleEndian.PutUint32(badPort[60:], 70000)
	ifindex := append([]byte(nil), v4...)
	ifindex[64] = 1
	cookie := append([]byte(nil), v4...)
	cookie[0] = 1
	padding := append([]byte(nil), v4...)
	padding[38] = 0xaa
	return []diffInput{
		{"ipv4", progtype.Input{Context: v4}},
		{"ipv6", progtype.Input{Context: v6}},
		{"truncated", progtype.Input{Context: truncated}},
		{"padding", progtype.Input{Context: padding}},
		{"short", progtype.Input{Context: v4[:40]}},
		{"family", progtype.Input{Context: skLookupCtx(1, 6, nil, nil, 1, 2)}},
		{"port", progtype.Input{Context: badPort}},
		{"ifindex", progtype.Input{Context: ifindex}},
		{"cookie", progtype.Input{Context: cookie}},
		{"none", progtype.Input{}},
		{"data", progtype.Input{Context: v4, Data: make([]byte, 20)}},
	}
}

// skLookupCases select no socket (sk_assign of NULL with each flag) and
// read the context back one bit at a time, the only thing an sk_lookup
// program's result can carry.
func skLookupCases() []typeCase {
	var cs []typeCase
	add := func(name, src string) {
		cs = append(cs, typeCase{name: "sk_lookup/" + name, typ: progtype.SkLookup, attach: progtype.AttachSkLookup, src: src, inputs: skLookupInputs})
	}
	for _, flags := range []int{0, 1, 2, 3, 4} {
		add(fmt.Sprintf("assign_null/%d", flags), fmt.Sprintf(`
			r6 = r1
			r2 = 0
			r3 = %d
			call 124
			r1 = r6
			r2 = 0
			r3 = 0
			call 124
			r0 = 1
			exit`, flags))
	}
	add("sk", "r0 = *(u64 *)(r1 + 0)\nif r0 == 0 goto +2\nr0 = 0\nexit\nr0 = 1\nexit")
	return cs
}

// TestKernel_skLookupFields reads every readable byte range of
// bpf_sk_lookup in the kernel and in waggle, one result bit per program.
func TestKernel_skLookupFields(t *testing.T) {
	mustKernel(t)
	k, err := progtype.LookupAttach(progtype.SkLookup, progtype.AttachSkLookup)
	if err != nil {
		t.Fatal(err)
	}
	inputs := skLookupInputs()[:3]
	bits := []int{0, 1, 7, 8, 9, 15, 16, 17, 24, 31, 32, 63}
	if testing.Short() {
		bits = []int{0, 8, 16, 31, 63}
	}
	progs := 0
	for off := 8; off < progtype.SkLookupSize; off++ {
		for _, size := range []int{1, 2, 4} {
			for _, sx := range []bool{false, true} {
				if _, err := k.CheckAccess(off, size, false, sx); err != nil {
					continue
				}
				ld := map[bool]map[int]string{false: {1: "u8", 2: "u16", 4: "u32"}, true: {1: "s8", 2: "s16", 4: "s32"}}[sx][size]
				for _, bit := range bits {
					prog := mustParseNoTB(fmt.Sprintf("r0 = *(%s *)(r1 %+d)\nr0 >>= %d\nr0 &= 1\nexit", ld, off, bit))
					kp := mustKernelLoadAttach(t, prog, progtype.SkLookup, progtype.AttachSkLookup)
					progs++
					for _, in := range inputs {
						diffRun(t, k, prog, kp, fmt.Sprintf("%s off %d bit %d on %s", ld, off, bit, in.name), in.in)
					}
					kp.Close()
				}
			}
		}
	}
	t.Logf("%d programs compared", progs)
}

// hostCgroup returns the cgroup of this process in the cgroup v2
// hierarchy, with its ancestors, ids read from cgroupfs as Linux's cgroup
// ids are (the directories' inode numbers), and the hierarchy's mount
// point; it skips when there is no cgroup v2.
func hostCgroup(tb testing.TB) (*progtype.Cgroup, string) {
	tb.Helper()
	mnt, err := cgroupv2.Mount()
	if err != nil {
		tb.Skipf("cgroup: %v", err)
	}
	own, err := cgroupv2.Own()
	if err != nil {
		tb.Skipf("cgroup: %v", err)
	}
	cg, err := cgroupv2.Cgroup(mnt, own)
	if err != nil {
		tb.Skipf("cgroup: %v", err)
	}
	return cg, mnt
}

// TestKernel_cgroupIDs compares the cgroup ids of the current task and of
// the test run's socket, and their ancestors, with this process in its own
// cgroup and, as root, in a child cgroup made for the test.
func TestKernel_cgroupIDs(t *testing.T) {
	mustKernel(t)
	cg, mnt := hostCgroup(t)
	prog := `
		r6 = r1
		call 80
		*(u32 *)(r6 + 48) = r0
		r0 >>= 32
		*(u32 *)(r6 + 52) = r0
		r1 = r6
		call 79
		*(u32 *)(r6 + 56) = r0
		r1 = 0
		call 123
		r7 = r0
		r1 = 1
		call 123
		r7 <<= 8
		r7 ^= r0
		*(u32 *)(r6 + 60) = r7
		r1 = r6
		r2 = 1
		call 83
		r7 = r0
		r1 = r6
		r2 = 7
		call 83
		r7 ^= r0
		*(u32 *)(r6 + 64) = r7
		r0 = 0
		exit`
	k := mustKind(t, progtype.SchedCLS)
	p := mustParse(t, prog)
	kp := mustKernelLoadAttach(t, p, progtype.SchedCLS, 0)
	defer kp.Close()
	compare := func(t *testing.T, cg *progtype.Cgroup) {
		for _, in := range skbInputs()[:4] {
			in.in.Task = &progtype.Task{Cgroup: cg}
			diffRun(t, k, p, kp, in.name, in.in)
		}
	}
	t.Run("own", func(t *testing.T) { compare(t, cg) })
	t.Run("child", func(t *testing.T) {
		child, leave := enterChildCgroup(t, mnt, cg)
		defer leave()
		compare(t, child)
	})
}

// enterChildCgroup moves this process into a new cgroup below its own and
// returns it and a function that moves the process back and removes it.
func enterChildCgroup(t *testing.T, mnt string, parent *progtype.Cgroup) (*progtype.Cgroup, func()) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("moving between cgroups needs root")
	}
	data, _ := os.ReadFile("/proc/self/cgroup")
	own := "/"
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			own = p
		}
	}
	dir := filepath.Join(mnt, own, fmt.Sprintf("progtypes-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup: %v", err)
	}
	pid := []byte(fmt.Sprint(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		os.Remove(dir)
		t.Skipf("cgroup: move into %s: %v", dir, err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	return &progtype.Cgroup{ID: st.Ino, Parent: parent}, func() {
		if err := os.WriteFile(filepath.Join(mnt, own, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("cgroup: move back: %v", err)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("cgroup: %v", err)
		}
	}
}
