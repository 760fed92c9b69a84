package bench

import (
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
)

// jitHere reports whether the JIT runs on this platform (linux/amd64).
func jitHere() bool { return runtime.GOOS == "linux" && runtime.GOARCH == "amd64" }

// suiteWants are the return values of the suite's cases whose result is
// easy to compute again in Go.
func suiteWants(t *testing.T) map[string]uint32 {
	t.Helper()
	// sieve: the count of primes below 2048, modulo 4.
	composite := make([]bool, 2048)
	primes := uint32(0)
	for i := 2; i < len(composite); i++ {
		if composite[i] {
			continue
		}
		primes++
		for j := i * i; j < len(composite); j += i {
			composite[j] = true
		}
	}
	// bpf_loop: FNV-1a over the four bytes of each index below 1000.
	h := uint32(2166136261)
	for i := range uint32(1000) {
		for b := range 4 {
			h = (h ^ (i >> (8 * b) & 0xff)) * 16777619
		}
	}
	// can_loop: xorshift64, 64 rounds per byte of the 64-byte packet.
	x, sum := uint64(88172645463325252), uint64(0)
	for range 64 * 64 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		sum += x >> 60
	}
	// checksum: XDP_PASS unless the frame's ones' complement sum is
	// 0xffff. The program adds little-endian words; the sum is 0xffff in
	// either byte order or in neither (RFC 1071 §2(B)).
	var le uint64
	pkt := checksumPacket()
	for i := 0; i+1 < len(pkt); i += 2 {
		le += uint64(binary.LittleEndian.Uint16(pkt[i:]))
	}
	for le>>16 != 0 {
		le = le&0xffff + le>>16
	}
	csum := uint32(xdpPass)
	if internetSum(pkt) == 0xffff {
		csum = xdpDrop
	}
	if (le == 0xffff) != (internetSum(pkt) == 0xffff) {
		t.Fatalf("checksum: the byte orders disagree: %#x, %#x", le, internetSum(pkt))
	}
	return map[string]uint32{
		"entry":           xdpPass,
		"sieve":           primes & 3,
		"memcpy_1m":       3, // 2 + (the last words are equal)
		"checksum":        csum,
		"xdp_firewall":    xdpDrop, // its source and port are blocked
		"xdp_firewall_v6": xdpPass, // its source is in no rule
		"bpf_loop":        h & 3,
		"can_loop":        uint32(sum & 3),
	}
}

// TestSuite_engines runs every suite case once on every engine and, when
// this process can, in the kernel: each must return the same value, and
// the value computed in Go where suiteWants has one.
func TestSuite_engines(t *testing.T) {
	wants := suiteWants(t)
	for _, c := range Suite() {
		t.Run(c.Name, func(t *testing.T) {
			var first *uint32
			check := func(t *testing.T, r *runner, err error) {
				t.Helper()
				if err != nil {
					t.Fatalf("load: %v", err)
				}
				defer r.close()
				ret, err := r.run(1)
				if err != nil {
					t.Fatalf("run: %v", err)
				}
				// A second run on what the first left returns the same:
				// Run's rounds depend on it.
				if again, err := r.run(3); err != nil || again != ret {
					t.Fatalf("returned %d, then %d (%v)", ret, again, err)
				}
				if want, ok := wants[c.Name]; ok && ret != want {
					t.Errorf("returned %d, want %d", ret, want)
				}
				if first != nil && ret != *first {
					t.Errorf("returned %d, the first engine %d", ret, *first)
				}
				if first == nil {
					first = &ret
				}
			}
			for _, e := range waggle.Engines() {
				t.Run(e.String(), func(t *testing.T) {
					if e == waggle.EngineJIT && !jitHere() {
						t.Skipf("the JIT is linux/amd64's, not %s/%s", runtime.GOOS, runtime.GOARCH)
					}
					r, err := loadWaggle(c, e, false)
					check(t, r, err)
				})
			}
			t.Run(Kernel, func(t *testing.T) {
				if err := kernel.Supported(); err != nil {
					t.Skipf("no kernel to compare with: %v", err)
				}
				r, err := loadKernel(c)
				if errors.Is(err, errNoMayGoto) {
					t.Skipf("no kernel to compare with: %v", err)
				}
				check(t, r, err)
			})
		})
	}
}

// TestSuite_names checks the suite's cases have distinct names and that
// those with packets or map entries got them.
func TestSuite_names(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Suite() {
		if seen[c.Name] {
			t.Errorf("two cases are named %s", c.Name)
		}
		seen[c.Name] = true
		if len(c.Data) < 14 {
			t.Errorf("%s: a %d-byte packet, shorter than an Ethernet header", c.Name, len(c.Data))
		}
	}
	for _, name := range []string{"sieve", "memcpy_1m", "switch64", "checksum", "xdp_firewall", "bpf_loop", "can_loop"} {
		if !seen[name] {
			t.Errorf("the suite has no %s", name)
		}
	}
}

// TestRun measures a few cases for one short round on every engine (and
// the kernel if this process can use it): no errors, every result
// measured, a ratio for each engine. It asserts nothing about the times.
func TestRun(t *testing.T) {
	var cases []Case
	for _, c := range Suite() {
		if slices.Contains([]string{"entry", "xdp_firewall", "can_loop"}, c.Name) {
			cases = append(cases, c)
		}
	}
	var engines []waggle.Engine
	for _, e := range waggle.Engines() {
		if e != waggle.EngineJIT || jitHere() {
			engines = append(engines, e)
		}
	}
	rs, err := Run(cases, Options{Engines: engines, Kernel: true, Rounds: 1, Round: time.Millisecond})
	if errors.Is(err, errNoClock) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	kernelErr := kernel.Supported()
	if want := len(cases) * (len(engines) + 1); len(rs) != want {
		t.Fatalf("%d results, want %d", len(rs), want)
	}
	for _, r := range rs {
		switch {
		case r.Engine == Kernel && kernelErr != nil:
			if r.Err == nil {
				t.Errorf("%s: the kernel measured it, but kernel.Supported says %v", r.Case, kernelErr)
			}
		case r.Err != nil:
			t.Errorf("%s on %s: %v", r.Case, r.Engine, r.Err)
		case r.Ns <= 0 || r.Runs == 0:
			t.Errorf("%s on %s: %v ns in rounds of %d runs", r.Case, r.Engine, r.Ns, r.Runs)
		}
	}
	g := Geomean(rs, waggle.EngineInterp.String())
	if len(g) != len(engines)+btoi(kernelErr == nil) || g[waggle.EngineInterp.String()] != 1 {
		t.Errorf("geomeans to the interpreter: %v", g)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func TestObjectCases(t *testing.T) {
	all, err := ObjectCases(extraObject, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
		if len(c.Data) != 64 {
			t.Errorf("%s: a %d-byte packet, want the 64-byte default", c.Name, len(c.Data))
		}
	}
	if !slices.IsSorted(names) || !slices.Contains(names, "xdp_firewall") || !slices.Contains(names, "can_loop_") {
		t.Errorf("programs %v", names)
	}
	pkt := firewallV4Packet()
	two, err := ObjectCases(extraObject, []string{"xdp_firewall", "sieve"}, pkt)
	if err != nil {
		t.Fatal(err)
	}
	if len(two) != 2 || two[0].Program != "xdp_firewall" || two[1].Program != "sieve" || string(two[1].Data) != string(pkt) {
		t.Errorf("named programs: %+v", two)
	}
	if _, err := ObjectCases(extraObject, []string{"nope"}, nil); err == nil || !strings.Contains(err.Error(), "no program \"nope\"") || !strings.Contains(err.Error(), "xdp_firewall") {
		t.Errorf("an unknown program: %v", err)
	}
	if _, err := ObjectCases([]byte("not an ELF object"), nil, nil); err == nil {
		t.Error("garbage was taken for an object")
	}
}

// BenchmarkSuite runs each suite case on each engine and, when this
// process can, in the kernel (BPF_PROG_TEST_RUN): one run per iteration
// through the public API, so each op includes the call's entry and exit
// (the kernel's, a syscall). Wall-clock ns/op, unlike waggle bench's
// thread CPU time:
//
//	go test ./internal/bench -run '^$' -bench Suite -benchmem
func BenchmarkSuite(b *testing.B) {
	for _, c := range Suite() {
		b.Run(c.Name, func(b *testing.B) {
			for _, e := range waggle.Engines() {
				b.Run(e.String(), func(b *testing.B) {
					if e == waggle.EngineJIT && !jitHere() {
						b.Skipf("the JIT is linux/amd64's, not %s/%s", runtime.GOOS, runtime.GOARCH)
					}
					r, err := loadWaggle(c, e, false)
					benchRunner(b, r, err)
				})
			}
			b.Run(Kernel, func(b *testing.B) {
				if err := kernel.Supported(); err != nil {
					b.Skipf("no kernel: %v", err)
				}
				r, err := loadKernel(c)
				benchRunner(b, r, err)
			})
		})
	}
}

func benchRunner(b *testing.B, r *runner, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
	defer r.close()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.run(1); err != nil {
			b.Fatal(err)
		}
	}
}
