//go:build !(linux && amd64)

package jitrt

import (
	"errors"
	"runtime"
)

// Supported reports why this platform does not run machine code: the JIT
// is for linux/amd64.
func Supported() error {
	return errors.New("the JIT runs on linux/amd64; this is " + runtime.GOOS + "/" + runtime.GOARCH)
}
