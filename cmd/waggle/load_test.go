package main

import (
	"strings"
	"testing"
)

// TestLoad_help: the help says that without --pin nothing outlives the
// command, and where --pin puts programs and maps.
func TestLoad_help(t *testing.T) {
	code, out, _ := runCLI(t, "", "load", "--help")
	for _, s := range []string{"released when waggle exits", "DIR/progs/NAME", "DIR/maps/NAME", "--type SEC=TYPE"} {
		if code != 0 || !strings.Contains(out, s) {
			t.Errorf("status %d, help lacks %q", code, s)
		}
	}
	code, _, errOut := runCLI(t, "", "load", "../../examples/counter/counter.o", "--type", "ingress=nope")
	if code != 1 || !strings.Contains(errOut, `unknown type "nope"`) {
		t.Errorf("--type ingress=nope: status %d, %q", code, errOut)
	}
}
