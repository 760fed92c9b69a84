package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// mustKernel skips without a kernel to load into.
func mustKernel(t *testing.T) {
	t.Helper()
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to load into: %v", err)
	}
}

func mustLoadJSON(t *testing.T, args ...string) loadResult {
	t.Helper()
	code, out, errOut := runCLI(t, "", append([]string{"load", "--json"}, args...)...)
	var res loadResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("waggle load %v: status %d, %q, %q", args, code, out, errOut)
	}
	return res
}

// TestLoad_kernel: waggle load prints each program's kernel id, tag,
// sizes and verified instructions and each map's id, type and sizes, as
// the kernel reports them; waggle's verifier agrees with the kernel.
func TestLoad_kernel(t *testing.T) {
	mustKernel(t)
	res := mustLoadJSON(t, "../../examples/counter/counter.o")
	if len(res.Programs) != 1 || len(res.Maps) != 1 {
		t.Fatalf("%+v", res)
	}
	p, m := res.Programs[0], res.Maps[0]
	if p.Name != "xdp_count" || p.Type != "xdp" || p.ID == 0 || len(p.Tag) != 16 || p.XlatedBytes == 0 || p.JitedBytes == 0 || p.VerifiedInsns == 0 ||
		p.Waggle != "accepts" || p.Disagree || p.Pin != "" {
		t.Errorf("program %+v", p)
	}
	if m.Name != "sources" || m.Type != "percpu_hash" || m.ID == 0 || m.KeySize != 4 || m.ValueSize != 16 || m.MaxEntries != 4096 || m.Pin != "" {
		t.Errorf("map %+v", m)
	}

	code, out, _ := runCLI(t, "", "load", "../../examples/counter/counter.o")
	if code != 0 || !strings.Contains(out, "released when waggle exits") || !strings.Contains(out, "prog xdp_count: xdp (section xdp), id ") ||
		strings.Contains(out, "verifier log") {
		t.Errorf("status %d, %q", code, out)
	}
	// --log-level: the verifier's log of an accepted program.
	code, out, _ = runCLI(t, "", "load", "../../examples/counter/counter.o", "--log-level", "6")
	if code != 0 || !strings.Contains(out, "verifier log:") || !strings.Contains(out, "processed ") {
		t.Errorf("--log-level 6: status %d, %q", code, out)
	}
}

// TestLoad_types: --type SEC=TYPE types a section libbpf does not know,
// and --program loads one program with the programs its prog arrays hold.
func TestLoad_types(t *testing.T) {
	mustKernel(t)
	const obj = "../../loader/testdata/iproute2.o"
	res := mustLoadJSON(t, obj)
	if len(res.Programs) != 3 || len(res.Skipped) != 1 || res.Skipped[0].Name != "ing" || !strings.Contains(res.Skipped[0].Reason, "--type ingress=TYPE") {
		t.Errorf("without --type: %d programs, skipped %+v", len(res.Programs), res.Skipped)
	}
	res = mustLoadJSON(t, obj, "--type", "ingress=tc")
	if len(res.Programs) != 4 || len(res.Skipped) != 0 {
		t.Errorf("with --type ingress=tc: %d programs, skipped %+v", len(res.Programs), res.Skipped)
	}
	res = mustLoadJSON(t, obj, "--program", "cls_entry")
	var names []string
	for _, p := range res.Programs {
		names = append(names, p.Name+"/"+p.TypeFrom)
	}
	if strings.Join(names, " ") != "cls_case1/tail call cls_case2/tail call cls_entry/section" {
		t.Errorf("--program cls_entry: %v", names)
	}
}

// TestLoad_pin: with --pin the programs and maps outlive the command; a
// second load reuses the pinned maps (same ids) and says so.
func TestLoad_pin(t *testing.T) {
	mustKernel(t)
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("bpf", dir, "bpf", 0, "mode=0700"); err != nil {
		t.Skipf("mount a bpf filesystem: %v", err)
	}
	defer func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Error(err)
		}
	}()
	pin := filepath.Join(dir, "ttl")
	const obj = "../../examples/unittest/ttl_test.o"
	first := mustLoadJSON(t, obj, "--pin", pin)
	ids := map[string]uint32{}
	for _, m := range first.Maps {
		ids[m.Name] = m.ID
		if m.Pin == "" || m.Reused {
			t.Errorf("first load: map %+v", m)
		}
		if _, err := os.Stat(m.Pin); err != nil {
			t.Errorf("map %s: %v", m.Name, err)
		}
	}
	for _, p := range first.Programs {
		if _, err := os.Stat(filepath.Join(pin, "progs", p.Name)); err != nil {
			t.Errorf("program %s: %v", p.Name, err)
		}
	}
	second := mustLoadJSON(t, obj, "--pin", pin)
	for _, m := range second.Maps {
		if !m.Reused || m.ID != ids[m.Name] {
			t.Errorf("second load: map %+v, want the pinned one (id %d)", m, ids[m.Name])
		}
	}
	code, _, errOut := runCLI(t, "", "load", obj, "--pin", t.TempDir())
	if code != 1 || !strings.Contains(errOut, "not on a bpf filesystem") {
		t.Errorf("--pin off bpffs: status %d, %q", code, errOut)
	}
}

// TestLoad_rejected: a refusal prints the verifier's log, the instruction
// and its source line, and both verdicts; the status is 1; --json carries
// the same.
func TestLoad_rejected(t *testing.T) {
	mustKernel(t)
	const obj = "../../kernel/testdata/reject.o"
	code, out, errOut := runCLI(t, "", "load", obj)
	for _, s := range []string{"at instruction 1", "reject.c:15", "kernel: rejects", "waggle: rejects", "verifier log:", "R1 offset is outside of the packet", "nothing was loaded"} {
		if !strings.Contains(errOut, s) {
			t.Errorf("stderr lacks %q:\n%s", s, errOut)
		}
	}
	if code != 1 || out != "" {
		t.Errorf("status %d, stdout %q", code, out)
	}
	code, out, _ = runCLI(t, "", "load", obj, "--json")
	var res loadResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 1 || len(res.Refused) != 1 {
		t.Fatalf("--json: status %d, %v, %q", code, err, out)
	}
	r := res.Refused[0]
	if r.Program != "xdp_peek" || r.By != "kernel" || r.Insn == nil || *r.Insn != 1 || !strings.Contains(r.Line, "reject.c:15") ||
		!strings.HasPrefix(r.Waggle, "rejects") || len(r.Log) == 0 {
		t.Errorf("refusal %+v", r)
	}
}
