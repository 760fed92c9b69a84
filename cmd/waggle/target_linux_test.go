package main

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/kernel"
)

// TestVerifyCmd_targetHost: as root, --target host gives each program of
// testdata/target the verdict the running kernel's BPF_PROG_LOAD gives.
func TestVerifyCmd_targetHost(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("--target host is compared with the kernel's BPF_PROG_LOAD, which needs root: %v", err)
	}
	const obj = "../../testdata/target/target.o"
	spec, err := ebpf.LoadCollectionSpec(obj)
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "verify", "--target", "host", "--json", obj)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(spec.Programs) {
		t.Fatalf("%d lines for %d programs: exit %d, %q, stderr %q", len(lines), len(spec.Programs), code, out, errOut)
	}
	rejected := 0
	for _, l := range lines {
		var v verifyLine
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("%q: %v", l, err)
		}
		ps := spec.Programs[v.Program]
		if ps == nil {
			t.Fatalf("no program %q in the object", v.Program)
		}
		prog, kerr := ebpf.NewProgram(ps)
		var ve *ebpf.VerifierError
		if kerr != nil && !errors.As(kerr, &ve) {
			t.Fatalf("%s: the kernel cannot load it: %v", v.Program, kerr)
		}
		if prog != nil {
			prog.Close()
		}
		t.Logf("%s: kernel accepts %v; --target host %s %s", v.Program, kerr == nil, v.Verdict, v.Error)
		if (kerr == nil) != (v.Verdict == "accepted") {
			t.Errorf("%s: the kernel accepts it: %v (%v); --target host: %s %s", v.Program, kerr == nil, kerr, v.Verdict, v.Error)
		}
		if v.Verdict == "rejected" {
			rejected++
		}
	}
	if (code == 0) != (rejected == 0) {
		t.Errorf("exit %d with %d rejected", code, rejected)
	}
}
