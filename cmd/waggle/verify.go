package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// verifyLine is one program's verdict, as --json prints it.
type verifyLine struct {
	Object           string `json:"object"`
	Section          string `json:"section"`
	Program          string `json:"program"`
	Verdict          string `json:"verdict"`
	Error            string `json:"error,omitempty"`
	Insn             *int   `json:"insn,omitempty"`
	Line             string `json:"line,omitempty"`
	ProcessedInsns   int    `json:"processed_insns"`
	States           int    `json:"states"`
	VerificationUsec int64  `json:"verification_usec"`
}

func (e *env) verifyCmd() *cobra.Command {
	var (
		program, progType, target string
		showLog, unpriv, asJSON   bool
		logLevel                  int
	)
	cmd := &cobra.Command{
		Use:   "verify OBJ...",
		Short: "Verify the programs of clang-built objects as Linux's verifier would",
		Long: `Verify every program of each object (or only --program) with waggle's
verifier: it explores every path of the program, tracking the type and range
of every register and stack slot, and rejects what Linux's verifier rejects:
out-of-bounds or unchecked memory accesses, unbounded loops, uninitialised
reads, bad helper arguments and leaked references.

A rejection prints the instruction, its source line, the branches taken on
the way there, the registers and a hint. --log prints a kernel-style log of
every processed instruction in the layout of the kernel's level 2 log
(bpftool prog load ... -d, or libbpf's log_level=2), so the two can be
diffed; an lddw of a map prints map[name] where the kernel prints the map's
address, and ids may be numbered differently. --log-level 1 prints, like
the kernel's level 1, only the last path explored: for a rejected program,
the path to the error.

--target says what the programs are verified for, which decides the helpers
they may call: user (the default) the helpers waggle's runtime implements,
linux those upstream Linux 6.18 offers the program type (implemented in
waggle or not), host those the running kernel offers, probed (it needs root;
it also checks that the kernel has the program and map types). A call to a
helper the target lacks is rejected with the kernel's message ("program of
this type cannot use helper bpf_xdp_adjust_meta#54") and why. --target host
predicts what this kernel's verifier says.

Exits 0 only if every program was accepted.`,
		Example: `  waggle verify examples/counter/counter.o
  waggle verify prog.o --program xdp_main --log
  waggle verify prog.o --log --log-level 1
  waggle verify out/*.o --json
  waggle verify prog.o --target host`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tgt, err := progtype.ParseTarget(target)
			if err != nil {
				return fmt.Errorf("--target: %w", err)
			}
			if logLevel != 1 && logLevel != 2 && logLevel != 5 && logLevel != 6 {
				return fmt.Errorf("--log-level is %d, want 1 or 2, plus 4 for the stack depths and time (5, 6)", logLevel)
			}
			f := &objectFlags{progType: progType}
			lopts, err := f.loaderOptions()
			if err != nil {
				return err
			}
			rejected, found := 0, 0
			enc := json.NewEncoder(e.stdout)
			for _, path := range args {
				obj, err := loader.LoadFile(path, lopts)
				if err != nil {
					return err
				}
				coll, err := waggle.NewCollectionFromObject(obj, &waggle.CollectionOptions{})
				if err != nil {
					return fmt.Errorf("%s: %w", path, err)
				}
				names := make([]string, 0, len(coll.Programs))
				for n := range coll.Programs {
					if program == "" || n == program {
						names = append(names, n)
					}
				}
				sort.Strings(names)
				for _, n := range names {
					p := coll.Programs[n]
					found++
					var log bytes.Buffer
					opts := &verifier.Options{Unprivileged: unpriv, Target: tgt}
					if showLog {
						opts.Log, opts.LogLevel = &log, logLevel
					}
					res, verr := p.Verify(context.Background(), opts)
					line := verifyLine{Object: path, Section: p.Section(), Program: n, Verdict: "accepted"}
					if res != nil {
						line.ProcessedInsns, line.States, line.VerificationUsec = res.Processed, res.States, res.Duration.Microseconds()
					}
					if errors.Is(verr, progtype.ErrHostProbe) {
						// No verdict: the target cannot be decided here.
						coll.Close()
						return verr
					}
					var ve *verifier.Error
					if verr != nil {
						rejected++
						line.Verdict, line.Error = "rejected", verr.Error()
						if errors.As(verr, &ve) && ve.Insn >= 0 {
							insn := ve.Insn
							line.Insn = &insn
							if ve.File != "" {
								line.Line = fmt.Sprintf("%s:%d", ve.File, ve.Line)
							}
						}
					}
					if asJSON {
						if err := enc.Encode(line); err != nil {
							return err
						}
						continue
					}
					if showLog {
						fmt.Fprint(e.stdout, log.String())
					}
					switch {
					case verr == nil:
						fmt.Fprintf(e.stdout, "%s: %s (%s): accepted, processed %d insns, %d states\n", path, n, p.Section(), res.Processed, res.States)
					case ve != nil:
						fmt.Fprintf(e.stdout, "%s: %s (%s): rejected\n%s", path, n, p.Section(), indent(ve.Explain()))
					default:
						fmt.Fprintf(e.stdout, "%s: %s (%s): rejected: %v\n", path, n, p.Section(), verr)
					}
				}
				coll.Close()
			}
			if program != "" && found == 0 {
				return fmt.Errorf("no program %q", program)
			}
			if rejected > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&program, "program", "", "verify only this program (function name)")
	fl.StringVar(&progType, "type", "", "program type of programs whose section names none ("+strings.Join(programTypeNames(), ", ")+")")
	fl.StringVar(&target, "target", "user", "what the programs are verified for: "+strings.Join(progtype.TargetNames(), ", ")+" (waggle's runtime, upstream Linux 6.18, the running kernel)")
	fl.BoolVar(&showLog, "log", false, "print a kernel-style log of every processed instruction")
	fl.IntVar(&logLevel, "log-level", 2, "with --log: 2 logs every path, 1 only the last one (the path to an error), as the kernel's log levels; add 4 for the stack depths and time (BPF_LOG_STATS)")
	fl.BoolVar(&unpriv, "unprivileged", false, "apply the rules for programs loaded without CAP_BPF")
	fl.BoolVar(&asJSON, "json", false, "print one JSON object per program")
	return cmd
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}
