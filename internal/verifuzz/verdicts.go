package verifuzz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// SlowVerify is the verification time over which Report.Slow lists a
// program: issue 7 wants none over 1 s.
const SlowVerify = time.Second

// Verdict is a verifier's answer on one program.
type Verdict struct {
	Accepted bool
	// Reason is why the program was rejected, one line; "" when accepted.
	Reason string
}

// Verifier returns the verdict of the verifier under test on a generated
// program (privileged, as root loads it). It must be safe for concurrent
// use.
type Verifier func(p *fuzzgen.PtrProgram) Verdict

// Options configure Verdicts. The zero value is ready to use.
type Options struct {
	// Config is the generator's.
	Config fuzzgen.PtrConfig
	// Workers is the number of programs processed at once; 0 means
	// GOMAXPROCS.
	Workers int
	// NoKernel leaves the kernel out even when this process could use
	// it: no kernel verdicts, no comparison of runs.
	NoKernel bool
	// Known names the documented kernel difference (testdata/kernel-bugs,
	// or a program the kernel refuses only for its own imprecision) that
	// explains why the verifier accepts p although the kernel rejected it
	// with reason, or returns "". nil knows none.
	Known func(p *fuzzgen.PtrProgram, reason string) string
	// MaxCases bounds the cases kept per list of the report; 0 means 20.
	MaxCases int
	// JIT runs every accepted program whose checked runs all ended
	// without an error on the JIT too (verified by waggle's verifier, as
	// the runtime loads it), and compares the runs (Report.JITCompared,
	// JITDiffs).
	JIT bool
}

// Case is one program a report singles out.
type Case struct {
	Seed     uint64
	Type     fuzzgen.ProgType
	Mutation string // the generator's near miss, "" for none
	Kernel   string // the kernel's reason to reject, "" if it accepted
	Verifier string // the verifier's reason to reject, "" if it accepted
	Input    int    // the input of a run case, -1 for verdict cases
	Detail   string // what happened, for run cases
}

func (c Case) String() string {
	s := fmt.Sprintf("seed %d (%s", c.Seed, c.Type)
	if c.Mutation != "" {
		s += ", near miss " + c.Mutation
	}
	s += ")"
	if c.Kernel != "" {
		s += "; kernel: " + c.Kernel
	}
	if c.Verifier != "" {
		s += "; verifier: " + c.Verifier
	}
	if c.Input >= 0 {
		s += fmt.Sprintf("; input %d", c.Input)
	}
	if c.Detail != "" {
		s += "; " + c.Detail
	}
	return s
}

// CaseList is the count of cases of one kind and the first of them.
type CaseList struct {
	N     int
	Cases []Case
}

func (l *CaseList) add(c Case, max int) {
	l.N++
	if len(l.Cases) < max {
		l.Cases = append(l.Cases, c)
	}
}

// Report is what Verdicts found.
type Report struct {
	Programs int
	// Kernel reports whether the kernel's verdicts were consulted.
	Kernel bool
	// KernelAccepted counts the programs Linux accepted; KernelErrors
	// counts its reasons to reject, numbers replaced by N.
	KernelAccepted int
	KernelErrors   map[string]int
	// Clean counts the programs without a near miss (PtrProgram.Mutation
	// empty) and CleanAccepted those of them Linux accepted: every
	// rejection of one is a generator bug or a trick Linux cannot follow.
	Clean, CleanAccepted int
	// Accepted counts the programs the verifier under test accepted.
	Accepted int
	// AcceptsKernelRejects are the verifier's bugs, or documented kernel
	// differences (Known, with the name in Detail).
	AcceptsKernelRejects, KnownDifferences CaseList
	// CleanRejected are the programs without a near miss Linux rejected.
	CleanRejected CaseList
	// RejectsKernelAccepts are the verifier's false alarms.
	RejectsKernelAccepts CaseList
	// BugKinds counts AcceptsKernelRejects by near miss and the kernel's
	// reason (numbers replaced by N); FalseAlarmKinds counts
	// RejectsKernelAccepts by near miss and the verifier's reason.
	BugKinds, FalseAlarmKinds map[string]int
	// Slow are the programs the verifier under test took longer than
	// SlowVerify to judge.
	Slow CaseList
	// Refused are accepted programs waggle's runtime would not prepare
	// for running.
	Refused CaseList
	// Runs counts interpreter runs of accepted programs (one per input);
	// Escapes are those that accessed memory out of bounds, RunErrors
	// those that failed otherwise.
	Runs               int
	Escapes, RunErrors CaseList
	// Compared counts runs also made by the kernel and compared; Diffs are
	// those whose return value, packet or maps differ.
	Compared int
	Diffs    CaseList
	// JITCompared counts the runs compared between the checked
	// interpreter and the JIT (Options.JIT); JITDiffs are those whose
	// return value, packet or maps differ, or that only one could make;
	// JITRefused counts programs waggle would not load on the JIT (its
	// verifier refused them).
	JITCompared, JITRefused int
	JITDiffs                CaseList
	// Variants counts, per snippet "kind/variant", the programs holding it
	// and how many of them the kernel accepted.
	Variants map[string][2]int
	// Time spent: kernel loads (verification), kernel test runs, the
	// interpreter (collections, runs and map dumps), the verifier under
	// test, and in all (wall clock).
	KernelLoad, KernelRun, Interp, Verify, Elapsed time.Duration
}

// Verdicts generates n programs from seed on (seed, seed+1, ...) and
// compares verify's verdicts with the kernel's; it runs every program
// verify accepts on all its inputs in the checked interpreter, counting
// escapes, and compares those runs with the kernel's test runs when the
// kernel accepted the program too. With verify nil the kernel's verdict
// stands for the verifier's: that measures the generator (acceptance rate,
// errors) and the interpreter against the kernel, and needs the kernel.
// Without the kernel (not root, not Linux, Options.NoKernel) only the
// verifier's verdicts and the escapes are measured.
//
// It stops early, returning what it has and ctx's error, when ctx ends.
func Verdicts(ctx context.Context, seed, n uint64, verify Verifier, opts Options) (*Report, error) {
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	maxCases := cmp.Or(opts.MaxCases, 20)
	useKernel := !opts.NoKernel
	if useKernel {
		if err := kernel.Supported(); err != nil {
			useKernel = false
		}
	}
	if !useKernel && verify == nil {
		return nil, errors.New("verifuzz: no verifier and no kernel: nothing to measure")
	}
	rep := newReport()
	rep.Kernel = useKernel
	var (
		next  atomic.Uint64
		mu    sync.Mutex
		fatal error
		wg    sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		var k *Kernel
		if useKernel {
			var err error
			if k, err = NewKernel(); err != nil {
				return nil, err
			}
		}
		w := &worker{k: k, in: &Interp{}, verify: verify, opts: opts, max: maxCases}
		wg.Go(func() {
			defer func() {
				if k != nil {
					k.Close()
				}
			}()
			local := newReport()
			defer func() {
				if k != nil {
					local.KernelLoad, local.KernelRun = k.LoadTime, k.RunTime
				}
				mu.Lock()
				rep.merge(local, maxCases)
				mu.Unlock()
			}()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				if err := w.one(local, fuzzgen.GeneratePtr(seed+i, opts.Config)); err != nil {
					mu.Lock()
					fatal = cmp.Or(fatal, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	rep.Elapsed = time.Since(start)
	if fatal != nil {
		return rep, fatal
	}
	return rep, ctx.Err()
}

func newReport() *Report {
	return &Report{KernelErrors: map[string]int{}, Variants: map[string][2]int{}, BugKinds: map[string]int{}, FalseAlarmKinds: map[string]int{}}
}

// kind is the key of Report.BugKinds and FalseAlarmKinds.
func kind(mutation, reason string) string {
	if mutation == "" {
		mutation = "(no near miss)"
	}
	return mutation + ": " + normalise(reason)
}

// worker processes programs with its own kernel maps and interpreter.
type worker struct {
	k      *Kernel
	in     *Interp
	verify Verifier
	opts   Options
	max    int
}

func (w *worker) one(rep *Report, p *fuzzgen.PtrProgram) error {
	rep.Programs++
	base := Case{Seed: p.Seed, Type: p.Type, Mutation: p.Mutation, Input: -1}
	var (
		kv    Verdict
		kprog *kernel.Program
	)
	if w.k != nil {
		prog, err := w.k.Load(p)
		var verr *kernel.VerifierError
		switch {
		case errors.As(err, &verr):
			kv.Reason = KernelReason(verr)
			rep.KernelErrors[normalise(kv.Reason)]++
		case err != nil:
			return fmt.Errorf("seed %d: kernel: %w", p.Seed, err)
		default:
			kv.Accepted, kprog = true, prog
			rep.KernelAccepted++
			defer prog.Close()
		}
		if p.Mutation == "" {
			rep.Clean++
			if kv.Accepted {
				rep.CleanAccepted++
			} else {
				rep.CleanRejected.add(Case{Seed: p.Seed, Type: p.Type, Kernel: kv.Reason, Input: -1, Detail: strings.Join(p.Snippets, " ")}, w.max)
			}
		}
		for _, s := range p.Snippets {
			c := rep.Variants[s]
			c[0]++
			if kv.Accepted {
				c[1]++
			}
			rep.Variants[s] = c
		}
	}
	wv := kv
	if w.verify != nil {
		t0 := time.Now()
		wv = w.verify(p)
		d := time.Since(t0)
		rep.Verify += d
		if d > SlowVerify {
			c := base
			c.Verifier = wv.Reason
			c.Detail = "verified in " + d.Round(time.Millisecond).String()
			rep.Slow.add(c, w.max)
		}
	}
	if wv.Accepted {
		rep.Accepted++
	}
	if w.k != nil && w.verify != nil {
		c := base
		c.Kernel, c.Verifier = kv.Reason, wv.Reason
		switch {
		case wv.Accepted && !kv.Accepted:
			if w.opts.Known != nil {
				if name := w.opts.Known(p, kv.Reason); name != "" {
					c.Detail = name
					rep.KnownDifferences.add(c, w.max)
					break
				}
			}
			rep.AcceptsKernelRejects.add(c, w.max)
			rep.BugKinds[kind(p.Mutation, kv.Reason)]++
		case !wv.Accepted && kv.Accepted:
			rep.RejectsKernelAccepts.add(c, w.max)
			rep.FalseAlarmKinds[kind(p.Mutation, wv.Reason)]++
		}
	}
	if !wv.Accepted {
		return nil
	}
	t0 := time.Now()
	outs := w.in.Run(p)
	rep.Interp += time.Since(t0)
	var perr *waggle.PrepareError
	if len(outs) > 0 && errors.As(outs[0].Err, &perr) {
		c := base
		c.Kernel, c.Detail = kv.Reason, perr.Err.Error()
		rep.Refused.add(c, w.max)
		return nil
	}
	if w.opts.JIT {
		w.compareJIT(rep, p, base, outs)
	}
	for in, o := range outs {
		rep.Runs++
		c := base
		c.Input = in
		c.Kernel = kv.Reason
		if o.Escape() {
			c.Detail = o.Err.Error()
			rep.Escapes.add(c, w.max)
			continue
		}
		if kprog == nil {
			if o.Err != nil {
				c.Detail = o.Err.Error()
				rep.RunErrors.add(c, w.max)
			}
			continue
		}
		ko := w.k.Run(kprog, p, in)
		rep.Compared++
		switch {
		case ko.Err != nil && o.Err != nil:
			// Both refuse the input (a test run wants a whole IPv4
			// header, for instance).
		case ko.Err != nil || o.Err != nil:
			c.Detail = describeDiff(ko, o)
			rep.RunErrors.add(c, w.max)
		case p.Nondet == "" && !same(ko, o):
			c.Detail = describeDiff(ko, o)
			rep.Diffs.add(c, w.max)
		}
	}
	return nil
}

// compareJIT runs p on the JIT and compares each run with its checked
// run, outs. It runs nothing if a checked run failed: a fault in machine
// code would end the process.
func (w *worker) compareJIT(rep *Report, p *fuzzgen.PtrProgram, base Case, outs []Outcome) {
	for _, o := range outs {
		if o.Err != nil {
			return
		}
	}
	t0 := time.Now()
	jouts := w.in.RunOn(p, &waggle.CollectionOptions{CPUs: 1, Budget: InterpBudget, RandSeed: 1, Engine: waggle.EngineJIT})
	rep.Interp += time.Since(t0)
	var perr *waggle.PrepareError
	if len(jouts) > 0 && errors.As(jouts[0].Err, &perr) {
		rep.JITRefused++
		return
	}
	for in, o := range outs {
		j := jouts[in]
		rep.JITCompared++
		if j.Err != nil || p.Nondet == "" && !same(o, j) {
			c := base
			c.Input = in
			c.Detail = "interpreter " + o.String() + "; JIT " + j.String()
			rep.JITDiffs.add(c, w.max)
		}
	}
}

// merge adds o's counts into r.
func (r *Report) merge(o *Report, max int) {
	r.Programs += o.Programs
	r.KernelAccepted += o.KernelAccepted
	r.Clean += o.Clean
	r.CleanAccepted += o.CleanAccepted
	r.Accepted += o.Accepted
	r.Runs += o.Runs
	r.Compared += o.Compared
	r.JITCompared += o.JITCompared
	r.JITRefused += o.JITRefused
	for _, m := range []struct{ to, from map[string]int }{
		{r.KernelErrors, o.KernelErrors}, {r.BugKinds, o.BugKinds}, {r.FalseAlarmKinds, o.FalseAlarmKinds},
	} {
		for k, v := range m.from {
			m.to[k] += v
		}
	}
	for k, v := range o.Variants {
		c := r.Variants[k]
		r.Variants[k] = [2]int{c[0] + v[0], c[1] + v[1]}
	}
	for _, l := range []struct{ to, from *CaseList }{
		{&r.AcceptsKernelRejects, &o.AcceptsKernelRejects}, {&r.KnownDifferences, &o.KnownDifferences}, {&r.CleanRejected, &o.CleanRejected},
		{&r.RejectsKernelAccepts, &o.RejectsKernelAccepts}, {&r.Escapes, &o.Escapes},
		{&r.RunErrors, &o.RunErrors}, {&r.Diffs, &o.Diffs}, {&r.Refused, &o.Refused}, {&r.Slow, &o.Slow},
		{&r.JITDiffs, &o.JITDiffs},
	} {
		l.to.N += l.from.N
		for _, c := range l.from.Cases {
			if len(l.to.Cases) < max {
				l.to.Cases = append(l.to.Cases, c)
			}
		}
	}
	r.KernelLoad += o.KernelLoad
	r.KernelRun += o.KernelRun
	r.Interp += o.Interp
	r.Verify += o.Verify
}

// KernelReason returns the line of the kernel's verifier log that says why
// it rejected a program: its last message, before the statistics and the
// state dumps that follow some messages ("infinite loop detected"), or the
// errno when the log is empty.
func KernelReason(err *kernel.VerifierError) string {
	lines := strings.Split(strings.TrimRight(err.Log, "\n\x00"), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "", strings.HasPrefix(l, "processed "), strings.HasPrefix(l, "verification time"),
			strings.HasPrefix(l, "stack depth"), strings.HasPrefix(l, "cur state:"), strings.HasPrefix(l, "old state:"):
			continue
		}
		return l
	}
	return err.Errno.Error()
}

var numbers = regexp.MustCompile(`-?(0x[0-9a-f]+|[0-9]+)`)

// normalise replaces the numbers of a kernel message by N, so that
// messages differing only in registers, offsets or sizes count together.
func normalise(s string) string { return numbers.ReplaceAllString(s, "N") }

// describeDiff says how two outcomes differ.
func describeDiff(k, w Outcome) string {
	var d []string
	if k.Err != nil || w.Err != nil {
		return fmt.Sprintf("kernel: %v; waggle: %v", errOrOK(k.Err), errOrOK(w.Err))
	}
	if k.Ret != w.Ret {
		d = append(d, fmt.Sprintf("ret kernel %#x waggle %#x", k.Ret, w.Ret))
	}
	if string(k.Packet) != string(w.Packet) {
		d = append(d, fmt.Sprintf("packet kernel % x, waggle % x", k.Packet, w.Packet))
	}
	if k.Maps != w.Maps {
		d = append(d, fmt.Sprintf("maps kernel:\n%swaggle:\n%s", k.Maps, w.Maps))
	}
	return strings.Join(d, "; ")
}

func errOrOK(err error) string {
	if err == nil {
		return "ran"
	}
	return err.Error()
}

// Summary formats the report's figures for a person: counts and rates,
// the most frequent kernel errors, throughput, and the cases.
func (r *Report) Summary(topErrors int) string {
	var b strings.Builder
	pct := func(a, n int) float64 {
		if n == 0 {
			return 0
		}
		return 100 * float64(a) / float64(n)
	}
	fmt.Fprintf(&b, "programs %d in %v (%.0f/s)\n", r.Programs, r.Elapsed.Round(time.Millisecond), float64(r.Programs)/r.Elapsed.Seconds())
	if r.Kernel {
		fmt.Fprintf(&b, "kernel accepted %d (%.1f%%); loads %v (%.0f programs/s per worker), test runs %v for %d compared runs\n",
			r.KernelAccepted, pct(r.KernelAccepted, r.Programs), r.KernelLoad.Round(time.Millisecond),
			float64(r.Programs)/r.KernelLoad.Seconds(), r.KernelRun.Round(time.Millisecond), r.Compared)
		fmt.Fprintf(&b, "programs without a near miss %d, kernel accepted %d (%.2f%%); with one %d, kernel accepted %d (%.1f%%)\n",
			r.Clean, r.CleanAccepted, pct(r.CleanAccepted, r.Clean), r.Programs-r.Clean, r.KernelAccepted-r.CleanAccepted,
			pct(r.KernelAccepted-r.CleanAccepted, r.Programs-r.Clean))
	}
	fmt.Fprintf(&b, "verifier accepted %d (%.1f%%); interpreter runs %d in %v (%.0f runs/s per worker)\n",
		r.Accepted, pct(r.Accepted, r.Programs), r.Runs, r.Interp.Round(time.Millisecond), float64(r.Runs)/r.Interp.Seconds())
	if r.Verify > 0 {
		fmt.Fprintf(&b, "verifier under test: %v (%.0f programs/s per worker)\n", r.Verify.Round(time.Millisecond), float64(r.Programs)/r.Verify.Seconds())
	}
	counts(&b, "kernel rejections by message", r.KernelErrors, topErrors)
	counts(&b, "verifier accepts, kernel rejects, by near miss and kernel message", r.BugKinds, topErrors)
	counts(&b, "verifier rejects, kernel accepts, by near miss and verifier message", r.FalseAlarmKinds, topErrors)
	for _, l := range []struct {
		name string
		l    CaseList
	}{
		{"kernel rejects a program without a near miss", r.CleanRejected},
		{"verifier accepts, kernel rejects (bugs)", r.AcceptsKernelRejects},
		{"known kernel differences", r.KnownDifferences},
		{"verifier rejects, kernel accepts", r.RejectsKernelAccepts},
		{"accepted, but waggle refuses to prepare it", r.Refused},
		{"slow verifications (over " + SlowVerify.String() + ")", r.Slow},
		{"escapes (out-of-bounds in the checked interpreter)", r.Escapes},
		{"interpreter run errors", r.RunErrors},
		{"kernel and interpreter differ", r.Diffs},
		{fmt.Sprintf("interpreter and JIT differ (of %d runs compared; %d programs the JIT would not load)", r.JITCompared, r.JITRefused), r.JITDiffs},
	} {
		fmt.Fprintf(&b, "%s: %d\n", l.name, l.l.N)
		for _, c := range l.l.Cases {
			fmt.Fprintf(&b, "  %v\n", c)
		}
	}
	return b.String()
}

// counts writes the top entries of m, most frequent first.
func counts(b *strings.Builder, title string, m map[string]int, top int) {
	type kv struct {
		k string
		n int
	}
	var l []kv
	for k, n := range m {
		l = append(l, kv{k, n})
	}
	if len(l) == 0 {
		return
	}
	slices.SortFunc(l, func(a, b kv) int { return cmp.Or(b.n-a.n, strings.Compare(a.k, b.k)) })
	fmt.Fprintf(b, "%s (%d kinds):\n", title, len(l))
	for i, e := range l {
		if i == top {
			break
		}
		fmt.Fprintf(b, "  %6d  %s\n", e.n, e.k)
	}
}

// VariantSummary lists, per snippet variant, the programs holding it and
// the share the kernel accepted, sorted by name.
func (r *Report) VariantSummary() string {
	var names []string
	for k := range r.Variants {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		c := r.Variants[k]
		fmt.Fprintf(&b, "  %-32s %6d  %5.1f%% accepted\n", k, c[0], 100*float64(c[1])/float64(c[0]))
	}
	return b.String()
}

// Disasm returns p's instructions in llvm-objdump syntax, one slot index
// per line.
func Disasm(p *fuzzgen.PtrProgram) string {
	var b strings.Builder
	for i := 0; i < len(p.Insns); i++ {
		var next isa.Instruction
		if i+1 < len(p.Insns) {
			next = p.Insns[i+1]
		}
		fmt.Fprintf(&b, "%4d: %s\n", i, isa.Format(p.Insns[i], next))
		if p.Insns[i].IsLoadImm64() {
			i++
		}
	}
	return b.String()
}
