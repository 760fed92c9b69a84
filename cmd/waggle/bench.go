package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/bench"
	"github.com/waggle-bpf/waggle/loader"
)

// maxBenchData bounds --data-in: a packet or context, not a file to slurp.
const maxBenchData = 1 << 20

func (e *env) benchCmd() *cobra.Command {
	var (
		engineNames []string
		noKernel    bool
		rounds      int
		round       time.Duration
		jsonOut     bool
		only        []string
		blind       bool
		dataIn      string
		mapInit     []string
	)
	cmd := &cobra.Command{
		Use:   "bench [OBJ]",
		Short: "measure programs on every engine and in the kernel's JIT: the bundled suite, or an object's",
		Long: `bench measures programs on each of waggle's engines and, as root, in the
kernel's JIT through BPF_PROG_TEST_RUN: the same object bytes everywhere,
interleaved in rounds, each timed on the thread's CPU clock (so a loaded
machine inflates nothing). It prints the median nanoseconds per run, each
engine's ratio to the kernel and the interpreters' ratio to the JIT, with
the geometric mean of each ratio over the programs.

Without OBJ it measures waggle's benchmark suite (internal/bench/testdata:
loops and arithmetic, a prime sieve and trial division, byte copies (128
bytes and 1 MiB), strcmp, log2, 16- and 64-case switches, array and hash
map lookups, the Internet checksum of a frame, an XDP firewall parsing
Ethernet, VLAN, IPv4/IPv6 and TCP/UDP against a hash-map blocklist, a
bpf_loop user and a can_loop loop), each case on its own packet and map
entries. With OBJ, an ELF object, it measures the object's programs (all
of them, or those --program names), each on --data-in's packet or a
64-byte zeroed one, after --map-init's elements were put in its maps
(waggle's and the kernel's alike). A program the kernel (or an engine)
refuses gets an error line; the other columns are still measured, and
the command fails only if a program got no measurement at all.

  waggle bench
  waggle bench --program xdp_firewall,can_loop --engine jit,kernel
  waggle bench examples/blocklist/blocklist.o --data-in pkt.bin \
      --map-init examples/blocklist/blocklist.json --json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			engines, kernel, err := benchEngines(engineNames, noKernel)
			if err != nil {
				return err
			}
			if rounds <= 0 {
				return fmt.Errorf("--rounds is %d, want at least 1", rounds)
			}
			if round <= 0 {
				return fmt.Errorf("--round is %v, want a positive duration", round)
			}
			var data []byte
			if dataIn != "" {
				if data, err = readBenchData(dataIn); err != nil {
					return err
				}
			}
			var cases []bench.Case
			if len(args) == 1 {
				obj, err := os.ReadFile(args[0])
				if err != nil {
					return err
				}
				if cases, err = bench.ObjectCases(obj, only, data); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
				if len(mapInit) > 0 {
					ms, err := e.benchMapEntries(args[0], mapInit)
					if err != nil {
						return err
					}
					for i := range cases {
						cases[i].Maps = ms
					}
				}
			} else {
				if len(mapInit) > 0 {
					return errors.New("--map-init sets the maps of an object: give the object (the suite's cases set their own)")
				}
				if cases, err = suiteCases(only); err != nil {
					return err
				}
				if data != nil {
					for i := range cases {
						cases[i].Data = data
					}
				}
			}
			rs, err := bench.Run(cases, bench.Options{Engines: engines, Kernel: kernel, Rounds: rounds, Round: round, BlindConstants: blind})
			if err != nil {
				return err
			}
			if jsonOut {
				err = printBenchJSON(e, rs)
			} else {
				printBench(e, rs)
			}
			if err != nil {
				return err
			}
			return unmeasured(rs)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&engineNames, "engine", nil, "engines to measure, of "+strings.Join(append(engineList(), bench.Kernel), ", ")+" (default: all; kernel is the kernel's JIT, as root)")
	f.BoolVar(&noKernel, "no-kernel", false, "leave the kernel's JIT out")
	f.IntVar(&rounds, "rounds", bench.DefaultRounds, "measurements per engine and program, interleaved; the median is kept")
	f.DurationVar(&round, "round", 20*time.Millisecond, "CPU time one measurement aims at")
	f.BoolVar(&jsonOut, "json", false, "print the results as JSON")
	f.StringSliceVar(&only, "program", nil, "measure only these programs (of the suite, or of OBJ)")
	f.StringVar(&dataIn, "data-in", "", "the packet every run gets, from this `FILE` (raw bytes; with the suite, it replaces every case's packet)")
	f.StringArrayVar(&mapInit, "map-init", nil, "with OBJ, set map elements from `FILE` before the runs, in waggle's maps and the kernel's (what waggle run --map-init takes: --map-dump's output, or NAME=FILE with bpftool's dump of map NAME)")
	f.BoolVar(&blind, "blind-constants", false, "load the programs with their constants blinded (the JIT's bpf_jit_harden)")
	return cmd
}

// benchEngines parses --engine and --no-kernel: waggle's engines to
// measure (nil for all) and whether to measure the kernel's JIT.
func benchEngines(names []string, noKernel bool) ([]waggle.Engine, bool, error) {
	if len(names) == 0 {
		return nil, !noKernel, nil
	}
	engines := []waggle.Engine{}
	kernel := false
	for _, n := range names {
		if n == bench.Kernel {
			if noKernel {
				return nil, false, errors.New("--engine names kernel, and --no-kernel leaves it out: give one")
			}
			kernel = true
			continue
		}
		eng, err := waggle.ParseEngine(n)
		if err != nil {
			return nil, false, fmt.Errorf("--engine: %w, or kernel", err)
		}
		if !slices.Contains(engines, eng) {
			engines = append(engines, eng)
		}
	}
	return engines, kernel, nil
}

// readBenchData reads --data-in.
func readBenchData(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--data-in: %w", err)
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxBenchData+1))
	if err != nil {
		return nil, fmt.Errorf("--data-in: %w", err)
	}
	if len(data) > maxBenchData {
		return nil, fmt.Errorf("--data-in %s: more than %d bytes; give a packet or a context", path, maxBenchData)
	}
	return data, nil
}

// suiteCases returns the suite's cases, or those --program names.
func suiteCases(only []string) ([]bench.Case, error) {
	cases := bench.Suite()
	if len(only) == 0 {
		return cases, nil
	}
	var sel []bench.Case
	for _, name := range only {
		i := slices.IndexFunc(cases, func(c bench.Case) bool { return c.Name == name })
		if i < 0 {
			var names []string
			for _, c := range cases {
				names = append(names, c.Name)
			}
			return nil, fmt.Errorf("--program %q: the suite has %s (to measure an object's programs, give the object)", name, strings.Join(names, ", "))
		}
		sel = append(sel, cases[i])
	}
	return sel, nil
}

func engineList() []string {
	var names []string
	for _, e := range waggle.Engines() {
		names = append(names, e.String())
	}
	return names
}

// unmeasured fails the command (after the results were printed) if a
// program got no measurement at all; one engine failing (the kernel's,
// without root) is only a line of the output.
func unmeasured(rs []bench.Result) error {
	ok := map[string]bool{}
	var order []string
	for _, r := range rs {
		if _, seen := ok[r.Case]; !seen {
			order = append(order, r.Case)
		}
		ok[r.Case] = ok[r.Case] || r.Err == nil
	}
	var none []string
	for _, c := range order {
		if !ok[c] {
			none = append(none, c)
		}
	}
	if len(none) > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("no engine measured %s", strings.Join(none, ", "))}
	}
	return nil
}

// benchJIT is the engine the interpreters' ratio column divides by.
var benchJIT = waggle.EngineJIT.String()

// benchTable is rs by program and engine, with the ratio columns to
// print: each engine's to the kernel, and each interpreter's to the JIT.
type benchTable struct {
	engines []string
	order   []string
	byCase  map[string]map[string]bench.Result
	ratios  []benchRatio
}

// benchRatio is a column of ratios: engine's time over base's.
type benchRatio struct{ engine, base string }

func newBenchTable(rs []bench.Result) *benchTable {
	t := &benchTable{engines: bench.Engines(rs), byCase: map[string]map[string]bench.Result{}}
	for _, r := range rs {
		if t.byCase[r.Case] == nil {
			t.byCase[r.Case] = map[string]bench.Result{}
			t.order = append(t.order, r.Case)
		}
		t.byCase[r.Case][r.Engine] = r
	}
	for _, base := range []string{bench.Kernel, benchJIT} {
		if !slices.Contains(t.engines, base) {
			continue
		}
		for _, n := range t.engines {
			if n != base && n != bench.Kernel && (base == bench.Kernel || n != benchJIT) {
				t.ratios = append(t.ratios, benchRatio{n, base})
			}
		}
	}
	return t
}

// ratio returns the ratio of engine's time to base's on program c, if
// both measured it.
func (t *benchTable) ratio(c string, q benchRatio) (float64, bool) {
	r, ok1 := t.byCase[c][q.engine]
	b, ok2 := t.byCase[c][q.base]
	if !ok1 || !ok2 || r.Err != nil || b.Err != nil || b.Ns <= 0 || r.Ns <= 0 {
		return 0, false
	}
	return r.Ns / b.Ns, true
}

// printBench prints a table: a row per program, a column per engine
// (ns per run), then each engine's ratio to the kernel and each
// interpreter's to the JIT, with a row of geometric means.
func printBench(e *env, rs []bench.Result) {
	t := newBenchTable(rs)
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "program\t"
	for _, n := range t.engines {
		header += n + " ns\t"
	}
	for _, q := range t.ratios {
		header += q.engine + "/" + q.base + "\t"
	}
	fmt.Fprintln(w, header)
	var errs []string
	for _, r := range rs {
		if r.Err != nil {
			errs = append(errs, fmt.Sprintf("%s on %s: %v", r.Case, r.Engine, r.Err))
		}
	}
	for _, c := range t.order {
		line := c + "\t"
		for _, n := range t.engines {
			r, ok := t.byCase[c][n]
			if !ok || r.Err != nil {
				line += "-\t"
				continue
			}
			line += fmt.Sprintf("%.1f\t", r.Ns)
		}
		for _, q := range t.ratios {
			if x, ok := t.ratio(c, q); ok {
				line += fmt.Sprintf("%.2fx\t", x)
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(w, line)
	}
	if len(t.ratios) > 0 {
		geo := map[string]map[string]float64{}
		line := "geomean\t"
		for range t.engines {
			line += "\t"
		}
		for _, q := range t.ratios {
			if geo[q.base] == nil {
				geo[q.base] = bench.Geomean(rs, q.base)
			}
			if g, ok := geo[q.base][q.engine]; ok {
				line += fmt.Sprintf("%.2fx\t", g)
			} else {
				line += "-\t"
			}
		}
		fmt.Fprintln(w, line)
	}
	w.Flush()
	for _, s := range errs {
		fmt.Fprintln(e.stdout, "error:", s)
	}
}

func printBenchJSON(e *env, rs []bench.Result) error {
	type row struct {
		Program  string   `json:"program"`
		Engine   string   `json:"engine"`
		Ns       float64  `json:"ns_per_run,omitempty"`
		Runs     uint32   `json:"runs_per_round,omitempty"`
		Ret      uint32   `json:"retval"`
		ToKernel *float64 `json:"ratio_to_kernel,omitempty"`
		ToJIT    *float64 `json:"ratio_to_jit,omitempty"`
		Error    string   `json:"error,omitempty"`
	}
	t := newBenchTable(rs)
	out := struct {
		Results         []row              `json:"results"`
		GeomeanToKernel map[string]float64 `json:"geomean_to_kernel,omitempty"`
		GeomeanToJIT    map[string]float64 `json:"geomean_to_jit,omitempty"`
	}{GeomeanToKernel: bench.Geomean(rs, bench.Kernel), GeomeanToJIT: bench.Geomean(rs, benchJIT)}
	// Each base's own ratio (1) and the kernel's to the JIT say nothing.
	delete(out.GeomeanToKernel, bench.Kernel)
	delete(out.GeomeanToJIT, benchJIT)
	delete(out.GeomeanToJIT, bench.Kernel)
	for _, r := range rs {
		x := row{Program: r.Case, Engine: r.Engine, Ns: r.Ns, Runs: r.Runs, Ret: r.Ret}
		for _, q := range t.ratios {
			if q.engine != r.Engine {
				continue
			}
			if v, ok := t.ratio(r.Case, q); ok {
				if q.base == bench.Kernel {
					x.ToKernel = &v
				} else {
					x.ToJIT = &v
				}
			}
		}
		if r.Err != nil {
			x.Error = r.Err.Error()
		}
		out.Results = append(out.Results, x)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// benchMapEntries reads --map-init for the object at path, in the forms
// waggle run takes, into the elements bench puts in waggle's maps and
// the kernel's alike: every element of each map set, but an array's
// zeros (its elements start as zeros).
func (e *env) benchMapEntries(path string, args []string) ([]bench.MapEntry, error) {
	obj, err := loader.LoadFile(path, loader.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{CPUs: 1})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	defer coll.Close()
	om := newObjectMaps(obj, coll, func(msg string) { fmt.Fprintln(e.stderr, "waggle: warning:", msg) })
	if err := om.init(args); err != nil {
		return nil, err
	}
	var es []bench.MapEntry
	for _, name := range om.order {
		if !om.initialized[name] {
			continue
		}
		desc := om.desc[name]
		if why := dumpable(desc.Type); why != "" {
			return nil, fmt.Errorf("--map-init: map %s is a %s: waggle bench sets only elements of bytes (%s)", name, typeName(desc.Type), why)
		}
		array := desc.Type == ebpf.Array || desc.Type == ebpf.PerCPUArray
		for k, v := range coll.Maps[name].All() {
			v = v[:desc.ValueSize] // the one CPU's value of a per-CPU map
			if array && !slices.ContainsFunc(v, func(b byte) bool { return b != 0 }) {
				continue
			}
			es = append(es, bench.MapEntry{Map: name, Key: k, Value: v})
		}
	}
	return es, nil
}
