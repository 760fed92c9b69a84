package progtype_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

// clangProgram is a program from testdata/flow.c, built by clang-19 -O2.
type clangProgram struct {
	section string
	typ     progtype.Type
	// funcs are the slots of lddw instructions that load a subprogram's
	// address: in the object they are relocations, fixed up here as the
	// loader would (BPF_PSEUDO_FUNC, relative immediate).
	funcs []int
	// want are the context accesses, as "slot field".
	want []string
	// noKernel says why the kernel cannot load the program as it is.
	noKernel string
	// retval is what the program returns on ipv4UDP() in waggle.
	retval uint32
}

var clangPrograms = []clangProgram{
	{section: "xdp/r6", typ: progtype.XDP, want: []string{"5 xdp_md.data_end", "6 xdp_md.data"}},
	{section: "xdp/spill", typ: progtype.XDP, want: []string{
		"5 xdp_md.data", "6 xdp_md.data_meta", "12 xdp_md.ingress_ifindex", "13 xdp_md.rx_queue_index"}},
	{section: "xdp/sub", typ: progtype.XDP, want: []string{
		"0 xdp_md.ingress_ifindex", "15 xdp_md.data", "16 xdp_md.data_end"}},
	{section: "xdp/loop", typ: progtype.XDP, funcs: []int{6}, want: []string{
		"13 xdp_md.ingress_ifindex", "15 xdp_md.rx_queue_index"},
		noKernel: "bpf_loop callbacks need BTF func_info, which the listing does not have",
		retval:   4*1 + 0 + 1 + 2 + 3},
	{section: "tc/fields", typ: progtype.SchedCLS, want: []string{
		"2 __sk_buff.tc_index", "3 __sk_buff.mark+1", "4 __sk_buff.priority", "5 __sk_buff.protocol",
		"6 __sk_buff.cb[3]", "7 __sk_buff.mark", "9 __sk_buff.mark", "10 __sk_buff.len",
		"11 __sk_buff.cb[0]", "20 __sk_buff.cb[0]", "21 __sk_buff.cb[3]", "23 __sk_buff.ifindex"}},
}

// loadClang reads a program's listing and applies its fix-ups.
func loadClang(tb testing.TB, c clangProgram) []isa.Instruction {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "flow_"+strings.ReplaceAll(c.section, "/", "_")+".objdump"))
	if err != nil {
		tb.Fatal(err)
	}
	prog := mustParse(tb, string(b))
	for _, pc := range c.funcs {
		target := int(prog[pc].Imm) / isa.InstructionSize
		prog[pc].Src = isa.PseudoFunc
		prog[pc].Imm = int32(target - pc - 1)
	}
	return prog
}

// TestRewrite_clang: clang's code reaches its context through r6, spills
// and fills, a subprogram's argument and a bpf_loop callback's context on
// the caller's stack. Decided at run time (Rewrite), its accesses run as
// the conversion of the accesses the kernel's verifier finds (Convert):
// the same verdict, packet and context out.
func TestRewrite_clang(t *testing.T) {
	for _, c := range clangPrograms {
		t.Run(c.section, func(t *testing.T) {
			prog := loadClang(t, c)
			k := mustKind(t, c.typ)
			var at []int
			for _, w := range c.want {
				pc, err := strconv.Atoi(strings.Fields(w)[0])
				if err != nil {
					t.Fatal(err)
				}
				at = append(at, pc)
			}
			static, err := k.Convert(prog, at)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range static.Accesses {
				got = append(got, fmt.Sprintf("%d %s", a.Insn, a.Field))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("accesses\n%q\nwant\n%q", got, c.want)
			}
			dynamic, err := k.Rewrite(prog)
			if err != nil {
				t.Fatal(err)
			}
			for _, pc := range at {
				if alt, ok := dynamic.Variants[pc]; ok && alt != static.Insns[pc] || !ok && prog[pc] != static.Insns[pc] {
					t.Errorf("slot %d: Rewrite's context form %v, Convert's %v", pc, alt, static.Insns[pc])
				}
			}
			ctx := make([]byte, 24) // an xdp_md, or the start of a __sk_buff
			if c.typ != progtype.XDP {
				ctx = make([]byte, 192)
				ctx[8], ctx[48], ctx[60] = 0x5a, 7, 9 // mark, cb[0], cb[3]
			}
			in := progtype.Input{Data: ipv4UDP(), Context: ctx}
			if c.typ == progtype.XDP {
				in.Context = nil
			}
			ws, errS := runPrepared(t, checked, static, in)
			wd, errD := runPrepared(t, checked, dynamic, in)
			if errS != nil || errD != nil {
				t.Fatalf("Convert's run: %v; Rewrite's run: %v", errS, errD)
			}
			if ws.Retval != wd.Retval || string(ws.Data) != string(wd.Data) || string(ws.Context) != string(wd.Context) {
				t.Errorf("Convert's run %d %x %x; Rewrite's %d %x %x", ws.Retval, ws.Data, ws.Context, wd.Retval, wd.Data, wd.Context)
			}
			if c.retval != 0 && wd.Retval != c.retval {
				t.Errorf("retval %d, want %d", wd.Retval, c.retval)
			}
		})
	}
}

// runPrepared loads a rewritten or converted program and runs it once on
// in.
func runPrepared(tb testing.TB, mode engine.Engine, p *progtype.Program, in progtype.Input) (*progtype.Output, error) {
	tb.Helper()
	ip, err := mode.Load(p.Insns, engine.Options{Helpers: helperTable(p.Kind), UnsafeFastUnverified: !mode.Checked(), ContextVariants: p.Variants, ContextFaults: p.Faults})
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	r, err := p.NewRun(in)
	if err != nil {
		return nil, err
	}
	r0, err := exec(ip, nil)(r)
	if err != nil {
		return nil, err
	}
	return r.Finish(r0)
}
