package main

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/internal/conformance"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/isa"
)

func (e *env) conformanceCmd() *cobra.Command {
	var engines []string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "conformance PATH...",
		Short: "Run eBPF conformance suite files in-process",
		Long: `Run the public eBPF conformance suite's *.data files (a directory's direct
entries, or single files) on waggle's engines, all CPU versions and groups
enabled. Prints every test that does not pass (every test with -v) and ends
with the line "N passed, M failed", counting one run per test and engine.
Exits 1 if any run failed.`,
		Example: `  waggle conformance testdata/conformance/tests
  waggle conformance --engine interp-checked testdata/conformance/tests/add.data`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var es []conformance.Engine
			for _, name := range engines {
				eng, err := engineByName(name)
				if err != nil {
					return err
				}
				es = append(es, eng)
			}
			files, err := conformance.Files(args...)
			if err != nil {
				return err
			}
			sum := conformance.RunFiles(files, es, func(r conformance.Result) {
				if verbose || (r.Outcome != conformance.Pass && r.Outcome != conformance.Skip) {
					fmt.Fprintln(e.stdout, r)
				}
			})
			fmt.Fprintln(e.stdout, sum)
			if sum.Failed+sum.Errors > 0 {
				return exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&engines, "engine", []string{"interp-checked", "interp-fast"}, "engines to run: interp-checked, interp-fast")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every result, passes too")
	return cmd
}

func engineByName(name string) (conformance.Engine, error) {
	// "interp-checked" is the checked interpreter's name in this
	// command's output since before the engine seam.
	switch name {
	case "interp-checked", engines.Interp:
		e, err := engines.ByName(engines.Interp)
		if err != nil {
			return conformance.Engine{}, err
		}
		ce := conformance.On(e)
		ce.Name = "interp-checked"
		return ce, nil
	case engines.InterpFast:
		e, err := engines.ByName(name)
		if err != nil {
			return conformance.Engine{}, err
		}
		return conformance.On(e), nil
	}
	return conformance.Engine{}, fmt.Errorf("unknown engine %q, want interp-checked or interp-fast", name)
}

// pluginCmd implements the plugin protocol of the conformance suite's own
// runner (bpf_conformance_runner --plugin_path waggle --plugin_options
// conformance-plugin): the program arrives on stdin as one line of hex
// bytecode (or, with --elf, the hex of an ELF object), the memory as the
// first argument, and r0 goes to stdout in hex.
func (e *env) pluginCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "conformance-plugin [MEMORY_HEX] [--checked|--fast|--interpret] [--elf]",
		Short: "Act as a plugin of the conformance suite's runner (bpf_conformance_runner)",
		Long: `Run one conformance test as the suite's runner asks a plugin to:

  bpf_conformance_runner --test_file_directory tests \
    --plugin_path $(which waggle) --plugin_options conformance-plugin \
    --cpu_version v4 --include_groups callx packet

The program is read from stdin as one line of hex bytecode (8 bytes per
instruction), or with --elf as the hex of an ELF object whose symbol "main"
is the program. MEMORY_HEX, when present, is the input memory. On success r0
is printed in hex and the status is 0; otherwise the error goes to stderr and
the status is 1. The interpreter runs in checked mode unless --fast is given.`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			r0, err := e.plugin(args)
			if err != nil {
				return exitError{code: 1, msg: err.Error()}
			}
			fmt.Fprintf(e.stdout, "%x\n", r0)
			return nil
		},
	}
}

func (e *env) plugin(args []string) (uint64, error) {
	name, useELF := engines.Interp, false
	var memory []byte
	for i, a := range args {
		switch a {
		case "--checked", "--interpret":
			name = engines.Interp
		case "--fast":
			name = engines.InterpFast
		case "--elf":
			useELF = true
		case "--jit":
			return 0, errors.New("--jit: waggle's JIT is not built yet; use --interpret")
		case "-h", "--help":
			return 0, errors.New("usage: waggle conformance-plugin [MEMORY_HEX] [--checked|--fast] [--elf] < program.hex")
		default:
			if strings.HasPrefix(a, "-") || i > 0 {
				return 0, fmt.Errorf("unknown argument %q", a)
			}
			b, err := parseHex(a)
			if err != nil && strings.TrimSpace(a) != "" {
				return 0, fmt.Errorf("memory: %w", err)
			}
			memory = b
		}
	}
	line, err := io.ReadAll(e.stdin)
	if err != nil {
		return 0, err
	}
	code, err := parseHex(string(line))
	if err != nil {
		return 0, fmt.Errorf("program on stdin: %w", err)
	}
	var prog []isa.Instruction
	if useELF {
		prog, err = pluginELF(code)
	} else {
		prog, err = isa.Decode(code)
	}
	if err != nil {
		return 0, err
	}
	eng, err := engines.ByName(name)
	if err != nil {
		return 0, err
	}
	return conformance.RunOn(eng, prog, memory)
}

// pluginELF returns the function "main" of the runner's minimal ELF object.
func pluginELF(data []byte) ([]isa.Instruction, error) {
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("ELF on stdin: %w", err)
	}
	syms, err := f.Symbols()
	if err != nil {
		return nil, fmt.Errorf("ELF on stdin: %w", err)
	}
	for _, s := range syms {
		if s.Name != "main" || int(s.Section) >= len(f.Sections) {
			continue
		}
		sec := f.Sections[s.Section]
		b, err := sec.Data()
		if err != nil {
			return nil, fmt.Errorf("ELF section %s: %w", sec.Name, err)
		}
		end := s.Value + s.Size
		if s.Size == 0 || end > uint64(len(b)) {
			end = uint64(len(b))
		}
		if s.Value > end {
			return nil, fmt.Errorf("ELF symbol main at %d lies outside section %s", s.Value, sec.Name)
		}
		return isa.DecodeOrder(b[s.Value:end], f.ByteOrder)
	}
	return nil, errors.New("ELF on stdin has no symbol main")
}
