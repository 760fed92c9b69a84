package bpftest

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
)

// InlineGlobalData turns every load of the address of a variable in the
// named data sections into a load of the variable's value, and leaves the
// sections' maps out, as Cilium's loader did from 1.13 to 1.17
// (pkg/bpf.inlineGlobalData) before kernels froze read-only data: those
// releases' headers read configuration as the address of a variable
// (fetch_u32(x) is (__u64)&x until 1.14; CONFIG(x) is an lddw of
// __config_x in .rodata.config in 1.15 to 1.17), which only means the
// value once the loader has done this. Cilium 1.14 inlined ".data" and
// ".bss" (zeroes), 1.15 to 1.17 ".rodata.config". Both engines load the
// rewritten object. A load from a section that has no variable at that
// offset is an error.
func (o *Object) InlineGlobalData(sections ...string) error {
	type variable struct {
		size  uint32
		value uint64
	}
	vars := map[string]map[uint32]variable{}
	for _, sec := range sections {
		ms := o.spec.Maps[sec]
		if ms == nil {
			continue
		}
		ds, ok := ms.Value.(*btf.Datasec)
		if !ok {
			return fmt.Errorf("%s: section %s has no BTF Datasec to find its variables", o.Name, sec)
		}
		var data []byte
		if len(ms.Contents) == 1 {
			data, _ = ms.Contents[0].Value.([]byte)
		}
		byOff := map[uint32]variable{}
		for _, vsi := range ds.Vars {
			if _, ok := vsi.Type.(*btf.Var); !ok {
				continue
			}
			buf := make([]byte, 8)
			if int(vsi.Offset+vsi.Size) <= len(data) {
				copy(buf, data[vsi.Offset:vsi.Offset+vsi.Size])
			}
			var v uint64
			switch vsi.Size {
			case 8:
				v = o.spec.ByteOrder.Uint64(buf)
			case 4:
				v = uint64(o.spec.ByteOrder.Uint32(buf))
			case 2:
				v = uint64(o.spec.ByteOrder.Uint16(buf))
			case 1:
				v = uint64(buf[0])
			default:
				return fmt.Errorf("%s: %s: variable %s is %d bytes, not 1, 2, 4 or 8", o.Name, sec, vsi.Type.TypeName(), vsi.Size)
			}
			byOff[vsi.Offset] = variable{vsi.Size, v}
		}
		vars[sec] = byOff
	}
	if len(vars) == 0 {
		return nil
	}
	spec := o.spec.Copy()
	for name, ps := range spec.Programs {
		for i := range ps.Instructions {
			ins := &ps.Instructions[i]
			if !ins.IsLoadFromMap() || ins.Src != asm.PseudoMapValue {
				continue
			}
			byOff, ok := vars[ins.Reference()]
			if !ok {
				continue
			}
			off := uint32(uint64(ins.Constant) >> 32)
			v, ok := byOff[off]
			if !ok {
				return fmt.Errorf("%s: program %s: instruction %d loads %s+%d, where no variable starts", o.Name, name, i, ins.Reference(), off)
			}
			*ins = asm.LoadImm(ins.Dst, int64(v.value), asm.DWord).WithMetadata(ins.Metadata).WithReference("")
		}
	}
	for sec := range vars {
		delete(spec.Maps, sec)
	}
	for name, v := range spec.Variables {
		if _, ok := vars[v.SectionName]; ok {
			delete(spec.Variables, name)
		}
	}
	if err := checkReferences(spec); err != nil {
		return fmt.Errorf("%s: %w", o.Name, err)
	}
	o.spec, o.rewritten = spec, true
	return nil
}

// checkReferences reports a program that still refers to a map the spec
// no longer has.
func checkReferences(spec *ebpf.CollectionSpec) error {
	for name, ps := range spec.Programs {
		for i, ins := range ps.Instructions {
			if ref := ins.Reference(); ref != "" && ins.IsLoadFromMap() && spec.Maps[ref] == nil {
				return fmt.Errorf("program %s: instruction %d refers to %s, which is inlined: a variable of it is written or its address taken", name, i, ref)
			}
		}
	}
	return nil
}
