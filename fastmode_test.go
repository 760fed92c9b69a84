package waggle_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle"
)

// TestFastMode_verified: programs the verifier accepted run in fast mode
// without UnsafeFastUnverified, and give what checked mode gives: the same
// verdicts, packets and map contents over the example capture.
func TestFastMode_verified(t *testing.T) {
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	for _, ex := range examplePrograms {
		t.Run(ex.program, func(t *testing.T) {
			results := map[waggle.Engine]string{}
			for _, mode := range waggle.Engines() {
				coll, err := waggle.LoadCollection(ex.object, &waggle.CollectionOptions{CPUs: 1, Engine: mode, RandSeed: 1})
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				defer coll.Close()
				if err := setup(ex.object, func(name string, k, v []byte) error { return coll.Maps[name].Put(k, v) }); err != nil {
					t.Fatal(err)
				}
				prog := coll.Programs[ex.program]
				var b strings.Builder
				for i, frame := range frames {
					opts := &waggle.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
					ret, err := prog.Run(opts)
					if err != nil {
						t.Fatalf("%s: frame %d: %v", mode, i, err)
					}
					fmt.Fprintf(&b, "frame %d: %d %x\n", i, ret, opts.DataOut)
				}
				for _, name := range sortedMaps(coll) {
					m := coll.Maps[name]
					if m.Type().String() == "RingBuf" {
						continue
					}
					var entries []string // a hash's order differs between maps
					for k, v := range m.All() {
						entries = append(entries, fmt.Sprintf("map %s: %x %x\n", name, k, v))
					}
					slices.Sort(entries)
					b.WriteString(strings.Join(entries, ""))
				}
				results[mode] = b.String()
			}
			if results[waggle.EngineInterp] != results[waggle.EngineInterpFast] {
				t.Fatalf("fast mode differs from checked mode:\nchecked:\n%s\nfast:\n%s", firstLines(results[waggle.EngineInterp]), firstLines(results[waggle.EngineInterpFast]))
			}
			if !strings.Contains(results[waggle.EngineInterpFast], "frame 0:") {
				t.Fatal("no frame ran")
			}
		})
	}
}

// TestFastMode_refused: an unverified program runs in fast mode only with
// the unsafe option; the error says why.
func TestFastMode_refused(t *testing.T) {
	_, err := waggle.LoadCollection("testdata/hostile/hostile.o", &waggle.CollectionOptions{Engine: waggle.EngineInterpFast, Unverified: true})
	if !errors.Is(err, waggle.ErrUnverifiedFast) || !strings.Contains(err.Error(), "unverified") {
		t.Fatalf("fast mode, unverified: %v", err)
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
