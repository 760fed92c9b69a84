package waggle_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// Thresholds of TestVerifyLog_kernel: the share of identical lines (the
// longest common subsequence of the two logs after normaliseLog, over
// the longer log), over all lines of all programs and for the worst
// program, waggle verifying for target host. Measured on Linux 6.18 with
// the project's objects: 101 programs (71 accepted, 30 rejected by both),
// 36 identical (145 programs, 50 identical, with testdata/timer); 64% of all
// lines (the worst programs are long and waggle explores them
// differently), 93% of a program's lines on average, 23% for the worst
// (maygoto_bounded). What is left is not the log's layout but what waggle's
// exploration does differently: the stack bytes a narrow write leaves
// (waggle "mmmm0", the kernel "????0"), where checkpoints are stored
// and so which paths are pruned, precision marks ("P") and ids given
// to spilled scalars.
//
// The level 1 logs (the path to the error) of the programs both reject
// are compared too: 97% of their lines are identical, 19 of 30 logs
// (93.0%, 31 of 58, with testdata/timer).
const (
	logMatchTotal  = 0.50
	logMatchWorst  = 0.20
	logMatchLevel1 = 0.90
)

// TestVerifyLog_kernel loads every program of the project's own objects
// (examples/ and testdata/) on which both verifiers agree into the kernel
// with the level 2 verifier log, verifies it with waggle's verifier for
// target host (the helpers this kernel offers, as TestVerify_kernel) and
// Options.Log, and diffs the two logs line by line after normaliseLog.
// It reports each program's share of identical lines and fails below
// logMatchTotal over all of them or logMatchWorst for one; programs both
// reject are compared at level 1 too (logMatchLevel1). With
// WAGGLE_VERIFYLOG_DIR set, it writes both logs of each program there.
func TestVerifyLog_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel BPF: %v", err)
	}
	dir := os.Getenv("WAGGLE_VERIFYLOG_DIR")
	var objs []string
	for _, glob := range []string{"examples/*/*.o", "testdata/*/*.o"} {
		m, _ := filepath.Glob(glob)
		objs = append(objs, m...)
	}
	sort.Strings(objs)
	var same, total, programs, identical, rejected int
	var same1, total1, identical1 int
	worst, worstName, mean := 1.0, "", 0.0
	for _, path := range objs {
		coll, err := waggle.LoadCollection(path, nil)
		if err != nil {
			continue
		}
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			coll.Close()
			continue
		}
		names := make([]string, 0, len(coll.Programs))
		for n := range coll.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			ps := spec.Programs[n]
			if ps == nil || ps.Type == ebpf.UnspecifiedProgram {
				continue
			}
			klog, kAccepted, err := kernelLog(spec, n, ebpf.LogLevelInstruction)
			if err != nil {
				t.Logf("%s %s: not compared: the kernel cannot load it: %v", path, n, errLine(err))
				continue
			}
			var wlog bytes.Buffer
			_, werr := coll.Programs[n].Verify(context.Background(), &verifier.Options{Log: &wlog, Target: progtype.TargetHost})
			var pe *waggle.PrepareError
			if errors.As(werr, &pe) {
				t.Logf("%s %s: not compared: waggle cannot prepare it: %v", path, n, werr)
				continue
			}
			if wAccepted := werr == nil; wAccepted != kAccepted {
				// TestVerify_kernel reports verdicts that differ.
				t.Logf("%s %s: not compared: the verdicts differ (kernel accepts: %v, waggle: %v)", path, n, kAccepted, errLine(werr))
				continue
			}
			if !kAccepted {
				rejected++
				// Level 1: the path to the error.
				k1, _, err := kernelLog(spec, n, ebpf.LogLevelBranch)
				var w1 bytes.Buffer
				coll.Programs[n].Verify(context.Background(), &verifier.Options{Log: &w1, LogLevel: 1, Target: progtype.TargetHost})
				if err == nil {
					k, w := normaliseLog(k1), normaliseLog(w1.String())
					c := commonLines(k, w)
					same1 += c
					total1 += max(len(k), len(w))
					if c == len(k) && len(k) == len(w) {
						identical1++
					}
					t.Logf("%s %s: level 1: %d of %d kernel lines identical (waggle %d lines)", path, n, c, len(k), len(w))
				}
			}
			if dir != "" {
				os.WriteFile(filepath.Join(dir, strings.NewReplacer("/", "_", ".o", "").Replace(path)+"_"+n+".raw"), []byte(klog), 0o644)
			}
			k, w := normaliseLog(klog), normaliseLog(wlog.String())
			common := commonLines(k, w)
			share := float64(common) / float64(max(len(k), len(w), 1))
			t.Logf("%s %s: %d of %d kernel lines identical (waggle %d lines): %.1f%%", path, n, common, len(k), len(w), 100*share)
			programs++
			mean += share
			if common == len(k) && len(k) == len(w) {
				identical++
			}
			same += common
			total += max(len(k), len(w))
			if share < worst {
				worst, worstName = share, path+" "+n
			}
			if dir != "" {
				base := filepath.Join(dir, strings.NewReplacer("/", "_", ".o", "").Replace(path)+"_"+n)
				os.WriteFile(base+".kernel", []byte(strings.Join(k, "\n")+"\n"), 0o644)
				os.WriteFile(base+".waggle", []byte(strings.Join(w, "\n")+"\n"), 0o644)
			}
		}
		coll.Close()
	}
	if programs == 0 {
		t.Fatal("no program compared")
	}
	all := float64(same) / float64(total)
	t.Logf("%d programs (%d rejected by both), %d identical: %.1f%% of log lines identical after normalisation (a program's share %.1f%% on average); worst %.1f%% (%s)",
		programs, rejected, identical, 100*all, 100*mean/float64(programs), 100*worst, worstName)
	if total1 > 0 {
		share1 := float64(same1) / float64(total1)
		t.Logf("level 1 of the %d rejected programs: %d identical, %.1f%% of log lines identical", rejected, identical1, 100*share1)
		if share1 < logMatchLevel1 {
			t.Errorf("level 1: %.1f%% of log lines identical, want at least %.1f%%", 100*share1, 100*logMatchLevel1)
		}
	}
	if all < logMatchTotal {
		t.Errorf("%.1f%% of log lines identical, want at least %.1f%%", 100*all, 100*logMatchTotal)
	}
	if worst < logMatchWorst {
		t.Errorf("%s: %.1f%% of log lines identical, want at least %.1f%% for every program", worstName, 100*worst, 100*logMatchWorst)
	}
}

// kernelLog loads program name of spec alone with the verifier log at
// level (ebpf.LogLevelBranch is 1, ebpf.LogLevelInstruction 2) and returns the log and whether the verifier accepted it; err is
// for a load that failed outside the verifier (a map the kernel cannot
// create, a helper it lacks).
func kernelLog(spec *ebpf.CollectionSpec, name string, level ebpf.LogLevel) (string, bool, error) {
	s := spec.Copy()
	for n := range s.Programs {
		if n != name {
			delete(s.Programs, n)
		}
	}
	for _, m := range s.Maps {
		if m.Type == ebpf.ProgramArray {
			m.Contents = nil
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{
		LogLevel: level, LogSizeStart: 1 << 20,
	}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) && isVerifierError(err) {
			return strings.Join(ve.Log, "\n"), false, nil
		}
		return "", false, err
	}
	defer coll.Close()
	return coll.Programs[name].VerifierLog, true, nil
}

var (
	// lddw of a map reference: the kernel prints the map's address
	// (0xffff...), waggle the map's name (map[name]); the padding after
	// the instruction depends on its length.
	logMapLoad = regexp.MustCompile(`^((?:[ 0-9]{3} +)?\d+: (?:[.0-9]{10} )?\(18\) r\d+ = )(0xffff[0-9a-f]{12}|map\[[^\]]*\](\+\d+)?)( *;|$)`)
	// 6.18's stack liveness analysis prints its progress: "(0) frame 0
	// insn 33 +live -24", "(0) live stack update done in 2 iterations".
	logStackLiveness = regexp.MustCompile(`^\([0-9,]+\) (frame \d+ insn \d+ [+]|live stack update)`)
	// 6.18's loop analysis prints strongly connected components: "SCC
	// enter (5)", "SCC backedge (1)", "SCC exit (1)".
	logSCC = regexp.MustCompile(`^SCC (enter|exit|backedge) \(\d+\)$`)
	// Precision backtracking: "mark_precise: frame0: regs=r1 stack=
	// before 4: (b4) w1 = 0", "frame 0: propagating r1,r2".
	logPrecision = regexp.MustCompile(`^(mark_precise: |frame ?\d+: propagating )`)
	// A row of the "Live regs before insn:" table: the number of the
	// loop (strongly connected component) the instruction is in, its
	// index and the live registers.
	logLiveRow = regexp.MustCompile(`^[ 0-9]{3} +\d+: [.0-9]{10} `)
	// Register ids: "id=3," in "map_value_or_null(id=3,...)", "scalar(id=2)".
	logID = regexp.MustCompile(`\b(ref_obj_)?id=\d+,?| refs=[0-9,]+`)
	// An instruction line without its state, and a state line.
	logInsnLine  = regexp.MustCompile(`^\d+: \([0-9a-f]{2}\) `)
	logStateLine = regexp.MustCompile(`^\d+:( frame\d+:)? (R\d+|fp-\d+)=`)
)

// normaliseLog splits a verifier log into lines and makes the parts that
// waggle cannot print as the kernel does the same on both sides:
//   - the map address of an lddw of a map reference becomes "<map>",
//     and the padding after it one space;
//   - register ids ("id=N") are dropped: the kernel numbers more things
//     than waggle does (a scalar spilled to the stack gets an id), so
//     the numbers drift apart after the first one;
//   - the first column of the "Live regs before insn:" table (6.15+),
//     the number of the loop an instruction is in, is left empty;
//   - lines the kernel prints from analyses waggle does not log are
//     dropped: the stack
//     liveness progress lines and the loop analysis lines ("SCC enter
//     (1)", 6.18) and the precision backtracking
//     ("mark_precise: ...", "frame 0: propagating r1"); when they came between an instruction and
//     its state, which the kernel then prints on a line of its own
//     ("6: R1=0 ..."), the state is put back after the instruction,
//     aligned as the kernel aligns it;
//   - empty lines are dropped (both sides print them before "from X to
//     Y", which keeps them in order);
//   - trailing white space is dropped.
func normaliseLog(log string) []string {
	var out []string
	liveTable, dropped := false, false
	for _, l := range strings.Split(log, "\n") {
		l = strings.TrimRight(l, " \t")
		switch {
		case l == "":
			continue
		case l == "Live regs before insn:":
			liveTable = true
		case liveTable && logLiveRow.MatchString(l):
			// The loop number the kernel prints first: waggle does not.
			l = "   " + l[3:]
		case logStackLiveness.MatchString(l), logSCC.MatchString(l), logPrecision.MatchString(l):
			dropped = true
			continue
		}
		if !logLiveRow.MatchString(l) && l != "Live regs before insn:" {
			liveTable = false
		}
		l = logID.ReplaceAllStringFunc(l, func(s string) string { return "" })
		l = strings.ReplaceAll(l, "(,", "(")
		if n := len(out); dropped && n > 0 && logStateLine.MatchString(l) &&
			logInsnLine.MatchString(out[n-1]) && !strings.Contains(out[n-1], " ;") {
			// The state of the instruction before: back on its line.
			insn := out[n-1]
			pos := len(insn) + 1
			pad := (max(pos+4, 40)+7)/8*8 - pos - 1
			out[n-1] = insn + strings.Repeat(" ", pad) + ";" + l[strings.IndexByte(l, ':')+1:]
			dropped = false
			continue
		}
		dropped = false
		if m := logMapLoad.FindStringSubmatchIndex(l); m != nil {
			rest := l[m[1]:]
			sep := ""
			if strings.HasSuffix(l[:m[1]], ";") {
				sep = " ;"
			}
			l = l[m[2]:m[3]] + "<map>" + sep + rest
		}
		out = append(out, l)
	}
	return out
}

// commonLines is the length of the longest common subsequence of a and
// b: the lines a diff keeps.
func commonLines(a, b []string) int {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	prev := make([]int32, len(b)+1)
	cur := make([]int32, len(b)+1)
	for i := range a {
		for j := range b {
			switch {
			case a[i] == b[j]:
				cur[j+1] = prev[j] + 1
			case prev[j+1] >= cur[j]:
				cur[j+1] = prev[j+1]
			default:
				cur[j+1] = cur[j]
			}
		}
		prev, cur = cur, prev
	}
	return int(prev[len(b)])
}
