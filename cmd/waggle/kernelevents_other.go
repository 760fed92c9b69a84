//go:build !linux

package main

import (
	"errors"

	"github.com/cilium/ebpf"
)

// newKernelEventPrinter fails outside Linux: there is no kernel to read.
func newKernelEventPrinter(*env, *objectMaps, map[string]*ebpf.Map, bool) (*eventPrinter, error) {
	return nil, errors.New("--events with --engine kernel: the kernel's ring buffers are Linux's")
}
