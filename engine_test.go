package waggle_test

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/engine"
)

// engineCase is one program and the inputs it runs on, on every engine.
type engineCase struct {
	name            string
	object, program string
	frames          [][]byte // one run per frame, in order, on the same maps
}

// engineCases are the engine matrix's cases: each example over the frames
// of the bundled capture.
func engineCases(tb testing.TB) []engineCase {
	frames := readPcap(tb, "examples/traffic/traffic.pcap")
	var cases []engineCase
	for _, ex := range examplePrograms {
		cases = append(cases, engineCase{name: ex.program, object: ex.object, program: ex.program, frames: frames})
	}
	return cases
}

// engineRun is what one engine did with a case: per frame the return
// value and the packet after the run, then the maps' contents.
type engineRun struct {
	rets []uint32
	outs [][]byte
	maps string
}

// runOnEngine runs c on waggle with engine e.
func runOnEngine(t *testing.T, c engineCase, e waggle.Engine) engineRun {
	t.Helper()
	coll, err := waggle.LoadCollection(c.object, &waggle.CollectionOptions{CPUs: 1, Engine: e, RandSeed: 1})
	if err != nil {
		t.Fatalf("%s: %v", e, err)
	}
	defer coll.Close()
	if err := setup(c.object, func(name string, k, v []byte) error { return coll.Maps[name].Put(k, v) }); err != nil {
		t.Fatal(err)
	}
	prog := coll.Programs[c.program]
	var r engineRun
	for i, frame := range c.frames {
		opts := &waggle.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
		ret, err := prog.Run(opts)
		if err != nil {
			t.Fatalf("%s: frame %d: %v", e, i, err)
		}
		r.rets = append(r.rets, ret)
		r.outs = append(r.outs, opts.DataOut)
	}
	var entries []string // a hash's order differs between maps
	for _, name := range sortedMaps(coll) {
		m := coll.Maps[name]
		if m.Type() == ebpf.RingBuf {
			continue
		}
		for k, v := range m.All() {
			entries = append(entries, fmt.Sprintf("map %s: %x %x\n", name, k, v))
		}
	}
	slices.Sort(entries)
	r.maps = strings.Join(entries, "")
	return r
}

// TestEngines is the engine matrix: every case runs on every engine
// (waggle.Engines) and must give what the reference engine, the checked
// interpreter, gives: the same return values, packets and map contents.
// As root, the kernel runs each case too (BPF_PROG_TEST_RUN) and must
// return the same values and packets.
func TestEngines(t *testing.T) {
	for _, c := range engineCases(t) {
		t.Run(c.name, func(t *testing.T) {
			want := runOnEngine(t, c, waggle.EngineInterp)
			if len(want.rets) == 0 {
				t.Fatal("no frame ran")
			}
			for _, e := range waggle.Engines()[1:] {
				t.Run(e.String(), func(t *testing.T) {
					got := runOnEngine(t, c, e)
					for i := range want.rets {
						if got.rets[i] != want.rets[i] || !bytes.Equal(got.outs[i], want.outs[i]) {
							t.Fatalf("frame %d: %s returned %d and % x, %s %d and % x", i, e, got.rets[i], got.outs[i], waggle.EngineInterp, want.rets[i], want.outs[i])
						}
					}
					if got.maps != want.maps {
						t.Fatalf("maps differ:\n%s:\n%s\n%s:\n%s", e, firstLines(got.maps), waggle.EngineInterp, firstLines(want.maps))
					}
				})
			}
			t.Run("kernel", func(t *testing.T) {
				kc := kernelCollection(t, c.object, c.program)
				if err := setup(c.object, func(name string, k, v []byte) error { return kc.Maps[name].Put(k, v) }); err != nil {
					t.Fatal(err)
				}
				for i, frame := range c.frames {
					opts := &ebpf.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
					ret, err := kc.Programs[c.program].Run(opts)
					if err != nil {
						t.Fatalf("frame %d: %v", i, err)
					}
					if ret != want.rets[i] || !bytes.Equal(opts.DataOut, want.outs[i]) {
						t.Fatalf("frame %d: the kernel returned %d and % x, waggle %d and % x", i, ret, opts.DataOut, want.rets[i], want.outs[i])
					}
				}
			})
		})
	}
}

// TestEngine_names: the engines print, parse and list in one order, and
// an unknown one is refused with the seam's ErrNotSupported.
func TestEngine_names(t *testing.T) {
	want := []string{"interp", "interp-fast", "jit"}
	var got []string
	for _, e := range waggle.Engines() {
		got = append(got, e.String())
		p, err := waggle.ParseEngine(e.String())
		if err != nil || p != e {
			t.Errorf("ParseEngine(%q) = %v, %v, want %v", e, p, err, int(e))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("engines %v, want %v", got, want)
	}
	if _, err := waggle.ParseEngine("turbo"); err == nil {
		t.Error("ParseEngine accepted turbo, which does not exist")
	}
	_, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{Engine: waggle.Engine(99)})
	if !errors.Is(err, engine.ErrNotSupported) || !strings.Contains(err.Error(), "unknown engine 99") {
		t.Fatalf("engine 99: %v", err)
	}
}
