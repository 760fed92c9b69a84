//go:build !linux

package kernel

import (
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Attachment is a program attached to a hook; outside Linux there is none.
type Attachment struct {
	Hook Hook
}

// Links returns nil.
func (a *Attachment) Links() []link.Link { return nil }

// Socket returns -1.
func (a *Attachment) Socket() int { return -1 }

// Close does nothing.
func (a *Attachment) Close() error { return nil }

// Attach fails outside Linux with an error wrapping ErrNotSupported.
func Attach(*ebpf.Program, Hook) (*Attachment, error) { return nil, errNotLinux }

// HookSupported fails outside Linux with an error wrapping ErrNotSupported.
func HookSupported(Hook) error { return errNotLinux }

// Attached is an object attached to a hook; outside Linux there is none.
type Attached struct {
	Program, Section string
	Collection       *ebpf.Collection
	*Attachment
}

// AttachFile fails outside Linux with an error wrapping ErrNotSupported.
func AttachFile(string, AttachOptions) (*Attached, error) { return nil, errNotLinux }

// Pin fails outside Linux with an error wrapping ErrNotSupported.
func (a *Attached) Pin(string) ([]string, error) { return nil, errNotLinux }

// Close does nothing.
func (a *Attached) Close() error { return nil }

// Detach fails outside Linux with an error wrapping ErrNotSupported.
func Detach(string) ([]string, error) { return nil, errNotLinux }

// CheckPinDir fails outside Linux with an error wrapping ErrNotSupported.
func CheckPinDir(string) error { return errNotLinux }
