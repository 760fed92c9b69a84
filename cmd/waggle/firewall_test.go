package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/apps/firewall"
	"github.com/waggle-bpf/waggle/internal/capture"
)

// TestFirewall_replayExplain: replay's counters, explain's per-packet
// rules and the packets --out keeps tell the same story.
func TestFirewall_replayExplain(t *testing.T) {
	dir := t.TempDir()
	config := filepath.Join(dir, "fw.yaml")
	if err := os.WriteFile(filepath.Join(dir, "deny.txt"), []byte("10.0.0.0/8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(config, []byte(`
limits:
  pps: {rate: 100, burst: 10}
rules:
  - {name: lan, action: allow, cidrs: [192.168.0.0/16]}
  - {name: deny-10, action: deny, files: [deny.txt]}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	pcap := "../../examples/traffic/traffic.pcap"
	out := filepath.Join(dir, "passed.pcap")
	code, stdout, stderr := runCLI(t, "", "firewall", "replay", "--config", config, "--json", "--out", out, pcap)
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, stderr)
	}
	var rep struct {
		Packets  int
		Verdicts map[string]int
		Rules    []struct {
			Name    string
			Packets int
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "firewall", "explain", "--config", config, "--json", pcap)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, stderr)
	}
	perRule := map[string]int{}
	actions := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	lines := 0
	for sc.Scan() {
		var x struct{ Rule, Action string }
		if err := json.Unmarshal(sc.Bytes(), &x); err != nil {
			t.Fatal(err)
		}
		perRule[x.Rule]++
		actions[x.Action]++
		lines++
	}
	if lines != rep.Packets || rep.Packets == 0 {
		t.Fatalf("explain: %d packets, replay: %d", lines, rep.Packets)
	}
	for _, r := range rep.Rules {
		if perRule[r.Name] != r.Packets {
			t.Errorf("rule %s: replay counted %d, explain named it %d times", r.Name, r.Packets, perRule[r.Name])
		}
	}
	for a, n := range rep.Verdicts {
		if actions[a] != n {
			t.Errorf("%s: replay %d, explain %d", a, n, actions[a])
		}
	}
	if perRule["deny-10"] == 0 || perRule["lan"] == 0 {
		t.Errorf("the capture should hit both rules: %v", perRule)
	}
	kept, err := capture.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != rep.Verdicts["XDP_PASS"] {
		t.Errorf("--out kept %d packets, %d passed", len(kept), rep.Verdicts["XDP_PASS"])
	}
}

func TestFirewall_badConfig(t *testing.T) {
	config := filepath.Join(t.TempDir(), "fw.yaml")
	if err := os.WriteFile(config, []byte("rules: [{name: a, action: deny, cidrs: [10.0.0.1/8]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "firewall", "replay", "--config", config, "../../examples/traffic/traffic.pcap")
	if code == 0 || !strings.Contains(stderr, "did you mean 10.0.0.0/8?") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

// TestFirewall_readme runs the README's firewall commands.
func TestFirewall_readme(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "On the bundled capture, with the example configuration")
	if !ok {
		t.Fatal("README.md has no firewall section")
	}
	_, after, _ = strings.Cut(after, "```sh\n")
	block, _, _ := strings.Cut(after, "```")
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if len(lines) != 2 {
		t.Fatalf("README: %d firewall commands, want 2", len(lines))
	}
	out := filepath.Join(t.TempDir(), "passed.pcap")
	for _, line := range lines {
		args := strings.Fields(line)
		if args[0] != "waggle" {
			t.Fatalf("README: %q", line)
		}
		for i, a := range args {
			switch {
			case a == "passed.pcap":
				args[i] = out
			case strings.HasPrefix(a, "apps/") || strings.HasPrefix(a, "examples/"):
				args[i] = "../../" + a
			}
		}
		code, stdout, stderr := runCLI(t, "", args[1:]...)
		if code != 0 || stdout == "" {
			t.Errorf("%s: exit %d, stderr %s", line, code, stderr)
		}
	}
}

// TestFirewall_replaySYNProtection: replay says which SYN protection the
// configuration puts in force (user space has the cookie helpers).
func TestFirewall_replaySYNProtection(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"limits: {syn: {rate: 50, burst: 10}}\n", firewall.SYNRateOnly},
		{"options: {syn_cookies: on}\nlimits: {attack_pps: 1000}\n", firewall.SYNCookiesOnly},
		{"options: {syn_cookies: auto}\nlimits: {attack_pps: 1000, syn: {rate: 50, burst: 10}}\n", firewall.SYNCookiesAndRate},
		{"rules: []\n", firewall.SYNNone},
	} {
		config := filepath.Join(t.TempDir(), "fw.yaml")
		if err := os.WriteFile(config, []byte(c.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCLI(t, "", "firewall", "replay", "--config", config, "../../examples/traffic/traffic.pcap")
		if code != 0 {
			t.Fatalf("%q: replay: exit %d: %s", c.yaml, code, stderr)
		}
		if !strings.Contains(stdout, "SYN protection: "+c.want+"\n") {
			t.Errorf("%q: replay says\n%s\nwant SYN protection: %s", c.yaml, stdout, c.want)
		}
	}
}
