//go:build !linux

package maps_test

import (
	"testing"

	"github.com/waggle-bpf/waggle/maps"
)

func benchKernel(b *testing.B, spec maps.Spec, keys, lookups [][]byte, order []int) {}

func kernelMemlock(b *testing.B) (uint64, bool) { return 0, false }
