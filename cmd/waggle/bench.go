package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/bench"
)

func (e *env) benchCmd() *cobra.Command {
	var (
		engineNames []string
		noKernel    bool
		rounds      int
		round       time.Duration
		jsonOut     bool
		only        []string
		blind       bool
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "measure the bundled benchmark programs on every engine and in the kernel's JIT",
		Long: `bench runs waggle's benchmark suite (loops, arithmetic, byte copies and
compares, branch trees, map lookups: internal/bench/testdata/suite.c) on
each engine and, as root, in the kernel's JIT through BPF_PROG_TEST_RUN:
the same object bytes everywhere, interleaved in rounds, each timed on
the thread's CPU clock (so a loaded machine inflates nothing). It prints
the median nanoseconds per run and each engine's ratio to the kernel,
with the geometric mean over the programs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var engines []waggle.Engine
			for _, n := range engineNames {
				eng, err := waggle.ParseEngine(n)
				if err != nil {
					return fmt.Errorf("--engine: %w", err)
				}
				engines = append(engines, eng)
			}
			if rounds <= 0 {
				return fmt.Errorf("--rounds is %d, want at least 1", rounds)
			}
			if round <= 0 {
				return fmt.Errorf("--round is %v, want a positive duration", round)
			}
			cases := bench.Suite()
			if len(only) > 0 {
				var sel []bench.Case
				for _, name := range only {
					found := false
					for _, c := range cases {
						if c.Name == name {
							sel, found = append(sel, c), true
						}
					}
					if !found {
						var names []string
						for _, c := range cases {
							names = append(names, c.Name)
						}
						return fmt.Errorf("--program %q: the suite has %s", name, strings.Join(names, ", "))
					}
				}
				cases = sel
			}
			rs, err := bench.Run(cases, bench.Options{Engines: engines, Kernel: !noKernel, Rounds: rounds, Round: round, BlindConstants: blind})
			if err != nil {
				return err
			}
			if jsonOut {
				return printBenchJSON(e, rs)
			}
			printBench(e, rs)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&engineNames, "engine", nil, "engines to measure (default: all of "+strings.Join(engineList(), ", ")+")")
	f.BoolVar(&noKernel, "no-kernel", false, "leave the kernel's JIT out")
	f.IntVar(&rounds, "rounds", 5, "measurements per engine and program, interleaved; the median is kept")
	f.DurationVar(&round, "round", 20*time.Millisecond, "CPU time one measurement aims at")
	f.BoolVar(&jsonOut, "json", false, "print the results as JSON")
	f.StringSliceVar(&only, "program", nil, "measure only these programs of the suite")
	f.BoolVar(&blind, "blind-constants", false, "load the programs with their constants blinded (the JIT's bpf_jit_harden)")
	return cmd
}

func engineList() []string {
	var names []string
	for _, e := range waggle.Engines() {
		names = append(names, e.String())
	}
	return names
}

// printBench prints a table: a row per program, a column per engine
// (ns per run), then each engine's ratio to the kernel.
func printBench(e *env, rs []bench.Result) {
	engines := bench.Engines(rs)
	hasKernel := false
	for _, n := range engines {
		hasKernel = hasKernel || n == bench.Kernel
	}
	w := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "program\t"
	for _, n := range engines {
		header += n + " ns\t"
	}
	if hasKernel {
		for _, n := range engines {
			if n != bench.Kernel {
				header += n + "/kernel\t"
			}
		}
	}
	fmt.Fprintln(w, header)
	var errs []string
	byCase := map[string]map[string]bench.Result{}
	var order []string
	for _, r := range rs {
		if byCase[r.Case] == nil {
			byCase[r.Case] = map[string]bench.Result{}
			order = append(order, r.Case)
		}
		byCase[r.Case][r.Engine] = r
		if r.Err != nil {
			errs = append(errs, fmt.Sprintf("%s on %s: %v", r.Case, r.Engine, r.Err))
		}
	}
	for _, c := range order {
		line := c + "\t"
		for _, n := range engines {
			r, ok := byCase[c][n]
			if !ok || r.Err != nil {
				line += "-\t"
				continue
			}
			line += fmt.Sprintf("%.1f\t", r.Ns)
		}
		if hasKernel {
			k := byCase[c][bench.Kernel]
			for _, n := range engines {
				if n == bench.Kernel {
					continue
				}
				r := byCase[c][n]
				if k.Err != nil || r.Err != nil || k.Ns <= 0 {
					line += "-\t"
					continue
				}
				line += fmt.Sprintf("%.2fx\t", r.Ns/k.Ns)
			}
		}
		fmt.Fprintln(w, line)
	}
	if hasKernel {
		g := bench.Geomean(rs, bench.Kernel)
		line := "geomean\t"
		for range engines {
			line += "\t"
		}
		for _, n := range engines {
			if n != bench.Kernel {
				line += fmt.Sprintf("%.2fx\t", g[n])
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
		Program string  `json:"program"`
		Engine  string  `json:"engine"`
		Ns      float64 `json:"ns_per_run,omitempty"`
		Runs    uint32  `json:"runs_per_round,omitempty"`
		Ret     uint32  `json:"retval"`
		Error   string  `json:"error,omitempty"`
	}
	out := struct {
		Results []row              `json:"results"`
		Geomean map[string]float64 `json:"geomean_to_kernel,omitempty"`
	}{Geomean: bench.Geomean(rs, bench.Kernel)}
	for _, r := range rs {
		x := row{Program: r.Case, Engine: r.Engine, Ns: r.Ns, Runs: r.Runs, Ret: r.Ret}
		if r.Err != nil {
			x.Error = r.Err.Error()
		}
		out.Results = append(out.Results, x)
	}
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
