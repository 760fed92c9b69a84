//go:build !linux

package main

import (
	"errors"

	"github.com/waggle-bpf/waggle"
)

func (e *env) runIface(*waggle.Program, *objectFlags) error {
	return errors.New("--iface needs Linux (AF_PACKET sockets)")
}
