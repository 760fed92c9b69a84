package waggle_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle"
)

// TestFastMode_refused: an unverified program runs in fast mode only with
// the unsafe option; the error says why.
func TestFastMode_refused(t *testing.T) {
	for _, e := range []waggle.Engine{waggle.EngineInterpFast, waggle.EngineJIT} {
		_, err := waggle.LoadCollection("testdata/hostile/hostile.o", &waggle.CollectionOptions{Engine: e, Unverified: true})
		if !errors.Is(err, waggle.ErrUnverifiedFast) || !strings.Contains(err.Error(), "unverified") {
			t.Fatalf("%s, unverified: %v", e, err)
		}
		// Every hostile program the verifier refuses never runs, on any
		// unchecked engine; those it accepts (nested bpf_loops) end at the
		// budget.
		hostile, err := waggle.LoadCollection("testdata/hostile/hostile.o", &waggle.CollectionOptions{Engine: e, Budget: 1 << 22})
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range hostile.Programs {
			if err := p.Prepare(); err == nil {
				if _, err := p.Run(&waggle.RunOptions{Data: make([]byte, 64)}); err != nil && !errors.Is(err, waggle.ErrBudget) {
					t.Errorf("%s on %s, verified: %v", name, e, err)
				}
				continue
			}
			if _, err := p.Run(&waggle.RunOptions{Data: make([]byte, 64)}); err == nil {
				t.Errorf("%s ran %s, which the verifier refuses", e, name)
			}
		}
		hostile.Close()
	}
	coll, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{Engine: waggle.EngineInterpFast, Unverified: true, UnsafeFastUnverified: true})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	for name, p := range coll.Programs {
		if err := p.Prepare(); err != nil {
			t.Fatalf("%s, fast and unverified with the unsafe option: %v", name, err)
		}
	}
	// A program the verifier refuses never runs, in fast mode either.
	hostile, err := waggle.LoadCollection("testdata/hostile/hostile.o", &waggle.CollectionOptions{Engine: waggle.EngineInterpFast})
	if err != nil {
		t.Fatal(err)
	}
	defer hostile.Close()
	if _, err := hostile.Programs["forever"].Run(&waggle.RunOptions{Data: make([]byte, 64)}); err == nil {
		t.Fatal("fast mode ran a program the verifier refuses")
	}
}

// sortedMaps returns the collection's map names in order.
func sortedMaps(coll *waggle.Collection) []string {
	var names []string
	for n := range coll.Maps {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// firstLines returns the first lines of s, for failure messages.
func firstLines(s string) string {
	lines := strings.SplitN(s, "\n", 20)
	return strings.Join(lines[:min(len(lines), 19)], "\n")
}
