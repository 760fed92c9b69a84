package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command in-process and returns its status and streams.
func runCLI(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(stdin), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRun_example(t *testing.T) {
	code, out, errOut := runCLI(t, "", "run", "../../examples/checksum/checksum.o", "--mem", "../../examples/checksum/ipv4-header.bin")
	if code != 0 || out != "r0 = 0xb861 (47201)\n" {
		t.Fatalf("status %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "run", "../../examples/checksum/checksum.o", "--mem", "../../examples/checksum/ipv4-header.bin", "--json", "--count")
	var res runResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 {
		t.Fatalf("status %d, %v: %s", code, err, out)
	}
	if res.R0 != 0xb861 || res.R0Hex != "0xb861" || res.Instructions == 0 || res.Mode != "checked" {
		t.Errorf("JSON result %+v", res)
	}
}

func TestAsmDisasm_roundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "p.s")
	text := "r0 = 0\nr1 = 5\nloop:\nr0 += r1\nr1 += -1\nif r1 != 0 goto loop\nexit\n"
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "p.bin")
	if code, _, errOut := runCLI(t, "", "asm", src, "-o", bin); code != 0 {
		t.Fatalf("asm: %s", errOut)
	}
	code, out, errOut := runCLI(t, "", "run", bin)
	if code != 0 || !strings.HasPrefix(out, "r0 = 0xf (15)") {
		t.Fatalf("run: %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI(t, "", "disasm", bin, "--labels")
	if code != 0 || !strings.Contains(out, "goto L2") {
		t.Fatalf("disasm: %d %q", code, out)
	}
	// The listing re-assembles to the same bytes.
	if err := os.WriteFile(src, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	code, hexOut, errOut := runCLI(t, "", "asm", src, "--hex")
	want, _ := os.ReadFile(bin)
	got, err := parseHex(hexOut)
	if code != 0 || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("re-assembled %x (%v, %s), want %x", got, err, errOut, want)
	}
}

func TestDisasm_elf(t *testing.T) {
	code, out, errOut := runCLI(t, "", "disasm", "../../examples/checksum/checksum.o", "--listing")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{"Disassembly of section waggle/mem:", "<checksum>:", "       0:\tbf 23 00 00 00 00 00 00\tr3 = r2", "exit"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestConformance(t *testing.T) {
	code, out, _ := runCLI(t, "", "conformance", "../../testdata/conformance/tests")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || lines[len(lines)-1] != "626 passed, 0 failed" {
		t.Fatalf("status %d, output:\n%s", code, out)
	}
	// A failing test is named and makes the status 1.
	code, out, _ = runCLI(t, "", "conformance", "--engine", "interp-checked", "../../testdata/conformance/negative/incorrect_return_value_high_bits.data")
	if code != 1 || !strings.Contains(out, "FAIL: incorrect_return_value_high_bits") || !strings.HasSuffix(out, "0 passed, 1 failed\n") {
		t.Fatalf("status %d, output:\n%s", code, out)
	}
}

func TestPlugin(t *testing.T) {
	// mov %r0, %r2 (the memory's length); exit
	prog := "bf 20 00 00 00 00 00 00 95 00 00 00 00 00 00 00\n"
	code, out, errOut := runCLI(t, prog, "conformance-plugin", "aa  bb  11  ")
	if code != 0 || out != "3\n" {
		t.Fatalf("status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// The runner's --elf form: the hex of an object with a function main.
	obj, err := os.ReadFile("testdata/plugin.o")
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCLI(t, hex.EncodeToString(obj)+"\n", "conformance-plugin", "01  02  03  ", "--elf")
	if code != 0 || out != "6\n" {
		t.Fatalf("--elf: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	// Failures exit 1 with the reason on stderr.
	code, _, errOut = runCLI(t, "b7 00 00 00 01 00 00 00\n", "conformance-plugin")
	if code != 1 || !strings.Contains(errOut, "last instruction is not exit") {
		t.Fatalf("status %d, stderr %q", code, errOut)
	}
}

// TestBadInput: malformed programs, memory and arguments give an error
// naming what is wrong and status 1, never a panic.
func TestBadInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"missing file", []string{"run", filepath.Join(dir, "nope.s")}, "", "no such file"},
		{"truncated bytecode", []string{"run", write("t.bin", "\xb7\x00\x00")}, "", "truncated instruction"},
		{"bad assembly", []string{"run", write("bad.s", "r0 = \nexit\n")}, "", "line 1"},
		{"reserved field", []string{"run", "07 00 01 00 01 00 00 00 95 00 00 00 00 00 00 00"}, "", "reserved field"},
		{"fault", []string{"run", "61 10 08 00 00 00 00 00 95 00 00 00 00 00 00 00", "--mem-hex", "01 02"}, "", "instruction 0"},
		{"bad memory hex", []string{"run", "95 00 00 00 00 00 00 00", "--mem-hex", "zz"}, "", "--mem-hex"},
		{"both memories", []string{"run", "95 00 00 00 00 00 00 00", "--mem-hex", "00", "--mem", "x"}, "", "not both"},
		{"bad mode", []string{"run", "95 00 00 00 00 00 00 00", "--mode", "turbo"}, "", "--mode"},
		{"bad format", []string{"disasm", "x", "--format", "pdf"}, "", "unknown format"},
		{"not an object", []string{"run", write("x.o", "\x7fELF garbage")}, "", "not a valid ELF"},
		{"section of a non-object", []string{"run", "95 00 00 00 00 00 00 00", "--section", "xdp"}, "", "--section applies only"},
		{"unknown ELF section", []string{"run", "../../examples/checksum/checksum.o", "--section", "xdp"}, "", "no section \"xdp\""},
		{"endless loop", []string{"run", "05 00 ff ff 00 00 00 00 95 00 00 00 00 00 00 00", "--budget", "100"}, "", "budget"},
		{"plugin garbage", []string{"conformance-plugin"}, "xyz", "program on stdin"},
		{"plugin bad option", []string{"conformance-plugin", "00", "--turbo"}, "", "unknown argument"},
		{"plugin elf garbage", []string{"conformance-plugin", "--elf"}, "0011", "ELF on stdin"},
		{"conformance missing dir", []string{"conformance", filepath.Join(dir, "none")}, "", "no such file"},
		{"unknown engine", []string{"conformance", "--engine", "jit", dir}, "", "unknown engine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := runCLI(t, tc.stdin, tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("status %d, stderr %q, want status 1 and %q", code, errOut, tc.want)
			}
		})
	}
}

func TestRun_pcap(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out.pcap")
	code, stdout, stderr := runCLI(t, "", "run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch",
		"--pcap", "../../examples/traffic/traffic.pcap", "--out", out, "--json")
	if code != 0 {
		t.Fatalf("status %d: %s", code, stderr)
	}
	var sum packetSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Packets != 1000 || sum.Verdicts["XDP_DROP"] != 108 || sum.Verdicts["XDP_PASS"] != 892 || sum.Written != 892 || sum.PacketsPerSec <= 0 {
		t.Errorf("summary %+v", sum)
	}
	st, err := os.Stat(out)
	if err != nil || st.Size() < 892*60 {
		t.Errorf("output capture: %v, %v", st, err)
	}
	// The written capture replays: every frame in it passes again.
	code, stdout, _ = runCLI(t, "", "run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", out, "--json")
	var again packetSummary
	if code != 0 || json.Unmarshal([]byte(stdout), &again) != nil || again.Verdicts["XDP_PASS"] != 892 {
		t.Errorf("replay: %d %s", code, stdout)
	}
}

func TestRun_dataIn(t *testing.T) {
	dir := t.TempDir()
	frames := filepath.Join(dir, "in.bin")
	// An IPv4/UDP frame to port 53: the TC example rewrites it to 5353.
	frame := []byte{
		2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00,
		0x45, 0, 0, 28, 0, 1, 0, 0, 40, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 254,
		0x9c, 0x40, 0, 53, 0, 8, 0, 0,
	}
	if err := os.WriteFile(frames, frame, 0o644); err != nil {
		t.Fatal(err)
	}
	outFile := filepath.Join(dir, "out.bin")
	code, stdout, stderr := runCLI(t, "", "run", "../../examples/tcrewrite/rewrite.o", "--data-in", frames, "--data-out", outFile, "--repeat", "3")
	if code != 0 || !strings.HasPrefix(stdout, "Return value: 0 (TC_ACT_OK)") {
		t.Fatalf("status %d, %q, %q", code, stdout, stderr)
	}
	got, err := os.ReadFile(outFile)
	if err != nil || len(got) != len(frame) || got[36] != 0x14 || got[37] != 0xe9 || got[22] != 64 {
		t.Fatalf("data out % x, %v: want port 5353 and TTL 64", got, err)
	}
}

// TestRun_programTypes: --type is the type of the program run and of every
// program whose section names none. A .text-only object lists its
// functions; a program of an object that cannot be prepared does not stop
// another from running.
func TestRun_programTypes(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.bin"), filepath.Join(dir, "big.bin")
	if err := os.WriteFile(small, make([]byte, 64), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(big, make([]byte, 200), 0o644); err != nil {
		t.Fatal(err)
	}
	const text = "../../loader/testdata/textonly.o"
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stdout (status 0) or stderr
	}{
		{"text function", []string{"run", text, "--program", "drop_big", "--type", "xdp", "--data-in", big}, 0, "Return value: 1 (XDP_DROP)"},
		{"text function, small", []string{"run", text, "--program", "drop_big", "--type", "xdp", "--data-in", small}, 0, "Return value: 2 (XDP_PASS)"},
		{"text function without a type", []string{"run", text, "--program", "pass", "--data-in", small}, 1, `program pass (section .text): section ".text" names no program type`},
		{"unknown text function", []string{"run", text, "--program", "nope", "--type", "xdp", "--data-in", small}, 1, `no program "nope"; the object has drop_big, is_big, pass`},
		{"bad program elsewhere", []string{"run", "../../testdata/prepare/prepare.o", "--program", "other", "--data-in", small}, 0, "Return value: 3 (XDP_TX)"},
		{"bad program asked for", []string{"run", "../../testdata/prepare/prepare.o", "--program", "bad", "--data-in", small}, 1, "program bad (section tail-bad)"},
		{"override", []string{"run", "../../testdata/prepare/prepare.o", "--program", "untyped", "--type", "tc", "--data-in", small}, 0, "Return value: 0 (TC_ACT_OK)"},
		{"old clang, OVS layout", []string{"run", "../../loader/testdata/ovs_oldclang.o", "--program", "to_stack", "--type", "tc", "--data-in", small}, 0, "Return value: 2 (TC_ACT_SHOT)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, "", tc.args...)
			out := stdout
			if tc.code != 0 {
				out = stderr
			}
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("status %d, stdout %q, stderr %q; want %d and %q", code, stdout, stderr, tc.code, tc.want)
			}
		})
	}
}

func TestRun_objectErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"several programs", []string{"run", "../../examples/tailcall/dispatch.o", "--pcap", "../../examples/traffic/traffic.pcap"}, "choose one with --program"},
		{"unknown program", []string{"run", "../../examples/tailcall/dispatch.o", "--program", "nope", "--pcap", "x"}, `no program "nope"`},
		{"missing capture", []string{"run", "../../examples/counter/counter.o", "--pcap", "/nonexistent.pcap"}, "no such file"},
		{"not a capture", []string{"run", "../../examples/counter/counter.o", "--pcap", "../../examples/counter/counter.c"}, "not a pcap"},
		{"unknown type", []string{"run", "../../examples/counter/counter.o", "--type", "lsm", "--data-in", "x"}, "--type"},
		{"object flags on raw programs", []string{"run", "95 00 00 00 00 00 00 00", "--pcap", "x.pcap"}, "need an ELF object"},
		{"iface without a bound", []string{"run", "../../examples/counter/counter.o", "--iface", "lo"}, "--packets or --duration"},
		{"short packet", []string{"run", "../../examples/counter/counter.o", "--data-in", "../../examples/checksum/ipv4-header.bin"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if tc.want == "" {
				if code != 0 {
					t.Fatalf("status %d: %s", code, stderr)
				}
				return
			}
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("status %d, stderr %q, want %q", code, stderr, tc.want)
			}
		})
	}
}
