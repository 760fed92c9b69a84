//go:build !linux

package kernel

import (
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/isa"
)

// errNotLinux is what every operation returns outside Linux.
var errNotLinux = fmt.Errorf("%w: not linux", ErrNotSupported)

// Supported reports whether this process can load and test-run programs in
// the kernel. Outside Linux it never can.
func Supported() error { return errNotLinux }

// Program is a program loaded into the kernel; outside Linux there is none.
type Program struct{}

// Load fails outside Linux with an error wrapping ErrNotSupported.
func Load([]isa.Instruction, LoadOptions) (*Program, error) { return nil, errNotLinux }

// LoadBytes fails outside Linux with an error wrapping ErrNotSupported.
func LoadBytes([]byte, LoadOptions) (*Program, error) { return nil, errNotLinux }

// FD returns -1: there is no file descriptor outside Linux.
func (p *Program) FD() int { return -1 }

// Type returns 0.
func (p *Program) Type() ProgType { return 0 }

// VerifierLog returns "".
func (p *Program) VerifierLog() string { return "" }

// Close does nothing.
func (p *Program) Close() error { return nil }

// Run fails outside Linux with an error wrapping ErrNotSupported.
func (p *Program) Run(*RunOptions) (RunResult, error) { return RunResult{}, errNotLinux }

// Xlated fails outside Linux with an error wrapping ErrNotSupported.
func (p *Program) Xlated() ([]isa.Instruction, error) { return nil, errNotLinux }

// HelpersSupported fails outside Linux with an error wrapping ErrNotSupported.
func HelpersSupported(ProgType, []isa.Instruction) error { return errNotLinux }

// ProgramTypeSupported fails outside Linux with an error wrapping ErrNotSupported.
func ProgramTypeSupported(ProgType) error { return errNotLinux }

// MayGotoSupported fails outside Linux with an error wrapping ErrNotSupported.
func MayGotoSupported() error { return errNotLinux }

// MapTypeSupported fails outside Linux with an error wrapping ErrNotSupported.
func MapTypeSupported(uint32) error { return errNotLinux }

// SpecSupported fails outside Linux with an error wrapping ErrNotSupported.
func SpecSupported(*ebpf.CollectionSpec) error { return errNotLinux }

// ProgramSpecSupported fails outside Linux with an error wrapping ErrNotSupported.
func ProgramSpecSupported(*ebpf.ProgramSpec) error { return errNotLinux }

// NewCollection fails outside Linux with an error wrapping ErrNotSupported.
func NewCollection(*ebpf.CollectionSpec) (*Collection, error) { return nil, errNotLinux }

// NewCollectionFrom fails outside Linux with an error wrapping ErrNotSupported.
func NewCollectionFrom(*LoadedCollection) (*Collection, error) { return nil, errNotLinux }
