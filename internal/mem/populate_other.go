//go:build !linux

package mem

import "errors"

// populate has no system call to ask for it here: Populate writes a
// byte of every page instead.
func populate([]byte) error { return errors.New("no MADV_POPULATE_WRITE") }
