package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/kernel"
)

// TestRun_kernel: --engine kernel runs the bundled examples over the
// bundled capture with BPF_PROG_TEST_RUN and prints what the same run in
// user space prints: packets, verdict counts, packets written, and the
// written packets themselves; and once on a packet (--data-in, --repeat)
// the same return value and packet after the run. Root only.
func TestRun_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	const pcap = "../../examples/traffic/traffic.pcap"
	dir := t.TempDir()
	for _, ex := range []struct{ object, program string }{
		{"counter/counter.o", "xdp_count"},
		{"blocklist/blocklist.o", "xdp_blocklist"},
		{"tailcall/dispatch.o", "xdp_dispatch"},
		{"loop/loop.o", "xdp_marker"},
		{"events/events.o", "xdp_events"},
		{"tcrewrite/rewrite.o", "tc_rewrite"},
		{"sockfilter/filter.o", "socket_http"},
	} {
		t.Run(ex.program, func(t *testing.T) {
			var sums [2]packetSummary
			var outs [2][]byte
			for i, engine := range []string{"auto", "kernel"} {
				out := filepath.Join(dir, ex.program+"-"+engine+".pcap")
				code, stdout, stderr := runCLI(t, "", "run", "../../examples/"+ex.object, "--program", ex.program,
					"--pcap", pcap, "--out", out, "--engine", engine, "--json")
				if code != 0 || json.Unmarshal([]byte(stdout), &sums[i]) != nil {
					t.Fatalf("--engine %s: status %d, %q, %q", engine, code, stdout, stderr)
				}
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				outs[i] = b
			}
			user, kern := sums[0], sums[1]
			if kern.Engine != "kernel" || user.Engine != defaultEngine() {
				t.Errorf("engines %q and %q, want %s and kernel", user.Engine, kern.Engine, defaultEngine())
			}
			if user.Packets != 1000 || kern.Packets != user.Packets || kern.Written != user.Written || kern.Errors != 0 || user.Errors != 0 ||
				!reflect.DeepEqual(kern.Verdicts, user.Verdicts) {
				t.Errorf("kernel %+v\nuser space %+v", kern, user)
			}
			if !bytes.Equal(outs[0], outs[1]) {
				t.Errorf("the packets written differ (%d and %d bytes)", len(outs[0]), len(outs[1]))
			}
		})
	}
	t.Run("data-in", func(t *testing.T) {
		frame := []byte{
			2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
			0x45, 0, 0, 28, 0, 1, 0, 0, 40, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 254,
			0x9c, 0x40, 0, 53, 0, 8, 0, 0,
		}
		in := filepath.Join(dir, "frame.bin")
		if err := os.WriteFile(in, frame, 0o644); err != nil {
			t.Fatal(err)
		}
		var res [2]struct {
			Engine  string
			Retval  uint32
			Verdict string
		}
		var outs [2][]byte
		for i, engine := range []string{"auto", "kernel"} {
			out := filepath.Join(dir, "frame-"+engine+".bin")
			code, stdout, stderr := runCLI(t, "", "run", "../../examples/tcrewrite/rewrite.o", "--data-in", in, "--data-out", out, "--repeat", "3", "--engine", engine, "--json")
			if code != 0 || json.Unmarshal([]byte(stdout), &res[i]) != nil {
				t.Fatalf("--engine %s: status %d, %q, %q", engine, code, stdout, stderr)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = b
		}
		if res[1].Engine != "kernel" || res[0].Retval != res[1].Retval || res[0].Verdict != "TC_ACT_OK" || res[1].Verdict != res[0].Verdict {
			t.Errorf("user space %+v, kernel %+v", res[0], res[1])
		}
		if len(outs[0]) != len(frame) || !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("packet after the run: user space % x, kernel % x", outs[0], outs[1])
		}
	})
}

// TestRun_kernelRefused: what BPF_PROG_TEST_RUN cannot do, --engine kernel
// refuses with the reason, before it touches the kernel; without the
// privilege to load programs, it says the probe failed.
func TestRun_kernelRefused(t *testing.T) {
	const obj = "../../examples/counter/counter.o"
	const pcap = "../../examples/traffic/traffic.pcap"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{obj, "--iface", "lo"}, "--iface needs --packets or --duration"},
		{[]string{obj, "--iface", "lo", "--packets", "1", "--out", "x.pcap"}, "--engine kernel --iface with --out"},
		{[]string{obj, "--pcap", pcap, "--unverified"}, "--engine kernel with --unverified"},
		{[]string{obj, "--pcap", pcap, "--budget", "10"}, "--engine kernel with --budget"},
		{[]string{obj, "--pcap", pcap, "--cpus", "2"}, "--engine kernel with --cpus"},
		{[]string{obj, "--pcap", pcap, "--net", "host"}, "--engine kernel with --net"},
		{[]string{"b7 00 00 00 2a 00 00 00 95 00 00 00 00 00 00 00"}, "a raw program has none"},
	} {
		code, _, stderr := runCLI(t, "", append(append([]string{"run"}, tc.args...), "--engine", "kernel")...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	if err := kernel.Supported(); err != nil {
		code, _, stderr := runCLI(t, "", "run", obj, "--pcap", pcap, "--engine", "kernel")
		if code != 1 || !strings.Contains(stderr, "--engine kernel: the probe (load an XDP program with BPF_PROG_LOAD and run it with BPF_PROG_TEST_RUN) failed") {
			t.Errorf("without a kernel: status %d, stderr %q", code, stderr)
		}
	}
}

// TestRun_kernelNormalised: --engine kernel loads the object as waggle
// load does, through waggle's loader, so objects cilium/ebpf alone cannot
// read (old clang's legacy maps, with zero-size symbols) run in the
// kernel too, with the return value and packet of the user-space run.
func TestRun_kernelNormalised(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	pkt := filepath.Join(t.TempDir(), "pkt.bin")
	frame := make([]byte, 64)
	frame[12], frame[13], frame[23] = 0x08, 0x00, 17 // IPv4, UDP
	if err := os.WriteFile(pkt, frame, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, obj := range []string{"legacy_oldclang.o", "legacy_nobtf.o"} {
		var res [2]struct {
			Engine string
			Retval uint32
		}
		var outs [2][]byte
		for i, engine := range []string{"kernel", "interp"} {
			out := filepath.Join(dir, engine+".bin")
			code, stdout, errOut := runCLI(t, "", "run", "../../loader/testdata/"+obj, "--program", "count_proto", "--data-in", pkt,
				"--data-out", out, "--repeat", "3", "--engine", engine, "--json")
			if code != 0 || json.Unmarshal([]byte(stdout), &res[i]) != nil {
				t.Fatalf("%s on %s: status %d: %q, %q", obj, engine, code, stdout, errOut)
			}
			b, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			outs[i] = b
		}
		if res[0].Engine != "kernel" || res[0].Retval != res[1].Retval || !bytes.Equal(outs[0], outs[1]) {
			t.Errorf("%s: kernel %+v % x, user space %+v % x", obj, res[0], outs[0], res[1], outs[1])
		}
	}
}

// TestRun_kernelMaps: --map-init and --map-dump work with --engine kernel
// as without it: the blocklist example's trie set from its JSON, run over
// the capture in the kernel, dumps what the JIT's run dumps (the hit
// counts included); the counter example's per-CPU map, summed over the
// CPUs, counts what the JIT's counts; a prog array, which holds programs,
// is refused with the reason.
func TestRun_kernelMaps(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	const pcap = "../../examples/traffic/traffic.pcap"
	dumps := func(engine string, args ...string) map[string]json.RawMessage {
		t.Helper()
		code, stdout, stderr := runCLI(t, "", append(append([]string{"run"}, args...), "--pcap", pcap, "--map-dump", "--json", "--engine", engine)...)
		var res struct {
			Engine string
			Maps   map[string]json.RawMessage
		}
		if code != 0 || json.Unmarshal([]byte(stdout), &res) != nil || len(res.Maps) == 0 {
			t.Fatalf("%v on %s: status %d, %q, %q", args, engine, code, stdout, stderr)
		}
		return res.Maps
	}
	bl := []string{"../../examples/blocklist/blocklist.o", "--map-init", "../../examples/blocklist/blocklist.json"}
	k, u := dumps("kernel", bl...), dumps("jit", bl...)
	if !bytes.Equal(k["blocklist"], u["blocklist"]) || !bytes.Contains(k["blocklist"], []byte(`"prefixlen": 32`)) {
		t.Errorf("blocklist: kernel %s\nuser space %s", k["blocklist"], u["blocklist"])
	}
	sums := func(raw json.RawMessage) map[string][2]uint64 {
		var elems []struct {
			Formatted struct {
				Key    []int
				Values []struct {
					Value struct{ Packets, Bytes uint64 }
				}
			}
		}
		if err := json.Unmarshal(raw, &elems); err != nil {
			t.Fatal(err)
		}
		out := map[string][2]uint64{}
		for _, e := range elems {
			var s [2]uint64
			for _, v := range e.Formatted.Values {
				s[0] += v.Value.Packets
				s[1] += v.Value.Bytes
			}
			out[fmt.Sprint(e.Formatted.Key)] = s
		}
		return out
	}
	kc, uc := sums(dumps("kernel", "../../examples/counter/counter.o")["sources"]), sums(dumps("jit", "../../examples/counter/counter.o")["sources"])
	if len(kc) == 0 || !reflect.DeepEqual(kc, uc) {
		t.Errorf("counter, per source summed over the CPUs: kernel %v, user space %v", kc, uc)
	}
	code, _, stderr := runCLI(t, "", "run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", pcap,
		"--map-init", "../../examples/tailcall/reroute.json", "--engine", "kernel")
	if code != 1 || !strings.Contains(stderr, "map protocols is a prog_array") {
		t.Errorf("a prog array in --map-init: status %d, %q", code, stderr)
	}
}

// TestRun_kernelEvents: --events with --engine kernel prints the records
// the program writes to the kernel's ring buffer, each with its packet,
// as the same run in user space prints its own: the events example over
// the bundled capture, line for line.
func TestRun_kernelEvents(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to compare with: %v", err)
	}
	var outs [2][]string
	for i, engine := range []string{"kernel", "jit"} {
		code, stdout, stderr := runCLI(t, "", "run", "../../examples/events/events.o", "--pcap", "../../examples/traffic/traffic.pcap",
			"--events", "--json", "--engine", engine)
		if code != 0 {
			t.Fatalf("%s: status %d: %s", engine, code, stderr)
		}
		for _, l := range strings.Split(stdout, "\n") {
			if strings.HasPrefix(l, `{"packet":`) {
				outs[i] = append(outs[i], l)
			}
		}
	}
	if len(outs[0]) < 100 || !reflect.DeepEqual(outs[0], outs[1]) {
		t.Errorf("kernel: %d records, user space: %d; first kernel %q", len(outs[0]), len(outs[1]), outs[0][:min(3, len(outs[0]))])
	}
}
