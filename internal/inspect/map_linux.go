//go:build linux

package inspect

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/mapjson"
	"github.com/waggle-bpf/waggle/kernel"
)

// OpenMap opens the map ref names; pinned maps read-only unless write.
// The caller closes it.
func OpenMap(ref Ref, write bool) (*ebpf.Map, error) {
	if ref.Path != "" {
		m, err := ebpf.LoadPinnedMap(ref.Path, &ebpf.LoadPinOptions{ReadOnly: !write})
		if err != nil {
			return nil, fmt.Errorf("map pinned at %s: %w", ref.Path, err)
		}
		return m, nil
	}
	m, err := ebpf.NewMapFromID(ebpf.MapID(ref.ID))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("map id %d: no such map", ref.ID)
		}
		return nil, fmt.Errorf("map id %d: %w", ref.ID, privileged(err))
	}
	return m, nil
}

// Maps describes every map in the kernel, by id.
func Maps() ([]Map, error) {
	var out []Map
	var id ebpf.MapID
	for {
		next, err := ebpf.MapGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("next map after id %d: %w", id, privileged(err))
		}
		id = next
		m, err := ebpf.NewMapFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // freed since
		}
		if err != nil {
			return out, fmt.Errorf("map id %d: %w", id, err)
		}
		d, err := DescribeMap(m)
		m.Close()
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
}

// ShowMap describes the map ref names.
func ShowMap(ref Ref) (Map, error) {
	m, err := OpenMap(ref, false)
	if err != nil {
		return Map{}, err
	}
	defer m.Close()
	return DescribeMap(m)
}

// DescribeMap says what bpftool map show says about m.
func DescribeMap(m *ebpf.Map) (Map, error) {
	info, err := m.Info()
	if err != nil {
		return Map{}, fmt.Errorf("map info: %w", err)
	}
	id, _ := info.ID()
	d := Map{ID: uint32(id), Type: MapTypeName(uint32(info.Type)), TypeNum: uint32(info.Type), Name: info.Name,
		Flags: info.Flags, BytesKey: info.KeySize, BytesValue: info.ValueSize, MaxEntries: info.MaxEntries}
	d.BytesMemlock, _ = info.Memlock()
	if info.Frozen() {
		d.Frozen = 1
	}
	if b, ok := info.BTFID(); ok {
		d.BTFID = uint32(b)
	}
	return d, nil
}

// MapHandle is an open map with what formats its elements.
type MapHandle struct {
	Map  *ebpf.Map
	Desc Map
	// Format describes the map for mapjson: sizes, CPUs and, when the map
	// has BTF that fits it, its key and value types.
	Format *mapjson.Map
	// BTFWarning says why the map's BTF is not used ("" if it is, or if
	// there is none).
	BTFWarning string
}

// OpenMapHandle opens the map ref names (writable if write) and reads its
// BTF.
func OpenMapHandle(ref Ref, write bool) (*MapHandle, error) {
	m, err := OpenMap(ref, write)
	if err != nil {
		return nil, err
	}
	h := &MapHandle{Map: m}
	if h.Desc, err = DescribeMap(m); err != nil {
		m.Close()
		return nil, err
	}
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("possible CPUs: %w", err)
	}
	h.Format = &mapjson.Map{Name: h.Desc.Name, Type: m.Type(), KeySize: m.KeySize(), ValueSize: m.ValueSize(),
		MaxEntries: m.MaxEntries(), CPUs: cpus}
	if h.Format.Name == "" {
		h.Format.Name = fmt.Sprintf("id %d", h.Desc.ID)
	}
	if err := h.readBTF(); err != nil {
		h.BTFWarning = err.Error()
		h.Format.Key, h.Format.Value = nil, nil
	}
	return h, nil
}

// readBTF sets the key and value types from the map's BTF.
func (h *MapHandle) readBTF() error {
	btfID, keyID, valueID, err := kernel.MapBTFTypes(h.Map.FD())
	if err != nil {
		return err
	}
	if btfID == 0 || valueID == 0 {
		return nil
	}
	bh, err := btf.NewHandleFromID(btf.ID(btfID))
	if err != nil {
		return fmt.Errorf("map %s: BTF id %d: %w", h.Format.Name, btfID, err)
	}
	defer bh.Close()
	spec, err := bh.Spec(nil)
	if err != nil {
		return fmt.Errorf("map %s: BTF id %d: %w", h.Format.Name, btfID, err)
	}
	if keyID != 0 {
		if h.Format.Key, err = spec.TypeByID(btf.TypeID(keyID)); err != nil {
			return fmt.Errorf("map %s: key type: %w", h.Format.Name, err)
		}
	}
	if h.Format.Value, err = spec.TypeByID(btf.TypeID(valueID)); err != nil {
		return fmt.Errorf("map %s: value type: %w", h.Format.Name, err)
	}
	return h.Format.Check()
}

// Close closes the map.
func (h *MapHandle) Close() error { return h.Map.Close() }

// elementless says why a map type has no elements to iterate or look up.
func elementless(t ebpf.MapType) string {
	switch t {
	case ebpf.RingBuf, ebpf.UserRingbuf, ebpf.PerfEventArray:
		return "it holds records, not elements"
	case ebpf.Queue, ebpf.Stack, ebpf.BloomFilter:
		return "its values have no keys"
	case ebpf.StructOpsMap:
		return "it holds a struct_ops"
	}
	return ""
}

// Dump returns every element, in the kernel's iteration order.
func (h *MapHandle) Dump() ([]Entry, error) {
	if why := elementless(h.Map.Type()); why != "" {
		return nil, fmt.Errorf("map %s is a %s: %s", h.Format.Name, h.Desc.Type, why)
	}
	var out []Entry
	it := h.Map.Iterate()
	var k []byte
	if h.Format.PerCPU() {
		var vs [][]byte
		for it.Next(&k, &vs) {
			out = append(out, Entry{Key: append([]byte(nil), k...), Value: padPerCPU(vs, h.Format.Stride())})
		}
	} else {
		var v []byte
		for it.Next(&k, &v) {
			out = append(out, Entry{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
		}
	}
	if err := it.Err(); err != nil {
		return out, fmt.Errorf("map %s: %w", h.Format.Name, err)
	}
	return out, nil
}

// Lookup returns the element with key; the error wraps
// ebpf.ErrKeyNotExist when there is none.
func (h *MapHandle) Lookup(key []byte) (Entry, error) {
	if why := elementless(h.Map.Type()); why != "" {
		return Entry{}, fmt.Errorf("map %s is a %s: %s", h.Format.Name, h.Desc.Type, why)
	}
	if len(key) != int(h.Format.KeySize) {
		return Entry{}, fmt.Errorf("map %s: key of %d bytes, want %d", h.Format.Name, len(key), h.Format.KeySize)
	}
	if h.Format.PerCPU() {
		var vs [][]byte
		if err := h.Map.Lookup(key, &vs); err != nil {
			return Entry{}, fmt.Errorf("map %s: %w", h.Format.Name, err)
		}
		return Entry{Key: key, Value: padPerCPU(vs, h.Format.Stride())}, nil
	}
	v, err := h.Map.LookupBytes(key)
	if err != nil {
		return Entry{}, fmt.Errorf("map %s: %w", h.Format.Name, err)
	}
	if v == nil {
		return Entry{}, fmt.Errorf("map %s: lookup: %w", h.Format.Name, ebpf.ErrKeyNotExist)
	}
	return Entry{Key: key, Value: v}, nil
}

// Update sets the element with key to value (every CPU's, padded, for
// per-CPU maps), with BPF_ANY, BPF_NOEXIST or BPF_EXIST.
func (h *MapHandle) Update(key, value []byte, flags ebpf.MapUpdateFlags) error {
	if len(key) != int(h.Format.KeySize) {
		return fmt.Errorf("map %s: key of %d bytes, want %d", h.Format.Name, len(key), h.Format.KeySize)
	}
	if len(value) != h.Format.ValueBytes() {
		return fmt.Errorf("map %s: value of %d bytes, want %d", h.Format.Name, len(value), h.Format.ValueBytes())
	}
	var v any = value
	if h.Format.PerCPU() {
		vs := make([][]byte, max(h.Format.CPUs, 1))
		for cpu := range vs {
			vs[cpu] = value[cpu*h.Format.Stride() : cpu*h.Format.Stride()+int(h.Format.ValueSize)]
		}
		v = vs
	}
	if err := h.Map.Update(key, v, flags); err != nil {
		return fmt.Errorf("map %s: %w", h.Format.Name, err)
	}
	return nil
}

// UpdateObject stores a program (prog arrays) or map (maps of maps) at
// key: values of such maps are objects, given by id or pin.
func (h *MapHandle) UpdateObject(key []byte, obj Ref, flags ebpf.MapUpdateFlags) error {
	if len(key) != int(h.Format.KeySize) {
		return fmt.Errorf("map %s: key of %d bytes, want %d", h.Format.Name, len(key), h.Format.KeySize)
	}
	var v any
	switch h.Map.Type() {
	case ebpf.ProgramArray:
		p, err := OpenProgram(obj)
		if err != nil {
			return err
		}
		defer p.Close()
		v = p
	case ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		m, err := OpenMap(obj, false)
		if err != nil {
			return err
		}
		defer m.Close()
		v = m
	default:
		return fmt.Errorf("map %s is a %s: its values are bytes, not objects", h.Format.Name, h.Desc.Type)
	}
	if err := h.Map.Update(key, v, flags); err != nil {
		return fmt.Errorf("map %s: %w", h.Format.Name, err)
	}
	return nil
}

// HoldsObjects reports whether the map's values are programs or maps.
func (h *MapHandle) HoldsObjects() bool {
	switch h.Map.Type() {
	case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
		return true
	}
	return false
}

// Delete removes the element with key; the error wraps
// ebpf.ErrKeyNotExist when there is none.
func (h *MapHandle) Delete(key []byte) error {
	if len(key) != int(h.Format.KeySize) {
		return fmt.Errorf("map %s: key of %d bytes, want %d", h.Format.Name, len(key), h.Format.KeySize)
	}
	if err := h.Map.Delete(key); err != nil {
		return fmt.Errorf("map %s: %w", h.Format.Name, err)
	}
	return nil
}

// PinMap pins the map ref names at path (in a bpffs).
func PinMap(ref Ref, path string) error {
	m, err := OpenMap(ref, true)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Pin(path); err != nil {
		return fmt.Errorf("map %s: pin at %s: %w", ref, path, err)
	}
	return nil
}
