package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// TestRun_hostile: hostile programs through the CLI, as objects (once, and
// over a capture) and raw, end with a clear error and status 1, never a
// hang: --budget and --timeout bound objects as they bound raw programs,
// and fast mode is refused with the reason.
func TestRun_hostile(t *testing.T) {
	const obj = "../../testdata/hostile/hostile.o"
	pkt := filepath.Join(t.TempDir(), "pkt.bin")
	if err := os.WriteFile(pkt, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"object loop, budget", []string{"run", obj, "--program", "forever", "--data-in", pkt, "--budget", "1000", "--unverified"},
			[]string{"--budget reached", "instruction 5", "allowed 1000 instructions", "hostile.c:"}},
		{"object loop, timeout", []string{"run", obj, "--program", "forever", "--data-in", pkt, "--timeout", "50ms", "--unverified"},
			[]string{"--timeout 50ms reached", "instruction 5", "deadline exceeded"}},
		{"nested bpf_loops, timeout", []string{"run", obj, "--program", "nested_loops", "--data-in", pkt, "--timeout", "50ms"},
			[]string{"--timeout 50ms reached", "instruction 13"}},
		{"lock held at exit", []string{"run", obj, "--program", "lock_at_exit", "--data-in", pkt},
			[]string{"bpf_spin_unlock is missing"}},
		{"record never submitted", []string{"run", obj, "--program", "ring_leak", "--data-in", pkt},
			[]string{"Unreleased reference"}},
		{"raw loop, timeout", []string{"run", "05 00 ff ff 00 00 00 00 95 00 00 00 00 00 00 00", "--timeout", "50ms", "--budget", "0"},
			[]string{"--timeout 50ms reached", "instruction 0"}},
		{"raw loop, default budget", []string{"run", "05 00 ff ff 00 00 00 00 95 00 00 00 00 00 00 00", "--budget", "100000"},
			[]string{"--budget reached"}},
		{"fast mode, raw", []string{"run", "95 00 00 00 00 00 00 00", "--mode", "fast"},
			[]string{"raw programs are not verified", "checked mode"}},
		{"fast mode, unverified object", []string{"run", obj, "--program", "lock_ok", "--data-in", pkt, "--mode", "fast", "--unverified"},
			[]string{"--unverified runs the program without the verifier", "checked mode"}},
		{"fast mode, object the verifier refuses", []string{"run", obj, "--program", "forever", "--data-in", pkt, "--mode", "fast"},
			[]string{"waggle verify"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if code != 1 {
				t.Fatalf("status %d, stderr %q", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q: %s", w, stderr)
				}
			}
		})
	}
}

// TestRun_hostilePcap: a looping program over a capture stops at
// --timeout with a summary of what ran, and a budget makes every packet
// fail alone.
func TestRun_hostilePcap(t *testing.T) {
	const obj = "../../testdata/hostile/hostile.o"
	// --timeout bounds the whole command: on a loaded machine it can end
	// before the first packet starts, which the summary says (0 packets,
	// 0 errors); a longer one then lets the first packet start and be
	// stopped.
	stoppedOne := false
	for _, timeout := range []string{"100ms", "1s", "10s"} {
		code, stdout, stderr := runCLI(t, "", "run", obj, "--program", "forever", "--pcap", "../../examples/traffic/traffic.pcap",
			"--timeout", timeout, "--json", "--unverified")
		var sum packetSummary
		if code != 1 || json.Unmarshal([]byte(stdout), &sum) != nil {
			t.Fatalf("status %d, %q, %q", code, stdout, stderr)
		}
		if !strings.Contains(sum.Stopped, "--timeout "+timeout) {
			t.Fatalf("--timeout %s: summary %+v", timeout, sum)
		}
		if sum.Packets == 0 && sum.Errors == 0 && sum.FirstError == "" {
			t.Logf("--timeout %s ended before the first packet started", timeout)
			continue
		}
		if sum.Errors != 1 || sum.Packets != 1 || !strings.Contains(sum.FirstError, "deadline") {
			t.Fatalf("--timeout %s: summary %+v", timeout, sum)
		}
		stoppedOne = true
		break
	}
	if !stoppedOne {
		t.Fatal("no --timeout let a packet start")
	}
	code, stdout, _ := runCLI(t, "", "run", obj, "--program", "forever", "--pcap", "../../examples/traffic/traffic.pcap",
		"--budget", "100", "--json", "--unverified")
	sum := packetSummary{}
	if code != 1 || json.Unmarshal([]byte(stdout), &sum) != nil || sum.Packets != 1000 || sum.Errors != 1000 || !strings.Contains(sum.FirstError, "--budget reached") {
		t.Errorf("status %d, summary %+v", code, sum)
	}
}

// TestRun_pcapRuntFrame: a capture with a runt frame (which Linux refuses
// with EINVAL) between good ones: the runt fails alone, the frames after
// it run as the frames before it (every later run panicked).
func TestRun_pcapRuntFrame(t *testing.T) {
	in := filepath.Join(t.TempDir(), "runt.pcap")
	f, err := os.Create(in)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{64, 10, 64, 64, 10, 64} {
		if err := w.WritePacket(gopacket.CaptureInfo{CaptureLength: n, Length: n}, make([]byte, n)); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	code, stdout, stderr := runCLI(t, "", "run", "../../examples/counter/counter.o", "--pcap", in, "--json")
	var sum packetSummary
	if code != 1 || json.Unmarshal([]byte(stdout), &sum) != nil {
		t.Fatalf("status %d, %q, %q", code, stdout, stderr)
	}
	if sum.Packets != 6 || sum.Errors != 2 || sum.Verdicts["XDP_PASS"] != 4 || !strings.Contains(sum.FirstError, "packet 2") {
		t.Errorf("summary %+v", sum)
	}
}

// TestRun_fastVerified: the unchecked engines (--mode fast, --engine
// interp-fast, --engine jit) run an object's program the verifier
// accepted, and print what checked mode prints.
func TestRun_fastVerified(t *testing.T) {
	args := []string{"run", "../../examples/counter/counter.o", "--pcap", "../../examples/traffic/traffic.pcap", "--cpus", "1", "--map-dump", "--json"}
	code, checked, stderr := runCLI(t, "", append(args, "--engine", "interp")...)
	if code != 0 || !strings.Contains(checked, "sources") || !strings.Contains(checked, `"engine": "interp"`) {
		t.Fatalf("checked: status %d, %q, %q", code, checked, stderr)
	}
	for _, tc := range []struct {
		flags  []string
		engine string
	}{
		{[]string{"--mode", "fast"}, "interp-fast"},
		{[]string{"--engine", "interp-fast"}, "interp-fast"},
		{[]string{"--engine", "jit"}, "jit"},
		{nil, defaultEngine()},
	} {
		flags := tc.flags
		code, fast, stderr := runCLI(t, "", append(args, flags...)...)
		if code != 0 {
			t.Fatalf("%v: status %d, %q", flags, code, stderr)
		}
		if want := fmt.Sprintf(`"engine": %q`, tc.engine); !strings.Contains(fast, want) {
			t.Fatalf("%v: the output names no %s:\n%s", flags, want, fast)
		}
		// Verdicts, packets and maps must be the same; timings differ.
		var c, f map[string]any
		if err := json.Unmarshal([]byte(checked), &c); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(fast), &f); err != nil {
			t.Fatal(err)
		}
		for _, m := range []map[string]any{c, f} {
			delete(m, "engine")
			delete(m, "seconds")
			delete(m, "packets_per_second")
			// A hash's entries come in the order of its buckets.
			ms, _ := m["maps"].(map[string]any)
			for name, entries := range ms {
				list, _ := entries.([]any)
				var sorted []string
				for _, e := range list {
					b, _ := json.Marshal(e)
					sorted = append(sorted, string(b))
				}
				slices.Sort(sorted)
				ms[name] = sorted
			}
		}
		if !reflect.DeepEqual(c, f) || c["maps"] == nil {
			t.Fatalf("%v printed\n%s\nchecked mode\n%s", flags, fast, checked)
		}
	}
}

// TestRun_engineFlag: --engine names an engine, --mode is its older
// spelling, and giving both, or an unknown one, is an error that says so;
// unchecked engines refuse raw programs.
func TestRun_engineFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--engine", "turbo"}, `unknown engine "turbo"`},
		{[]string{"--engine", "jit", "--mode", "fast"}, "--engine and --mode both given"},
		{[]string{"--engine", "jit"}, "--engine jit: raw programs are not verified"},
		{[]string{"--mode", "turbo"}, "--mode"},
	} {
		code, _, stderr := runCLI(t, "", append([]string{"run", "95 00 00 00 00 00 00 00"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: status %d, stderr %q, want %q", tc.args, code, stderr, tc.want)
		}
	}
	// A raw program is not verified: the default (auto) runs it checked,
	// and says so.
	for _, flags := range [][]string{nil, {"--engine", "auto"}, {"--engine", "interp"}} {
		code, out, stderr := runCLI(t, "", append([]string{"run", "b7 00 00 00 2a 00 00 00 95 00 00 00 00 00 00 00", "--json"}, flags...)...)
		if code != 0 || !strings.Contains(out, `"engine": "interp"`) || !strings.Contains(out, `"mode": "checked"`) {
			t.Errorf("%v: status %d, %q, %q", flags, code, out, stderr)
		}
	}
}

// defaultEngine is the engine --engine auto picks for a verified
// program: the JIT where it runs.
func defaultEngine() string {
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		return "jit"
	}
	return "interp"
}

// TestRun_defaultEngine: without --engine, an object's verified program
// runs on the JIT on linux/amd64 (the interpreter elsewhere), an
// --unverified one on the checked interpreter; the JSON and the text
// output of packet and --data-in runs name the engine that ran.
func TestRun_defaultEngine(t *testing.T) {
	pkt := filepath.Join(t.TempDir(), "pkt.bin")
	if err := os.WriteFile(pkt, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		engine string
	}{
		{"pcap", []string{"--pcap", "../../examples/traffic/traffic.pcap"}, defaultEngine()},
		{"pcap unverified", []string{"--pcap", "../../examples/traffic/traffic.pcap", "--unverified"}, "interp"},
		{"data-in", []string{"--data-in", pkt}, defaultEngine()},
		{"data-in unverified", []string{"--data-in", pkt, "--unverified"}, "interp"},
		{"data-in auto", []string{"--data-in", pkt, "--engine", "auto"}, defaultEngine()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"run", "../../examples/counter/counter.o"}, tc.args...)
			code, out, stderr := runCLI(t, "", append(args, "--json")...)
			var res struct{ Engine string }
			if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
				t.Fatalf("status %d, %q, %q", code, out, stderr)
			}
			if res.Engine != tc.engine {
				t.Errorf("JSON engine %q, want %q:\n%s", res.Engine, tc.engine, out)
			}
			code, out, stderr = runCLI(t, "", args...)
			if code != 0 || !strings.Contains(out, ", engine: "+tc.engine+"\n") {
				t.Errorf("text: status %d, %q, %q: want the engine %s named", code, out, stderr, tc.engine)
			}
		})
	}
}

// TestRun_timeoutVerifying: --timeout bounds the verification too; a
// timeout reached while verifying says so, and is not a rejection.
func TestRun_timeoutVerifying(t *testing.T) {
	code, out, stderr := runCLI(t, "", "run", "../../examples/counter/counter.o", "--pcap", "../../examples/traffic/traffic.pcap", "--timeout", "1ns")
	if code == 0 || !strings.Contains(stderr, "--timeout 1ns reached while verifying") || strings.Contains(stderr, "--unverified runs it anyway") {
		t.Fatalf("status %d, stdout %q, stderr %q", code, out, stderr)
	}
}
