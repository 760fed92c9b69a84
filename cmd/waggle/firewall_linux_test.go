package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
)

// TestFirewall_applyStatus: apply on a veth, frames from the namespace,
// status names the rule that dropped them; a reload; detach.
func TestFirewall_applyStatus(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	pin := filepath.Join(ktest.BPFFS(t), "fw")
	config := filepath.Join(t.TempDir(), "fw.yaml")
	if err := os.WriteFile(config, []byte("options: {sample_every: 1}\nrules: [{name: no-tcp, action: deny, proto: tcp, cidrs: [10.9.0.0/24]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "", "firewall", "apply", "--config", config, "--iface", v.Host, "--mode", "generic", "--pin", pin)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	t.Cleanup(func() { kernel.Detach(pin) })
	if !strings.Contains(stdout, "firewall attached to "+v.Host) {
		t.Errorf("apply: %q", stdout)
	}
	fd := v.SenderAtPeer(t)
	frame := ktest.TCPFrame(80)
	frame[14+20+12] = 5 << 4 // data offset: a well-formed TCP header
	for range 4 {
		if _, err := unix.Write(fd, frame); err != nil {
			t.Fatal(err)
		}
	}
	var status string
	for range 200 {
		code, status, stderr = runCLI(t, "", "firewall", "status", "--config", config, "--pin", pin)
		if code != 0 {
			t.Fatalf("status: exit %d: %s", code, stderr)
		}
		if strings.Contains(status, "no-tcp") && strings.Contains(status, " 4 ") {
			break
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	if !strings.Contains(status, "no-tcp") || !strings.Contains(status, " 4 ") {
		t.Fatalf("status:\n%s", status)
	}
	if !strings.Contains(status, "top talkers:") {
		t.Errorf("status shows no top talkers:\n%s", status)
	}
	code, stdout, stderr = runCLI(t, "", "firewall", "status", "--config", config, "--pin", pin, "--top", "3", "--json")
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, stderr)
	}
	var st firewallStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	found := false
	for _, tk := range st.TopTalkers {
		if tk.Addr.String() == "10.9.0.1" {
			found = true
			if tk.Packets != 4 || tk.Bytes != 4*uint64(len(frame)) || tk.RuleName != "no-tcp" {
				t.Errorf("talker 10.9.0.1: %+v, want 4 packets of %d bytes, last by no-tcp", tk, len(frame))
			}
		}
	}
	if !found || len(st.TopTalkers) > 3 {
		t.Errorf("top talkers (at most 3, with 10.9.0.1): %+v", st.TopTalkers)
	}
	out := filepath.Join(t.TempDir(), "dropped.pcap")
	code, stdout, stderr = runCLI(t, "", "firewall", "capture", "--dropped", out, "--pin", pin, "--duration", "300ms")
	if code != 0 {
		t.Fatalf("capture: exit %d: %s", code, stderr)
	}
	// The four samples were in the ring before capture started.
	frames, err := capture.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(frames) != 4 {
		t.Errorf("capture: %d frames, want 4 (%s)", len(frames), stdout)
	}
	if err := os.WriteFile(config, []byte("rules: [{name: no-udp, action: deny, proto: udp, cidrs: [10.9.0.0/24]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "firewall", "apply", "--config", config, "--pin", pin)
	if code != 0 || !strings.Contains(stdout, "0 prefixes added, 1 changed, 0 removed") {
		t.Fatalf("reload: exit %d: %s %s", code, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "", "detach", pin)
	if code != 0 {
		t.Fatalf("detach: exit %d: %s", code, stderr)
	}
}
