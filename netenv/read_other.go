//go:build !linux

package netenv

import "errors"

// errNotLinux is what reading a namespace returns outside Linux.
var errNotLinux = errors.New("netenv: reading a network namespace needs Linux")

// ReadNamespace fails outside Linux: network namespaces are Linux's.
func ReadNamespace(path string) (*Config, error) { return nil, errNotLinux }

// ReadHost fails outside Linux.
func ReadHost() (*Host, error) { return nil, errNotLinux }
