package ciliumdp

import (
	"cmp"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle/kernel"
)

// Program is one program of a built object, typed as Cilium's loader
// types it, with the kernel's verdict once KernelVerdicts filled it in:
// the unit a verifier is measured by against the kernel.
type Program struct {
	// Object names the object in its configuration (Object.Label):
	// "bpf_lxc.3".
	Object string
	// Path is the object file.
	Path string
	// Section and Name are the program's ELF section and name.
	Section, Name string
	// Type and AttachType are what the program is loaded as.
	Type       ebpf.ProgramType
	AttachType ebpf.AttachType
	// Kernel is the running kernel's verdict (KernelVerdicts); Checked
	// says it was asked.
	Kernel  Verdict
	Checked bool
	// Load is the kernel's load of the program: its log at level 4 and
	// its statistics, and whether it went through cilium/ebpf.
	Load KernelLoad
	// kernelErr is the kernel's error, for Reason.
	kernelErr error
}

// KernelReason is why the kernel refused the program, grouped as Reason
// groups refusals; "" when it accepted it or was not asked.
func (p Program) KernelReason() string {
	switch {
	case !p.Checked || p.Kernel.Accepted:
		return ""
	case p.kernelErr == nil:
		return p.Kernel.Error
	}
	return Reason(p.kernelErr)
}

// Key names the program: "bpf_lxc.3/tail_ipv4_policy".
func (p Program) Key() string { return p.Object + "/" + p.Name }

// Verdict is a verifier's verdict on one program and what it cost.
type Verdict struct {
	// Accepted is the verdict.
	Accepted bool
	// Error is the first line of the refusal, "" when accepted.
	Error string
	// Processed is the instructions the verifier processed (the kernel's
	// "processed N insns"); PeakStates and TotalStates the states it kept
	// at most and in all.
	Processed, PeakStates, TotalStates int
	// Time is the verifier's own measure of its time (the kernel's
	// "verification time"), CPU the thread CPU time the verification
	// took, Wall its wall time.
	Time, CPU, Wall time.Duration
}

// Programs lists the programs of the built objects, each typed as
// LoadKernel types it (DefaultType, SectionTypes, the attach type of the
// object's entry programs for its tail calls), without kernel verdicts.
func Programs(objs []Built) ([]Program, error) {
	var out []Program
	for _, o := range objs {
		spec, err := ebpf.LoadCollectionSpec(o.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", o.Label(), err)
		}
		def, sections := DefaultType(o.Name), SectionTypes(o.Name)
		attach := ebpf.AttachNone
		for _, ps := range spec.Programs {
			if ps.Type == def && ps.AttachType != ebpf.AttachNone {
				attach = ps.AttachType
			}
		}
		names := make([]string, 0, len(spec.Programs))
		for n := range spec.Programs {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			ps := spec.Programs[n]
			typ, at := ps.Type, ps.AttachType
			if tt, ok := sections[ps.SectionName]; ok && typ == ebpf.UnspecifiedProgram {
				typ, at = tt.Type, tt.Attach
			}
			if typ == ebpf.UnspecifiedProgram {
				typ, at = def, attach
			}
			out = append(out, Program{Object: o.Label(), Path: o.Path, Section: ps.SectionName, Name: n, Type: typ, AttachType: at})
		}
	}
	return out, nil
}

// KernelLoad is one BPF_PROG_LOAD of a program: the statistics of the
// verifier's log at BPF_LOG_STATS and the cost of the call.
type KernelLoad struct {
	// Log is the verifier's log at level 4 (BPF_LOG_STATS): for a
	// refusal, the verifier's message, then the statistics.
	Log string
	// Processed is "processed N insns".
	Processed int
	// TotalStates and PeakStates are the statistics line's total_states
	// and peak_states; MaxStatesPerInsn its max_states_per_insn.
	TotalStates, PeakStates, MaxStatesPerInsn int
	// VerifyTime is "verification time N usec": the kernel's own clock
	// around bpf_check (wall time, preemption included).
	VerifyTime time.Duration
	// CPU and Wall are the thread CPU and wall time of the bpf(2) calls
	// (kernel.LoadCost); Calls counts them.
	CPU, Wall time.Duration
	Calls     int
	// Library reports that the program was loaded through cilium/ebpf
	// (it has CO-RE relocations, kfunc calls or references that are not
	// maps): CPU and Wall then include the library's preparation, and
	// the BTF load, and VerifyTime is the fair measure.
	Library bool
}

// verdictOf is the kernel's verdict on a program from its load.
func verdictOf(err error, load KernelLoad) Verdict {
	v := Verdict{Accepted: err == nil, Processed: load.Processed, PeakStates: load.PeakStates, TotalStates: load.TotalStates,
		Time: load.VerifyTime, CPU: load.CPU, Wall: load.Wall}
	if err != nil {
		v.Error = firstLine(err.Error())
	}
	return v
}

// The statistics of a verifier log at BPF_LOG_STATS (Linux 6.x):
// "processed 5 insns (limit 1000000) max_states_per_insn 0 total_states 0
// peak_states 0 mark_read 0", "verification time 12 usec".
var (
	processedLine = regexp.MustCompile(`(?m)^processed (\d+) insns \(limit \d+\) max_states_per_insn (\d+) total_states (\d+) peak_states (\d+)`)
	timeLine      = regexp.MustCompile(`(?m)^verification time (\d+) usec`)
)

// parseStats fills load's statistics from its log.
func parseStats(load *KernelLoad) {
	if m := processedLine.FindStringSubmatch(load.Log); m != nil {
		load.Processed, _ = strconv.Atoi(m[1])
		load.MaxStatesPerInsn, _ = strconv.Atoi(m[2])
		load.TotalStates, _ = strconv.Atoi(m[3])
		load.PeakStates, _ = strconv.Atoi(m[4])
	}
	if m := timeLine.FindStringSubmatch(load.Log); m != nil {
		us, _ := strconv.ParseInt(m[1], 10, 64)
		load.VerifyTime = time.Duration(us) * time.Microsecond
	}
}

// The parts of a refusal that differ from one program to the next: the
// verifier's "123: (5c) w0 &= w5: " before its message, registers,
// offsets and sizes, omitted lines.
var (
	insnPrefix  = regexp.MustCompile(`^\d+: \([0-9a-f]+\) [^:]*: `)
	register    = regexp.MustCompile(`\bR\d+\b`)
	offSize     = regexp.MustCompile(`\b(off|size)=-?\d+`)
	omittedLogs = regexp.MustCompile(`\(\d+ line\(s\) omitted\)`)
)

// Reason is why the kernel (or waggle) refused a program or an object,
// without what differs from one program to the next (its name, the
// instruction, the registers, the omitted lines), so that refusals group.
func Reason(err error) string {
	msg := firstLine(err.Error())
	var lines []string
	var ke *kernel.VerifierError
	var ve *ebpf.VerifierError
	switch {
	case errors.As(err, &ke):
		lines = strings.Split(ke.Log, "\n")
	case errors.As(err, &ve):
		lines = ve.Log
	}
	// The verifier's own words: the line that says why.
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if strings.HasPrefix(l, "processed ") || strings.HasPrefix(l, "verification time") || strings.HasPrefix(l, "stack depth") || l == "" {
			continue
		}
		msg = insnPrefix.ReplaceAllString(l, "")
		break
	}
	msg = register.ReplaceAllString(msg, "R")
	msg = offSize.ReplaceAllString(msg, "$1=N")
	msg = omittedLogs.ReplaceAllString(msg, "")
	return strings.TrimSpace(msg)
}

// Totals are the sums of one verifier's verdicts.
type Totals struct {
	Accepted, Rejected int
	Processed          int
	Time, CPU, Wall    time.Duration
}

func (t *Totals) add(v Verdict) {
	if v.Accepted {
		t.Accepted++
	} else {
		t.Rejected++
	}
	t.Processed += v.Processed
	t.Time += v.Time
	t.CPU += v.CPU
	t.Wall += v.Wall
}

// Disagreement is a program on which the kernel and the verifier under
// test differ.
type Disagreement struct {
	Program Program
	// Verdict is the verifier's; Program.Kernel the kernel's.
	Verdict Verdict
}

// Report compares a verifier's verdicts with the kernel's.
type Report struct {
	// Programs counts the programs compared (those with a kernel
	// verdict), Agree those where both verdicts are the same.
	Programs, Agree int
	// Accepts are the programs the verifier accepts and the kernel
	// rejects; Rejects those it rejects and the kernel accepts.
	Accepts, Rejects []Disagreement
	// Kernel and Verifier are the sums of both sides' verdicts.
	Kernel, Verifier Totals
	// Slowest is the program whose verification took the verifier the
	// most CPU time relative to the kernel's; Ratio that ratio (0 when no
	// program has CPU time on both sides).
	Slowest Program
	Ratio   float64
}

// Compare runs verify on every program with a kernel verdict and compares
// its verdicts with the kernel's, in the order of progs.
func Compare(progs []Program, verify func(Program) Verdict) Report {
	var r Report
	for _, p := range progs {
		if !p.Checked {
			continue
		}
		v := verify(p)
		r.Programs++
		r.Kernel.add(p.Kernel)
		r.Verifier.add(v)
		switch {
		case v.Accepted == p.Kernel.Accepted:
			r.Agree++
		case v.Accepted:
			r.Accepts = append(r.Accepts, Disagreement{p, v})
		default:
			r.Rejects = append(r.Rejects, Disagreement{p, v})
		}
		if p.Kernel.CPU > 0 && v.CPU > 0 {
			if ratio := float64(v.CPU) / float64(p.Kernel.CPU); ratio > r.Ratio {
				r.Ratio, r.Slowest = ratio, p
			}
		}
	}
	return r
}

// Agreement is the share of programs with the same verdict, from 0 to 1.
func (r Report) Agreement() float64 {
	if r.Programs == 0 {
		return 0
	}
	return float64(r.Agree) / float64(r.Programs)
}

// String summarises the report in a few lines, then one line for each
// disagreement.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d programs, %d agree (%.2f%%); verifier accepts, kernel rejects: %d; verifier rejects, kernel accepts: %d\n",
		r.Programs, r.Agree, 100*r.Agreement(), len(r.Accepts), len(r.Rejects))
	for _, side := range []struct {
		name string
		t    Totals
	}{{"kernel", r.Kernel}, {"verifier", r.Verifier}} {
		fmt.Fprintf(&b, "%-8s accepts %d, rejects %d, processed %d insns, time %v, CPU %v, wall %v\n",
			side.name, side.t.Accepted, side.t.Rejected, side.t.Processed, side.t.Time.Round(time.Millisecond), side.t.CPU.Round(time.Millisecond), side.t.Wall.Round(time.Millisecond))
	}
	if r.Kernel.CPU > 0 {
		fmt.Fprintf(&b, "CPU verifier/kernel %.2fx in total, at most %.2fx (%s)\n", float64(r.Verifier.CPU)/float64(r.Kernel.CPU), r.Ratio, r.Slowest.Key())
	}
	ds := append(slices.Clone(r.Accepts), r.Rejects...)
	slices.SortStableFunc(ds, func(a, b Disagreement) int { return cmp.Compare(a.Program.Key(), b.Program.Key()) })
	for _, d := range ds {
		fmt.Fprintf(&b, "  %s: kernel %s, verifier %s\n", d.Program.Key(), verdictWord(d.Program.Kernel), verdictWord(d.Verdict))
	}
	return b.String()
}

func verdictWord(v Verdict) string {
	if v.Accepted {
		return "accepts"
	}
	return "rejects: " + v.Error
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
