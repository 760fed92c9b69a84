package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/kernel"
)

// benchJSON is what waggle bench --json prints.
type benchJSON struct {
	Results []struct {
		Program  string   `json:"program"`
		Engine   string   `json:"engine"`
		Ns       float64  `json:"ns_per_run"`
		Ret      uint32   `json:"retval"`
		ToKernel *float64 `json:"ratio_to_kernel"`
		ToJIT    *float64 `json:"ratio_to_jit"`
		Error    string   `json:"error"`
	} `json:"results"`
	GeomeanToKernel map[string]float64 `json:"geomean_to_kernel"`
	GeomeanToJIT    map[string]float64 `json:"geomean_to_jit"`
}

// benchEnginesHere are the engines waggle bench can measure here.
func benchEnginesHere(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("waggle bench times on the thread CPU clock, which is Linux's")
	}
	if runtime.GOARCH != "amd64" {
		return "interp,interp-fast,kernel"
	}
	return "interp,interp-fast,jit,kernel"
}

// TestBench_object measures a bundled example's program, one short round
// per engine: every engine returns the same value, the kernel too when
// this process can use it (and says why not otherwise), with the ratios
// to the kernel and to the JIT. No assertion on the times.
func TestBench_object(t *testing.T) {
	engines := benchEnginesHere(t)
	pkt := filepath.Join(t.TempDir(), "pkt.bin")
	// An IPv4 frame from 10.0.0.3, which xdp_count counts.
	frame := make([]byte, 64)
	copy(frame[12:], []byte{0x08, 0x00, 0x45})
	copy(frame[26:], []byte{10, 0, 0, 3})
	if err := os.WriteFile(pkt, frame, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "bench", "../../examples/counter/counter.o", "--program", "xdp_count",
		"--data-in", pkt, "--engine", engines, "--rounds", "1", "--round", "1ms", "--json")
	if code != 0 {
		t.Fatalf("status %d: %s%s", code, out, errOut)
	}
	var res benchJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	kernelErr := kernel.Supported()
	var ret *uint32
	seen := map[string]bool{}
	for _, r := range res.Results {
		seen[r.Engine] = true
		if r.Program != "xdp_count" {
			t.Errorf("measured %s", r.Program)
		}
		if r.Engine == "kernel" && kernelErr != nil {
			if r.Error == "" {
				t.Errorf("the kernel measured it, but kernel.Supported says %v", kernelErr)
			}
			continue
		}
		if r.Error != "" || r.Ns <= 0 {
			t.Errorf("%s: %v ns, error %q", r.Engine, r.Ns, r.Error)
			continue
		}
		if ret != nil && r.Ret != *ret {
			t.Errorf("%s returned %d, another engine %d", r.Engine, r.Ret, *ret)
		}
		ret = &r.Ret
		if r.Engine != "kernel" && kernelErr == nil && r.ToKernel == nil {
			t.Errorf("%s: no ratio to the kernel", r.Engine)
		}
		if strings.HasPrefix(r.Engine, "interp") && strings.Contains(engines, "jit") && r.ToJIT == nil {
			t.Errorf("%s: no ratio to the JIT", r.Engine)
		}
	}
	for _, e := range strings.Split(engines, ",") {
		if !seen[e] {
			t.Errorf("no result for %s", e)
		}
	}
	if strings.Contains(engines, "jit") && (res.GeomeanToJIT["interp"] <= 0 || res.GeomeanToJIT["interp-fast"] <= 0) {
		t.Errorf("geomeans to the JIT: %v", res.GeomeanToJIT)
	}

	// The table has the same columns.
	code, out, errOut = runCLI(t, "", "bench", "../../examples/counter/counter.o", "--program", "xdp_count",
		"--engine", engines, "--rounds", "1", "--round", "1ms")
	if code != 0 {
		t.Fatalf("status %d: %s%s", code, out, errOut)
	}
	for _, want := range []string{"xdp_count", "geomean", "interp ns"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(engines, "jit") && !strings.Contains(out, "interp/jit") {
		t.Errorf("no interp/jit column in\n%s", out)
	}
	if kernelErr == nil && !strings.Contains(out, "jit/kernel") {
		t.Errorf("no jit/kernel column in\n%s", out)
	}
}

// TestBench_suiteProgram measures one suite case without the kernel.
func TestBench_suiteProgram(t *testing.T) {
	benchEnginesHere(t)
	code, out, errOut := runCLI(t, "", "bench", "--program", "xdp_firewall", "--engine", "interp", "--no-kernel",
		"--rounds", "1", "--round", "1ms", "--json")
	if code != 0 {
		t.Fatalf("status %d: %s%s", code, out, errOut)
	}
	var res benchJSON
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Results) != 1 || res.Results[0].Engine != "interp" || res.Results[0].Error != "" || res.Results[0].Ret != 1 {
		t.Errorf("results %+v, want xdp_firewall's XDP_DROP on interp", res.Results)
	}
}

func TestBench_errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown program", []string{"../../examples/counter/counter.o", "--program", "nope"}, `no program "nope"; it has xdp_count`},
		{"unknown suite case", []string{"--program", "nope"}, `--program "nope": the suite has entry`},
		{"unknown engine", []string{"--engine", "wasm"}, `unknown engine "wasm"`},
		{"kernel twice", []string{"--engine", "jit,kernel", "--no-kernel"}, "--engine names kernel, and --no-kernel leaves it out"},
		{"not an object", []string{"../../examples/checksum/ipv4-header.bin"}, "ipv4-header.bin"},
		{"missing object", []string{"nothing.o"}, "nothing.o"},
		{"missing data", []string{"--data-in", "nothing.bin"}, "--data-in"},
		{"two objects", []string{"a.o", "b.o"}, "accepts at most 1 arg"},
		{"no engine runs it", []string{"../../examples/checksum/checksum.o", "--engine", "interp"}, "no engine measured checksum"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, "", append([]string{"bench", "--rounds", "1", "--round", "1ms"}, tc.args...)...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Errorf("status %d, stdout %q, stderr %q, want an error with %q", code, out, errOut, tc.want)
			}
		})
	}
}

// TestBench_mapInit measures examples/blocklist with its blocklist set
// by --map-init: a packet from a blocked source is dropped on every
// engine (and in the kernel, when this process can use it), one from
// another source passed, so the elements reached every engine's maps.
func TestBench_mapInit(t *testing.T) {
	engines := benchEnginesHere(t)
	kernelErr := kernel.Supported()
	for _, tc := range []struct {
		src  byte
		want uint32
	}{{3, 1 /* XDP_DROP */}, {4, 2 /* XDP_PASS */}} {
		frame := make([]byte, 64)
		copy(frame[12:], []byte{0x08, 0x00, 0x45})
		copy(frame[26:], []byte{10, 0, 0, tc.src})
		pkt := filepath.Join(t.TempDir(), "pkt.bin")
		if err := os.WriteFile(pkt, frame, 0o600); err != nil {
			t.Fatal(err)
		}
		code, out, errOut := runCLI(t, "", "bench", "../../examples/blocklist/blocklist.o", "--data-in", pkt,
			"--map-init", "../../examples/blocklist/blocklist.json", "--engine", engines, "--rounds", "1", "--round", "1ms", "--json")
		if code != 0 {
			t.Fatalf("status %d: %s%s", code, out, errOut)
		}
		var res benchJSON
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if len(res.Results) != strings.Count(engines, ",")+1 {
			t.Errorf("%d results for %s", len(res.Results), engines)
		}
		for _, r := range res.Results {
			if r.Engine == "kernel" && kernelErr != nil {
				continue
			}
			if r.Error != "" || r.Ret != tc.want {
				t.Errorf("10.0.0.%d on %s: returned %d (error %q), want %d", tc.src, r.Engine, r.Ret, r.Error, tc.want)
			}
		}
	}
	code, _, errOut := runCLI(t, "", "bench", "--map-init", "../../examples/blocklist/blocklist.json")
	if code == 0 || !strings.Contains(errOut, "give the object") {
		t.Errorf("--map-init without an object: status %d, %s", code, errOut)
	}
}
