package verifuzz

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/helpers"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/internal/jitrt"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/verifier"
)

// KernelEngine is the name of the kernel's column in EngineResult: the
// program loaded with BPF_PROG_LOAD and run with BPF_PROG_TEST_RUN.
const KernelEngine = "kernel"

// VerifyTimeout bounds one verification by waggle's verifier in
// EngineRunner: a program it cannot judge in that time counts as
// rejected, with the reason "verification timed out", and runs nowhere.
// Such programs are near misses the verifier walks to its limit of
// processed instructions (TestWaggleVerifier reports the slow ones); the
// bound keeps each go test -fuzz input well under the fuzzer's 10 s,
// after which it calls the worker hung.
const VerifyTimeout = 3 * time.Second

// EngineRunner runs generated programs on every engine that can run
// them here and compares the runs (Compare). Use one per goroutine: it
// holds its own kernel maps and buffers.
type EngineRunner struct {
	k   *Kernel
	out []byte
	// engines are waggle's engines to compare, the reference (the checked
	// interpreter) first.
	engines []waggle.Engine
	// NoKernel is why the kernel takes no part (nil when it does).
	NoKernel error
	// NoJIT is why the JIT takes no part (nil when it does).
	NoJIT error
	// BlindConstants loads programs on the JIT with their constants
	// blinded (waggle.CollectionOptions.BlindConstants).
	BlindConstants bool
}

// NewEngineRunner returns a runner comparing the checked interpreter, the
// fast interpreter, the JIT where it runs (linux/amd64) and, unless
// noKernel is set or this process cannot load programs (not root, not
// Linux, no BPF_PROG_TEST_RUN), the kernel. What is left out and why is in
// NoJIT and NoKernel. Close it when done.
func NewEngineRunner(noKernel bool) *EngineRunner {
	r := &EngineRunner{engines: []waggle.Engine{waggle.EngineInterp, waggle.EngineInterpFast}}
	if r.NoJIT = jitrt.Supported(); r.NoJIT == nil {
		r.engines = append(r.engines, waggle.EngineJIT)
	}
	if noKernel {
		r.NoKernel = errors.New("left out on request")
		return r
	}
	k, err := NewKernel()
	if err != nil {
		r.NoKernel = err
		return r
	}
	r.k = k
	return r
}

// Close releases the kernel maps.
func (r *EngineRunner) Close() {
	if r.k != nil {
		r.k.Close()
		r.k = nil
	}
}

// Engines returns the names of the engines compared, the reference first
// and the kernel last when it takes part.
func (r *EngineRunner) Engines() []string {
	var names []string
	for _, e := range r.engines {
		names = append(names, e.String())
	}
	if r.k != nil {
		names = append(names, KernelEngine)
	}
	return names
}

// EngineResult is what Compare made of one program.
type EngineResult struct {
	Program *fuzzgen.PtrProgram
	// Rejected is waggle's verifier's reason to reject the program, ""
	// when it accepted it (see VerifyTimeout). A rejected program runs
	// nowhere.
	Rejected string
	// Refused is why waggle would not prepare a program its verifier
	// accepted, on any engine; nil when it did.
	Refused error
	// Engines names the engines that ran the program, the reference (the
	// checked interpreter) first; Runs holds their outcomes, one per
	// input, in the same order.
	Engines []string
	Runs    [][]Outcome
	// Skipped names the engines that did not run the program although
	// they take part, and says why: the unchecked engines after the
	// checked interpreter caught an out-of-bounds access (machine code
	// would crash the process); the kernel when its verifier rejects the
	// program, or lacks a helper or program type it uses.
	Skipped map[string]string
	// Diffs describes the runs on which two engines differ, or on which
	// the checked interpreter caught an out-of-bounds access in a
	// verified program; none when all agree.
	Diffs []string
}

// Compare verifies p with waggle's verifier (as BPF_PROG_LOAD does for
// root) and, if it accepts, runs p on all its inputs on every engine
// with the same inputs and the same initial map contents, and compares
// each engine's runs with the checked interpreter's: the return value,
// whether the run failed and how (the error class: a fault, the budget, a
// helper), the output packet and the maps' contents after the run. The
// kernel never faults, so against it only failure or success is
// compared, then the values. Runs of programs that legitimately differ
// (p.Nondet: uninitialised stack, pointers in the output) are compared
// for failure only, and so are the kernel's runs of programs whose
// results depend on the kernel's own state or meet a documented kernel
// bug (p.KernelDiff). Of a per-CPU map, the values compared are those of
// waggle's CPU 0 and of the CPU the kernel's test run ran on (Kernel.Run
// pins it). Runs using the LRU hash on a machine where Linux's LRU may
// evict early (Kernel.MayEvict) are compared with the kernel for failure
// only.
func (r *EngineRunner) Compare(p *fuzzgen.PtrProgram) *EngineResult {
	res := &EngineResult{Program: p, Skipped: map[string]string{}}
	var ref []Outcome
	for i, e := range r.engines {
		opts := &waggle.CollectionOptions{CPUs: 1, Budget: InterpBudget, RandSeed: 1, Engine: e, BlindConstants: r.BlindConstants}
		if i > 0 && escaped(ref) {
			// Unchecked engines would make the same access unchecked.
			res.Skipped[e.String()] = "the checked interpreter caught an out-of-bounds access"
			continue
		}
		outs, rejected, err := r.runVerified(p, opts)
		if rejected != "" {
			// The verifier is the same code on every engine: one verdict.
			res.Rejected = rejected
			return res
		}
		if err != nil {
			res.Refused = fmt.Errorf("%s: %w", e, err)
			return res
		}
		res.Engines, res.Runs = append(res.Engines, e.String()), append(res.Runs, outs)
		if i == 0 {
			ref = outs
			for in, o := range outs {
				if o.Escape() {
					res.Diffs = append(res.Diffs, fmt.Sprintf("input %d: the verifier accepted a program that escapes in the checked interpreter: %v", in, o.Err))
				}
			}
			continue
		}
		for in := range outs {
			if d := diffWaggle(ref[in], outs[in], p.Nondet != ""); d != "" {
				res.Diffs = append(res.Diffs, fmt.Sprintf("input %d: %s and %s differ: %s", in, res.Engines[0], e, d))
			}
		}
	}
	if r.k != nil {
		r.compareKernel(res, ref)
	}
	return res
}

// escaped reports whether a checked run accessed memory out of bounds.
func escaped(outs []Outcome) bool {
	return slices.ContainsFunc(outs, Outcome.Escape)
}

// runVerified runs p on its inputs in a collection loaded with opts,
// verified: a verifier rejection is returned as its message, another
// failure to prepare as an error.
func (r *EngineRunner) runVerified(p *fuzzgen.PtrProgram, opts *waggle.CollectionOptions) (outs []Outcome, rejected string, err error) {
	c, err := waggle.NewCollectionFromObject(object(p), opts)
	if err != nil {
		return nil, "", err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), VerifyTimeout)
	defer cancel()
	if err := c.Programs["prog"].PrepareContext(ctx); err != nil {
		var verr *verifier.Error
		switch {
		case errors.As(err, &verr):
			return nil, verr.Msg, nil
		case errors.Is(err, context.DeadlineExceeded):
			return nil, "verification timed out", nil
		}
		return nil, "", err
	}
	return runInputs(c, p, &r.out), "", nil
}

// compareKernel loads p into the kernel and compares its test runs with
// the checked interpreter's, ref. A program the kernel does not load
// (its verifier refuses it, or this kernel lacks something it uses) is
// skipped for the kernel only.
func (r *EngineRunner) compareKernel(res *EngineResult, ref []Outcome) {
	p := res.Program
	if escaped(ref) {
		// Already a failure; the kernel would only add noise.
		res.Skipped[KernelEngine] = "the checked interpreter caught an out-of-bounds access"
		return
	}
	prog, err := r.k.Load(p)
	if err != nil {
		var verr *kernel.VerifierError
		if errors.As(err, &verr) {
			res.Skipped[KernelEngine] = "rejected: " + KernelReason(verr)
		} else {
			res.Skipped[KernelEngine] = "not loaded: " + err.Error()
		}
		return
	}
	defer prog.Close()
	outs := make([]Outcome, len(p.Packets))
	for in := range p.Packets {
		outs[in] = r.k.Run(prog, p, in)
		if errors.Is(outs[in].Err, kernel.ErrNotSupported) {
			res.Skipped[KernelEngine] = "test run not supported: " + outs[in].Err.Error()
			return
		}
	}
	res.Engines, res.Runs = append(res.Engines, KernelEngine), append(res.Runs, outs)
	for in, k := range outs {
		w := ref[in]
		var d string
		switch {
		case k.Err != nil && w.Err != nil:
			// Both refuse the input (a test run wants a whole IPv4
			// header, for instance).
		case k.Err != nil || w.Err != nil:
			d = fmt.Sprintf("%s %s, kernel %s", res.Engines[0], errOrOK(w.Err), errOrOK(k.Err))
		case p.Nondet == "" && p.KernelDiff == "" && !r.k.MayEvict(p) && !same(k, w):
			d = describeDiff(k, w)
		}
		if d != "" {
			res.Diffs = append(res.Diffs, fmt.Sprintf("input %d: %s and kernel differ: %s", in, res.Engines[0], d))
		}
	}
}

// diffWaggle describes how two of waggle's runs differ ("" if they do
// not): their error classes, or, when both ran, the return value, the
// packet and the maps (unless nondet).
func diffWaggle(a, b Outcome, nondet bool) string {
	if ca, cb := errClass(a.Err), errClass(b.Err); ca != cb {
		return fmt.Sprintf("%q vs %q", ca, cb)
	}
	if a.Err != nil || nondet {
		return ""
	}
	var d []string
	if a.Ret != b.Ret {
		d = append(d, fmt.Sprintf("ret %#x vs %#x", a.Ret, b.Ret))
	}
	if !bytes.Equal(a.Packet, b.Packet) {
		d = append(d, fmt.Sprintf("packet % x vs % x", a.Packet, b.Packet))
	}
	if a.Maps != b.Maps {
		d = append(d, fmt.Sprintf("maps\n%svs\n%s", a.Maps, b.Maps))
	}
	return strings.Join(d, "; ")
}

// runErrors are the classes of run errors, in the order errClass tries
// them.
var runErrors = []struct {
	name string
	err  error
}{
	{"memory fault", waggle.ErrMemory}, {"budget", waggle.ErrBudget}, {"stopped", waggle.ErrStopped},
	{"call depth", waggle.ErrCallDepth}, {"helper", waggle.ErrHelper}, {"unreleased", waggle.ErrUnreleased},
	{"context", waggle.ErrContext},
}

// errClass returns the class of a run's error: "" for none, the name of
// the waggle error it wraps, or else its text (an input the program type
// refuses, which every engine refuses the same way).
func errClass(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range runErrors {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return err.Error()
}

// String formats the result for a failure message: the engines' outcomes
// per input, and why engines were skipped.
func (res *EngineResult) String() string {
	var b strings.Builder
	p := res.Program
	fmt.Fprintf(&b, "seed %d, %s, snippets %s", p.Seed, p.Type, strings.Join(p.Snippets, " "))
	if p.Mutation != "" {
		fmt.Fprintf(&b, ", near miss %s", p.Mutation)
	}
	if p.Nondet != "" {
		fmt.Fprintf(&b, ", outputs not compared: %s", p.Nondet)
	}
	if p.KernelDiff != "" {
		fmt.Fprintf(&b, ", outputs not compared with the kernel: %s", p.KernelDiff)
	}
	b.WriteString("\n")
	for _, d := range res.Diffs {
		fmt.Fprintf(&b, "DIFF %s\n", d)
	}
	for in, pkt := range p.Packets {
		fmt.Fprintf(&b, "input %d: packet % x\n", in, pkt)
		for i, name := range res.Engines {
			fmt.Fprintf(&b, "  %s: %s\n", name, strings.ReplaceAll(strings.TrimRight(res.Runs[i][in].String(), "\n"), "\n", "\n    "))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(res.Skipped)) {
		fmt.Fprintf(&b, "%s skipped: %s\n", name, res.Skipped[name])
	}
	if len(p.Maps) > 0 {
		b.WriteString("initial maps:\n")
		for _, e := range p.Maps {
			fmt.Fprintf(&b, "  %s[%x] = %x\n", mapName(e.Map), e.Key, e.Value)
		}
	}
	b.WriteString("program:\n")
	b.WriteString(Disasm(p))
	return b.String()
}

// EngineReport sums up Compare's results over many programs.
type EngineReport struct {
	Programs int
	// Accepted counts the programs waggle's verifier accepted; Rejected
	// counts its reasons to reject, numbers replaced by N.
	Accepted int
	Rejected map[string]int
	// Refused counts accepted programs waggle would not prepare.
	Refused CaseList
	// Runs counts, per engine, the runs made (one per input of each
	// accepted program).
	Runs map[string]int
	// Nondet counts the accepted programs whose outputs are not compared;
	// KernelDiff those whose outputs are not compared with the kernel's
	// (fuzzgen.PtrProgram.KernelDiff).
	Nondet, KernelDiff int
	// KernelCompared counts the accepted programs compared with the
	// kernel too; KernelSkipped counts why the others were not, numbers
	// replaced by N.
	KernelCompared int
	KernelSkipped  map[string]int
	// Diffs are the programs on which engines differ.
	Diffs CaseList
	// Helpers counts the accepted programs calling each helper (by id,
	// bpf_func_id), and MapTypes those referencing a map of each type;
	// WithHelper, WithMap and WithLocalCall count the accepted programs
	// calling a helper at all, referencing a map at all and making a
	// bpf-to-bpf call.
	Helpers, MapTypes                  map[string]int
	WithHelper, WithMap, WithLocalCall int
	// MapsChanged counts, per map type, the accepted programs whose
	// reference runs left a map of that type other than it was: the runs
	// wrote it (through a value pointer, an update or a delete), so that
	// the comparison of maps saw the type's writes.
	MapsChanged map[string]int
	Elapsed     time.Duration
}

// NewEngineReport returns an empty report.
func NewEngineReport() *EngineReport {
	return &EngineReport{Rejected: map[string]int{}, Runs: map[string]int{}, KernelSkipped: map[string]int{},
		Helpers: map[string]int{}, MapTypes: map[string]int{}, MapsChanged: map[string]int{}}
}

// Add counts res; it keeps up to max cases per list.
func (rep *EngineReport) Add(res *EngineResult, max int) {
	rep.Programs++
	p := res.Program
	base := Case{Seed: p.Seed, Type: p.Type, Mutation: p.Mutation, Input: -1}
	if res.Rejected != "" {
		rep.Rejected[normalise(res.Rejected)]++
		return
	}
	rep.Accepted++
	if res.Refused != nil {
		c := base
		c.Detail = res.Refused.Error()
		rep.Refused.add(c, max)
		return
	}
	if p.Nondet != "" {
		rep.Nondet++
	}
	if p.KernelDiff != "" {
		rep.KernelDiff++
	}
	for i, name := range res.Engines {
		rep.Runs[name] += len(res.Runs[i])
	}
	if slices.Contains(res.Engines, KernelEngine) {
		rep.KernelCompared++
	} else if why, ok := res.Skipped[KernelEngine]; ok {
		rep.KernelSkipped[normalise(why)]++
	}
	if len(res.Diffs) > 0 {
		c := base
		c.Detail = strings.Join(res.Diffs, "; ")
		rep.Diffs.add(c, max)
	}
	called, mapTypes, local := uses(p)
	if len(called) > 0 {
		rep.WithHelper++
	}
	if len(mapTypes) > 0 {
		rep.WithMap++
	}
	if local {
		rep.WithLocalCall++
	}
	for _, h := range called {
		rep.Helpers[h]++
	}
	for _, t := range mapTypes {
		rep.MapTypes[t]++
	}
	if len(res.Runs) > 0 {
		for _, t := range changedMaps(p, res.Runs[0]) {
			rep.MapsChanged[t]++
		}
	}
}

// changedMaps returns the types of the maps, each once, that a run of p
// (outs, one per input) left other than p.Maps gave them.
func changedMaps(p *fuzzgen.PtrProgram, outs []Outcome) []string {
	specs := fuzzgen.PtrMaps()
	used := usedMaps(p)
	var before []entry
	for _, e := range p.Maps {
		if slices.Contains(used, e.Map) {
			before = append(before, entry{e.Map, e.Key, e.Value})
		}
	}
	initial := mapLines(formatEntries(before))
	var types []string
	for _, o := range outs {
		if o.Err != nil {
			continue
		}
		after := mapLines(o.Maps)
		for _, i := range used {
			t := mapTypeName(specs[i].Type)
			if !slices.Equal(initial[mapName(i)], after[mapName(i)]) && !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	return types
}

// mapLines splits a dump (formatEntries) into its lines by map name.
func mapLines(dump string) map[string][]string {
	out := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSuffix(dump, "\n"), "\n") {
		if name, _, ok := strings.Cut(l, "["); ok {
			out[name] = append(out[name], l)
		}
	}
	return out
}

// Merge adds o's counts into rep.
func (rep *EngineReport) Merge(o *EngineReport, max int) {
	rep.Programs += o.Programs
	rep.Accepted += o.Accepted
	rep.Nondet += o.Nondet
	rep.KernelDiff += o.KernelDiff
	rep.KernelCompared += o.KernelCompared
	rep.WithHelper += o.WithHelper
	rep.WithMap += o.WithMap
	rep.WithLocalCall += o.WithLocalCall
	for _, m := range []struct{ to, from map[string]int }{
		{rep.Rejected, o.Rejected}, {rep.Runs, o.Runs}, {rep.KernelSkipped, o.KernelSkipped},
		{rep.Helpers, o.Helpers}, {rep.MapTypes, o.MapTypes}, {rep.MapsChanged, o.MapsChanged},
	} {
		for k, v := range m.from {
			m.to[k] += v
		}
	}
	for _, l := range []struct{ to, from *CaseList }{{&rep.Refused, &o.Refused}, {&rep.Diffs, &o.Diffs}} {
		l.to.N += l.from.N
		for _, c := range l.from.Cases {
			if len(l.to.Cases) < max {
				l.to.Cases = append(l.to.Cases, c)
			}
		}
	}
}

// uses returns the helpers p calls ("id name"), the types of the maps it
// references ("array", "hash", "lpm_trie", ...), each once, and whether it makes a
// bpf-to-bpf call.
func uses(p *fuzzgen.PtrProgram) (called, mapTypes []string, local bool) {
	specs := fuzzgen.PtrMaps()
	for i := 0; i < len(p.Insns); i++ {
		ins := p.Insns[i]
		switch {
		case ins.IsLocalCall():
			local = true
		case ins.Op == isa.OpCall && ins.Src == 0:
			h := fmt.Sprintf("%d %s", ins.Imm, helpers.Name(ins.Imm))
			if !slices.Contains(called, h) {
				called = append(called, h)
			}
		case ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx:
			if ins.Imm >= 0 && int(ins.Imm) < len(specs) {
				t := mapTypeName(specs[ins.Imm].Type)
				if !slices.Contains(mapTypes, t) {
					mapTypes = append(mapTypes, t)
				}
			}
		}
		if ins.IsLoadImm64() {
			i++
		}
	}
	return called, mapTypes, local
}

func mapTypeName(t fuzzgen.MapType) string {
	switch t {
	case fuzzgen.ArrayMap:
		return "array"
	case fuzzgen.HashMap:
		return "hash"
	case fuzzgen.PerCPUArrayMap:
		return "percpu_array"
	case fuzzgen.PerCPUHashMap:
		return "percpu_hash"
	case fuzzgen.LRUHashMap:
		return "lru_hash"
	case fuzzgen.LPMTrieMap:
		return "lpm_trie"
	}
	return fmt.Sprintf("map_type_%d", t)
}

// Summary formats the report for a person: counts, the coverage of
// helpers and maps, why the kernel was left out, and the cases.
func (rep *EngineReport) Summary(engines []string, top int) string {
	var b strings.Builder
	pct := func(a, n int) float64 {
		if n == 0 {
			return 0
		}
		return 100 * float64(a) / float64(n)
	}
	fmt.Fprintf(&b, "engines %s\n", strings.Join(engines, ", "))
	fmt.Fprintf(&b, "programs %d in %v (%.0f/s); waggle's verifier accepted %d (%.1f%%); %d not comparable in their outputs (uninitialised stack, pointers)\n",
		rep.Programs, rep.Elapsed.Round(time.Millisecond), float64(rep.Programs)/rep.Elapsed.Seconds(), rep.Accepted, pct(rep.Accepted, rep.Programs), rep.Nondet)
	var runs []string
	for _, e := range engines {
		runs = append(runs, fmt.Sprintf("%s %d", e, rep.Runs[e]))
	}
	fmt.Fprintf(&b, "runs: %s\n", strings.Join(runs, ", "))
	if slices.Contains(engines, KernelEngine) {
		fmt.Fprintf(&b, "compared with the kernel: %d programs (%.1f%% of accepted), %d of them for failure only (a kernel state or bug)\n",
			rep.KernelCompared, pct(rep.KernelCompared, rep.Accepted), rep.KernelDiff)
	}
	fmt.Fprintf(&b, "accepted programs calling a helper %d (%.1f%%), referencing a map %d (%.1f%%), making a bpf-to-bpf call %d (%.1f%%)\n",
		rep.WithHelper, pct(rep.WithHelper, rep.Accepted), rep.WithMap, pct(rep.WithMap, rep.Accepted), rep.WithLocalCall, pct(rep.WithLocalCall, rep.Accepted))
	counts(&b, "accepted programs by helper called (id name)", rep.Helpers, top)
	counts(&b, "accepted programs by map type referenced", rep.MapTypes, top)
	counts(&b, "accepted programs whose runs change a map, by map type", rep.MapsChanged, top)
	counts(&b, "accepted programs the kernel did not run, by reason", rep.KernelSkipped, top)
	counts(&b, "waggle's verifier's rejections by message", rep.Rejected, top)
	for _, l := range []struct {
		name string
		l    CaseList
	}{
		{"accepted, but waggle refuses to prepare it", rep.Refused},
		{"engines differ", rep.Diffs},
	} {
		fmt.Fprintf(&b, "%s: %d\n", l.name, l.l.N)
		for _, c := range l.l.Cases {
			fmt.Fprintf(&b, "  %v\n", c)
		}
	}
	return b.String()
}
