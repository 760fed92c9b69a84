//go:build linux && amd64

package jitrt

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"
)

// mappingPerm returns the permissions /proc/self/maps gives the mapping
// holding addr ("r-xp").
func mappingPerm(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		if _, err := fmt.Sscanf(fields[0], "%x-%x", &lo, &hi); err != nil {
			continue
		}
		if addr >= lo && addr < hi {
			return fields[1]
		}
	}
	t.Fatalf("%#x is in no mapping", addr)
	return ""
}
