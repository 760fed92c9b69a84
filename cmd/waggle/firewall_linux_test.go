package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/apps/firewall"
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
	// With no reader, the ring fills: the samples past its capacity are
	// counted lost, and status says how many.
	const flood = 7000
	for i := range flood {
		if _, err := unix.Write(fd, frame); err != nil {
			t.Fatal(err)
		}
		if i%200 == 199 {
			unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil) // within the backlog
		}
	}
	fit := uint64(1<<20) / (firewall.SampleSize + 8)
	var dropped uint64
	for range 200 {
		code, stdout, stderr = runCLI(t, "", "firewall", "status", "--config", config, "--pin", pin, "--json")
		if code != 0 {
			t.Fatalf("status --json: exit %d: %s", code, stderr)
		}
		st = firewallStatus{}
		if err := json.Unmarshal([]byte(stdout), &st); err != nil {
			t.Fatalf("status --json: %v\n%s", err, stdout)
		}
		for _, r := range st.Rules {
			if r.Name == "no-tcp" {
				dropped = r.Packets
			}
		}
		if dropped >= 4+flood || dropped > 4+fit && st.SamplesLost == dropped-4-fit {
			break
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	if dropped <= 4+fit || st.SamplesLost != dropped-4-fit {
		t.Errorf("%d packets dropped and sampled after the capture, %d fit the ring: %d samples lost, want %d", dropped-4, fit, st.SamplesLost, dropped-4-fit)
	}
	if _, status, _ = runCLI(t, "", "firewall", "status", "--config", config, "--pin", pin); !strings.Contains(status, fmt.Sprintf("samples lost: %d ", st.SamplesLost)) {
		t.Errorf("status does not say how many samples were lost:\n%s", status)
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

// TestFirewall_captureAll: with options.sample_all, capture --all writes
// every packet with the kernel's time, and explain over that pcap gives
// each the verdict and rule the kernel gave (the SYN rate limit's too);
// capture --dropped keeps the drops only; --all refuses a firewall that
// samples drops only.
func TestFirewall_captureAll(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel BPF here: %v", err)
	}
	v := ktest.NewVeth(t)
	// The peer's own IPv6 (router solicitations, MLD) would be sampled too.
	ktest.Run(t, "ip", "netns", "exec", v.NS, "sysctl", "-qw", "net/ipv6/conf/"+v.Peer+"/disable_ipv6=1")
	pin := filepath.Join(ktest.BPFFS(t), "fw")
	config := filepath.Join(t.TempDir(), "fw.yaml")
	const rules = "limits: {syn: {rate: 1, burst: 1}}\nrules: [{name: no-udp, action: deny, proto: udp, cidrs: [10.9.0.0/24]}]\n"
	if err := os.WriteFile(config, []byte("options: {sample_every: 1, sample_all: true}\n"+rules), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "", "firewall", "apply", "--config", config, "--iface", v.Host, "--mode", "generic", "--pin", pin)
	if code != 0 {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	t.Cleanup(func() { kernel.Detach(pin) })
	fd := v.SenderAtPeer(t)
	syn := ktest.TCPFrame(80)
	syn[14+20+12], syn[14+20+13] = 5<<4, 0x02 // a well-formed TCP header; SYN
	ack := ktest.TCPFrame(80)
	ack[14+20+12], ack[14+20+13] = 5<<4, 0x10 // ACK
	udp := ktest.IPv4Frame(17)
	total := 0
	// send writes the frames and waits until the firewall counted them.
	send := func(frames ...[]byte) {
		t.Helper()
		for _, f := range frames {
			if _, err := unix.Write(fd, f); err != nil {
				t.Fatal(err)
			}
		}
		total += len(frames)
		n := 0
		for range 200 {
			c, err := firewall.PinnedCounters(pin)
			if err != nil {
				t.Fatal(err)
			}
			n = 0
			for _, x := range c {
				n += int(x.Packets)
			}
			if n >= total {
				break
			}
			unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
		}
		if n != total {
			t.Fatalf("the firewall counted %d packets, %d sent", n, total)
		}
	}
	// A SYN a second passes: of SYNs back to back, the first.
	send(syn, syn, udp, syn, ack, syn, udp)

	all := filepath.Join(t.TempDir(), "all.pcap")
	code, stdout, stderr := runCLI(t, "", "firewall", "capture", "--all", all, "--pin", pin, "--duration", "300ms")
	if code != 0 {
		t.Fatalf("capture --all: exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "7 sampled packets written") {
		t.Errorf("capture --all: %q", stdout)
	}
	// "N: XDP_DROP by rule 4, 64 bytes", in the order the kernel decided.
	var kernelSaw []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		_, after, ok := strings.Cut(l, ": ")
		verdict, _, ok2 := strings.Cut(after, ",")
		if !ok || !ok2 {
			t.Fatalf("capture --all: line %q", l)
		}
		kernelSaw = append(kernelSaw, verdict)
	}
	code, stdout, stderr = runCLI(t, "", "firewall", "explain", "--config", config, "--json", all)
	if code != 0 {
		t.Fatalf("explain: exit %d: %s", code, stderr)
	}
	var replayed []string
	dec := json.NewDecoder(strings.NewReader(stdout))
	for dec.More() {
		var x explained
		if err := dec.Decode(&x); err != nil {
			t.Fatal(err)
		}
		replayed = append(replayed, fmt.Sprintf("%s by rule %d", x.Action, x.RuleID))
	}
	if !slices.Equal(kernelSaw, replayed) {
		t.Errorf("attached: %q\nexplain of capture --all: %q", kernelSaw, replayed)
	}
	t.Logf("attached and explained: %q", kernelSaw)

	send(udp, ack, udp, ack)
	dropped := filepath.Join(t.TempDir(), "dropped.pcap")
	code, stdout, stderr = runCLI(t, "", "firewall", "capture", "--dropped", dropped, "--pin", pin, "--duration", "300ms")
	if code != 0 {
		t.Fatalf("capture --dropped: exit %d: %s", code, stderr)
	}
	if frames, err := capture.ReadFile(dropped); err != nil || len(frames) != 2 {
		t.Errorf("capture --dropped: %d frames (%v), want the 2 UDP ones: %s", len(frames), err, stderr)
	}

	if err := os.WriteFile(config, []byte("options: {sample_every: 1}\n"+rules), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr = runCLI(t, "", "firewall", "apply", "--config", config, "--pin", pin); code != 0 {
		t.Fatalf("reload: exit %d: %s", code, stderr)
	}
	code, _, stderr = runCLI(t, "", "firewall", "capture", "--all", all, "--pin", pin, "--duration", "100ms")
	if code == 0 || !strings.Contains(stderr, "options.sample_all") {
		t.Errorf("capture --all without sample_all: exit %d: %s", code, stderr)
	}
}
