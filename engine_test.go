package waggle_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
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
	want := []string{"interp", "interp-fast", "jit"} // auto is none of them
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
	if e, err := waggle.ParseEngine("auto"); err != nil || e != waggle.EngineAuto || e.String() != "auto" {
		t.Errorf("ParseEngine(auto) = %v, %v, want EngineAuto", e, err)
	}
	if _, err := waggle.ParseEngine("turbo"); err == nil {
		t.Error("ParseEngine accepted turbo, which does not exist")
	}
	_, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{Engine: waggle.Engine(99)})
	if !errors.Is(err, engine.ErrNotSupported) || !strings.Contains(err.Error(), "unknown engine 99") {
		t.Fatalf("engine 99: %v", err)
	}
}

// TestEngine_auto: the default engine (the zero value, EngineAuto) is the
// JIT on linux/amd64 for verified programs and the checked interpreter
// for unverified ones and on other platforms; an engine named is the one
// that runs. Collection.Engine says which, and the programs run there.
func TestEngine_auto(t *testing.T) {
	native := runtime.GOOS == "linux" && runtime.GOARCH == "amd64"
	verifiedDefault := waggle.EngineInterp
	if native {
		verifiedDefault = waggle.EngineJIT
	}
	for _, tc := range []struct {
		name string
		opts *waggle.CollectionOptions
		want waggle.Engine
	}{
		{"nil options", nil, verifiedDefault},
		{"auto", &waggle.CollectionOptions{Engine: waggle.EngineAuto}, verifiedDefault},
		{"auto blinded", &waggle.CollectionOptions{BlindConstants: true}, verifiedDefault},
		{"auto unverified", &waggle.CollectionOptions{Unverified: true}, waggle.EngineInterp},
		{"auto unverified, unsafe allowed", &waggle.CollectionOptions{Unverified: true, UnsafeFastUnverified: true}, waggle.EngineInterp},
		{"interp", &waggle.CollectionOptions{Engine: waggle.EngineInterp}, waggle.EngineInterp},
		{"interp-fast", &waggle.CollectionOptions{Engine: waggle.EngineInterpFast}, waggle.EngineInterpFast},
	} {
		t.Run(tc.name, func(t *testing.T) {
			coll, err := waggle.LoadCollection("examples/counter/counter.o", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			if got := coll.Engine(); got != tc.want {
				t.Fatalf("Engine() = %v, want %v", got, tc.want)
			}
			var e waggle.Engine
			verified := true
			if tc.opts != nil {
				e, verified = tc.opts.Engine, !tc.opts.Unverified
			}
			if got := e.Resolve(verified); got != tc.want {
				t.Fatalf("%v.Resolve(%v) = %v, want %v as the collection picked", e, verified, got, tc.want)
			}
			frame := make([]byte, 64)
			ret, err := coll.Programs["xdp_count"].Run(&waggle.RunOptions{Data: frame})
			if err != nil || ret != 2 {
				t.Fatalf("run on %v: %d, %v, want XDP_PASS", tc.want, ret, err)
			}
		})
	}
	t.Run("jit", func(t *testing.T) {
		coll, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{Engine: waggle.EngineJIT})
		if err != nil {
			t.Fatal(err)
		}
		defer coll.Close()
		if coll.Engine() != waggle.EngineJIT {
			t.Fatalf("Engine() = %v, want jit", coll.Engine())
		}
		err = coll.Programs["xdp_count"].Prepare()
		if native != (err == nil) {
			t.Fatalf("prepare on the JIT, %s/%s: %v", runtime.GOOS, runtime.GOARCH, err)
		}
	})
	// Unverified on the JIT, named: refused, as before.
	if _, err := waggle.LoadCollection("examples/counter/counter.o", &waggle.CollectionOptions{Engine: waggle.EngineJIT, Unverified: true}); !errors.Is(err, waggle.ErrUnverifiedFast) {
		t.Fatalf("unverified on the JIT: %v, want ErrUnverifiedFast", err)
	}
}

// The default engine picks itself: the JIT for verified programs on
// linux/amd64, the checked interpreter elsewhere and for unverified
// programs; Collection.Engine says which. A collection that wants every
// memory access checked at run time as well, not only proved by the
// verifier, names EngineInterp. Every engine gives the same results.
func ExampleCollection_Engine() {
	frame := make([]byte, 64)
	for _, opts := range []*waggle.CollectionOptions{
		nil,                           // EngineAuto: jit on linux/amd64, interp elsewhere
		{Engine: waggle.EngineInterp}, // checked at run time too
		{Unverified: true},            // EngineAuto without the verifier: interp
	} {
		coll, err := waggle.LoadCollection("examples/counter/counter.o", opts)
		if err != nil {
			panic(err)
		}
		ret, err := coll.Programs["xdp_count"].Run(&waggle.RunOptions{Data: frame})
		if opts == nil {
			fmt.Println("default:", ret, err)
		} else {
			fmt.Printf("%s: %d %v\n", coll.Engine(), ret, err)
		}
		coll.Close()
	}
	// Output:
	// default: 2 <nil>
	// interp: 2 <nil>
	// interp: 2 <nil>
}
