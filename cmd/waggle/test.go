package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/bpftest"
)

// testCase is one reported case of "waggle test --json".
type testCase struct {
	Object string   `json:"object"`
	Name   string   `json:"name"`
	Status string   `json:"status"`
	Logs   []string `json:"logs,omitempty"`
}

// testReport is what "waggle test --json" prints.
type testReport struct {
	Engine  string     `json:"engine"`
	Cases   []testCase `json:"cases"`
	Passed  int        `json:"passed"`
	Failed  int        `json:"failed"`
	Skipped int        `json:"skipped"`
}

func (e *env) testCmd() *cobra.Command {
	var (
		runRE, engine string
		asJSON        bool
	)
	cmd := &cobra.Command{
		Use:   "test OBJ...",
		Short: "Run BPF unit tests in Cilium's pktgen/setup/check convention",
		Long: `Run the BPF unit tests of clang-built objects, written in Cilium's
convention: programs in sections <type>/test/<name>/pktgen, .../setup and
.../check (type tc or xdp). pktgen builds a packet, setup runs the code
under test on it, check asserts and writes a protobuf SuiteResult into the
map suite_result_map. Tail-call programs in */tail sections are placed in
their prog array by their BTF decl tag tail:<map>/<slot>.

The tests of one object run in name order, in one loaded collection, so
map contents carry over from test to test. Each TEST() block of a check is
a case; a check without one is a case itself. Prints every case with its
status and the test's own log messages, and ends with the line
"N passed, M failed". Exits 1 if any case failed or could not run.

By default the tests run in waggle's user-space runtime, without
privileges, on the engine waggle picks (--engine auto: the JIT on
linux/amd64, the checked interpreter elsewhere); --engine interp,
interp-fast or jit names one. --engine kernel loads the object into the
running kernel and runs it with BPF_PROG_TEST_RUN (root).`,
		Example: `  waggle test examples/unittest/unittest.o
  waggle test out/*.o --run 'lb4' --json
  sudo waggle test out/tc_lb4_clusterip.o --engine kernel`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := bpftest.Options{Engine: bpftest.Kernel{}}
			eng, kern, err := parseEngine(engine)
			if err != nil {
				return err
			}
			if !kern {
				opts.Engine = bpftest.Interp{Options: &waggle.CollectionOptions{Engine: eng, RandSeed: bpftest.DefaultRandSeed}}
			}
			if runRE != "" {
				re, err := regexp.Compile(runRE)
				if err != nil {
					return fmt.Errorf("--run: %w", err)
				}
				opts.Run = re
			}
			name := engine
			if !kern {
				name = eng.Resolve(true).String() // bpftest loads verified collections
			}
			report := testReport{Engine: name, Cases: []testCase{}}
			var sum bpftest.Summary
			for _, path := range args {
				obj, err := bpftest.Open(path)
				if err != nil {
					sum.Failed++
					c := testCase{Object: path, Name: "", Status: bpftest.Error.String(), Logs: []string{err.Error()}}
					report.Cases = append(report.Cases, c)
					if !asJSON {
						fmt.Fprintf(e.stdout, "%-5s %s\n", c.Status, path)
						fmt.Fprintf(e.stdout, "      %s\n", err)
					}
					continue
				}
				for _, r := range bpftest.Run(obj, opts) {
					sum.Add(r)
					for _, c := range r.Cases() {
						tc := testCase{Object: obj.Name, Name: c.Name, Status: c.Status.String(), Logs: c.Logs}
						report.Cases = append(report.Cases, tc)
						if asJSON {
							continue
						}
						fmt.Fprintf(e.stdout, "%-5s %s: %s\n", tc.Status, obj.Name, c.Name)
						for _, l := range c.Logs {
							fmt.Fprintf(e.stdout, "      %s\n", l)
						}
					}
				}
			}
			report.Passed, report.Failed, report.Skipped = sum.Passed, sum.Failed, sum.Skipped
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				if sum.Skipped > 0 {
					fmt.Fprintf(e.stdout, "%d skipped\n", sum.Skipped)
				}
				fmt.Fprintln(e.stdout, sum)
			}
			if sum.Failed > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&runRE, "run", "", "run only the tests whose name matches `REGEX`")
	f.StringVar(&engine, "engine", waggle.EngineAuto.String(), "where tests run: in user space on "+strings.Join(append([]string{"auto"}, engineList()...), ", ")+", or kernel (BPF_PROG_TEST_RUN, root)")
	f.BoolVar(&asJSON, "json", false, "print the cases and counts as JSON")
	return cmd
}
