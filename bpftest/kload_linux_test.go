package bpftest_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/internal/ktest"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/loader"
)

// loadCiliumEnv, set to 1, adds Cilium's unit-test objects to
// TestLoadCollection_count: loading their 120 objects (2,770 programs)
// through Linux's verifier takes two and a half to five minutes, too long
// for every go test run.
const loadCiliumEnv = "WAGGLE_LOAD_CILIUM"

// loadTally counts one group's objects and programs.
type loadTally struct {
	objects, loaded, partial, none                 int
	programs, progLoaded, progRefused, progSkipped int
	// Of the programs loaded: those of an interface's hooks (XDP, tc)
	// attached to a veth and detached, and those that failed to.
	attached, attachFailed int
	reasons                map[string]int
}

func (t *loadTally) reason(r string) {
	if t.reasons == nil {
		t.reasons = map[string]int{}
	}
	t.reasons[r]++
}

func (t *loadTally) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d objects: %d load whole, %d in part, %d not at all; %d programs: %d loaded, %d refused, %d skipped; of an interface's hooks %d attached and detached, %d failed to",
		t.objects, t.loaded, t.partial, t.none, t.programs, t.progLoaded, t.progRefused, t.progSkipped, t.attached, t.attachFailed)
	keys := make([]string, 0, len(t.reasons))
	for k := range t.reasons {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n    %3d× %s", t.reasons[k], k)
	}
	return b.String()
}

// TestLoadCollection_count loads every object of three sets into the
// running kernel through kernel.LoadCollection (waggle's loader, then
// cilium/ebpf): the examples, the xdp-tools objects Debian installs and,
// with WAGGLE_LOAD_CILIUM=1 (and not -short), Cilium's unit-test objects
// (built as TestCilium builds them). It logs every refusal with its
// reason and the counts, and fails only on a refusal that is waggle's
// fault: a program (or an object's maps) that cilium/ebpf alone loads from
// the unmodified file, with the same program type, but that does not load
// through waggle's loader; or an error that is neither the kernel's nor
// cilium/ebpf's. Root only.
func TestLoadCollection_count(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("no kernel to load into: %v", err)
	}
	groups := []struct {
		name  string
		files func(testing.TB) []string
	}{
		{"examples", func(tb testing.TB) []string {
			m, _ := filepath.Glob("../examples/*/*.o")
			return m
		}},
		{"xdp-tools", ktest.XDPToolsObjects},
		{"cilium", func(tb testing.TB) []string {
			switch {
			case testing.Short():
				tb.Skip("-short: Cilium's objects take minutes to verify")
			case os.Getenv(loadCiliumEnv) != "1":
				tb.Skipf("Cilium's objects take minutes to verify: set %s=1", loadCiliumEnv)
			}
			return ciliumObjects(tb)
		}},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			files := g.files(t)
			if len(files) == 0 {
				t.Fatal("no objects")
			}
			var tally loadTally
			veth := ktest.NewVeth(t)
			for _, path := range files {
				countLoad(t, path, veth, &tally)
			}
			t.Logf("%s: %s", g.name, &tally)
		})
	}
}

// countLoad loads one object and counts the result; each program loaded
// for an interface's hook (XDP, tc) is attached to veth (XDP generic, TCX
// ingress) and detached.
func countLoad(t *testing.T, path string, veth *ktest.Veth, tally *loadTally) {
	t.Helper()
	name := filepath.Base(path)
	tally.objects++
	c, err := kernel.LoadCollection(path, &kernel.CollectionOptions{Partial: true})
	if err != nil {
		tally.none++
		t.Logf("%s: not loaded: %v", name, err)
		obj, lerr := loader.LoadFile(path, loader.Options{})
		switch {
		case lerr != nil:
			tally.reason("waggle's loader refuses the object")
			if ciliumAlone(path, nil, "") == nil {
				t.Errorf("%s: cilium/ebpf alone loads its maps, waggle's loader refuses it: %v", name, lerr)
			}
		case isKernelOrCilium(err):
			tally.reason("maps refused: " + firstLine(err))
			if ciliumAlone(path, obj, "") == nil {
				t.Errorf("%s: cilium/ebpf alone creates its maps, waggle's load fails: %v", name, err)
			}
		default:
			tally.reason("waggle's error")
			t.Errorf("%s: %v", name, err)
		}
		return
	}
	defer c.Close()
	n := len(c.Programs) + len(c.Refused) + len(c.Skipped)
	tally.programs += n
	tally.progLoaded += len(c.Programs)
	tally.progRefused += len(c.Refused)
	tally.progSkipped += len(c.Skipped)
	switch {
	case len(c.Programs) == n:
		tally.loaded++
	case len(c.Programs) > 0:
		tally.partial++
	default:
		tally.none++
	}
	for _, p := range c.Programs {
		var h kernel.Hook
		switch p.Type {
		case ebpf.XDP:
			h = kernel.Hook{Kind: kernel.HookXDP, Interface: veth.Host, XDPMode: kernel.XDPGeneric}
		case ebpf.SchedCLS, ebpf.SchedACT:
			h = kernel.Hook{Kind: kernel.HookTCX, Interface: veth.Host, Direction: kernel.Ingress}
		default:
			continue
		}
		a, err := kernel.Attach(p.Program, h)
		if err == nil {
			err = a.Close()
		}
		if err != nil {
			tally.attachFailed++
			t.Errorf("%s: %s: loaded, but attaching it to %v on %s and detaching it: %v", name, p.Name, h.Kind, veth.Host, err)
			continue
		}
		tally.attached++
	}
	for _, s := range c.Skipped {
		t.Logf("%s: %s: skipped: %v", name, s.Name, s.Reason)
		tally.reason("skipped: " + firstLine(s.Reason))
	}
	for _, r := range c.Refused {
		by := "the kernel"
		if !r.Kernel {
			by = "cilium/ebpf"
		}
		msg := firstLine(r.Err)
		if r.Probe != "" {
			msg += " (probe: " + r.Probe + ")"
		}
		t.Logf("%s: %s (%s): refused by %s: %s", name, r.Program, r.Section, by, msg)
		tally.reason(fmt.Sprintf("%v refused by %s: %s", r.Type, by, firstLine(r.Err)))
		if ciliumAlone(path, c.Object, r.Program) == nil {
			t.Errorf("%s: %s: cilium/ebpf alone loads it, waggle's load is refused: %+v", name, r.Program, r)
		}
	}
}

// ciliumAlone loads the unmodified file with cilium/ebpf alone: only the
// program prog (with the type waggle's loader gave it in obj), or only the
// maps when prog is "". Pinning is off.
func ciliumAlone(path string, obj *loader.Object, prog string) error {
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		return err
	}
	for n, ps := range spec.Programs {
		if n != prog {
			delete(spec.Programs, n)
			continue
		}
		if lp := obj.Program(n); lp != nil {
			ps.Type, ps.AttachType = lp.Type, lp.AttachType
		}
	}
	if prog != "" && len(spec.Programs) == 0 {
		return fmt.Errorf("cilium/ebpf reads no program %s", prog)
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		return err
	}
	coll.Close()
	return nil
}

// isKernelOrCilium reports whether err is a refusal by the kernel (an
// errno from a bpf syscall) or cilium/ebpf's own (ErrNotSupported), not an
// error of waggle's.
func isKernelOrCilium(err error) bool {
	var errno unix.Errno
	var ve *ebpf.VerifierError
	return errors.As(err, &errno) || errors.As(err, &ve) || errors.Is(err, ebpf.ErrNotSupported)
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
