package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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

// targetChildEnv makes the test binary run the CLI with its arguments
// after "--" (TestVerifyCmd_targetHostUnprivileged's child).
const targetChildEnv = "WAGGLE_TARGET_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(targetChildEnv) == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestVerifyCmd_targetHostUnprivileged: without root, --target host cannot
// probe the kernel, and says so (no verdict, no panic). The CLI runs in a
// child process as nobody, whose kernel probes nothing has cached.
func TestVerifyCmd_targetHostUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the CLI as nobody: needs root to switch users")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	obj, err := os.ReadFile("../../testdata/target/target.o")
	if err != nil {
		t.Fatal(err)
	}
	bin, target := filepath.Join(dir, "waggle.test"), filepath.Join(dir, "target.o")
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(target, obj, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target string
		code   int
		want   string
	}{
		{"host", 1, "cannot probe the running kernel"},
		{"linux", 0, "xfrm (tc): accepted"},
	} {
		cmd := exec.Command(bin, "-test.run=^$", "--", "verify", "--target", tc.target, target)
		cmd.Env = append(os.Environ(), targetChildEnv+"=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "panic") {
			t.Errorf("--target %s as nobody: exit %d, want %d and %q:\n%s", tc.target, code, tc.code, tc.want, out)
		}
		if tc.target == "host" && !strings.Contains(string(out), "run as root") {
			t.Errorf("--target host as nobody does not say what to do:\n%s", out)
		}
	}
}
