package loader

import (
	"reflect"

	"github.com/cilium/ebpf/asm"
)

// kconfigMetaOffset reads the offset into .kconfig that cilium/ebpf's ELF
// reader stores with a __kconfig extern load. cilium/ebpf v0.22.0 keeps it
// in instruction metadata under an unexported key (elf_reader.go:
// kconfigMetaKey -> *kconfigMeta{Map, Offset}) and drops the symbol name, so
// a CollectionSpec offers no other way to know which variable a load reads.
// The list is walked with reflect, reading only; if cilium/ebpf changes the
// layout this reports false and the caller falls back (Test_kconfigMetaOffset
// notices).
func kconfigMetaOffset(ins *asm.Instruction) (off uint32, ok bool) {
	defer func() {
		if recover() != nil {
			off, ok = 0, false
		}
	}()
	e := reflect.ValueOf(&ins.Metadata).Elem().FieldByName("head")
	for steps := 0; steps < 64 && e.IsValid() && e.Kind() == reflect.Pointer && !e.IsNil(); steps++ {
		el := e.Elem()
		key := el.FieldByName("key")
		if key.Kind() == reflect.Interface && !key.IsNil() && key.Elem().Type().Name() == "kconfigMetaKey" {
			v := el.FieldByName("value")
			if v.Kind() != reflect.Interface || v.IsNil() {
				return 0, false
			}
			m := v.Elem()
			if m.Kind() != reflect.Pointer || m.IsNil() {
				return 0, false
			}
			o := m.Elem().FieldByName("Offset")
			if !o.IsValid() || o.Kind() != reflect.Uint32 {
				return 0, false
			}
			return uint32(o.Uint()), true
		}
		e = el.FieldByName("next")
	}
	return 0, false
}
