package kselftest

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Verdict is what a verifier says about a case.
type Verdict struct {
	// Accepted reports that the program loaded.
	Accepted bool
	// Log is the verifier log.
	Log string
	// Processed is the number of instructions the verifier processed
	// (the log's "processed N insns"), 0 when unknown.
	Processed int
	// Time is the verification time the verifier reports ("verification
	// time N usec"), 0 when unknown.
	Time time.Duration
	// Errno is the error number of a rejection, when known.
	Errno error
	// NoBTF reports that the program was loaded without its BTF func and
	// line info, because the kernel refused the object's BTF (as libbpf
	// falls back).
	NoBTF bool
	// Skip, when not "", says why the case was not run (the kernel lacks
	// a map type, unprivileged BPF is disabled, ...); the verdict is
	// none.
	Skip string
	// Err is a failure of the harness: the case could not be run, and
	// that is a bug to fix, not a verdict.
	Err error
}

var (
	processedLine = regexp.MustCompile(`(?m)^processed (\d+) insns`)
	timeLine      = regexp.MustCompile(`(?m)^verification time (\d+) usec`)
)

// Stats fills Processed and Time from the log's statistics lines where
// they are 0.
func (v *Verdict) Stats() {
	if m := processedLine.FindAllStringSubmatch(v.Log, -1); v.Processed == 0 && m != nil {
		v.Processed, _ = strconv.Atoi(m[len(m)-1][1])
	}
	if m := timeLine.FindAllStringSubmatch(v.Log, -1); v.Time == 0 && m != nil {
		us, _ := strconv.Atoi(m[len(m)-1][1])
		v.Time = time.Duration(us) * time.Microsecond
	}
}

// Reason is the line of the log that says why a program was rejected:
// the last line before the statistics, or the whole of a short log.
func (v Verdict) Reason() string {
	if r := v.logReason(); r != "" {
		return r
	}
	if v.Errno != nil {
		return v.Errno.Error() + ", empty log"
	}
	return ""
}

// logReason is the last line of the log before the statistics.
func (v Verdict) logReason() string {
	lines := strings.Split(strings.TrimSpace(v.Log), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == "", strings.HasPrefix(l, "processed "), strings.HasPrefix(l, "verification time"),
			strings.HasPrefix(l, "stack depth"), strings.HasPrefix(l, "-- END PROG LOAD LOG --"):
			continue
		}
		return l
	}
	return ""
}

func (v Verdict) String() string {
	switch {
	case v.Err != nil:
		return "error: " + v.Err.Error()
	case v.Skip != "":
		return "skipped: " + v.Skip
	case v.Accepted:
		return "accepted"
	}
	return "rejected"
}

// Result is one case's outcome in a comparison.
type Result struct {
	Case    Case
	Verdict Verdict
	// Kernel is the kernel's verdict, nil when the comparison had no
	// kernel.
	Kernel *Verdict
	// Took is how long the run took (the verifier, not the kernel).
	Took time.Duration
}

// Ran reports that the case has a verdict.
func (r Result) Ran() bool { return r.Case.Skip == "" && r.Verdict.Skip == "" && r.Verdict.Err == nil }

// AgreesExpected reports that the verdict is the expected one.
func (r Result) AgreesExpected() bool {
	return r.Ran() && r.Verdict.Accepted == (r.Case.Expect == Success)
}

// MissingMsg returns the first expected message the log lacks, or "" when
// all are found (or the verdict is not the expected one, when messages
// are not checked, as in test_loader).
func (r Result) MissingMsg() string {
	if !r.AgreesExpected() {
		return ""
	}
	if i := MatchMsgs(r.Verdict.Log, r.Case.Msgs); i >= 0 {
		return r.Case.Msgs[i].Pattern
	}
	return ""
}

// KernelCompared reports that both the verifier and the kernel have a
// verdict.
func (r Result) KernelCompared() bool {
	return r.Ran() && r.Kernel != nil && r.Kernel.Skip == "" && r.Kernel.Err == nil
}

// AgreesKernel reports that the verdict is the kernel's.
func (r Result) AgreesKernel() bool {
	return r.KernelCompared() && r.Verdict.Accepted == r.Kernel.Accepted
}

// Why says how the result departs from the expectation (and the
// kernel), or "" when it does not.
func (r Result) Why() string {
	var parts []string
	switch {
	case r.Case.Skip != "":
		return "skipped: " + r.Case.Skip
	case r.Verdict.Err != nil, r.Verdict.Skip != "":
		return r.Verdict.String()
	case !r.AgreesExpected() && r.Verdict.Accepted:
		parts = append(parts, "expected failure, accepted")
	case !r.AgreesExpected():
		parts = append(parts, fmt.Sprintf("expected success, rejected: %s", r.Verdict.Reason()))
	default:
		if m := r.MissingMsg(); m != "" {
			parts = append(parts, fmt.Sprintf("message %q not in the log", m))
		}
	}
	if r.KernelCompared() && !r.AgreesKernel() {
		k := "kernel accepts"
		if !r.Kernel.Accepted {
			k = "kernel rejects: " + r.Kernel.Reason()
		}
		parts = append(parts, k)
	}
	return strings.Join(parts, "; ")
}

// Tally counts results.
type Tally struct {
	Cases   int // all cases
	Skipped int // no verdict: the case or the run skipped
	Errors  int // no verdict: the harness failed
	Run     int // with a verdict
	// AgreeExpected have the expected verdict; MsgsMatched of those also
	// have every expected message in the log (WithMsgs of them expect
	// some).
	AgreeExpected, MsgsMatched, WithMsgs int
	// KernelCompared have a kernel verdict too, AgreeKernel the same one.
	KernelCompared, AgreeKernel int
	// Processed and Time sum the verdicts' statistics.
	Processed int
	Time      time.Duration
}

func (t *Tally) add(r Result) {
	t.Cases++
	switch {
	case r.Case.Skip != "", r.Verdict.Skip != "":
		t.Skipped++
		return
	case r.Verdict.Err != nil:
		t.Errors++
		return
	}
	t.Run++
	t.Processed += r.Verdict.Processed
	t.Time += r.Verdict.Time
	if r.AgreesExpected() {
		t.AgreeExpected++
		if len(r.Case.Msgs) > 0 {
			t.WithMsgs++
		}
		if r.MissingMsg() == "" {
			t.MsgsMatched++
		}
	}
	if r.KernelCompared() {
		t.KernelCompared++
		if r.AgreesKernel() {
			t.AgreeKernel++
		}
	}
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}

func (t Tally) String() string {
	s := fmt.Sprintf("%d cases, %d run, %d skipped, %d errors; expected verdict %d/%d (%s), messages too %d/%d (%s)",
		t.Cases, t.Run, t.Skipped, t.Errors, t.AgreeExpected, t.Run, percent(t.AgreeExpected, t.Run),
		t.MsgsMatched, t.Run, percent(t.MsgsMatched, t.Run))
	if t.KernelCompared > 0 {
		s += fmt.Sprintf("; kernel's verdict %d/%d (%s)", t.AgreeKernel, t.KernelCompared, percent(t.AgreeKernel, t.KernelCompared))
	}
	return s
}

// Report is the outcome of a comparison.
type Report struct {
	// Results are the cases' results, in the order of the cases.
	Results []Result
	// Total tallies every result, Files those of each source file.
	Total Tally
	Files map[string]*Tally
	// Took is how long running the cases took.
	Took time.Duration
}

// Compare runs every case through run, a verifier, and, when kernel is not
// nil, through kernel (the reference, usually Suite.Kernel), and tallies
// the agreement of run's verdicts with the expected ones and with the
// kernel's. Cases with Skip set are counted, not run.
func Compare(cases []Case, run func(Case) Verdict, kernel func(Case) Verdict) *Report {
	rep := &Report{Files: map[string]*Tally{}}
	start := time.Now()
	for _, c := range cases {
		r := Result{Case: c}
		if c.Skip == "" {
			t := time.Now()
			r.Verdict = run(c)
			r.Took = time.Since(t)
			if kernel != nil {
				k := kernel(c)
				r.Kernel = &k
			}
		}
		rep.Results = append(rep.Results, r)
		rep.Total.add(r)
		t := rep.Files[c.File]
		if t == nil {
			t = &Tally{}
			rep.Files[c.File] = t
		}
		t.add(r)
	}
	rep.Took = time.Since(start)
	return rep
}

// Disagreements are the results that ran and either have another verdict
// than expected, lack an expected message, or differ from the kernel.
func (r *Report) Disagreements() []Result {
	var out []Result
	for _, res := range r.Results {
		if !res.Ran() {
			continue
		}
		if !res.AgreesExpected() || res.MissingMsg() != "" || res.KernelCompared() && !res.AgreesKernel() {
			out = append(out, res)
		}
	}
	return out
}

// Write prints the report: one line per file, the total, then every
// disagreement, skipped case and error with its reason.
func (r *Report) Write(w io.Writer) {
	names := make([]string, 0, len(r.Files))
	for n := range r.Files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "%-45s %s\n", n, r.Files[n])
	}
	fmt.Fprintf(w, "%-45s %s; %d insns processed, verification %v, run %v\n", "total", r.Total,
		r.Total.Processed, r.Total.Time, r.Took.Round(time.Millisecond))
	for _, res := range r.Disagreements() {
		fmt.Fprintf(w, "DIFF %s [%s]: %s\n", res.Case.ID(), res.Case.Name, res.Why())
	}
	// Skips by reason, with the first case of each.
	var reasons []string
	skips := map[string][]string{}
	for _, res := range r.Results {
		switch {
		case res.Case.Skip == "" && res.Verdict.Err != nil:
			fmt.Fprintf(w, "ERROR %s: %s\n", res.Case.ID(), res.Why())
		case !res.Ran():
			why := res.Why()
			if skips[why] == nil {
				reasons = append(reasons, why)
			}
			skips[why] = append(skips[why], res.Case.ID())
		}
	}
	for _, why := range reasons {
		ids := skips[why]
		if len(ids) == 1 {
			fmt.Fprintf(w, "SKIP %s: %s\n", ids[0], why)
			continue
		}
		fmt.Fprintf(w, "SKIP %d cases (%s, ...): %s\n", len(ids), ids[0], why)
	}
}
