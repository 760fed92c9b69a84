package progtype_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/progtype"
)

func TestContextAccesses(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []int
		err  string // a substring of the error, "" for none
	}{
		{name: "direct", src: `
			r0 = *(u32 *)(r1 + 0)
			exit`, want: []int{0}},
		{name: "moved_to_r6", src: `
			r6 = r1
			call 5
			r0 = *(u32 *)(r6 + 4)
			exit`, want: []int{2}},
		{name: "clobbered_by_call", src: `
			call 5
			r2 = 0
			exit`, want: nil},
		{name: "spill_fill", src: `
			*(u64 *)(r10 - 8) = r1
			r1 = 0
			r2 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r2 + 12)
			*(u32 *)(r10 - 16) = r0
			exit`, want: []int{3}},
		{name: "spill_fill_in_subprogram", src: `
			call sub
			exit
		sub:
			*(u64 *)(r10 - 8) = r1
			r1 = 0
			r2 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r2 + 0x4c)
			exit`, want: []int{5}},
		{name: "partial_spill_is_not_ctx", src: `
			*(u64 *)(r10 - 8) = r1
			*(u32 *)(r10 - 8) = r0
			r2 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r2 + 12)
			exit`, want: nil},
		{name: "spill_through_copy_of_fp", src: `
			r3 = r10
			r3 += -16
			*(u64 *)(r3 + 8) = r1
			r4 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r4 + 0)
			exit`, want: []int{4}},
		{name: "both_branches_ctx", src: `
			r2 = r1
			if r0 == 0 goto skip
			r2 = r1
		skip:
			r0 = *(u32 *)(r2 + 0)
			exit`, want: []int{3}},
		{name: "ctx_on_one_path", src: `
			r2 = r1
			if r0 == 0 goto skip
			r2 = r10
		skip:
			r0 = *(u32 *)(r2 - 8)
			exit`, err: "cannot tell whether r2 points to the context"},
		{name: "modified_ctx", src: `
			r1 += 4
			r0 = *(u32 *)(r1 + 0)
			exit`, err: "dereference of modified ctx pointer r1 (ctx+4)"},
		{name: "variable_ctx", src: `
			r1 += r0
			r0 = *(u32 *)(r1 + 0)
			exit`, err: "offset that is not constant"},
		{name: "ctx_offset_joined", src: `
			if r0 == 0 goto skip
			r1 += 4
		skip:
			r0 = *(u32 *)(r1 + 0)
			exit`, err: "offset that is not constant"},
		{name: "atomic_on_ctx", src: `
			r2 = 1
			lock *(u32 *)(r1 + 8) += r2
			exit`, err: "atomic operations on the context"},
		{name: "32bit_move_is_not_a_pointer", src: `
			w2 = w1
			r0 = *(u32 *)(r2 + 0)
			exit`, err: "offset that is not constant"},
		{name: "moved_back", src: `
			r1 += 8
			r1 += -8
			r0 = *(u32 *)(r1 + 4)
			exit`, want: []int{2}},
		{name: "subprogram_gets_ctx", src: `
			call fn
			exit
		fn:
			r0 = *(u32 *)(r1 + 0)
			exit`, want: []int{2}},
		{name: "subprogram_gets_ctx_and_stack", src: `
			r6 = r1
			call fn
			r1 = r10
			r1 += -8
			call fn
			exit
		fn:
			r0 = *(u32 *)(r1 + 0)
			exit`, err: "cannot tell whether r1 points to the context"},
		{name: "callee_saved_survive", src: `
			r6 = r1
			r1 = 0
			call fn
			r0 = *(u32 *)(r6 + 0)
			exit
		fn:
			r6 = 0
			r0 = 0
			exit`, want: []int{3}},
		{name: "callee_spills_into_caller", src: `
			r2 = r10
			r2 += -8
			call fn
			r3 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r3 + 0)
			exit
		fn:
			*(u64 *)(r2 + 0) = r1
			r0 = 0
			exit`, want: []int{4}},
		{name: "loop_keeps_ctx", src: `
			r6 = r1
			r7 = 10
		again:
			r0 = *(u32 *)(r6 + 0)
			r7 += -1
			if r7 != 0 goto again
			exit`, want: []int{2}},
		{name: "can_loop_keeps_ctx", src: `
			r6 = r1
		again:
			may_goto out
			r0 = *(u32 *)(r6 + 0)
			goto again
		out:
			r0 = *(u32 *)(r6 + 4)
			exit`, want: []int{2, 4}},
		{name: "can_loop_changes_ctx", src: `
		again:
			may_goto out
			r0 = *(u32 *)(r1 + 0)
			r1 += 4
			goto again
		out:
			exit`, err: "offset that is not constant"},
		{name: "loop_changes_ctx", src: `
			r7 = 10
		again:
			r0 = *(u32 *)(r1 + 0)
			r1 += 4
			r7 += -1
			if r7 != 0 goto again
			exit`, err: "offset that is not constant"},
		{name: "unreached_code_is_left_alone", src: `
			r0 = 0
			exit
			r0 = *(u32 *)(r1 + 0)
			exit`, want: nil},
		{name: "recursion", src: `
			call fn
			exit
		fn:
			call fn
			exit`, err: "recursive call"},
		{name: "callback_gets_stack_ctx", src: `
			*(u64 *)(r10 - 8) = r1
			r1 = 4
			r2 = func(cb) ll
			r3 = r10
			r3 += -8
			r4 = 0
			call 181
			exit
		cb:
			r3 = *(u64 *)(r2 + 0)
			r0 = *(u32 *)(r3 + 12)
			exit`, want: []int{10}},
		{name: "ld_abs_clobbers", src: `
			r6 = r1
			r2 = r1
			r0 = *(u8 *)skb[0]
			r0 = *(u32 *)(r2 + 0)
			exit`, want: nil},
		// Context or number: a spill that a store at a variable stack
		// offset may have overwritten is still the context where it is
		// dereferenced (Cilium's tc_lxc_policy_drop_pktgen).
		{name: "variable_offset_store_keeps_ctx_spill", src: `
			*(u64 *)(r10 - 8) = r1
			r2 = *(u32 *)(r1 + 0)
			r2 &= 3
			r2 <<= 2
			r3 = r10
			r3 += -32
			r3 += r2
			r4 = 7
			*(u32 *)(r3 + 0) = r4
			r1 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r1 + 0)
			exit`, want: []int{1, 10}},
		{name: "ctx_or_constant", src: `
			r2 = r1
			if r0 == 0 goto skip
			r2 = 5
		skip:
			r0 = *(u32 *)(r2 + 4)
			exit`, want: []int{3}},
		{name: "ctx_or_partially_overwritten_spill", src: `
			*(u64 *)(r10 - 8) = r1
			if r0 == 0 goto skip
			*(u32 *)(r10 - 8) = r0
		skip:
			r2 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r2 + 0)
			exit`, want: []int{4}},
		{name: "ctx_or_uninitialised_slot", src: `
			if r0 == 0 goto skip
			*(u64 *)(r10 - 8) = r1
		skip:
			r2 = *(u64 *)(r10 - 8)
			r0 = *(u32 *)(r2 + 0)
			exit`, want: []int{3}},
		{name: "ctx_or_number_in_arithmetic_is_a_number", src: `
			r2 = r1
			if r0 == 0 goto skip
			r2 = r0
		skip:
			w2 += 1
			r0 = *(u32 *)(r2 + 0)
			exit`, want: nil},
		{name: "ctx_or_untracked_is_ambiguous", src: `
			r2 = r1
			if r0 == 0 goto skip
			r2 = *(u64 *)(r1 + 0)
		skip:
			r0 = *(u32 *)(r2 + 0)
			exit`, err: "cannot tell whether r2 points to the context"},
		{name: "modified_ctx_or_number", src: `
			r2 = r1
			r2 += 4
			if r0 == 0 goto skip
			r2 = 5
		skip:
			r0 = *(u32 *)(r2 + 0)
			exit`, err: "dereference of modified ctx pointer r2 (ctx+4)"},
		{name: "pointer_stored_in_map_value_is_lost", src: `
			r2 = r0
			*(u64 *)(r2 + 0) = r1
			r3 = *(u64 *)(r2 + 0)
			r0 = *(u32 *)(r3 + 0)
			exit`, want: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := progtype.ContextAccesses(mustParse(t, tc.src))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				var fe *progtype.FlowError
				if !errors.As(err, &fe) || !errors.Is(err, progtype.ErrContextAccess) {
					t.Errorf("error %T is not a *FlowError wrapping ErrContextAccess", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("accesses %v, want %v", got, tc.want)
			}
		})
	}
}

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

// TestContextAccesses_clang finds the context accesses of clang's code: the
// context kept in r6, spilled and filled, passed to a subprogram, reached by
// a bpf_loop callback through the caller's stack.
func TestContextAccesses_clang(t *testing.T) {
	for _, c := range clangPrograms {
		t.Run(c.section, func(t *testing.T) {
			prog := loadClang(t, c)
			p, err := mustKind(t, c.typ).Rewrite(prog)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range p.Accesses {
				got = append(got, fmt.Sprintf("%d %s", a.Insn, a.Field))
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("accesses\n%q\nwant\n%q", got, c.want)
			}
			if c.retval != 0 {
				out, err := runProg(t, interpChecked, mustKind(t, c.typ), prog, progtype.Input{Data: ipv4UDP()}, 1)
				if err != nil {
					t.Fatal(err)
				}
				if out.Retval != c.retval {
					t.Errorf("retval %d, want %d", out.Retval, c.retval)
				}
			}
		})
	}
}

// TestContextAccesses_fuzzgen runs the analysis on generated programs the
// kernel's verifier accepts: the context is read in slots 0 and 1 only,
// every other access goes to the packet or the stack.
func TestContextAccesses_fuzzgen(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	for seed := uint64(0); seed < uint64(n); seed++ {
		p := fuzzgen.Generate(seed, fuzzgen.Config{})
		got, err := progtype.ContextAccesses(p.Insns)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !reflect.DeepEqual(got, []int{0, 1}) {
			t.Fatalf("seed %d: accesses %v, want [0 1]", seed, got)
		}
	}
}
