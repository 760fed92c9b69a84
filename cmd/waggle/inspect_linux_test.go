//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/kernel"
)

// TestInspect_kernel drives the inspecting commands over the blocklist
// example, loaded with cilium/ebpf and pinned in a private bpffs: the
// program's info and code, its LPM trie changed and read with typed and
// hex keys, and the errors of keys and elements that do not fit. Root
// only.
func TestInspect_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	dir := t.TempDir()
	if err := unix.Mount("bpf", dir, "bpf", 0, ""); err != nil {
		t.Skipf("mounting a bpffs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	coll, err := ebpf.LoadCollection("../../examples/blocklist/blocklist.o")
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	progPin, mapPin := filepath.Join(dir, "xdp_blocklist"), filepath.Join(dir, "blocklist")
	if err := coll.Programs["xdp_blocklist"].Pin(progPin); err != nil {
		t.Fatal(err)
	}
	if err := coll.Maps["blocklist"].Pin(mapPin); err != nil {
		t.Fatal(err)
	}
	mustRun := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%q: status %d, stderr %q", args, code, errOut)
		}
		return out
	}
	mustFail := func(want string, args ...string) {
		t.Helper()
		code, out, errOut := runCLI(t, "", args...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want an error saying %q", args, code, out, errOut, want)
		}
	}

	var prog struct {
		ID     uint32   `json:"id"`
		Name   string   `json:"name"`
		Tag    string   `json:"tag"`
		MapIDs []uint32 `json:"map_ids"`
	}
	if err := json.Unmarshal([]byte(mustRun("prog", "show", progPin, "--json")), &prog); err != nil {
		t.Fatal(err)
	}
	if prog.Name != "xdp_blocklist" || len(prog.MapIDs) != 2 {
		t.Fatalf("prog show: %+v", prog)
	}
	if out := mustRun("prog", "show", "id", fmt.Sprint(prog.ID)); !strings.HasPrefix(out, fmt.Sprintf("%d: xdp  name xdp_blocklist  tag %s  gpl\n", prog.ID, prog.Tag)) {
		t.Errorf("prog show text:\n%s", out)
	}
	if out := mustRun("prog", "list"); !strings.Contains(out, fmt.Sprintf("%d: xdp  name xdp_blocklist", prog.ID)) {
		t.Errorf("prog list lacks the program:\n%s", out)
	}
	xlated := mustRun("prog", "dump", "xlated", progPin, "--linum")
	for _, want := range []string{
		"int xdp_blocklist(struct xdp_md * ctx):\n; int xdp_blocklist(struct xdp_md *ctx) [file:",
		" ll ; blocklist\n",
		" ll ; stats\n",
	} {
		if !strings.Contains(xlated, want) {
			t.Errorf("prog dump xlated lacks %q:\n%s", want, xlated)
		}
	}
	if runtime.GOARCH == "amd64" {
		jited := mustRun("prog", "dump", "jited", progPin)
		if want := fmt.Sprintf("bpf_prog_%s_xdp_blocklist:\n", prog.Tag); !strings.Contains(jited, want) || strings.Contains(jited, "(bad)") {
			t.Errorf("prog dump jited: want %q, no (bad):\n%s", want, jited)
		}
	}

	// The map's BTF, read back from the kernel, has the object's key type
	// (cilium/ebpf gives a map a BTF object of its own).
	var mapInfo struct {
		BTFID uint32 `json:"btf_id"`
	}
	if err := json.Unmarshal([]byte(mustRun("map", "show", mapPin, "--json")), &mapInfo); err != nil {
		t.Fatal(err)
	}
	fromKernel := mustRun("btf", "dump", "--id", fmt.Sprint(mapInfo.BTFID), "--type", "lpm_key", "--format", "c")
	if fromObject := mustRun("btf", "dump", "../../examples/blocklist/blocklist.o", "--type", "lpm_key", "--format", "c"); fromKernel != fromObject || fromKernel == "" {
		t.Errorf("btf dump --id:\n%s\nof the object:\n%s", fromKernel, fromObject)
	}
	mustFail("no such BTF object", "btf", "dump", "--id", "4294967295")

	key := `{"prefixlen": 32, "addr": [10, 0, 0, 1]}`
	mustRun("map", "update", mapPin, key, "5")
	if out := mustRun("map", "lookup", mapPin, "20 00 00 00 0a 00 00 01"); out != `{"key": {"prefixlen": 32, "addr": [10, 0, 0, 1]}, "value": 5}`+"\n" {
		t.Errorf("map lookup: %q", out)
	}
	mustRun("map", "update", mapPin, "18 00 00 00 c0 a8 01 00", "07 00 00 00 00 00 00 00", "--flags", "noexist")
	if out := mustRun("map", "dump", mapPin); !strings.HasSuffix(out, "Found 2 elements\n") || !strings.Contains(out, `"addr": [192, 168, 1, 0]}, "value": 7}`) {
		t.Errorf("map dump:\n%s", out)
	}
	var got, want []any
	if err := json.Unmarshal([]byte(mustRun("map", "dump", mapPin, "--json")), &got); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("bpftool"); err == nil {
		out, err := exec.Command("bpftool", "-j", "map", "dump", "pinned", mapPin).Output()
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("map dump --json:\n%v\nbpftool:\n%v", got, want)
		}
	}
	mustFail("exists", "map", "update", mapPin, key, "6", "--flags", "noexist")
	mustFail("key of 2 bytes, want 8", "map", "lookup", mapPin, "01 02")
	mustFail("prefix", "map", "lookup", mapPin, `{"prefix": 1}`)
	mustFail("neither hex bytes", "map", "update", mapPin, key, "zz")
	mustRun("map", "delete", mapPin, key)
	mustFail("no element with key 20 00 00 00 0a 00 00 01", "map", "delete", mapPin, key)
	mustFail("no element with key 20 00 00 00 0a 00 00 01", "map", "lookup", mapPin, key)
	mustFail("no such map", "map", "show", "4294967295")
	mustFail("map pinned at", "map", "show", progPin)
	mustFail("program pinned at", "prog", "show", mapPin)

	// Pinned again by id, the map shows and dumps through its new pin.
	var m struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal([]byte(mustRun("map", "show", mapPin, "--json")), &m); err != nil {
		t.Fatal(err)
	}
	again := filepath.Join(dir, "again")
	if out := mustRun("map", "pin", fmt.Sprint(m.ID), again, "--json"); out != "null\n" {
		t.Errorf("map pin --json: %q", out)
	}
	if out := mustRun("map", "show", again); !strings.HasPrefix(out, fmt.Sprintf("%d: lpm_trie  name blocklist  flags 0x1\n", m.ID)) {
		t.Errorf("map show of the new pin:\n%s", out)
	}

	var links []map[string]any
	if err := json.Unmarshal([]byte(mustRun("link", "list", "--json")), &links); err != nil {
		t.Errorf("link list --json: %v", err)
	}
	var feats struct {
		ProgramTypes map[string]bool `json:"program_types"`
		MapTypes     map[string]bool `json:"map_types"`
	}
	code, out, errOut := runCLI(t, "", "feature", "probe", "--no-helpers", "--json")
	if err := json.Unmarshal([]byte(out), &feats); err != nil || code != 0 {
		t.Fatalf("feature probe: %d, %v: %s", code, err, errOut)
	}
	if !feats.ProgramTypes["have_xdp_prog_type"] || !feats.MapTypes["have_lpm_trie_map_type"] || !strings.Contains(errOut, "probes in") {
		t.Errorf("feature probe: %+v, stderr %q", feats, errOut)
	}
}
