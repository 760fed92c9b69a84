//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	ciliumasm "github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/waggle-bpf/waggle/isa"
)

// The kernel build differs between machines: one refuses
// bpf_xdp_adjust_meta in XDP programs that another accepts, one has no
// kprobes. A comparison with the kernel asks first whether the kernel offers
// what the program needs, and is skipped (never failed) when it does not.
// The probes are cilium/ebpf's features package, which loads a tiny program
// or creates a tiny map once per question and caches the answer.

// HelpersSupported reports whether the running kernel lets programs of type
// typ call every helper prog calls. The error wraps ErrNotSupported and
// names each missing helper (or the probe that failed).
func HelpersSupported(typ ProgType, prog []isa.Instruction) error {
	if err := ProgramTypeSupported(typ); err != nil {
		return err
	}
	ids := map[int32]bool{}
	for _, ins := range prog {
		if ins.IsHelperCall() {
			ids[ins.Imm] = true
		}
	}
	sorted := make([]int32, 0, len(ids))
	for id := range ids {
		sorted = append(sorted, id)
	}
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	var missing []string
	for _, id := range sorted {
		fn := ciliumasm.BuiltinFunc(id)
		if err := features.HaveProgramHelper(ebpf.ProgramType(typ), fn); err != nil {
			if errors.Is(err, ebpf.ErrNotSupported) {
				missing = append(missing, fmt.Sprintf("%v (%d)", fn, id))
				continue
			}
			return fmt.Errorf("%w: probing helper %v (%d) for %v programs: %v", ErrNotSupported, fn, id, ebpf.ProgramType(typ), err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: this kernel does not offer %v programs %s", ErrNotSupported, ebpf.ProgramType(typ), strings.Join(missing, ", "))
	}
	return nil
}

// ProgramTypeSupported reports whether the running kernel loads programs of
// type typ. The error wraps ErrNotSupported.
func ProgramTypeSupported(typ ProgType) error {
	if err := Supported(); err != nil {
		return err
	}
	if err := features.HaveProgramType(ebpf.ProgramType(typ)); err != nil {
		return fmt.Errorf("%w: this kernel does not load %v programs: %v", ErrNotSupported, ebpf.ProgramType(typ), err)
	}
	return nil
}

// MayGotoSupported reports whether the running kernel's verifier takes
// may_goto (BPF_JMP|BPF_JCOND, Linux 6.9 and later: libbpf's can_loop): it
// loads the smallest XDP program with one. The error wraps ErrNotSupported
// when the kernel refuses it.
func MayGotoSupported() error {
	if err := Supported(); err != nil {
		return err
	}
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.XDP,
		Instructions: ciliumasm.Instructions{
			ciliumasm.Mov.Imm(ciliumasm.R0, 1),
			{OpCode: ciliumasm.OpCode(isa.OpMayGoto), Offset: 1},
			ciliumasm.Mov.Imm(ciliumasm.R0, 2),
			ciliumasm.Return(),
		},
		License: "GPL",
	})
	if err != nil {
		return fmt.Errorf("%w: this kernel refuses may_goto: %v", ErrNotSupported, err)
	}
	return p.Close()
}

// MapTypeSupported reports whether the running kernel creates maps of type
// typ (enum bpf_map_type). The error wraps ErrNotSupported.
func MapTypeSupported(typ uint32) error {
	if err := Supported(); err != nil {
		return err
	}
	if err := features.HaveMapType(ebpf.MapType(typ)); err != nil {
		return fmt.Errorf("%w: this kernel does not create %v maps: %v", ErrNotSupported, ebpf.MapType(typ), err)
	}
	return nil
}

// SpecSupported reports whether the running kernel offers everything the
// programs and maps of spec need that can be probed: their program types,
// the helpers each calls, and the map types. The error wraps
// ErrNotSupported and names the program or map.
func SpecSupported(spec *ebpf.CollectionSpec) error {
	names := make([]string, 0, len(spec.Maps))
	for n := range spec.Maps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := MapTypeSupported(uint32(spec.Maps[n].Type)); err != nil {
			return fmt.Errorf("map %s: %w", n, err)
		}
	}
	names = names[:0]
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := ProgramSpecSupported(spec.Programs[n]); err != nil {
			return fmt.Errorf("program %s: %w", n, err)
		}
	}
	return nil
}

// ProgramSpecSupported reports whether the running kernel loads programs of
// ps's type and offers them every helper ps calls. The error wraps
// ErrNotSupported.
func ProgramSpecSupported(ps *ebpf.ProgramSpec) error {
	var calls []isa.Instruction
	for _, ins := range ps.Instructions {
		if ins.IsBuiltinCall() {
			calls = append(calls, isa.Instruction{Op: isa.OpCall, Imm: int32(ins.Constant)}) // a helper call, by id
		}
	}
	return HelpersSupported(ProgType(ps.Type), calls)
}
