package verifier_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/asm"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestVerify_btfWalkKernel compares waggle's walk of kernel structs
// (btf_struct_access) with the running kernel's, load by load: loads of
// 1, 2, 4 and 8 bytes at offsets of struct task_struct (through
// bpf_get_current_task_btf, in a tracepoint) and struct tcp_sock (through
// bpf_skc_to_tcp_sock, in a tc program), a sample of them chosen by a
// fixed seed, and at every 8-byte aligned offset a load followed by a
// load through what it gave (a pointer, or a scalar the kernel refuses to
// dereference). Every verdict must be the kernel's.
func TestVerify_btfWalkKernel(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skipf("no kernel BTF: %v", err)
	}
	if os.Geteuid() != 0 {
		t.Skip("loading programs into the kernel needs root")
	}
	kt := verifier.NewKernelTypes()
	spec, err := kt.Spec()
	if err != nil {
		t.Skip(err)
	}
	for _, c := range []struct {
		name   string
		typ    progtype.Type
		ktyp   ebpf.ProgramType
		prefix string // r0 = the object, or exit with r0 = 0
		kpre   casm.Instructions
	}{
		{name: "task_struct", typ: progtype.Tracepoint, ktyp: ebpf.TracePoint,
			prefix: "call 158\n",
			kpre:   casm.Instructions{casm.FnGetCurrentTaskBtf.Call()}},
		{name: "tcp_sock", typ: progtype.SchedCLS, ktyp: ebpf.SchedCLS,
			prefix: "r1 = *(u64 *)(r1 + 168)\nif r1 == 0 goto +1000\ncall 137\nif r0 == 0 goto +1000\n",
			kpre: casm.Instructions{
				casm.LoadMem(casm.R1, casm.R1, 168, casm.DWord),
				casm.JEq.Imm(casm.R1, 0, "out"),
				casm.FnSkcToTcpSock.Call(),
				casm.JEq.Imm(casm.R0, 0, "out"),
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var st *btf.Struct
			if err := spec.TypeByName(c.name, &st); err != nil {
				t.Skip(err)
			}
			kind, err := progtype.Lookup(c.typ)
			if err != nil {
				t.Fatal(err)
			}
			type load struct {
				off, size int
				deref     bool
			}
			var loads []load
			rng := rand.New(rand.NewPCG(7, uint64(st.Size)))
			for range 400 {
				loads = append(loads, load{off: rng.IntN(int(st.Size) + 16), size: 1 << rng.IntN(4)})
			}
			for off := 0; off < int(st.Size); off += 8 {
				loads = append(loads, load{off: off, size: 8, deref: true})
			}
			sizes := map[int]string{1: "u8", 2: "u16", 4: "u32", 8: "u64"}
			ksizes := map[int]casm.Size{1: casm.Byte, 2: casm.Half, 4: casm.Word, 8: casm.DWord}
			agree, accepted := 0, 0
			for _, l := range loads {
				src := fmt.Sprintf("%sr1 = *(%s *)(r0 + %d)\n", c.prefix, sizes[l.size], l.off)
				kins := append(casm.Instructions{}, c.kpre...)
				kins = append(kins, casm.LoadMem(casm.R1, casm.R0, int16(l.off), ksizes[l.size]))
				if l.deref {
					src += "r1 = *(u8 *)(r1 + 0)\n"
					kins = append(kins, casm.LoadMem(casm.R1, casm.R1, 0, casm.Byte))
				}
				src += "r0 = 0\nexit\n"
				kins = append(kins, casm.Mov.Imm(casm.R0, 0).WithSymbol("out"), casm.Return())
				// The waggle program's jumps to "out" land on its r0 = 0.
				insns, err := asm.Parse(fixOut(src))
				if err != nil {
					t.Fatalf("assemble: %v\n%s", err, src)
				}
				p := &verifier.Program{Name: "walk", Insns: insns, Kind: kind, GPL: true}
				_, werr := verifier.Verify(context.Background(), p, &verifier.Options{Target: progtype.TargetLinux, KernelTypes: kt})
				prog, kerr := ebpf.NewProgram(&ebpf.ProgramSpec{Type: c.ktyp, License: "GPL", Instructions: kins})
				if prog != nil {
					prog.Close()
				}
				if (werr == nil) != (kerr == nil) {
					t.Errorf("%s load of %d bytes at %d (deref %v): waggle: %v; kernel: %v", c.name, l.size, l.off, l.deref, werr, lastLineOf(kerr))
					continue
				}
				agree++
				if kerr == nil {
					accepted++
				}
			}
			t.Logf("%s: %d/%d loads agree with the kernel (%d accepted by both)", c.name, agree, len(loads), accepted)
			if accepted == 0 || accepted == agree {
				t.Errorf("%s: %d of %d accepted: the sample tells nothing", c.name, accepted, agree)
			}
		})
	}
}

// fixOut makes the "goto +1000" of a prefix jump to the program's
// "r0 = 0", the instruction before its exit.
func fixOut(src string) string {
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	target := len(lines) - 2
	for i, l := range lines {
		if before, ok := strings.CutSuffix(l, "goto +1000"); ok {
			lines[i] = before + fmt.Sprintf("goto %+d", target-i-1)
		}
	}
	return strings.Join(lines, "\n") + "\n"
}

func lastLineOf(err error) string {
	if err == nil {
		return "accepted"
	}
	s := strings.TrimSpace(err.Error())
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:]
	}
	return s
}
