//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// readmeBlock returns the lines of the first sh block of the README after
// the paragraph that starts with intro.
func readmeBlock(t *testing.T, intro string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), intro)
	if !ok {
		t.Fatalf("README.md has no paragraph %q", intro)
	}
	_, after, ok = strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatalf("README.md: no sh block after %q", intro)
	}
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("README.md: an sh block does not end")
	}
	return strings.Split(strings.TrimSpace(block), "\n")
}

// TestREADME_kernelWalkthrough runs the README's walkthrough of the
// kernel backend as a new user would, line by line: a veth pair into a
// namespace, the counter example attached and pinned, three datagrams
// through it, waggle map dump of its pinned map, waggle detach. The
// names (namespace, interfaces, pin directory) are made unique for the
// test, and waggle runs in-process. The dump must count the 3 datagrams,
// and detach must leave no pin.
func TestREADME_kernelWalkthrough(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skip(err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
	lines := readmeBlock(t, "In the kernel: attach the counter example")
	id := os.Getpid() % 100000
	pin := filepath.Join(ktest.BPFFS(t), "counter")
	repl := strings.NewReplacer(
		"demo", fmt.Sprintf("wgr%d", id),
		"veth0", fmt.Sprintf("wgr%da", id),
		"veth1", fmt.Sprintf("wgr%db", id),
		"/sys/fs/bpf/counter", pin,
		"examples/", "../../examples/",
	)
	ns := fmt.Sprintf("wgr%d", id)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	var dump string
	for _, line := range lines {
		cmd, _, _ := strings.Cut(line, "#")
		cmd = strings.TrimSpace(repl.Replace(cmd))
		if cmd == "" {
			continue
		}
		if strings.HasPrefix(cmd, "go build") {
			continue // waggle runs in-process
		}
		cmd = strings.TrimPrefix(cmd, "sudo ")
		if rest, ok := strings.CutPrefix(cmd, "./waggle "); ok {
			code, out, errOut := runCLI(t, "", strings.Fields(rest)...)
			if code != 0 {
				t.Fatalf("%s: status %d: %s%s", line, code, out, errOut)
			}
			if strings.HasPrefix(rest, "map dump") {
				dump = out
			}
			continue
		}
		if out, err := exec.Command("bash", "-c", strings.ReplaceAll(cmd, "sudo ", "")).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", line, err, out)
		}
	}
	packets := 0
	for _, m := range regexp.MustCompile(`"packets": (\d+)`).FindAllStringSubmatch(dump, -1) {
		n, _ := strconv.Atoi(m[1])
		packets += n
	}
	if packets != 3 || !strings.Contains(dump, `"key": [10, 9, 0, 1]`) {
		t.Errorf("waggle map dump counts %d packets (want 3 from 10.9.0.1):\n%s", packets, dump)
	}
	if _, err := os.Stat(pin); !os.IsNotExist(err) {
		t.Errorf("after waggle detach, %s: %v", pin, err)
	}
}
