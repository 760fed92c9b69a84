package main

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRun_net runs the fib lookup test program with --net: without it the
// empty host has no such interface (-ENODEV); with a YAML host the lookup
// succeeds and writes the neighbour's MAC back; a redirect is reported.
func TestRun_net(t *testing.T) {
	dir := t.TempDir()
	host := filepath.Join(dir, "host.yaml")
	if err := os.WriteFile(host, []byte(`
interfaces:
  - {index: 2, name: eth0, mac: "02:00:00:00:00:02", addrs: [10.0.0.1/24], forwarding: true}
routes:
  - {dst: 0.0.0.0/0, via: 10.0.0.254}
neighbours:
  - {dev: eth0, ip: 10.0.0.254, mac: "02:00:00:00:00:fe"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	// A bpf_fib_lookup request (testdata/netenv/net.c): after the
	// Ethernet header, flags, rc, plen, pad, then struct bpf_fib_lookup
	// for 192.0.2.1 arriving on ifindex 2.
	pkt := make([]byte, 14+16+64)
	binary.BigEndian.PutUint16(pkt[12:], 0x88b5)
	p := pkt[30:]
	p[0] = 2
	binary.LittleEndian.PutUint32(p[8:], 2)
	copy(p[32:], []byte{192, 0, 2, 1})
	in, out := filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")
	if err := os.WriteFile(in, pkt, 0o644); err != nil {
		t.Fatal(err)
	}
	obj := "../../testdata/netenv/net.o"
	rc := func() int32 {
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return int32(binary.LittleEndian.Uint32(b[18:]))
	}
	code, stdout, stderr := runCLI(t, "", "run", obj, "--program", "xdp_fib", "--data-in", in, "--data-out", out)
	if code != 0 || rc() != -19 {
		t.Fatalf("empty host: status %d, rc %d: %s %s", code, rc(), stdout, stderr)
	}
	code, stdout, stderr = runCLI(t, "", "run", obj, "--program", "xdp_fib", "--data-in", in, "--data-out", out, "--net", host)
	b, _ := os.ReadFile(out)
	if code != 0 || rc() != 0 || b[30+58] != 0x02 || b[30+63] != 0xfe {
		t.Fatalf("host: status %d, rc %d, params %x: %s %s", code, rc(), b[30:], stdout, stderr)
	}
	// A redirect: tc_redirect's request is op 0 (bpf_redirect) to ifindex 2.
	req := make([]byte, 14+48)
	binary.BigEndian.PutUint16(req[12:], 0x88b5)
	binary.LittleEndian.PutUint32(req[18:], 2)
	if err := os.WriteFile(in, req, 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI(t, "", "run", obj, "--program", "tc_redirect", "--data-in", in, "--net", host, "--json")
	var res struct {
		Retval   int `json:"retval"`
		Redirect struct {
			Ifindex int `json:"ifindex"`
		} `json:"redirect"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || code != 0 || res.Retval != 7 || res.Redirect.Ifindex != 2 {
		t.Fatalf("redirect: status %d, %v: %s %s", code, err, stdout, stderr)
	}
	code, _, stderr = runCLI(t, "", "run", obj, "--program", "xdp_fib", "--data-in", in, "--net", filepath.Join(dir, "missing.yaml"))
	if code == 0 || !strings.Contains(stderr, "missing.yaml") {
		t.Fatalf("a missing host file: status %d, %s", code, stderr)
	}
}
