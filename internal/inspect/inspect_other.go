//go:build !linux

package inspect

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/internal/mapjson"
)

// errNotLinux is what every kernel operation returns outside Linux.
var errNotLinux = fmt.Errorf("%w: the kernel's eBPF objects exist only on Linux", ErrNotSupported)

// Programs fails outside Linux with an error wrapping ErrNotSupported.
func Programs() ([]Program, error) { return nil, errNotLinux }

// ShowProgram fails outside Linux with an error wrapping ErrNotSupported.
func ShowProgram(Ref) (Program, error) { return Program{}, errNotLinux }

// Xlated is a program's translated code, formatted.
type Xlated struct {
	Program Program
	Insns   []XlatedInsn
}

// DumpXlated fails outside Linux with an error wrapping ErrNotSupported.
func DumpXlated(Ref) (Xlated, error) { return Xlated{}, errNotLinux }

// Jited is a program's machine code, disassembled.
type Jited struct {
	Program Program
	Funcs   []JitedFunc
}

// DumpJited fails outside Linux with an error wrapping ErrNotSupported.
func DumpJited(Ref, string) (Jited, error) { return Jited{}, errNotLinux }

// Maps fails outside Linux with an error wrapping ErrNotSupported.
func Maps() ([]Map, error) { return nil, errNotLinux }

// ShowMap fails outside Linux with an error wrapping ErrNotSupported.
func ShowMap(Ref) (Map, error) { return Map{}, errNotLinux }

// MapHandle is an open map; outside Linux there is none.
type MapHandle struct {
	Desc       Map
	Format     *mapjson.Map
	BTFWarning string
}

// OpenMapHandle fails outside Linux with an error wrapping ErrNotSupported.
func OpenMapHandle(Ref, bool) (*MapHandle, error) { return nil, errNotLinux }

// Close does nothing.
func (h *MapHandle) Close() error { return nil }

// Dump fails outside Linux.
func (h *MapHandle) Dump() ([]Entry, error) { return nil, errNotLinux }

// Lookup fails outside Linux.
func (h *MapHandle) Lookup([]byte) (Entry, error) { return Entry{}, errNotLinux }

// Update fails outside Linux.
func (h *MapHandle) Update(_, _ []byte, _ ebpf.MapUpdateFlags) error { return errNotLinux }

// UpdateObject fails outside Linux.
func (h *MapHandle) UpdateObject([]byte, Ref, ebpf.MapUpdateFlags) error { return errNotLinux }

// HoldsObjects reports false.
func (h *MapHandle) HoldsObjects() bool { return false }

// Delete fails outside Linux.
func (h *MapHandle) Delete([]byte) error { return errNotLinux }

// PinMap fails outside Linux with an error wrapping ErrNotSupported.
func PinMap(Ref, string) error { return errNotLinux }

// Links fails outside Linux with an error wrapping ErrNotSupported.
func Links() ([]Link, error) { return nil, errNotLinux }

// ProbeFeatures probes nothing outside Linux: Err says so.
func ProbeFeatures(bool) *Features { return &Features{err: errNotLinux} }

// LoadBTFByID fails outside Linux with an error wrapping ErrNotSupported.
func LoadBTFByID(uint32) (*btf.Spec, error) { return nil, errNotLinux }
