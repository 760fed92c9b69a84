package loader

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Legacy map definitions in "maps" sections. cilium/ebpf reads the five
// fields they share and keeps the rest of each definition in
// MapSpec.Extra; this file reads that rest.
//
//	offset  struct bpf_map_def (samples/bpf)   struct bpf_elf_map (iproute2)
//	 0      type                               type
//	 4      key_size                           size_key
//	 8      value_size                         size_value
//	12      max_entries                        max_elem
//	16      map_flags                          flags
//	20      inner_map_idx                      id
//	24      numa_node                          pinning
//	28      -                                  inner_id
//	32      -                                  inner_idx
//	36      (end)                              (end)

const commonMapDefSize = 20

// legacyMaps parses MapSpec.Extra of every legacy map into Object.MapDefs,
// sets inner map templates of maps of maps, and clears Extra.
func (b *builder) legacyMaps() error {
	tailSections := false
	for _, p := range b.obj.Programs {
		if _, _, ok := isTailCallSection(p.Section); ok {
			tailSections = true
		}
	}
	for i, ms := range b.obj.Maps {
		if ms.Extra == nil {
			continue
		}
		extra := make([]byte, ms.Extra.Size())
		if _, err := ms.Extra.ReadAt(extra, 0); err != nil && len(extra) > 0 {
			return fmt.Errorf("map %s: read definition: %w", ms.Name, err)
		}
		ms.Extra = nil
		size := commonMapDefSize + len(extra)
		format := b.mapDefFormat(ms.Name, size, tailSections)
		fields := make([]uint32, 4)
		known := 8
		if format == MapDefIproute2 {
			known = 16
		}
		for k := 0; k+4 <= len(extra) && k < known; k += 4 {
			fields[k/4] = b.obj.ByteOrder.Uint32(extra[k:])
		}
		if len(extra)%4 != 0 {
			return fmt.Errorf("map %s: %d-byte definition is not a whole number of 32-bit fields", ms.Name, size)
		}
		if len(extra) > known && slices.ContainsFunc(extra[known:], func(c byte) bool { return c != 0 }) {
			return fmt.Errorf("map %s: %d-byte %s definition: bytes past the %d this loader understands must be zero", ms.Name, size, format, commonMapDefSize+known)
		}
		def := MapDef{Map: i, Format: format, Size: size}
		if format == MapDefIproute2 {
			def.ID, def.Pinning, def.InnerID, def.InnerIdx = fields[0], fields[1], fields[2], fields[3]
		} else {
			def.InnerMapIdx, def.NumaNode = fields[0], fields[1]
			ms.NumaNode = def.NumaNode
		}
		b.obj.MapDefs = append(b.obj.MapDefs, def)
	}

	byID := make(map[uint32]int)
	for _, d := range b.obj.MapDefs {
		if d.Format == MapDefIproute2 && d.ID != 0 {
			if j, dup := byID[d.ID]; dup {
				return fmt.Errorf("maps %s and %s: both have id %d", b.obj.Maps[j].Name, b.obj.Maps[d.Map].Name, d.ID)
			}
			byID[d.ID] = d.Map
		}
	}
	for _, d := range b.obj.MapDefs {
		outer := b.obj.Maps[d.Map]
		if !isMapOfMaps(outer.Type) || outer.InnerMap != nil {
			continue
		}
		var inner int
		switch d.Format {
		case MapDefIproute2:
			if d.InnerID == 0 {
				return fmt.Errorf("map %s: map of maps without inner_id", outer.Name)
			}
			j, ok := byID[d.InnerID]
			if !ok {
				return fmt.Errorf("map %s: inner_id %d: no map has that id", outer.Name, d.InnerID)
			}
			inner = j
		default:
			names, err := b.legacySection(outer.Name)
			if err != nil {
				return fmt.Errorf("map %s: inner_map_idx %d: %w", outer.Name, d.InnerMapIdx, err)
			}
			if int(d.InnerMapIdx) >= len(names) {
				return fmt.Errorf("map %s: inner_map_idx %d, but its section has %d maps", outer.Name, d.InnerMapIdx, len(names))
			}
			inner = b.mapIdx[names[d.InnerMapIdx]]
		}
		if inner == d.Map {
			return fmt.Errorf("map %s: is its own inner map", outer.Name)
		}
		tmpl := b.obj.Maps[inner].Copy()
		tmpl.Contents = nil
		outer.InnerMap = tmpl
	}

	// iproute2 stores a map with an id (and no inner_id) at slot inner_idx
	// of every map of maps whose inner_id is that id (lib/bpf_legacy.c,
	// bpf_maps_attach_all).
	for _, in := range b.obj.MapDefs {
		if in.Format != MapDefIproute2 || in.ID == 0 || in.InnerID != 0 || in.InnerIdx == ^uint32(0) {
			continue
		}
		for _, out := range b.obj.MapDefs {
			if out.Format == MapDefIproute2 && out.InnerID == in.ID && isMapOfMaps(b.obj.Maps[out.Map].Type) {
				b.obj.Bindings = append(b.obj.Bindings, Binding{Map: out.Map, Key: in.InnerIdx, Program: -1, Inner: in.Map})
			}
		}
	}
	// ... and a program of section "ID/KEY" at slot KEY of the prog array
	// with that id (bpf_fill_prog_arrays).
	for k, p := range b.obj.Programs {
		id, key, ok := isTailCallSection(p.Section)
		if !ok {
			continue
		}
		j, ok := byID[id]
		if !ok {
			continue
		}
		if t := b.obj.Maps[j].Type; t != ebpf.ProgramArray {
			return fmt.Errorf("program %s: section %q names map %s (id %d), which is a %s, not a prog array", p.Name, p.Section, b.obj.Maps[j].Name, id, t)
		}
		b.obj.Bindings = append(b.obj.Bindings, Binding{Map: j, Key: key, Program: k, Inner: -1})
	}
	return nil
}

func isMapOfMaps(t ebpf.MapType) bool { return t == ebpf.ArrayOfMaps || t == ebpf.HashOfMaps }

// mapDefFormat decides how to read a legacy definition of size bytes.
func (b *builder) mapDefFormat(name string, size int, tailSections bool) MapDefFormat {
	if b.opts.MapDef != MapDefAuto {
		return b.opts.MapDef
	}
	if b.spec.Types != nil {
		types, _ := b.spec.Types.AnyTypesByName(name)
		for _, t := range types {
			v, ok := t.(*btf.Var)
			if !ok {
				continue
			}
			if s, ok := btf.UnderlyingType(v.Type).(*btf.Struct); ok {
				switch s.Name {
				case "bpf_elf_map":
					return MapDefIproute2
				case "bpf_map_def", "bpf_load_map_def":
					return MapDefLibbpf
				}
			}
		}
	}
	switch {
	case size <= 24:
		return MapDefLibbpf
	case size == 28 && !tailSections:
		return MapDefLibbpf
	}
	return MapDefIproute2
}

// legacySection returns the names of the maps in the legacy maps section of
// map name, in offset order.
func (b *builder) legacySection(name string) ([]string, error) {
	if b.ef != nil {
		for _, names := range b.ef.legacyMaps {
			if slices.Contains(names, name) {
				return names, nil
			}
		}
		return nil, fmt.Errorf("map is in no legacy maps section")
	}
	// From a spec: BTF's Datasec of the section lists its variables in
	// offset order.
	if b.spec.Types != nil {
		for t := range b.spec.Types.All() {
			ds, ok := t.(*btf.Datasec)
			if !ok || !strings.HasPrefix(ds.Name, "maps") {
				continue
			}
			var names []string
			found := false
			vars := slices.Clone(ds.Vars)
			slices.SortStableFunc(vars, func(a, b btf.VarSecinfo) int { return int(a.Offset) - int(b.Offset) })
			for _, v := range vars {
				names = append(names, v.Type.TypeName())
				found = found || v.Type.TypeName() == name
			}
			if found {
				return names, nil
			}
		}
	}
	return nil, fmt.Errorf("the order of the maps section is unknown without BTF: %w (load the ELF file with Load)", ErrNotSupported)
}

// bindings moves the elements of Contents that name a program or map (BTF
// map definitions with `.values = {...}`) to Object.Bindings.
func (b *builder) bindings() error {
	progIdx := make(map[string]int, len(b.obj.Programs))
	for i, p := range b.obj.Programs {
		progIdx[p.Name] = i
	}
	for i, ms := range b.obj.Maps {
		var keep []ebpf.MapKV
		for _, kv := range ms.Contents {
			name, ok := kv.Value.(string)
			if !ok {
				keep = append(keep, kv)
				continue
			}
			key, ok := kv.Key.(uint32)
			if !ok {
				return fmt.Errorf("map %s: element %v = %q: key is a %T, want uint32", ms.Name, kv.Key, name, kv.Key)
			}
			bnd := Binding{Map: i, Key: key, Program: -1, Inner: -1}
			switch {
			case ms.Type == ebpf.ProgramArray:
				p, ok := progIdx[name]
				if !ok {
					return fmt.Errorf("map %s: slot %d: %q is not a program of the object", ms.Name, key, name)
				}
				bnd.Program = p
			case isMapOfMaps(ms.Type):
				j, ok := b.mapIdx[name]
				if !ok {
					return fmt.Errorf("map %s: slot %d: %q is not a map of the object", ms.Name, key, name)
				}
				bnd.Inner = j
			default:
				return fmt.Errorf("map %s: slot %d refers to %q, but a %s holds neither programs nor maps", ms.Name, key, name, ms.Type)
			}
			b.obj.Bindings = append(b.obj.Bindings, bnd)
		}
		ms.Contents = keep
	}
	return nil
}
