package waggle_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/ringbuf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/internal/mapdump"
	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/maps"
)

// examplePrograms are the bundled examples and the program each test runs.
// check says whether an example did its job on the capture: ret and
// changed count the frames by verdict and the frames the program modified.
var examplePrograms = []struct {
	object, program string
	check           func(ret map[uint32]int, changed int) bool
}{
	{"examples/blocklist/blocklist.o", "xdp_blocklist", func(r map[uint32]int, _ int) bool { return r[1] > 0 && r[2] > 0 }},
	{"examples/counter/counter.o", "xdp_count", func(r map[uint32]int, _ int) bool { return r[2] == 1000 }},
	{"examples/tcrewrite/rewrite.o", "tc_rewrite", func(_ map[uint32]int, changed int) bool { return changed > 0 }},
	{"examples/sockfilter/filter.o", "socket_http", func(r map[uint32]int, _ int) bool { return r[0] > 0 && r[0] < 1000 }},
	{"examples/events/events.o", "xdp_events", func(r map[uint32]int, _ int) bool { return r[2] == 1000 }},
	{"examples/tailcall/dispatch.o", "xdp_dispatch", func(r map[uint32]int, _ int) bool { return r[1] > 0 && r[2] > 0 }},
	{"examples/loop/loop.o", "xdp_marker", func(r map[uint32]int, _ int) bool { return r[1] > 0 && r[2] > 0 }},
}

// readPcap returns the frames of a capture.
func readPcap(tb testing.TB, path string) [][]byte {
	tb.Helper()
	frames, err := capture.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return frames
}

// blocklistEntries are the prefixes the blocklist example is tested with.
var blocklistEntries = []struct {
	prefix uint32
	addr   [4]byte
}{
	{32, [4]byte{10, 0, 0, 3}},
	{30, [4]byte{10, 0, 0, 8}},    // 10.0.0.8-11
	{24, [4]byte{192, 168, 1, 0}}, // all of 192.168.1.x
}

// setup fills the maps an example needs before traffic: the blocklist's
// prefixes. put is the map update of the engine at hand.
func setup(object string, put func(mapName string, key, value []byte) error) error {
	if object != "examples/blocklist/blocklist.o" {
		return nil
	}
	for _, e := range blocklistEntries {
		key := binary.NativeEndian.AppendUint32(nil, e.prefix)
		key = append(key, e.addr[:]...)
		if err := put("blocklist", key, make([]byte, 8)); err != nil {
			return err
		}
	}
	return nil
}

// TestExamples_kernel runs every example over the bundled capture in waggle
// and, as root, in the kernel (BPF_PROG_TEST_RUN through cilium/ebpf), and
// requires the same verdict and output packet for every frame, the same
// map contents afterwards (per-CPU values summed over CPUs, since the
// kernel runs each test on whichever CPU the syscall lands on) and the same
// ring buffer records.
func TestExamples_kernel(t *testing.T) {
	frames := readPcap(t, "examples/traffic/traffic.pcap")
	if len(frames) == 0 {
		t.Fatal("empty capture")
	}
	for _, ex := range examplePrograms {
		t.Run(ex.program, func(t *testing.T) {
			coll, err := waggle.LoadCollection(ex.object, &waggle.CollectionOptions{CPUs: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer coll.Close()
			if err := setup(ex.object, func(name string, k, v []byte) error { return coll.Maps[name].Put(k, v) }); err != nil {
				t.Fatal(err)
			}
			prog := coll.Programs[ex.program]
			type result struct {
				ret uint32
				out []byte
			}
			var got []result
			verdicts := map[uint32]int{}
			var wrd *maps.RingBufReader
			var wevents [][]byte
			if m, ok := coll.Maps["events"]; ok && m.Type() == ebpf.RingBuf {
				if wrd, err = maps.NewRingBufReader(m.Underlying()); err != nil {
					t.Fatal(err)
				}
				defer wrd.Close()
			}
			for i, frame := range frames {
				opts := &waggle.RunOptions{Data: frame, DataOut: make([]byte, len(frame)+512)}
				ret, err := prog.Run(opts)
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				got = append(got, result{ret, bytes.Clone(opts.DataOut)})
				verdicts[ret]++
				if wrd != nil {
					wrd.SetDeadline(time.Now())
					drain(wrd.Read, func(r maps.RingBufRecord) []byte { return r.RawSample }, &wevents)
				}
			}
			changed := 0
			for i, frame := range frames {
				if !bytes.Equal(frame, got[i].out) {
					changed++
				}
			}
			if len(verdicts) <= 4 {
				t.Logf("%d frames, verdicts %v, %d modified", len(frames), verdicts, changed)
			} else {
				t.Logf("%d frames, %d distinct verdicts, %d modified", len(frames), len(verdicts), changed)
			}
			if !ex.check(verdicts, changed) {
				t.Errorf("the example did not do its job: verdicts %v, %d frames modified", verdicts, changed)
			}
			kc := kernelCollection(t, ex.object, ex.program)
			if err := setup(ex.object, func(name string, k, v []byte) error { return kc.Maps[name].Put(k, v) }); err != nil {
				t.Fatal(err)
			}
			var rd *ringbuf.Reader
			var kevents [][]byte
			if m, ok := kc.Maps["events"]; ok && m.Type() == ebpf.RingBuf {
				if rd, err = ringbuf.NewReader(m); err != nil {
					t.Fatal(err)
				}
				defer rd.Close()
			}
			kp := kc.Programs[ex.program]
			diffs := 0
			for i, frame := range frames {
				out := make([]byte, len(frame)+512)
				opts := &ebpf.RunOptions{Data: frame, DataOut: out}
				ret, err := kp.Run(opts)
				if err != nil {
					t.Fatalf("kernel, frame %d: %v", i, err)
				}
				if ret != got[i].ret || !bytes.Equal(opts.DataOut, got[i].out) {
					if diffs++; diffs <= 3 {
						t.Errorf("frame %d: kernel returned %d and %d bytes, waggle %d and %d bytes; first difference at byte %d", i, ret, len(opts.DataOut), got[i].ret, len(got[i].out), firstDiff(opts.DataOut, got[i].out))
					}
				}
				if rd != nil {
					// Drain as we go, as the waggle side's reader below does
					// at the end: the ring holds 4 KiB.
					rd.SetDeadline(time.Now())
					drain(rd.Read, func(r ringbuf.Record) []byte { return r.RawSample }, &kevents)
				}
			}
			if diffs > 0 {
				t.Fatalf("%d of %d frames differ", diffs, len(frames))
			}
			compareMaps(t, coll, kc)
			if rd != nil {
				if len(wevents) != len(kevents) {
					t.Fatalf("ring buffer: waggle emitted %d records, the kernel %d", len(wevents), len(kevents))
				}
				for i := range wevents {
					if !bytes.Equal(wevents[i], kevents[i]) {
						t.Fatalf("ring buffer record %d: waggle % x, kernel % x", i, wevents[i], kevents[i])
					}
				}
				t.Logf("%d ring buffer records agree", len(wevents))
			}
		})
	}
}

// drain appends the records a ring-buffer reader has ready, as bytes.
func drain[R any](read func() (R, error), sample func(R) []byte, into *[][]byte) {
	for {
		rec, err := read()
		if err != nil {
			return
		}
		*into = append(*into, bytes.Clone(sample(rec)))
	}
}

// compareMaps requires the same contents in every map of both collections
// (per-CPU values summed over CPUs as little-endian u64 words; maps without
// Go-side iteration skipped).
func compareMaps(t *testing.T, coll *waggle.Collection, kc *ebpf.Collection) {
	t.Helper()
	for name, wm := range coll.Maps {
		km := kc.Maps[name]
		switch wm.Type() {
		case ebpf.ProgramArray, ebpf.RingBuf, ebpf.UserRingbuf, ebpf.PerfEventArray, ebpf.Queue, ebpf.Stack, ebpf.BloomFilter,
			ebpf.ArrayOfMaps, ebpf.HashOfMaps, // Go-side values are kernel object ids
			ebpf.XSKMap: // the kernel refuses Go-side lookups
			continue
		}
		mine := mapdump.Waggle(wm)
		theirs, err := mapdump.Kernel(km)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(mine) != fmt.Sprint(theirs) {
			t.Errorf("map %s differs:\nwaggle %v\nkernel %v", name, mine, theirs)
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// kernelCollection loads the object into the kernel with cilium/ebpf, for
// the comparison side of a test, and closes it when the test ends. It skips
// the test where the kernel cannot load and run programs, or where this
// kernel build does not offer what one of the programs the test runs needs
// (its type, a helper in its type, a map type). Other programs of the
// object that need what the kernel lacks are left out, so that the
// collection loads.
func kernelCollection(tb testing.TB, path string, runs ...string) *ebpf.Collection {
	tb.Helper()
	if err := kernel.Supported(); err != nil {
		tb.Skipf("kernel comparison: %v", err)
	}
	spec, err := ebpf.LoadCollectionSpec(path)
	if err != nil {
		tb.Fatal(err)
	}
	for name, ms := range spec.Maps {
		if err := kernel.MapTypeSupported(uint32(ms.Type)); err != nil {
			tb.Skipf("kernel comparison: map %s: %v", name, err)
		}
	}
	for _, name := range runs {
		ps, ok := spec.Programs[name]
		if !ok {
			tb.Fatalf("%s has no program %s", path, name)
		}
		if err := kernel.ProgramSpecSupported(ps); err != nil {
			tb.Skipf("kernel comparison: program %s: %v", name, err)
		}
	}
	for name, ps := range spec.Programs {
		if err := kernel.ProgramSpecSupported(ps); err != nil {
			tb.Logf("kernel comparison: leaving out program %s: %v", name, err)
			delete(spec.Programs, name)
			for _, ms := range spec.Maps {
				ms.Contents = slices.DeleteFunc(ms.Contents, func(kv ebpf.MapKV) bool { return kv.Value == name })
			}
		}
	}
	kc, err := ebpf.NewCollection(spec)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { kc.Close() })
	return kc
}
