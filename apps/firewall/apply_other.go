//go:build !linux

package firewall

import (
	"context"
	"errors"
)

var errNotLinux = errors.New("firewall: attaching to an interface needs Linux")

// Apply attaches the firewall to an interface: Linux only.
func Apply(*Compiled, ApplyOptions) (*ApplyResult, error) { return nil, errNotLinux }

// PinnedCounters reads an applied firewall's counters: Linux only.
func PinnedCounters(string) (map[uint32]Counter, error) { return nil, errNotLinux }

// CaptureDropped reads an applied firewall's drop samples: Linux only.
func CaptureDropped(context.Context, string, func(Sample) error) error { return errNotLinux }
