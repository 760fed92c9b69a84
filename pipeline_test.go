package waggle_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	casm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/verifier"
)

// TestPrepare_contextAccesses: a verified program's context accesses are
// the verifier's findings, and one the type refuses is a rejection before
// it runs; unverified, each access is decided as it runs: a context access
// the type refuses ends the run with ErrContext naming the field, and the
// same instruction through another pointer runs.
func TestPrepare_contextAccesses(t *testing.T) {
	// r2 = r1, or the stack when the packet is longer than 14 bytes;
	// *(u32 *)(r2 + 0) = 1 writes xdp_md.data through the context, which
	// is read-only.
	prog := casm.Instructions{
		casm.LoadMem(casm.R3, casm.R1, 4, casm.Word), // data_end
		casm.LoadMem(casm.R4, casm.R1, 0, casm.Word), // data
		casm.Sub.Reg(casm.R3, casm.R4),
		casm.Mov.Reg(casm.R2, casm.R1),
		{OpCode: casm.JLE.Op(casm.ImmSource), Dst: casm.R3, Constant: 14, Offset: 2}, // if r3 <= 14 goto store
		casm.Mov.Reg(casm.R2, casm.RFP),
		casm.Add.Imm(casm.R2, -8),
		casm.StoreImm(casm.R2, 0, 1, casm.Word), // store:
		casm.Mov.Imm(casm.R0, 2),
		casm.Return(),
	}
	spec := &ebpf.CollectionSpec{Programs: map[string]*ebpf.ProgramSpec{
		"p": {Name: "p", Type: ebpf.XDP, License: "GPL", Instructions: prog},
	}}
	verified, err := waggle.NewCollection(spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer verified.Close()
	var ve *verifier.Error
	if err := verified.Programs["p"].Prepare(); !errors.As(err, &ve) {
		t.Fatalf("verified: %v, want the verifier's rejection", err)
	}
	unverified, err := waggle.NewCollection(spec, &waggle.CollectionOptions{Unverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer unverified.Close()
	p := unverified.Programs["p"]
	var f *waggle.Fault
	_, err = p.Run(&waggle.RunOptions{Data: make([]byte, 14)})
	if !errors.Is(err, waggle.ErrContext) || !errors.As(err, &f) || f.PC != 7 || !strings.Contains(err.Error(), "xdp_md.data") {
		t.Fatalf("through the context: %v, want ErrContext at instruction 7 naming xdp_md.data", err)
	}
	t.Log(err)
	if ret, err := p.Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil || ret != 2 {
		t.Fatalf("through the stack: %d, %v; want XDP_PASS", ret, err)
	}
}
