//go:build !linux

package kernel

import "fmt"

// Supported reports whether this process can load and test-run programs in
// the kernel. Outside Linux it never can.
func Supported() error {
	return fmt.Errorf("%w: not linux", ErrNotSupported)
}
