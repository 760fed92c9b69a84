package verifuzz

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
)

// engineKnobs turns the knobs of one comparison into the generator's
// configuration (always with PtrConfig.Helpers) and the JIT's constant
// blinding:
//
//	bits 0-1  3: every program has a near miss (most are then rejected;
//	          those accepted are safe near misses), else none
//	bit  2    loops may use may_goto
//	bit  3    the JIT blinds constants
//	bits 4-5  program type: all, xdp, sched_cls, socket_filter
//	bits 6-7  at most 6, 3, 10 or 16 snippets
func engineKnobs(knobs uint8) (cfg fuzzgen.PtrConfig, blind bool) {
	cfg.Helpers = true
	cfg.MutatePercent = -1
	if knobs&3 == 3 {
		cfg.MutatePercent = 100
	}
	cfg.MayGoto = knobs&4 != 0
	blind = knobs&8 != 0
	switch knobs >> 4 & 3 {
	case 1:
		cfg.Types = []fuzzgen.ProgType{fuzzgen.XDP}
	case 2:
		cfg.Types = []fuzzgen.ProgType{fuzzgen.SchedCLS}
	case 3:
		cfg.Types = []fuzzgen.ProgType{fuzzgen.SocketFilter}
	}
	cfg.MaxSnippets = []int{6, 3, 10, 16}[knobs>>6]
	return cfg, blind
}

// seedKnobs are the knobs TestEnginesGenerated uses for seed: a function
// of the seed alone, so that the seed reproduces the program.
func seedKnobs(seed uint64) uint8 { return uint8((seed * 0x9e3779b97f4a7c15) >> 56) }

// seedMoreMaps reports whether the program of seed uses
// fuzzgen.PtrConfig.MoreMaps: half the seeds, by a hash of the seed
// independent of seedKnobs, so that the other half keep the programs
// they gave before the option existed.
func seedMoreMaps(seed uint64) bool { return (seed*0xbf58476d1ce4e5b9)>>63 == 1 }

// compareOne generates the program of seed and knobs (with
// PtrConfig.MoreMaps as seedMoreMaps says) and compares the engines on
// it.
func compareOne(r *EngineRunner, seed uint64, knobs uint8) *EngineResult {
	cfg, blind := engineKnobs(knobs)
	cfg.MoreMaps = seedMoreMaps(seed)
	r.BlindConstants = blind
	return r.Compare(fuzzgen.GeneratePtr(seed, cfg))
}

// logKernelOnce logs, once per test binary, why the kernel takes no
// part.
var logKernelOnce sync.Once

func logLeftOut(tb testing.TB, r *EngineRunner) {
	tb.Helper()
	logKernelOnce.Do(func() {
		if r.NoKernel != nil {
			tb.Logf("comparing user-space engines only: the kernel is left out: %v", r.NoKernel)
		}
		if r.NoJIT != nil {
			tb.Logf("the JIT is left out: %v", r.NoJIT)
		}
	})
}

// TestEnginesGenerated is FuzzEngines over a fixed range of seeds, so CI
// covers the comparison without -fuzz: generated programs with helper
// calls (map lookup, update and delete, skb_load_bytes,
// xdp_adjust_head), array and hash maps (and, for half the seeds,
// per-CPU arrays and hashes, LPM tries and an LRU hash: seedMoreMaps),
// bpf-to-bpf calls and loops,
// kept when waggle's verifier accepts them, run on the checked
// interpreter, the fast interpreter, the JIT and, as root, the kernel
// (EngineRunner.Compare). Any difference fails, with the program, the
// engines' outcomes and the seed. It also fails if helper calls or map
// operations become rare among the accepted programs, since the
// comparison would then miss what it is for; the log has the share per
// helper and map type. Knobs:
//
//	WAGGLE_ENGINES_N     programs (default 2000, 300 with -short)
//	WAGGLE_ENGINES_SEED  first seed (default 0); each seed picks its
//	                     knobs (engineKnobs) from its own bits
//	WAGGLE_ENGINES_N=100000 go test ./internal/verifuzz -run TestEnginesGenerated -v -timeout 0
func TestEnginesGenerated(t *testing.T) {
	def := uint64(2_000)
	if testing.Short() {
		def = 300
	}
	n := envUint(t, "WAGGLE_ENGINES_N", def)
	seed0 := envUint(t, "WAGGLE_ENGINES_SEED", 0)
	const maxShown = 5
	var (
		next   atomic.Uint64
		mu     sync.Mutex
		rep    = NewEngineReport()
		shown  int
		wg     sync.WaitGroup
		engs   []string
		runner = make([]*EngineRunner, runtime.GOMAXPROCS(0))
	)
	for i := range runner {
		runner[i] = NewEngineRunner(false)
		defer runner[i].Close()
	}
	logLeftOut(t, runner[0])
	engs = runner[0].Engines()
	start := time.Now()
	for _, r := range runner {
		wg.Go(func() {
			local := NewEngineReport()
			defer func() {
				mu.Lock()
				rep.Merge(local, 20)
				mu.Unlock()
			}()
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				seed := seed0 + i
				res := compareOne(r, seed, seedKnobs(seed))
				local.Add(res, 20)
				if len(res.Diffs) > 0 || res.Refused != nil {
					mu.Lock()
					if shown < maxShown {
						shown++
						t.Errorf("engines differ (rerun: WAGGLE_ENGINES_SEED=%d WAGGLE_ENGINES_N=1 go test ./internal/verifuzz -run TestEnginesGenerated -v):\nrefused: %v\n%v", seed, res.Refused, res)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	t.Logf("seeds %d..%d\n%s", seed0, seed0+n-1, rep.Summary(engs, 20))
	if rep.Programs != int(n) {
		t.Fatalf("%d programs of %d", rep.Programs, n)
	}
	if rep.Diffs.N > 0 || rep.Refused.N > 0 {
		t.Errorf("%d programs on which engines differ, %d accepted programs waggle refuses to prepare", rep.Diffs.N, rep.Refused.N)
	}
	checkCoverage(t, rep)
}

// checkCoverage fails tb when the accepted programs hardly exercise
// helpers and maps, or the kernel took part but compared nothing.
func checkCoverage(t *testing.T, rep *EngineReport) {
	t.Helper()
	if rep.Programs < 200 {
		return // too few for shares to mean anything
	}
	if rep.Accepted*4 < rep.Programs {
		t.Errorf("waggle's verifier accepted %d of %d programs: the comparison runs too few", rep.Accepted, rep.Programs)
	}
	if rep.WithHelper*2 < rep.Accepted || rep.WithMap*2 < rep.Accepted {
		t.Errorf("of %d accepted programs %d call a helper and %d reference a map, want at least half each", rep.Accepted, rep.WithHelper, rep.WithMap)
	}
	for _, h := range []string{"1 map_lookup_elem", "2 map_update_elem", "3 map_delete_elem"} {
		if rep.Helpers[h] == 0 {
			t.Errorf("no accepted program calls %s", h)
		}
	}
	for _, m := range []string{"array", "hash", "percpu_array", "percpu_hash", "lru_hash", "lpm_trie"} {
		if rep.MapTypes[m] == 0 {
			t.Errorf("no accepted program references a %s map", m)
		}
		if rep.MapsChanged[m] == 0 {
			t.Errorf("no accepted program's runs change a %s map", m)
		}
	}
	if rep.Runs[KernelEngine] > 0 && rep.KernelCompared*2 < rep.Accepted {
		t.Errorf("the kernel ran only %d of %d accepted programs", rep.KernelCompared, rep.Accepted)
	}
}

// FuzzEngines compares waggle's engines and, as root, the kernel on
// generated programs: from the fuzz input (the generator's seed and the
// knobs of engineKnobs: near misses, may_goto, blinded constants,
// program type, size; the seed also decides seedMoreMaps) it generates a
// program with helper calls and map operations (fuzzgen.GeneratePtr), keeps it if waggle's verifier accepts
// it, and runs it on the same inputs and map contents on the checked
// interpreter, the fast interpreter, the JIT and the kernel, requiring
// the same return value, failure or success, output packet and maps
// after each run (EngineRunner.Compare). Without root only the
// user-space engines take part (logged once), and a program the kernel
// does not load is compared without it.
//
//	go test ./internal/verifuzz -run '^$' -fuzz FuzzEngines -fuzztime 10m
func FuzzEngines(f *testing.F) {
	for _, s := range []uint64{0, 1, 42, 1 << 32, 0xdeadbeef} {
		f.Add(s, seedKnobs(s))
	}
	f.Add(uint64(7), uint8(0b1000_0100))  // long programs with may_goto
	f.Add(uint64(9), uint8(0b0001_1000))  // XDP, blinded constants
	f.Add(uint64(11), uint8(0b0010_0011)) // sched_cls near misses
	r := NewEngineRunner(false)
	defer r.Close()
	logLeftOut(f, r)
	var mu sync.Mutex // the fuzzer may call in parallel within a process
	f.Fuzz(func(t *testing.T, seed uint64, knobs uint8) {
		mu.Lock()
		defer mu.Unlock()
		res := compareOne(r, seed, knobs)
		if res.Refused != nil {
			t.Fatalf("seed %d, knobs %#08b: waggle refuses to prepare a program its verifier accepted: %v\n%v", seed, knobs, res.Refused, res)
		}
		if len(res.Diffs) > 0 {
			t.Fatalf("seed %d, knobs %#08b: engines differ:\n%v", seed, knobs, res)
		}
	})
}

// Test_diffWaggle: two of waggle's runs agree only with the same error
// class and, when both ran, the same return value, packet and maps;
// nondeterministic programs are compared for failure only.
func Test_diffWaggle(t *testing.T) {
	ok := Outcome{Ret: 1, Packet: []byte{1, 2}, Maps: "m0[00] = 01\n"}
	fault := Outcome{Err: fmt.Errorf("run: %w", waggle.ErrMemory)}
	budget := Outcome{Err: fmt.Errorf("run: %w", waggle.ErrBudget)}
	for _, tc := range []struct {
		name   string
		a, b   Outcome
		nondet bool
		differ bool
	}{
		{"same", ok, ok, false, false},
		{"ret", ok, Outcome{Ret: 2, Packet: ok.Packet, Maps: ok.Maps}, false, true},
		{"packet", ok, Outcome{Ret: 1, Packet: []byte{1, 3}, Maps: ok.Maps}, false, true},
		{"maps", ok, Outcome{Ret: 1, Packet: ok.Packet, Maps: "m0[00] = 02\n"}, false, true},
		{"nondet values", ok, Outcome{Ret: 2}, true, false},
		{"nondet failure", ok, fault, true, true},
		{"fault and run", fault, ok, false, true},
		{"fault and budget", fault, budget, false, true},
		{"same class, other words", fault, Outcome{Err: fmt.Errorf("other: %w", waggle.ErrMemory)}, false, false},
		{"unclassified errors", Outcome{Err: errors.New("a")}, Outcome{Err: errors.New("b")}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := diffWaggle(tc.a, tc.b, tc.nondet); (d != "") != tc.differ {
				t.Errorf("diffWaggle(%v, %v, %v) = %q, want a difference: %v", tc.a, tc.b, tc.nondet, d, tc.differ)
			}
		})
	}
}
