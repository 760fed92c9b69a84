package waggle_test

import (
	"context"
	"errors"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// verifyGaps are the programs the kernel accepts and waggle's verifier
// does not yet, with what waggle says: each is a missing part of the
// verifier, not a difference to keep. The test fails when one of them
// changes, so the list stays true.
var verifyGaps = map[string]string{}

// TestVerify_kernel verifies every program of the project's own objects
// (examples/ and testdata/) with waggle's verifier for target host and
// with the running kernel's, each program loaded on its own, and compares
// the verdicts: target host offers the helpers this kernel offers, so a
// helper it lacks is refused by both. Programs the kernel cannot load for
// reasons outside the verifier (a program type or map type this kernel
// lacks) are counted apart.
func TestVerify_kernel(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("kernel BPF: %v", err)
	}
	var objs []string
	for _, glob := range []string{"examples/*/*.o", "testdata/*/*.o"} {
		m, _ := filepath.Glob(glob)
		objs = append(objs, m...)
	}
	sort.Strings(objs)
	var agree, total, kernelOnly, waggleOnly, skipped int
	var waggleInsns, kernelInsns int
	gapsSeen := map[string]bool{}
	for _, path := range objs {
		coll, err := waggle.LoadCollection(path, nil)
		if err != nil {
			t.Logf("%s: waggle cannot load it: %v", path, err)
			continue
		}
		spec, err := ebpf.LoadCollectionSpec(path)
		if err != nil {
			t.Logf("%s: cilium/ebpf cannot read it: %v", path, err)
			coll.Close()
			continue
		}
		names := make([]string, 0, len(coll.Programs))
		for n := range coll.Programs {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			p := coll.Programs[n]
			ps := spec.Programs[n]
			if ps == nil || ps.Type == ebpf.UnspecifiedProgram {
				continue
			}
			kAccepted, kInsns, kErr := loadAlone(spec, n)
			if kErr != nil && !isVerifierError(kErr) {
				skipped++
				t.Logf("%s %s: the kernel cannot load it: %v", path, n, errLine(kErr))
				continue
			}
			// Target host: the helpers this kernel offers, as it decides.
			res, werr := p.Verify(context.Background(), &verifier.Options{Target: progtype.TargetHost})
			var pe *waggle.PrepareError
			if errors.As(werr, &pe) {
				skipped++
				t.Logf("%s %s: waggle cannot prepare it: %v", path, n, werr)
				continue
			}
			total++
			wAccepted := werr == nil
			switch {
			case wAccepted == kAccepted:
				agree++
				if wAccepted {
					waggleInsns += res.Processed
					kernelInsns += kInsns
				}
			case wAccepted:
				waggleOnly++
				t.Errorf("%s %s: waggle accepts, the kernel rejects: %v", path, n, errLine(kErr))
			default:
				kernelOnly++
				key := path + " " + n
				if want, ok := verifyGaps[key]; ok && strings.Contains(werr.Error(), want) {
					gapsSeen[key] = true
					t.Logf("%s %s: known gap: the kernel accepts (%d insns), waggle rejects: %v", path, n, kInsns, werr)
					continue
				}
				t.Errorf("%s %s: the kernel accepts (%d insns), waggle rejects: %v", path, n, kInsns, werr)
			}
		}
		coll.Close()
	}
	t.Logf("%d/%d programs agree (%d accepted only by waggle, %d only by the kernel, %d not comparable); processed insns of accepted ones: waggle %d, kernel %d",
		agree, total, waggleOnly, kernelOnly, skipped, waggleInsns, kernelInsns)
	if total == 0 {
		t.Fatal("no program compared")
	}
	for k := range verifyGaps {
		if !gapsSeen[k] {
			t.Errorf("%s is listed in verifyGaps but was not seen to disagree that way: remove it", k)
		}
	}
}

// loadAlone loads program name of spec into the kernel with the maps it
// uses, and returns whether the verifier accepted it and how many
// instructions it processed.
func loadAlone(spec *ebpf.CollectionSpec, name string) (bool, int, error) {
	s := spec.Copy()
	for n := range s.Programs {
		if n != name {
			delete(s.Programs, n)
		}
	}
	for _, m := range s.Maps {
		switch m.Type {
		case ebpf.ProgramArray, ebpf.ArrayOfMaps, ebpf.HashOfMaps:
			// Their contents name programs and maps loaded apart; the
			// verdict does not depend on them.
			if m.Type == ebpf.ProgramArray {
				m.Contents = nil
			}
		}
	}
	coll, err := ebpf.NewCollectionWithOptions(s, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogDisabled: false}})
	if err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return false, 0, err
		}
		return false, 0, err
	}
	defer coll.Close()
	info, err := coll.Programs[name].Info()
	if err != nil {
		return true, 0, nil
	}
	n, _ := info.VerifiedInstructions()
	return true, int(n), nil
}

func isVerifierError(err error) bool {
	var ve *ebpf.VerifierError
	if !errors.As(err, &ve) {
		return false
	}
	// Refusals for something the kernel build lacks are not verdicts on
	// the program's safety.
	s := err.Error()
	// (A helper the kernel does not offer the program type is a verdict
	// target host predicts.)
	for _, lack := range []string{"unknown func", "invalid func"} {
		if strings.Contains(s, lack) {
			return false
		}
	}
	return true
}

func errLine(err error) string {
	if err == nil {
		return ""
	}
	return firstLine(err)
}
