//go:build linux

package ciliumdp_test

import (
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/ciliumdp"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// VerifyEnv opts in to TestVerifierAgreement.
const verifyEnv = "WAGGLE_CILIUM_VERIFY"

// waggleVerifier verifies Cilium's programs with waggle's verifier, object
// by object, as ciliumdp.Compare calls it: each object is loaded into
// waggle once (typed as LoadKernel types it), each program verified on
// its own for target host (the helpers, program and map types the
// running kernel offers, probed), on the thread CPU clock.
type waggleVerifier struct {
	ctx     context.Context
	timeout time.Duration
	colls   map[string]*waggle.Collection
	errs    map[string]error // by program key: waggle's error, kept for the test
}

func newWaggleVerifier(ctx context.Context, timeout time.Duration) *waggleVerifier {
	return &waggleVerifier{ctx: ctx, timeout: timeout, colls: map[string]*waggle.Collection{}, errs: map[string]error{}}
}

func (w *waggleVerifier) close() {
	for _, c := range w.colls {
		c.Close()
	}
}

// collection is the object of p loaded into waggle.
func (w *waggleVerifier) collection(p ciliumdp.Program) (*waggle.Collection, error) {
	if c := w.colls[p.Path]; c != nil {
		return c, nil
	}
	name, _, _ := strings.Cut(p.Object, ".")
	opts := &waggle.CollectionOptions{CPUs: 2, DefaultProgramType: ciliumdp.DefaultType(name), Trace: io.Discard}
	if sec := ciliumdp.SectionTypes(name); sec != nil {
		if spec, err := ebpf.LoadCollectionSpec(p.Path); err == nil {
			opts.ProgramTypes = map[string]ebpf.ProgramType{}
			opts.AttachTypes = map[string]ebpf.AttachType{}
			for _, ps := range spec.Programs {
				if tt, ok := sec[ps.SectionName]; ok && ps.Type == ebpf.UnspecifiedProgram {
					opts.ProgramTypes[ps.SectionName] = tt.Type
					opts.AttachTypes[ps.SectionName] = tt.Attach
				}
			}
		}
	}
	c, err := waggle.LoadCollection(p.Path, opts)
	if err != nil {
		return nil, err
	}
	// Loading makes the object's maps (Cilium's preallocate tens of
	// megabytes): collect that garbage now, or the first verification's
	// clock would pay the collector's assists for it.
	runtime.GC()
	w.colls[p.Path] = c
	return c, nil
}

// verify is waggle's verdict on p.
func (w *waggleVerifier) verify(p ciliumdp.Program) ciliumdp.Verdict {
	c, err := w.collection(p)
	if err != nil {
		w.errs[p.Key()] = err
		return ciliumdp.Verdict{Error: "waggle cannot load the object: " + err.Error()}
	}
	wp := c.Programs[p.Name]
	if wp == nil {
		w.errs[p.Key()] = errors.New("not in waggle's collection")
		return ciliumdp.Verdict{Error: "not in waggle's collection"}
	}
	ctx, cancel := context.WithTimeout(w.ctx, w.timeout)
	defer cancel()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var c0, c1 unix.Timespec
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c0)
	w0 := time.Now()
	res, err := wp.Verify(ctx, &verifier.Options{Target: progtype.TargetHost})
	wall := time.Since(w0)
	unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c1)
	v := ciliumdp.Verdict{Accepted: err == nil, CPU: time.Duration(c1.Nano() - c0.Nano()), Wall: wall, Time: wall}
	if res != nil {
		v.Processed, v.PeakStates, v.TotalStates = res.Processed, res.PeakStates, res.States
	}
	if err != nil {
		w.errs[p.Key()] = err
		v.Error = firstLine(err.Error())
	}
	return v
}

// TestVerifierAgreement compares waggle's verifier with the kernel's on
// Cilium's datapath (TestKernelVerdicts' set: each object's first
// configuration, or every one with WAGGLE_CILIUM_ALL=1) and logs
// ciliumdp.Compare's report: agreement, the disagreements on each side,
// processed instructions and CPU time of both. waggle verifies for target
// host, which predicts this kernel's verdict: a kernel build that refuses
// bpf_xdp_adjust_meta in XDP (the 21 programs of bpf_xdp's configurations
// with ENABLE_NODEPORT_ACCELERATION that call it) is refused by both for
// it, and one that offers it by neither. It fails when waggle's
// verifier ends in an internal error or a refusal that is not a
// *verifier.Error, or accepts a program the kernel refuses. Opt-in while
// the verifier grows (minutes):
//
//	WAGGLE_CILIUM_VERIFY=1 go test ./internal/ciliumdp -run TestVerifierAgreement -v -timeout 60m
func TestVerifierAgreement(t *testing.T) {
	if os.Getenv(verifyEnv) != "1" {
		t.Skipf("verifies Cilium's datapath with waggle's verifier (minutes): set %s=1", verifyEnv)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 55*time.Minute)
	defer cancel()
	res, set := kernelSet(t, ctx)
	progs, err := ciliumdp.KernelPrograms(res.Objects)
	if err != nil {
		t.Fatal(err)
	}
	w := newWaggleVerifier(ctx, 2*time.Minute)
	defer w.close()
	r := ciliumdp.Compare(progs, func(p ciliumdp.Program) ciliumdp.Verdict {
		v := w.verify(p)
		t.Logf("%s: kernel %v %d insns %v CPU; waggle %v %d insns %v CPU %s", p.Key(), p.Kernel.Accepted, p.Kernel.Processed, p.Kernel.CPU.Round(time.Millisecond),
			v.Accepted, v.Processed, v.CPU.Round(time.Millisecond), v.Error)
		return v
	})
	t.Logf("%s:\n%s", set, r)
	reasons := map[string]int{}
	for key, err := range w.errs {
		var ve *verifier.Error
		switch {
		case strings.Contains(err.Error(), "internal error"):
			t.Errorf("%s: %v", key, err)
		case !errors.As(err, &ve):
			t.Errorf("%s: not a verifier refusal: %v", key, err)
		default:
			reasons[ve.Msg]++
		}
	}
	for msg, n := range reasons {
		t.Logf("waggle refuses %d: %s", n, msg)
	}
	for _, d := range r.Accepts {
		t.Errorf("%s: waggle accepts what the kernel refuses: %s", d.Program.Key(), d.Program.Kernel.Error)
	}
}
