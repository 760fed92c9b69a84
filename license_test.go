package waggle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// TestProgram_gplOnlyHelpers: as in Linux, only a program whose license is
// GPL-compatible may call a GPL-only helper (bpf_trace_printk here); other
// helpers (bpf_get_prandom_u32) take any license. The kernel, as root,
// gives the same answers for the same programs.
func TestProgram_gplOnlyHelpers(t *testing.T) {
	printk := asm.Instructions{
		asm.StoreImm(asm.R10, -8, 0x0a6968, asm.Word), // "hi\n"
		asm.Mov.Reg(asm.R1, asm.R10),
		asm.Add.Imm(asm.R1, -8),
		asm.Mov.Imm(asm.R2, 4),
		asm.FnTracePrintk.Call(),
		asm.Mov.Imm(asm.R0, 2),
		asm.Return(),
	}
	prandom := asm.Instructions{asm.FnGetPrandomU32.Call(), asm.Mov.Imm(asm.R0, 2), asm.Return()}
	for _, tc := range []struct {
		name, license string
		insns         asm.Instructions
		ok            bool
	}{
		{"printk GPL", "GPL", printk, true},
		{"printk Dual BSD/GPL", "Dual BSD/GPL", printk, true},
		{"printk MIT", "MIT", printk, false},
		{"printk no license", "", printk, false},
		{"prandom MIT", "MIT", prandom, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
				"p": {Type: ebpf.XDP, License: tc.license, Instructions: tc.insns},
			}}
			coll, err := waggle.NewCollection(spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			err = coll.Programs["p"].Prepare()
			if tc.ok != (err == nil) {
				t.Fatalf("Prepare: %v, want ok %v", err, tc.ok)
			}
			if err != nil && !strings.Contains(err.Error(), "GPL-only") {
				t.Errorf("Prepare: %v, want it to say the helper is GPL-only", err)
			}
			if kernel.Supported() != nil {
				return
			}
			var insns []isa.Instruction // the same program: no lddw, no context access
			for _, ins := range tc.insns {
				insns = append(insns, isa.Instruction{Op: isa.Opcode(ins.OpCode), Dst: isa.Register(ins.Dst), Src: isa.Register(ins.Src), Off: ins.Offset, Imm: int32(ins.Constant)})
			}
			license := tc.license
			if license == "" {
				license = "none" // kernel.LoadOptions takes "" as "GPL"
			}
			kp, kerr := kernel.Load(insns, kernel.LoadOptions{Type: kernel.XDP, License: license})
			if kerr == nil {
				kp.Close()
			}
			var ve *kernel.VerifierError
			if kerr != nil && !errors.As(kerr, &ve) {
				t.Fatalf("kernel: %v", kerr)
			}
			if tc.ok != (kerr == nil) {
				t.Errorf("kernel: %v, waggle: %v", kerr, err)
			}
		})
	}
}
