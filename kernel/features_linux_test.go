//go:build linux

package kernel

import (
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	ciliumasm "github.com/cilium/ebpf/asm"

	"github.com/waggle-bpf/waggle/isa"
)

func TestHelpersSupported(t *testing.T) {
	mustSupported(t)
	call := func(id int32) isa.Instruction { return isa.Instruction{Op: isa.OpCall, Imm: id} }
	for _, tc := range []struct {
		name    string
		typ     ProgType
		prog    []isa.Instruction
		missing string // "" if supported
	}{
		{"no helpers", XDP, []isa.Instruction{{Op: mov64}, {Op: exit}}, ""},
		{"prandom in xdp", XDP, []isa.Instruction{call(7), {Op: exit}}, ""},
		{"ktime in socket filter", SocketFilter, []isa.Instruction{call(5), call(5), {Op: exit}}, ""},
		// No kernel offers XDP's helpers to socket filters, whatever its build.
		{"xdp_adjust_head in socket filter", SocketFilter, []isa.Instruction{call(7), call(44), {Op: exit}}, "FnXdpAdjustHead (44)"},
		{"two missing, named in order", SocketFilter, []isa.Instruction{call(54), call(44), {Op: exit}}, "FnXdpAdjustHead (44), FnXdpAdjustMeta (54)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := HelpersSupported(tc.typ, tc.prog)
			if tc.missing == "" {
				if err != nil {
					t.Fatalf("HelpersSupported: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrNotSupported) {
				t.Fatalf("HelpersSupported = %v, want an error wrapping ErrNotSupported", err)
			}
			if !strings.Contains(err.Error(), tc.missing) {
				t.Errorf("HelpersSupported = %q, want it to name %s", err, tc.missing)
			}
		})
	}
}

func TestSpecSupported(t *testing.T) {
	mustSupported(t)
	spec := &ebpf.CollectionSpec{
		Maps: map[string]*ebpf.MapSpec{"m": {Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1}},
		Programs: map[string]*ebpf.ProgramSpec{
			"ok": {Type: ebpf.XDP},
		},
	}
	if err := SpecSupported(spec); err != nil {
		t.Fatalf("SpecSupported: %v", err)
	}
	spec.Programs["sock"] = &ebpf.ProgramSpec{Type: ebpf.SocketFilter}
	spec.Programs["sock"].Instructions = append(spec.Programs["sock"].Instructions, ciliumasm.FnXdpAdjustHead.Call())
	err := SpecSupported(spec)
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "program sock") {
		t.Fatalf("SpecSupported = %v, want ErrNotSupported naming program sock", err)
	}
}
