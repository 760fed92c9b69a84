package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBTFDump: waggle btf dump of an example object in each format, and
// the errors of bad arguments. No root needed.
func TestBTFDump(t *testing.T) {
	const obj = "../../examples/blocklist/blocklist.o"
	code, out, errOut := runCLI(t, "", "btf", "dump", obj)
	if code != 0 || !strings.Contains(out, "] STRUCT 'lpm_key' size=8 vlen=2\n\t'prefixlen' type_id=") {
		t.Fatalf("raw: status %d, stderr %q:\n%s", code, errOut, out)
	}
	code, out, errOut = runCLI(t, "", "btf", "dump", obj, "--format", "c", "--type", "lpm_key")
	want := "typedef unsigned int __u32;\n\ntypedef unsigned char __u8;\n\nstruct lpm_key {\n\t__u32 prefixlen;\n\t__u8 addr[4];\n};\n\n"
	if code != 0 || out != want {
		t.Errorf("c: status %d, stderr %q:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	code, out, _ = runCLI(t, "", "btf", "dump", obj, "--json", "--type", "stat")
	var doc struct {
		Types []struct {
			Kind   string `json:"kind"`
			Name   string `json:"name"`
			Values []struct {
				Name string `json:"name"`
				Val  int64  `json:"val"`
			} `json:"values"`
		} `json:"types"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 {
		t.Fatalf("json: status %d, %v:\n%s", code, err, out)
	}
	if len(doc.Types) != 1 || doc.Types[0].Kind != "ENUM" || len(doc.Types[0].Values) != 4 || doc.Types[0].Values[1].Name != "STAT_DROP" || doc.Types[0].Values[1].Val != 1 {
		t.Errorf("json: %+v", doc)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"btf", "dump"}, "give one of an object file, --kernel or --id"},
		{[]string{"btf", "dump", obj, "--kernel"}, "give one of an object file, --kernel or --id"},
		{[]string{"btf", "dump", obj, "--format", "yaml"}, `--format "yaml"`},
		{[]string{"btf", "dump", obj, "--type", "no_such"}, `type "no_such"`},
		{[]string{"btf", "dump", "no-such-file.o"}, "no-such-file.o"},
		{[]string{"btf", "dump", "../../examples/checksum/ipv4-header.bin"}, "ipv4-header.bin"},
	} {
		code, out, errOut := runCLI(t, "", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want an error saying %q", tc.args, code, out, errOut, tc.want)
		}
	}
}

// TestInspect_badArgs: refs and flags the commands refuse before they
// ask the kernel anything.
func TestInspect_badArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"prog", "show", "0"}, "not an id"},
		{[]string{"prog", "show", "12x"}, "not an id"},
		{[]string{"prog", "dump", "xlated", "a", "b"}, "want an id or a pinned path"},
		{[]string{"map", "show", "99999999999"}, "not an id"},
		{[]string{"map", "update", "1", "00", "00", "--flags", "sometimes"}, `--flags "sometimes"`},
		{[]string{"map", "lookup", "1"}, "accepts between 2 and 3 arg(s)"},
		{[]string{"map", "pin", "1"}, "accepts 2 arg(s)"},
		{[]string{"link", "list", "extra"}, "unknown command"},
	} {
		code, out, errOut := runCLI(t, "", tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want an error saying %q", tc.args, code, out, errOut, tc.want)
		}
	}
}
