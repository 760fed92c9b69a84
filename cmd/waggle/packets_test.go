package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/loader"
)

// mustWriteCapture writes frames as a nanosecond pcap of link type
// linkType, each at its own nanosecond, and returns its path.
func mustWriteCapture(tb testing.TB, path string, linkType uint32, frames [][]byte) string {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w, err := capture.NewWriter(f, linkType, capture.Nanoseconds)
	if err != nil {
		tb.Fatal(err)
	}
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i, fr := range frames {
		if err := w.WritePacket(start.Add(time.Duration(i)*1001), len(fr), fr); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return path
}

// repeatedTraffic writes the bundled capture's frames copies times over
// as one capture and returns its path.
func repeatedTraffic(tb testing.TB, copies int) string {
	tb.Helper()
	one, err := capture.ReadFile(traffic)
	if err != nil {
		tb.Fatal(err)
	}
	var all [][]byte
	for range copies {
		all = append(all, one...)
	}
	return mustWriteCapture(tb, filepath.Join(tb.TempDir(), fmt.Sprintf("traffic%d.pcap", copies)), capture.LinkTypeEthernet, all)
}

// hexBytes decodes a dump's hex bytes.
func hexBytes(t *testing.T, b []string) []byte {
	t.Helper()
	var raw []byte
	for _, s := range b {
		v, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
		if err != nil {
			t.Fatal(err)
		}
		raw = append(raw, v...)
	}
	return raw
}

// mapContent is a dump as comparable text: each map's entries sorted,
// per-CPU values summed over the CPUs as 64-bit counters (the examples'
// per-CPU values are __u64 counters or structs of them). With perCPU, the
// values are kept CPU by CPU instead.
func mapContent(t *testing.T, res map[string]json.RawMessage, perCPU bool) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for name, entries := range dumpOf(t, res) {
		var lines []string
		for _, e := range entries {
			key := hex.EncodeToString(hexBytes(t, e.Key))
			if e.Values == nil {
				lines = append(lines, key+" = "+hex.EncodeToString(hexBytes(t, e.Value)))
				continue
			}
			if perCPU {
				var vs []string
				for _, v := range e.Values {
					vs = append(vs, hex.EncodeToString(hexBytes(t, v.Value)))
				}
				lines = append(lines, key+" = "+strings.Join(vs, " | "))
				continue
			}
			var sum []uint64
			for _, v := range e.Values {
				b := hexBytes(t, v.Value)
				if len(b)%8 != 0 {
					t.Fatalf("map %s: per-CPU value of %d bytes, not 64-bit counters", name, len(b))
				}
				if sum == nil {
					sum = make([]uint64, len(b)/8)
				}
				for i := range sum {
					sum[i] += binary.LittleEndian.Uint64(b[8*i:])
				}
			}
			lines = append(lines, fmt.Sprintf("%s = sum %v", key, sum))
		}
		slices.Sort(lines)
		out[name] = lines
	}
	return out
}

// TestRun_workers: runs over two workers give the verdicts, the maps
// (per-CPU values summed over the CPUs) and the --out capture, byte for
// byte, of a run over one; the packets do spread over both CPU slots, the
// same way on every run.
func TestRun_workers(t *testing.T) {
	in := repeatedTraffic(t, 5) // 5,000 packets, 79 batches
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"per-CPU hash", []string{"../../examples/counter/counter.o", "--map-dump"}},
		{"LPM trie, per-CPU array", []string{blocklist, "--map-init", "../../examples/blocklist/blocklist.json", "--map-dump"}},
		{"tail calls, --out", []string{"../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--map-init", "../../examples/tailcall/reroute.json", "--map-dump"}},
		{"bpf_loop, .bss", []string{"../../examples/loop/loop.o", "--map-init", "../../examples/loop/marker.json", "--map-dump"}},
		{"TC rewrite", []string{"../../examples/tcrewrite/rewrite.o"}},
		{"socket filter truncation", []string{"../../examples/sockfilter/filter.o"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			run := func(workers int) (map[string]json.RawMessage, []byte) {
				out := filepath.Join(dir, fmt.Sprintf("%s-%d.pcap", strings.ReplaceAll(tc.name, " ", "_"), workers))
				args := append([]string{"run"}, tc.args...)
				args = append(args, "--pcap", in, "--cpus", "2", "--workers", fmt.Sprint(workers), "--out", out)
				res, _ := runJSON(t, args...)
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				return res, b
			}
			one, oneOut := run(1)
			two, twoOut := run(2)
			for _, k := range []string{"packets", "verdicts", "written", "errors"} {
				if string(one[k]) != string(two[k]) {
					t.Errorf("%s: one worker %s, two %s", k, one[k], two[k])
				}
			}
			if string(one["packets"]) != "5000" {
				t.Errorf("%s packets, want 5000", one["packets"])
			}
			if len(oneOut) < 24+16*1000 || !bytes.Equal(oneOut, twoOut) {
				t.Errorf("--out: %d bytes with one worker, %d with two, not the same", len(oneOut), len(twoOut))
			}
			if one["maps"] == nil {
				return
			}
			if a, b := mapContent(t, one, false), mapContent(t, two, false); !reflect.DeepEqual(a, b) {
				t.Errorf("maps with one worker:\n%v\nwith two:\n%v", a, b)
			}
			again, _ := run(2)
			if a, b := mapContent(t, two, true), mapContent(t, again, true); !reflect.DeepEqual(a, b) {
				t.Errorf("two runs over two workers left different per-CPU values:\n%v\n%v", a, b)
			}
		})
	}

	// Both CPU slots counted packets: the counter's per-CPU values on
	// CPU 1 are not all zero with two workers, and are with one.
	onCPU1 := func(workers string) uint64 {
		res, _ := runJSON(t, "run", "../../examples/counter/counter.o", "--pcap", in, "--cpus", "2", "--workers", workers, "--map-dump")
		var n uint64
		for _, e := range dumpOf(t, res)["sources"] {
			if len(e.Values) != 2 {
				t.Fatalf("entry with %d values, want 2", len(e.Values))
			}
			n += hexU64(t, e.Values[1].Value)
		}
		return n
	}
	if one, two := onCPU1("1"), onCPU1("2"); one != 0 || two == 0 {
		t.Errorf("packets counted on CPU 1: %d with one worker, %d with two", one, two)
	}
}

// TestRun_workersStop: --packets and --timeout stop a run over several
// workers as they stop one over one.
func TestRun_workersStop(t *testing.T) {
	in := repeatedTraffic(t, 3)
	res, _ := runJSON(t, "run", "../../examples/counter/counter.o", "--pcap", in, "--cpus", "2", "--workers", "2", "--packets", "1234")
	if string(res["packets"]) != "1234" {
		t.Errorf("--packets 1234: %s packets", res["packets"])
	}
	code, stdout, stderr := runCLI(t, "", "run", "../../testdata/hostile/hostile.o", "--program", "forever", "--pcap", in,
		"--cpus", "2", "--workers", "2", "--timeout", "100ms", "--json", "--unverified")
	var sum packetSummary
	if code != 1 || json.Unmarshal([]byte(stdout), &sum) != nil {
		t.Fatalf("status %d, %q, %q", code, stdout, stderr)
	}
	// Each worker's run in progress ends at the deadline; the packets
	// after are not run.
	if sum.Errors < 1 || sum.Errors > 2 || sum.Packets != sum.Errors || !strings.Contains(sum.Stopped, "--timeout 100ms") || !strings.Contains(sum.FirstError, "deadline") {
		t.Errorf("summary %+v", sum)
	}
}

// mustProgram loads a program of an example object on a collection of two
// CPU slots.
func mustProgram(tb testing.TB, path, name string) *waggle.Program {
	tb.Helper()
	obj, err := loader.LoadFile(path, loader.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{CPUs: 2})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(coll.Close)
	prog := coll.Programs[name]
	if prog == nil {
		tb.Fatalf("no program %s", name)
	}
	return prog
}

// sliceSource is a packet source over frames; at calls hook before
// reading packet i (counting from 0).
func sliceSource(frames [][]byte, hook func(i int)) nextFunc {
	i := 0
	return func(bool) ([]byte, time.Time, error) {
		if hook != nil {
			hook(i)
		}
		if i == len(frames) {
			return nil, time.Time{}, io.EOF
		}
		i++
		return frames[i-1], time.Unix(int64(i), 0), nil
	}
}

// TestRunPackets_stopParallel: a run whose context ends, or whose --out
// fails, while several workers run stops reading, lets the workers finish
// and reports it, without hanging.
func TestRunPackets_stopParallel(t *testing.T) {
	one, err := capture.ReadFile(traffic)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for range 5 {
		frames = append(frames, one...)
	}
	prog := mustProgram(t, "../../examples/tailcall/dispatch.o", "xdp_dispatch")
	e := &env{stdout: io.Discard, stderr: io.Discard}

	// The context ends when packet 2001 is to be read.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f := &objectFlags{ctx: ctx, timeout: time.Second, nworkers: 2}
	sum, err := e.runPackets(prog, f, sliceSource(frames, func(i int) {
		if i == 2000 {
			cancel()
		}
	}), func(time.Time, []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if sum.Packets < serialBatches*batchPackets || sum.Packets > 2000 || sum.Errors > 2 || !strings.Contains(sum.Stopped, "--timeout 1s reached after") {
		t.Errorf("summary %+v; want at most 2,000 packets and the stop", sum)
	}

	// --out fails at the 1,500th packet written.
	f = &objectFlags{nworkers: 2, pcapOut: "out.pcap"}
	written := 0
	sum, err = e.runPackets(prog, f, sliceSource(frames, nil), func(time.Time, []byte) error {
		if written++; written == 1500 {
			return errors.New("disk full")
		}
		return nil
	})
	if sum != nil || err == nil || err.Error() != "disk full" || written != 1500 {
		t.Errorf("summary %+v, error %v after %d packets written", sum, err, written)
	}
}

// TestRun_workersBadCapture: a capture that breaks off, or claims a
// record no file holds, or has frames of another link type gives the
// results of the packets before it and an error naming the packet, with
// any number of workers.
func TestRun_workersBadCapture(t *testing.T) {
	// Broken past the packets the first worker runs alone.
	const at = 3001
	orig, err := os.ReadFile(repeatedTraffic(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	off := 24 // packet at's record
	for range at - 1 {
		off += 16 + int(binary.LittleEndian.Uint32(orig[off+8:]))
	}
	huge := binary.LittleEndian.AppendUint64(bytes.Clone(orig[:off]), 0)
	huge = binary.LittleEndian.AppendUint32(huge, 0xffffffff)
	huge = binary.LittleEndian.AppendUint32(huge, 0xffffffff)
	sll := mustWriteCapture(t, filepath.Join(dir, "sll.pcap"), 113, [][]byte{make([]byte, 64)})
	for _, tc := range []struct {
		name, file string
		packets    int
		want       string
	}{
		{"cut mid-record", write("cut.pcap", orig[:off+16+10]), at - 1, fmt.Sprintf(": packet %d (byte %d): truncated: the record claims", at, off)},
		{"4 GiB record", write("huge.pcap", append(huge, make([]byte, 100)...)), at - 1, fmt.Sprintf(": packet %d (byte %d): the record claims 4294967295 captured bytes", at, off)},
		{"cut file header", write("header.pcap", orig[:20]), -1, "pcap file header: truncated"},
		{"not a capture", write("junk.pcap", []byte("GET / HTTP/1.1\r\n\r\n")), -1, "not a pcap or pcapng file"},
		{"Linux cooked capture", sll, 0, "packet 1: link type 113 (LINUX_SLL); programs here expect Ethernet frames"},
	} {
		for _, workers := range []string{"1", "2"} {
			t.Run(tc.name+"/"+workers, func(t *testing.T) {
				code, stdout, stderr := runCLI(t, "", "run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", tc.file, "--cpus", "2", "--workers", workers)
				if code != 1 || !strings.Contains(stderr, tc.file+": ") || !strings.Contains(stderr, tc.want) {
					t.Fatalf("status %d, stdout %q, stderr %q; want %q", code, stdout, stderr, tc.want)
				}
				if tc.packets >= 0 && !strings.Contains(stdout, fmt.Sprintf("xdp_dispatch (XDP): %d packets", tc.packets)) {
					t.Errorf("stdout %q, want the summary of the %d packets before", stdout, tc.packets)
				}
			})
		}
	}
}

// TestRun_workersFlag: --workers takes a positive count no larger than the
// CPU slots, one with --events, and only for runs over packets.
func TestRun_workersFlag(t *testing.T) {
	const obj = "../../examples/counter/counter.o"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"zero", []string{"run", obj, "--pcap", traffic, "--workers", "0"}, "--workers 0: want at least 1"},
		{"negative", []string{"run", obj, "--pcap", traffic, "--workers", "-3"}, "--workers -3: want at least 1"},
		{"not a number", []string{"run", obj, "--pcap", traffic, "--workers", "two"}, "invalid argument \"two\" for \"--workers\""},
		{"more than the CPU slots", []string{"run", obj, "--pcap", traffic, "--cpus", "2", "--workers", "3"}, "--workers 3: the collection has 2 CPU slots, one per worker (raise --cpus)"},
		{"with --events", []string{"run", "../../examples/events/events.o", "--pcap", traffic, "--cpus", "2", "--workers", "2", "--events"}, "needs one worker"},
		{"with --data-in", []string{"run", obj, "--data-in", "../../examples/checksum/ipv4-header.bin", "--workers", "1"}, "--workers applies to runs over packets"},
		{"raw program", []string{"run", "95 00 00 00 00 00 00 00", "--workers", "2"}, "need an ELF object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, "", tc.args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("status %d, stderr %q, want %q", code, stderr, tc.want)
			}
		})
	}
	// --events alone runs on one worker, whatever the cores: records come
	// in packet order.
	code, stdout, stderr := runCLI(t, "", "run", "../../examples/events/events.o", "--pcap", traffic, "--cpus", "2", "--events")
	if code != 0 || !strings.Contains(stdout, "(XDP): 1000 packets") {
		t.Fatalf("--events: status %d, %q", code, stderr)
	}
	last, records := 0, 0
	for _, line := range strings.Split(stdout, "\n") {
		var n int
		if _, err := fmt.Sscanf(line, "packet %d:", &n); err != nil {
			continue
		}
		if n <= last {
			t.Fatalf("a record of packet %d after one of packet %d", n, last)
		}
		last = n
		records++
	}
	if records < 500 {
		t.Errorf("%d records", records)
	}
}

// BenchmarkRunPcap runs the tail-call dispatcher over 100,000 packets
// with one and two workers: the CLI's whole packet path (reading, batches,
// runs, verdicts), reported as packets per second of wall time.
//
//	go test ./cmd/waggle -run '^$' -bench RunPcap -benchmem
func BenchmarkRunPcap(b *testing.B) {
	in := repeatedTraffic(b, 100)
	for _, workers := range []string{"1", "2"} {
		b.Run("workers="+workers, func(b *testing.B) {
			args := []string{"run", "../../examples/tailcall/dispatch.o", "--program", "xdp_dispatch", "--pcap", in, "--cpus", "2", "--workers", workers}
			var out, errOut bytes.Buffer
			for b.Loop() {
				out.Reset()
				if code := run(args, strings.NewReader(""), &out, &errOut); code != 0 {
					b.Fatalf("status %d: %s", code, errOut.String())
				}
			}
			b.ReportMetric(float64(100_000*b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}
