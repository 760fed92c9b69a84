// Package bench measures programs on waggle's engines and in the
// kernel's JIT, the same object bytes on each, interleaved in one
// process and timed on the calling thread's CPU clock: the machine may
// be shared, and wall time is inflated unevenly under load, while a
// thread's CPU time counts only what it ran. `waggle bench` prints what
// Run measures.
//
// Each measurement is one Program.Run (or, for the kernel,
// BPF_PROG_TEST_RUN) with Repeat set, so the fixed cost of a call is
// spread over many runs, as the kernel's test run spreads its syscall:
// the figure is the cost of one run of the program, entry and exit
// included.
package bench

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
)

//go:embed testdata/suite.o
var suiteObject []byte

//go:embed testdata/extra.o
var extraObject []byte

// Case is one program to measure: Program of the ELF object Object, run
// on the packet Data, after Maps were put in the object's maps.
type Case struct {
	Name    string
	Object  []byte
	Program string
	Data    []byte
	// Maps are elements put in the object's maps before the first run,
	// the same in every engine and in the kernel.
	Maps []MapEntry
}

// MapEntry is an element of a map, in the bytes the program sees. In a
// per-CPU map, Value is one CPU's value, which every CPU gets.
type MapEntry struct {
	Map        string
	Key, Value []byte
}

// suitePrograms are the programs of testdata/suite.c, in the order the
// suite lists them.
var suitePrograms = []string{"entry", "lcg", "memsum", "fib32", "prime", "memcpy_", "strcmp_", "log2_", "switch_", "array_lookup", "hash_lookup"}

// Suite returns the built-in cases: the programs of testdata/suite.c,
// each on a 64-byte packet, then those of testdata/extra.c: a sieve, a
// 1 MiB memcpy, a 64-case switch, the Internet checksum of a 1500-byte
// frame, an XDP firewall on an IPv4 packet it drops and on an IPv6 one
// it passes (with a blocklist of 16 rules), a bpf_loop user and a
// can_loop loop.
func Suite() []Case {
	var cs []Case
	for _, p := range suitePrograms {
		cs = append(cs, Case{Name: strings.TrimSuffix(p, "_"), Object: suiteObject, Program: p, Data: make([]byte, 64)})
	}
	extra := func(name, prog string, data []byte, ms []MapEntry) {
		cs = append(cs, Case{Name: name, Object: extraObject, Program: prog, Data: data, Maps: ms})
	}
	extra("sieve", "sieve", make([]byte, 64), nil)
	extra("memcpy_1m", "memcpy_1m", make([]byte, 64), nil)
	extra("switch64", "switch64", make([]byte, 64), nil)
	extra("checksum", "checksum", checksumPacket(), nil)
	extra("xdp_firewall", "xdp_firewall", firewallV4Packet(), firewallRules())
	extra("xdp_firewall_v6", "xdp_firewall", firewallV6Packet(), firewallRules())
	extra("bpf_loop", "bpf_loop_", make([]byte, 64), nil)
	extra("can_loop", "can_loop_", make([]byte, 64), nil)
	return cs
}

// ObjectCases returns the cases of the ELF object obj: the programs
// named, in that order, or all of them (by name) if none is, each run on
// data (a 64-byte zeroed packet if nil).
func ObjectCases(obj []byte, programs []string, data []byte) ([]Case, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(obj))
	if err != nil {
		return nil, fmt.Errorf("not an ELF object: %w", err)
	}
	var names []string
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(programs) == 0 {
		programs = names
	}
	if data == nil {
		data = make([]byte, 64)
	}
	var cs []Case
	for _, p := range programs {
		if spec.Programs[p] == nil {
			return nil, fmt.Errorf("the object has no program %q; it has %s", p, strings.Join(names, ", "))
		}
		cs = append(cs, Case{Name: p, Object: obj, Program: p, Data: data})
	}
	if len(cs) == 0 {
		return nil, errors.New("the object has no programs")
	}
	return cs, nil
}

// Kernel is the name Result.Engine gives the kernel's JIT.
const Kernel = "kernel"

// DefaultRounds is how many interleaved measurements of each engine a
// median is taken of. On a shared machine a burst of the host's load can
// slow every measurement of one engine in a round; with 5 rounds such
// bursts decided the median of a program in 3 of 11 runs of the suite
// (one program up to 1.3x the kernel that measured 1.0-1.1x alone), with
// 11 in none of 3.
const DefaultRounds = 9

// Options configure Run.
type Options struct {
	// Engines are waggle's engines to measure; nil means all.
	Engines []waggle.Engine
	// Kernel measures the kernel's JIT too (it needs root; Run reports
	// why not in the kernel's results otherwise).
	Kernel bool
	// Rounds is how many times each engine is measured, interleaved;
	// the median is kept. 0 means DefaultRounds.
	Rounds int
	// Round is the CPU time one measurement aims at; 0 means 20 ms.
	Round time.Duration
	// BlindConstants loads the programs with
	// CollectionOptions.BlindConstants.
	BlindConstants bool
}

// Result is what one engine did with one case.
type Result struct {
	Case   string
	Engine string
	// Ns is the median over the rounds of the thread CPU time per run,
	// in nanoseconds.
	Ns float64
	// Runs is how many runs one round made.
	Runs uint32
	// Ret is the program's return value, the same on every engine.
	Ret uint32
	Err error
}

// runner is one engine loaded with one case.
type runner struct {
	engine string
	run    func(repeat uint32) (uint32, error)
	close  func()
}

// Run measures each case on each engine. A case an engine cannot run
// gets a Result with Err; Run fails only if no measurement is possible
// at all (no thread CPU clock).
func Run(cases []Case, opts Options) ([]Result, error) {
	if _, err := threadTime(); err != nil {
		return nil, err
	}
	if opts.Engines == nil {
		opts.Engines = waggle.Engines()
	}
	if opts.Rounds <= 0 {
		opts.Rounds = DefaultRounds
	}
	if opts.Round <= 0 {
		opts.Round = 20 * time.Millisecond
	}
	unlock := lockThread()
	defer unlock()
	var out []Result
	for _, c := range cases {
		out = append(out, runCase(c, opts)...)
	}
	return out, nil
}

// runCase loads c on every engine, calibrates each, then measures them
// in interleaved rounds.
func runCase(c Case, opts Options) []Result {
	var rs []*runner
	var res []Result
	for _, e := range opts.Engines {
		r, err := loadWaggle(c, e, opts.BlindConstants)
		if err != nil {
			res = append(res, Result{Case: c.Name, Engine: e.String(), Err: err})
			continue
		}
		rs = append(rs, r)
	}
	if opts.Kernel {
		r, err := loadKernel(c)
		if err != nil {
			res = append(res, Result{Case: c.Name, Engine: Kernel, Err: err})
		} else {
			rs = append(rs, r)
		}
	}
	defer func() {
		for _, r := range rs {
			r.close()
		}
	}()
	type state struct {
		r       *runner
		repeat  uint32
		ret     uint32
		samples []float64
		err     error
	}
	var ss []*state
	for _, r := range rs {
		s := &state{r: r}
		s.repeat, s.ret, s.err = calibrate(r, opts.Round)
		ss = append(ss, s)
	}
	for range opts.Rounds {
		for _, s := range ss {
			if s.err != nil {
				continue
			}
			t0, _ := threadTime()
			ret, err := s.r.run(s.repeat)
			t1, _ := threadTime()
			if err != nil {
				s.err = err
				continue
			}
			if ret != s.ret {
				s.err = fmt.Errorf("returned %d, then %d", s.ret, ret)
				continue
			}
			s.samples = append(s.samples, float64(t1-t0)/float64(s.repeat))
		}
	}
	for _, s := range ss {
		r := Result{Case: c.Name, Engine: s.r.engine, Runs: s.repeat, Ret: s.ret, Err: s.err}
		if s.err == nil {
			sort.Float64s(s.samples)
			r.Ns = s.samples[len(s.samples)/2]
		}
		res = append(res, r)
	}
	// Every engine must compute the same thing.
	for i := range res {
		for j := range res[:i] {
			if res[i].Err == nil && res[j].Err == nil && res[i].Ret != res[j].Ret {
				res[i].Err = fmt.Errorf("returned %d, %s returned %d", res[i].Ret, res[j].Engine, res[j].Ret)
			}
		}
	}
	return res
}

// calibrate finds the repeat count whose run takes about round of CPU
// time.
func calibrate(r *runner, round time.Duration) (uint32, uint32, error) {
	repeat := uint32(1)
	for {
		t0, _ := threadTime()
		ret, err := r.run(repeat)
		t1, _ := threadTime()
		if err != nil {
			return 0, 0, err
		}
		d := time.Duration(t1 - t0)
		if d >= round/4 || repeat >= 1<<30 {
			n := float64(repeat) * float64(round) / math.Max(float64(d), 1)
			return uint32(math.Max(1, math.Min(n, 1<<31))), ret, nil
		}
		repeat *= 4
	}
}

func loadWaggle(c Case, e waggle.Engine, blind bool) (*runner, error) {
	coll, p, err := load(c, &waggle.CollectionOptions{CPUs: 1, Engine: e, BlindConstants: blind})
	if err != nil {
		return nil, err
	}
	opts := &waggle.RunOptions{Data: c.Data}
	return &runner{
		engine: e.String(),
		run: func(repeat uint32) (uint32, error) {
			opts.Repeat = repeat
			return p.Run(opts)
		},
		close: coll.Close,
	}, nil
}

// load loads c's object with opts, prepares c's program and puts c's map
// entries (a per-CPU value on every CPU).
func load(c Case, opts *waggle.CollectionOptions) (*waggle.Collection, *waggle.Program, error) {
	spec, err := ebpf.LoadCollectionSpecFromReader(bytes.NewReader(c.Object))
	if err != nil {
		return nil, nil, err
	}
	coll, err := waggle.NewCollection(spec, opts)
	if err != nil {
		return nil, nil, err
	}
	p := coll.Programs[c.Program]
	if p == nil {
		coll.Close()
		return nil, nil, fmt.Errorf("the object has no program %s", c.Program)
	}
	if err := p.Prepare(); err != nil {
		coll.Close()
		return nil, nil, err
	}
	for i, me := range c.Maps {
		m := coll.Maps[me.Map]
		if m == nil {
			coll.Close()
			return nil, nil, fmt.Errorf("map entry %d: the object has no map %s", i, me.Map)
		}
		var v any = me.Value
		if perCPU(m.Type()) {
			v = slices.Repeat([][]byte{me.Value}, coll.CPUs())
		}
		if err := m.Put(me.Key, v); err != nil {
			coll.Close()
			return nil, nil, fmt.Errorf("map entry %d: %w", i, err)
		}
	}
	return coll, p, nil
}

// perCPU reports whether maps of type t have a value per CPU.
func perCPU(t ebpf.MapType) bool {
	switch t {
	case ebpf.PerCPUArray, ebpf.PerCPUHash, ebpf.LRUCPUHash, ebpf.PerCPUCGroupStorage:
		return true
	}
	return false
}

// Geomean returns, per engine, the geometric mean over the cases of the
// ratio of its time to base's (the kernel's, usually), counting the
// cases both measured.
func Geomean(rs []Result, base string) map[string]float64 {
	ref := map[string]float64{}
	for _, r := range rs {
		if r.Engine == base && r.Err == nil && r.Ns > 0 {
			ref[r.Case] = r.Ns
		}
	}
	logs := map[string][]float64{}
	for _, r := range rs {
		if b, ok := ref[r.Case]; ok && r.Err == nil && r.Ns > 0 {
			logs[r.Engine] = append(logs[r.Engine], math.Log(r.Ns/b))
		}
	}
	out := map[string]float64{}
	for e, ls := range logs {
		var sum float64
		for _, l := range ls {
			sum += l
		}
		out[e] = math.Exp(sum / float64(len(ls)))
	}
	return out
}

// Engines returns the engines of rs in the order they first appear.
func Engines(rs []Result) []string {
	var es []string
	for _, r := range rs {
		if !slices.Contains(es, r.Engine) {
			es = append(es, r.Engine)
		}
	}
	return es
}

// errNoMayGoto is why the kernel cannot run a program with may_goto.
var errNoMayGoto = errors.New("this kernel refuses may_goto")

var errNoClock = errors.New("bench: the thread CPU clock is Linux's (CLOCK_THREAD_CPUTIME_ID)")
