package ciliumdp

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeTree makes a bpf/ tree of the given files (path: content).
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestObjects reads the configurations of the three layouts the releases
// have: one folder of N.txt files an object (v1.14 on), one file of lines
// an object (v1.12), none (v1.10, and objects without complexity tests).
func TestObjects(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"bpf_lxc.c": "", "bpf_host.c": "", "bpf_xdp.c": "", "bpf_sock.c": "",
		// Numbered configurations: 1.txt first, 10.txt after 2.txt.
		"complexity-tests/netnext/bpf_lxc/10.txt": "-DTEN=1\n",
		"complexity-tests/netnext/bpf_lxc/2.txt":  "-DTWO=1\n",
		"complexity-tests/netnext/bpf_lxc/1.txt":  "-DSKIP_DEBUG=1\n-DENABLE_IPV4=1\n",
		// v1.12: one configuration a line, the first not blank.
		"complexity-tests/netnext/bpf_host.txt": "\n-DENABLE_IPV6=1 -DENABLE_NODEPORT=1\n-DOTHER=1\n",
		"complexity-tests/510/bpf_xdp/1.txt":    "-DNOT_NETNEXT=1\n",
		"sockops/Makefile":                      "", "sockops/bpf_sockops.c": "", "sockops/bpf_redir.c": "",
	})
	objs, err := Objects(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []Object{
		{Name: "bpf_lxc", Config: 1, Macro: "MAX_LXC_OPTIONS", Options: []string{"-DSKIP_DEBUG=1", "-DENABLE_IPV4=1"}, From: "complexity-tests/netnext/bpf_lxc/1.txt"},
		{Name: "bpf_host", Macro: "MAX_HOST_OPTIONS", Options: []string{"-DENABLE_IPV6=1", "-DENABLE_NODEPORT=1"}, From: "complexity-tests/netnext/bpf_host.txt line 2"},
		{Name: "bpf_xdp", Macro: "MAX_XDP_OPTIONS", From: "Makefile MAX_XDP_OPTIONS"},
		{Name: "bpf_sock", Macro: "MAX_LB_OPTIONS", From: "Makefile MAX_LB_OPTIONS"},
		{Name: "sockops/bpf_sockops", From: "sockops/Makefile"},
		{Name: "sockops/bpf_redir", From: "sockops/Makefile"},
	}
	if !reflect.DeepEqual(objs, want) {
		t.Errorf("Objects:\n got %+v\nwant %+v", objs, want)
	}
	// Every configuration: bpf_lxc's three files in the order of N, the
	// others as before.
	all, err := AllObjects(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantAll := append([]Object{
		want[0],
		{Name: "bpf_lxc", Config: 2, Macro: "MAX_LXC_OPTIONS", Options: []string{"-DTWO=1"}, From: "complexity-tests/netnext/bpf_lxc/2.txt"},
		{Name: "bpf_lxc", Config: 10, Macro: "MAX_LXC_OPTIONS", Options: []string{"-DTEN=1"}, From: "complexity-tests/netnext/bpf_lxc/10.txt"},
	}, want[1:]...)
	if !reflect.DeepEqual(all, wantAll) {
		t.Errorf("AllObjects:\n got %+v\nwant %+v", all, wantAll)
	}
	var labels []string
	for _, o := range all {
		labels = append(labels, o.Label())
	}
	if got, want := strings.Join(labels, " "), "bpf_lxc.1 bpf_lxc.2 bpf_lxc.10 bpf_host bpf_xdp bpf_sock sockops/bpf_sockops sockops/bpf_redir"; got != want {
		t.Errorf("labels %q, want %q", got, want)
	}
}

func TestObjects_errors(t *testing.T) {
	if _, err := Objects(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no datapath sources") {
		t.Errorf("empty tree: %v", err)
	}
	dir := writeTree(t, map[string]string{
		"bpf_lxc.c": "", "complexity-tests/netnext/bpf_lxc.txt": "\n\n",
	})
	if _, err := Objects(dir); err == nil || !strings.Contains(err.Error(), "no configuration") {
		t.Errorf("blank configuration list: %v", err)
	}
	dir = writeTree(t, map[string]string{
		"bpf_lxc.c": "", "complexity-tests/netnext/bpf_lxc/1.txt": "-DA=1", "complexity-tests/netnext/bpf_lxc/2.txt": "\n",
	})
	if _, err := AllObjects(dir); err == nil || !strings.Contains(err.Error(), "bpf_lxc/2.txt has no configuration") {
		t.Errorf("blank configuration file: %v", err)
	}
}

// TestWerror finds the warning groups -Werror made errors in clang's
// output, and compilerError keeps the first error line.
func TestWerror(t *testing.T) {
	out := `In file included from bpf_lxc.c:10:
./lib/common.h:152:22: error: implicit conversion loses integer precision: 'const __u64' to '__u32' [-Werror,-Wshorten-64-to-32]
  152 |         return a;
bpf_alignchecker.c:45:6: error: variable 'iter' set but not used [-Werror,-Wunused-but-set-variable]
bpf_lxc.c:3:1: error: unknown type name 'foo'
`
	var groups []string
	for _, m := range werror.FindAllStringSubmatch(out, -1) {
		groups = append(groups, m[1])
	}
	if want := []string{"shorten-64-to-32", "unused-but-set-variable"}; !reflect.DeepEqual(groups, want) {
		t.Errorf("groups %q, want %q", groups, want)
	}
	if got := compilerError(out); !strings.HasPrefix(got, "./lib/common.h:152:22: error: implicit conversion") {
		t.Errorf("compilerError starts %q", got)
	}
	if got := compilerError(strings.Repeat("x", 5000)); len(got) > 2003 {
		t.Errorf("compilerError kept %d bytes", len(got))
	}
}

// TestKey: the key changes with any file of the tree.
func TestKey(t *testing.T) {
	if err := Find(); err != nil {
		t.Skip(err)
	}
	dir := writeTree(t, map[string]string{"bpf_lxc.c": "int x;", "lib/a.h": "#define A 1"})
	k1, err := Key(dir)
	if err != nil {
		t.Fatal(err)
	}
	if k2, _ := Key(dir); k2 != k1 {
		t.Errorf("key not stable: %s, %s", k1, k2)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib/a.h"), []byte("#define A 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	if k3, _ := Key(dir); k3 == k1 {
		t.Error("key did not change with a header")
	}
}
