//go:build !linux

package firewall

import (
	"context"
	"errors"
	"time"
)

var errNotLinux = errors.New("firewall: attaching to an interface needs Linux")

// Apply attaches the firewall to an interface: Linux only.
func Apply(*Compiled, ApplyOptions) (*ApplyResult, error) { return nil, errNotLinux }

// PinnedCounters reads an applied firewall's counters: Linux only.
func PinnedCounters(string) (map[uint32]Counter, error) { return nil, errNotLinux }

// CaptureDropped reads an applied firewall's drop samples: Linux only.
func CaptureDropped(context.Context, string, func(Sample) error) error { return errNotLinux }

// CaptureAll reads all of an applied firewall's samples: Linux only.
func CaptureAll(context.Context, string, func(Sample) error) error { return errNotLinux }

// WallClockShift maps the kernel's clock to the wall clock: Linux only.
func WallClockShift() (time.Duration, error) { return 0, errNotLinux }

// Pinned reads an applied firewall's maps: Linux only.
type Pinned struct{}

// OpenPinned opens an applied firewall's maps: Linux only.
func OpenPinned(string) (*Pinned, error) { return nil, errNotLinux }

// Close does nothing.
func (*Pinned) Close() error { return nil }

// Counters reads the per-rule counters: Linux only.
func (*Pinned) Counters() (map[uint32]Counter, error) { return nil, errNotLinux }

// TopTalkers reads the top talkers: Linux only.
func (*Pinned) TopTalkers(int) ([]Talker, error) { return nil, errNotLinux }

// SYNProtection reads the SYN protection in force: Linux only.
func (*Pinned) SYNProtection() (string, error) { return "", errNotLinux }

// UnderAttack reads the attack state: Linux only.
func (*Pinned) UnderAttack() (bool, error) { return false, errNotLinux }

// SamplesLost reads the count of samples lost: Linux only.
func (*Pinned) SamplesLost() (uint64, error) { return 0, errNotLinux }
