//go:build linux

package ciliumdp_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/features"

	"github.com/waggle-bpf/waggle/internal/ciliumdp"
	"github.com/waggle-bpf/waggle/kernel"
)

// refusal is a reason the kernel refuses Cilium's programs for, and the
// check that this kernel has that cause.
type refusal struct {
	// why says why the kernel refuses the program.
	why string
	// cause reports, by probing the kernel, that the cause holds here; a
	// refusal for a reason whose cause does not hold fails the test.
	cause func() (bool, string)
}

// refusals are the reasons the kernel refuses programs of Cilium's
// datapath for (as ciliumdp.Reason groups them): a refusal for any other
// reason fails TestKernelVerdicts, so every refusal is understood.
var refusals = map[string]refusal{
	// Debian's 6.18 build refuses bpf_xdp_adjust_meta in XDP (the
	// driver-independent helper needs CONFIG_...: the probe is the
	// proof); bpf_xdp's programs call it when the configuration enables
	// ENABLE_NODEPORT_ACCELERATION with metadata.
	"program of this type cannot use helper bpf_xdp_adjust_meta#54": {
		why: "this kernel refuses bpf_xdp_adjust_meta in XDP programs",
		cause: func() (bool, string) {
			err := features.HaveProgramHelper(ebpf.XDP, asm.FnXdpAdjustMeta)
			return err != nil, fmt.Sprintf("features.HaveProgramHelper(XDP, bpf_xdp_adjust_meta): %v", err)
		},
	},
}

// kernelSet is the set of objects TestKernelVerdicts and
// BenchmarkKernelVerify measure: every configuration with
// WAGGLE_CILIUM_ALL=1, else each object's first.
func kernelSet(tb testing.TB, ctx context.Context) (*ciliumdp.Result, string) {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("kernel verdicts: %v", err)
	}
	if os.Getenv(ciliumdp.AllConfigsEnv) == "1" {
		return buildAll(tb, ctx), "every configuration"
	}
	if testing.Short() {
		tb.Skip("builds Cilium's datapath with clang (half a minute on two idle cores, cached by inputs after): not in -short")
	}
	if err := ciliumdp.Find(); err != nil {
		tb.Skipf("cilium datapath: %v", err)
	}
	dir, ok := ciliumdp.Workplace()
	if !ok {
		tb.Skipf("no workplace tree (%s beside the repository or its parents, or $%s)", ciliumdp.WorkplaceDir, ciliumdp.WorkplaceEnv)
	}
	res, err := ciliumdp.Build(ctx, dir, cacheRoot(), 2, tb.Logf)
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	return res, "first configuration (set " + ciliumdp.AllConfigsEnv + "=1 for all)"
}

// TestKernelVerdicts loads every program of Cilium's datapath on its own
// in the kernel, as Cilium's verifier complexity test does, and reports
// what the kernel says: the objects, the programs it accepts and refuses
// (every refusal must have an understood reason, probed on this kernel),
// the instructions it processed, its verification time, and the largest
// program. Each accepted program's statistics must be in the log.
//
// By default it measures each object's first configuration (7 objects,
// the set TestDatapath runs); the numbers are of every
// configuration (38 objects, 784 programs):
//
//	WAGGLE_CILIUM_ALL=1 go test ./internal/ciliumdp -run TestKernelVerdicts -v -timeout 30m
//
// It needs root, clang-19 and the workplace tree, and skips without them.
func TestKernelVerdicts(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 25*time.Minute)
	defer cancel()
	res, set := kernelSet(t, ctx)
	start := time.Now()
	progs, err := ciliumdp.KernelPrograms(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if len(progs) == 0 {
		t.Fatal("no programs")
	}

	type objRow struct {
		programs, accepted, processed int
		ktime, cpu                    time.Duration
	}
	rows := map[string]*objRow{}
	var labels []string
	var total objRow
	reasons := map[string]int{}
	var largest ciliumdp.Program
	for _, p := range progs {
		r := rows[p.Object]
		if r == nil {
			r = &objRow{}
			rows[p.Object] = r
			labels = append(labels, p.Object)
		}
		for _, row := range []*objRow{r, &total} {
			row.programs++
			row.processed += p.Kernel.Processed
			row.ktime += p.Kernel.Time
			row.cpu += p.Kernel.CPU
			if p.Kernel.Accepted {
				row.accepted++
			}
		}
		if p.Kernel.Processed > largest.Kernel.Processed {
			largest = p
		}
		if !p.Checked {
			t.Errorf("%s: no kernel verdict", p.Key())
		}
		if p.Load.Library {
			// Its CPU time would include cilium/ebpf's preparation.
			t.Errorf("%s: loaded through cilium/ebpf, not the bare system call", p.Key())
		}
		if p.Kernel.Accepted {
			// The statistics are parsed from every accepted program's
			// log: the verifier processes at least the exit.
			if p.Kernel.Processed <= 0 || p.Kernel.TotalStates < p.Kernel.PeakStates || p.Kernel.CPU <= 0 || p.Kernel.Wall <= 0 {
				t.Errorf("%s: statistics %+v", p.Key(), p.Kernel)
			}
			if p.Kernel.Processed > 1_000_000 {
				t.Errorf("%s: accepted after %d processed instructions, over the kernel's budget", p.Key(), p.Kernel.Processed)
			}
			continue
		}
		reasons[p.KernelReason()]++
	}

	t.Logf("%s: %d objects, %d programs, kernel loads of %v", set, len(labels), len(progs), took.Round(time.Millisecond))
	t.Log("object           programs  accepted  processed insns  kernel time  thread CPU")
	for _, l := range labels {
		r := rows[l]
		t.Logf("%-16s %8d  %8d  %15d  %11v  %10v", l, r.programs, r.accepted, r.processed, r.ktime.Round(time.Millisecond), r.cpu.Round(time.Millisecond))
	}
	t.Logf("%-16s %8d  %8d  %15d  %11v  %10v", "total", total.programs, total.accepted, total.processed, total.ktime.Round(time.Millisecond), total.cpu.Round(time.Millisecond))
	t.Logf("largest: %s %s (%s): %d processed insns, %d peak states, %d total, kernel time %v, thread CPU %v",
		largest.Object, largest.Name, largest.Section, largest.Kernel.Processed, largest.Kernel.PeakStates, largest.Kernel.TotalStates, largest.Kernel.Time, largest.Kernel.CPU)
	// The issue counted the programs that call bpf_xdp_adjust_meta as
	// refused: a kernel build without it in XDP refuses them; this one
	// may not.
	meta, err := callers(progs, asm.FnXdpAdjustMeta)
	if err != nil {
		t.Fatal(err)
	}
	var metaAccepted, metaInsns int
	for _, p := range meta {
		if p.Kernel.Accepted {
			metaAccepted++
			metaInsns += p.Kernel.Processed
		}
	}
	probe := features.HaveProgramHelper(ebpf.XDP, asm.FnXdpAdjustMeta)
	t.Logf("%d programs call bpf_xdp_adjust_meta; the kernel accepts %d of them (%d processed insns); the helper probe for XDP says %v; without them: %d programs, %d processed insns",
		len(meta), metaAccepted, metaInsns, probe, len(progs)-len(meta), total.processed-metaInsns)
	if probe == nil && metaAccepted != len(meta) {
		t.Errorf("the kernel offers bpf_xdp_adjust_meta in XDP, yet refuses %d of the %d programs that call it", len(meta)-metaAccepted, len(meta))
	}
	for _, why := range slices.Sorted(maps.Keys(reasons)) {
		r, ok := refusals[why]
		if !ok {
			t.Errorf("the kernel refuses %d programs for a reason not understood: %q (add it to refusals with its cause, or fix the load)", reasons[why], why)
			for _, p := range progs {
				if !p.Kernel.Accepted && p.KernelReason() == why {
					t.Logf("    %s: %s", p.Key(), p.Kernel.Error)
				}
			}
			continue
		}
		holds, probe := r.cause()
		if !holds {
			t.Errorf("the kernel refuses %d programs for %q, but its cause does not hold here: %s", reasons[why], why, probe)
		}
		t.Logf("rejected %d: %s: %s (%s)", reasons[why], why, r.why, probe)
	}
}

// BenchmarkKernelVerify measures the kernel's verifier and waggle's on
// Cilium's datapath, object by object: each iteration verifies every
// program of the object on its own in the kernel (the object's maps are
// made once, outside the loop) and then in waggle, program by program, so
// that both see the same machine. The clock is the thread CPU time of the
// BPF_PROG_LOAD calls and of waggle's Verify: the fair measure on a shared
// machine. Per iteration it reports:
//
//   - kernel-cpu-µs/op and waggle-cpu-µs/op, and their ratio
//     waggle/kernel-cpu;
//   - the kernel's own "verification time" (kernel-µs/op) and the
//     instructions each processed (insns/op, waggle-insns/op);
//   - worst-program-ratio: the largest waggle/kernel ratio of one program,
//     each side's time being its fastest iteration (the minimum filters out
//     the preemptions and collector pauses of a shared machine; run with
//     -benchtime 3x or more), and max-program-ms, waggle's slowest program.
//
// The programs over twice the kernel's time are logged. The set is
// TestKernelVerdicts':
//
//	WAGGLE_CILIUM_ALL=1 go test ./internal/ciliumdp -run '^$' -bench KernelVerify -benchtime 3x -timeout 60m
func BenchmarkKernelVerify(b *testing.B) {
	res, _ := kernelSet(b, b.Context())
	for _, o := range res.Objects {
		b.Run(o.Label(), func(b *testing.B) {
			k, err := ciliumdp.LoadKernel(o.Path, ciliumdp.DefaultType(o.Name), ciliumdp.SectionTypes(o.Name))
			if err != nil {
				b.Skipf("the kernel refuses the object: %v", err)
			}
			defer k.Close()
			names := slices.Sorted(maps.Keys(k.Loads))
			w := newWaggleVerifier(b.Context(), 2*time.Minute)
			defer w.close()
			var cpu, ktime, wcpu time.Duration
			var insns, winsns, n int
			kmin := make([]time.Duration, len(names))
			wmin := make([]time.Duration, len(names))
			for b.Loop() {
				for i, name := range names {
					load, _ := k.Reload(name) // a refusal costs too
					cpu += load.CPU
					ktime += load.VerifyTime
					insns += load.Processed
					wv := w.verify(ciliumdp.Program{Path: o.Path, Object: o.Label(), Name: name})
					wcpu += wv.CPU
					winsns += wv.Processed
					if n == 0 || load.CPU < kmin[i] {
						kmin[i] = load.CPU
					}
					if n == 0 || wv.CPU < wmin[i] {
						wmin[i] = wv.CPU
					}
				}
				n++
			}
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "kernel-cpu-µs/op")
			b.ReportMetric(float64(ktime.Microseconds())/float64(n), "kernel-µs/op")
			b.ReportMetric(float64(insns)/float64(n), "insns/op")
			b.ReportMetric(float64(wcpu.Microseconds())/float64(n), "waggle-cpu-µs/op")
			b.ReportMetric(float64(winsns)/float64(n), "waggle-insns/op")
			if cpu > 0 {
				b.ReportMetric(float64(wcpu)/float64(cpu), "waggle/kernel-cpu")
			}
			worst, slowest := 0.0, time.Duration(0)
			for i, name := range names {
				slowest = max(slowest, wmin[i])
				if kmin[i] <= 0 {
					continue
				}
				r := float64(wmin[i]) / float64(kmin[i])
				worst = max(worst, r)
				if r > 2 {
					b.Logf("%s: waggle %v, the kernel %v (%.2fx)", name, wmin[i], kmin[i], r)
				}
			}
			b.ReportMetric(worst, "worst-program-ratio")
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-program-ms")
			b.ReportMetric(float64(len(names)), "programs")
		})
	}
}

// callers are the programs of progs that call the helper fn.
func callers(progs []ciliumdp.Program, fn asm.BuiltinFunc) ([]ciliumdp.Program, error) {
	specs := map[string]*ebpf.CollectionSpec{}
	var out []ciliumdp.Program
	for _, p := range progs {
		spec := specs[p.Path]
		if spec == nil {
			var err error
			if spec, err = ebpf.LoadCollectionSpec(p.Path); err != nil {
				return nil, err
			}
			specs[p.Path] = spec
		}
		ps := spec.Programs[p.Name]
		if ps == nil {
			return nil, fmt.Errorf("%s: no program %s", p.Path, p.Name)
		}
		if slices.ContainsFunc(ps.Instructions, func(ins asm.Instruction) bool { return ins.IsBuiltinCall() && ins.Constant == int64(fn) }) {
			out = append(out, p)
		}
	}
	return out, nil
}
