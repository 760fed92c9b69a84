package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/conformance"
	"github.com/waggle-bpf/waggle/internal/engine"
	"github.com/waggle-bpf/waggle/internal/engines"
	"github.com/waggle-bpf/waggle/internal/mem"
	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
)

// dumpAll is --map-dump's value when no map is named.
const dumpAll = "*"

// runResult is what "waggle run --json" prints.
type runResult struct {
	Program      string `json:"program"`
	Mode         string `json:"mode"`   // "checked" or "fast" (any engine that does not check)
	Engine       string `json:"engine"` // the engine's name
	R0           uint64 `json:"r0"`
	R0Hex        string `json:"r0_hex"`
	Instructions uint64 `json:"instructions,omitempty"`
	Memory       string `json:"memory_hex,omitempty"`
	Error        string `json:"error,omitempty"`
}

func (e *env) runCmd() *cobra.Command {
	var (
		format, section, memFile, memHex, memOut, mode, engineName string
		asJSON, trace, count                                       bool
		budget                                                     uint64
		timeout                                                    time.Duration
	)
	var obj objectFlags
	cmd := &cobra.Command{
		Use:   "run PROGRAM",
		Short: "Run a program in user space: on packets, on a capture, or on memory",
		Long: `Run an eBPF program in waggle's runtime (or, with --engine kernel, in the
running kernel).

Objects with program types. An ELF object whose sections name program types
(xdp, tc, socket, ...) is loaded whole, with its maps, and one program
(--program, or the only one) runs:
  --pcap IN [--out OUT]    over every frame of a capture, writing the frames
                           it passes or transmits (modified) to OUT, then a
                           summary: packets, verdicts, packets per second
  --iface IF               the same, live, on the frames arriving at an
                           interface (AF_PACKET; needs --packets or --duration)
  --data-in F [--data-out F] [--ctx-in F] [--ctx-out F] [--repeat N]
                           once on a packet, as bpftool prog run does
and, around the run:
  --map-init FILE          set map elements first, from what --map-dump
                           prints ({"maps": {NAME: [entries]}}), or
                           NAME=FILE with bpftool's dump of one map; keys
                           and values as hex bytes, or typed from BTF as
                           bpftool's "formatted" shows them
  --map-dump [NAME...]     afterwards, print every map (or the NAMEs) as
                           bpftool map dump -j prints it, in {"maps": ...}
  --events                 print ring buffer and perf event array records
                           as each packet's run emits them: in text,
                           "packet N: MAP (TYPE[, CPU C]): LEN bytes: HEX";
                           with --json, one object per line with packet,
                           map, type, cpu (perf), and data (hex) or lost

Raw programs. Anything else runs as instructions on memory and prints r0:
assembly (.s), raw bytecode (.bin), hex (a .hex file, or inline hex when no
file of that name exists), a conformance .data file (its memory is used
unless --mem or --mem-hex is given), or an ELF section without a program
type (--section). Memory is passed as the conformance suite does: r1 points
to a writable copy, r2 holds its length.

Programs of objects are verified first, as Linux loads only what its
verifier accepts (waggle verify says why one is rejected); --unverified
runs them without the verifier. Raw programs are not verified.

Engines (--engine; the output names the one that ran):
  auto         the default: jit on linux/amd64 for verified programs,
               interp for --unverified and raw programs and elsewhere
  jit          x86-64 machine code (linux/amd64); like Linux's JIT it
               checks no memory access at run time: the verifier's proof
               keeps the program in bounds
  interp       the checked interpreter: every memory access is validated
               against the memory the run owns, and a bad one stops the
               run with an error naming the instruction
  interp-fast  the interpreter without those checks
  kernel       the running kernel: the object is loaded with Linux's
               verifier and each run is a BPF_PROG_TEST_RUN (root), with
               the same --data-in, --ctx-in, --repeat and --pcap inputs;
               with --iface, the program is attached to the interface for
               real (XDP; tc programs at TCX ingress) until --packets or
               --duration, and the verdicts its runs returned, counted in
               a map waggle adds to the object, are reported (no --out:
               the kernel hands the frames on itself)
jit and interp-fast run only programs the verifier accepted, and are
refused with --unverified and for raw programs. (--mode checked and
--mode fast are the older spellings of interp and interp-fast.)

Every run is bounded: --budget bounds the instructions a run executes
(counted where it loops, calls and enters callbacks), and --timeout stops
the command's runs after a while; a run that reaches either ends with an
error naming the instruction.`,
		Example: `  waggle run examples/tailcall/dispatch.o --program xdp_dispatch --pcap examples/traffic/traffic.pcap
  waggle run examples/blocklist/blocklist.o --data-in packet.bin --data-out out.bin
  waggle run examples/blocklist/blocklist.o --pcap examples/traffic/traffic.pcap --map-init examples/blocklist/blocklist.json --map-dump
  waggle run examples/events/events.o --pcap examples/traffic/traffic.pcap --events --packets 5
  waggle run examples/checksum/checksum.o --mem examples/checksum/ipv4-header.bin
  waggle run prog.s --mem-hex "01 02 03 04" --json
  waggle run "b7 00 00 00 2a 00 00 00 95 00 00 00 00 00 00 00"`,
		Args: func(cmd *cobra.Command, args []string) error {
			// Names after --map-dump are the maps to dump.
			if len(args) == 0 || len(args) > 1 && !cmd.Flags().Changed("map-dump") {
				return fmt.Errorf("accepts 1 arg(s), received %d", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			obj.dumpMaps = cmd.Flags().Changed("map-dump")
			obj.workersSet = cmd.Flags().Changed("workers")
			obj.mapDump = append(slices.DeleteFunc(obj.mapDump, func(s string) bool { return s == dumpAll }), args[1:]...)
			eng, kern, err := engineFlag(cmd, engineName, mode)
			if err != nil {
				return err
			}
			if isELF(args[0]) && section == "" && memFile == "" && memHex == "" {
				lopts, err := obj.loaderOptions()
				if err != nil {
					return err
				}
				o, err := loader.LoadFile(args[0], lopts)
				if obj.given() && err != nil {
					return err
				}
				if obj.given() || (err == nil && hasTypedPrograms(o)) {
					obj.engine, obj.asJSON = eng, asJSON
					obj.ctx, obj.budget, obj.timeout = ctx, budget, timeout
					if kern {
						return e.runKernel(cmd, args[0], o, &obj)
					}
					return e.runObject(args[0], o, &obj)
				}
			}
			if obj.given() {
				return fmt.Errorf("%s: --program, --type, --pcap, --iface, --data-in, --map-init, --map-dump and --events need an ELF object with program types", args[0])
			}
			if kern {
				return fmt.Errorf("%s: --engine kernel runs programs of ELF objects whose sections name a program type (xdp, tc, socket, ...); a raw program has none", args[0])
			}
			switch eng {
			case waggle.EngineAuto:
				eng = waggle.EngineInterp // raw programs are not verified
			case waggle.EngineInterp:
			default:
				return errUnchecked(eng, "raw programs are not verified")
			}
			p, err := e.readProgram(args[0], format, section)
			if err != nil {
				return err
			}
			if p.relocations > 0 {
				return fmt.Errorf("%s: %d relocations (maps, global data or calls into other sections): running objects that need the loader is not supported yet", p.source, p.relocations)
			}
			data, given, err := readMemory(memFile, memHex)
			if err != nil {
				return err
			}
			if !given {
				data = p.mem
			}
			impl, err := engines.ByName(eng.String())
			if err != nil {
				return err
			}
			res := runResult{Program: p.source, Mode: modeName(eng), Engine: eng.String()}
			var n uint64
			opts := engine.Options{Helpers: conformance.Helpers(), Budgeted: true}
			if trace || count {
				opts.Trace = func(pc int, regs *[11]uint64) {
					n++
					if trace {
						printTrace(e, p.insns, pc, regs)
					}
				}
			}
			prog, err := impl.Load(p.insns, opts)
			if err != nil {
				return fmt.Errorf("%s: %w", p.source, err)
			}
			buf := mem.Aligned(len(data))
			copy(buf, data)
			a := &engine.Args{Budget: budget, Stop: new(atomic.Bool)}
			if len(buf) > 0 {
				a.Regs = [5]uint64{mem.Addr(buf), uint64(len(buf))}
				a.Regions = []engine.Region{{Data: buf, Writable: true}}
			}
			stop := context.AfterFunc(ctx, func() { a.Stop.Store(true) })
			r0, runErr := impl.NewMachine().Run(prog, a)
			stop()
			runErr = explainLimit(runErr, ctx, timeout)
			res.R0, res.R0Hex = r0, fmt.Sprintf("%#x", r0)
			if count {
				res.Instructions = n
			}
			if len(buf) > 0 && (asJSON || memOut != "") {
				res.Memory = hex.EncodeToString(buf)
			}
			if memOut != "" {
				if err := os.WriteFile(memOut, buf, 0o644); err != nil {
					return err
				}
			}
			if runErr != nil {
				res.Error = runErr.Error()
			}
			if asJSON {
				enc := json.NewEncoder(e.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(res); err != nil {
					return err
				}
				if runErr != nil {
					return exitError{code: 1}
				}
				return nil
			}
			if runErr != nil {
				return fmt.Errorf("%s: %w", p.source, runErr)
			}
			fmt.Fprintf(e.stdout, "r0 = %#x (%d)\n", r0, int64(r0))
			if count {
				fmt.Fprintf(e.stdout, "%d instructions executed\n", n)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&format, "format", formatAuto, "program format: "+strings.Join(formats, ", "))
	f.StringVar(&section, "section", "", "ELF `SECTION` holding the program")
	f.StringVar(&memFile, "mem", "", "input memory from `FILE`")
	f.StringVar(&memHex, "mem-hex", "", "input memory as hex bytes")
	f.StringVar(&memOut, "mem-out", "", "write the memory after the run to `FILE`")
	f.StringVar(&engineName, "engine", waggle.EngineAuto.String(), "what runs the program: auto (jit on linux/amd64 for verified programs, interp otherwise), "+strings.Join(engineList(), ", ")+" (interp-fast and jit run only programs of objects the verifier accepted, unchecked), or kernel (BPF_PROG_TEST_RUN, root)")
	f.StringVar(&mode, "mode", "checked", "the older spelling of --engine: checked (interp) or fast (interp-fast)")
	f.Lookup("mode").Hidden = true
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.BoolVar(&trace, "trace", false, "print each instruction and the nonzero registers before it executes (to stderr)")
	f.BoolVar(&count, "count", false, "count executed instructions")
	f.Uint64Var(&budget, "budget", waggle.DefaultBudget, "stop a run after this many instructions (counted at loops, calls and callbacks; 0: no limit)")
	f.DurationVar(&timeout, "timeout", 0, "stop running after this long, e.g. 5s (0: no limit)")
	f.StringVar(&obj.program, "program", "", "the object's program to run")
	f.BoolVar(&obj.unverified, "unverified", false, "run the object's programs without verifying them first (checked mode catches bad accesses at run time)")
	f.StringVar(&obj.progType, "type", "", "program type (xdp, tc, socket, ...) of the program run, overriding its section name's, and of every program whose section names none")
	f.StringVar(&obj.pcapIn, "pcap", "", "run over the frames of this capture `FILE` (pcap or pcapng)")
	f.StringVar(&obj.pcapOut, "out", "", "write the frames the program passes or transmits to this pcap `FILE`")
	f.StringVar(&obj.iface, "iface", "", "run live on the frames arriving at this interface")
	f.IntVar(&obj.packets, "packets", 0, "stop after this many packets (0: all)")
	f.DurationVar(&obj.duration, "duration", 0, "stop after this long (live runs)")
	f.StringVar(&obj.dataIn, "data-in", "", "run once on the packet in this `FILE`")
	f.StringVar(&obj.dataOut, "data-out", "", "write the packet after the run to this `FILE`")
	f.StringVar(&obj.ctxIn, "ctx-in", "", "the context (xdp_md, __sk_buff, ...) from this `FILE`")
	f.StringVar(&obj.ctxOut, "ctx-out", "", "write the context after the run to this `FILE`")
	f.Uint32Var(&obj.repeat, "repeat", 1, "run this many times (with --data-in)")
	f.IntVar(&obj.cpus, "cpus", 0, "worker slots for per-CPU maps (0: the machine's CPUs)")
	f.IntVar(&obj.workers, "workers", 0, "run --pcap or --iface packets on this many workers at once, each on its own CPU slot (default: one per core, at most --cpus; one with --events)")
	f.BoolVar(&obj.printTrace, "trace-printk", false, "print bpf_trace_printk output to stderr")
	f.StringVar(&obj.net, "net", "", "the host's network the helpers see: a JSON or YAML `FILE`, \"host\" (this namespace) or \"netns:NAME\" (default: an empty host)")
	f.StringArrayVar(&obj.mapInit, "map-init", nil, "set map elements from `FILE` (what --map-dump prints), or NAME=FILE (bpftool's dump of map NAME), before the run")
	f.StringSliceVar(&obj.mapDump, "map-dump", nil, "after the run, print every map, or each `NAME` given after the flag (or as --map-dump=A,B), as bpftool map dump -j does")
	f.Lookup("map-dump").NoOptDefVal = dumpAll
	f.BoolVar(&obj.events, "events", false, "print ring buffer and perf event array records as the runs emit them")
	return cmd
}

// kernelEngine is --engine's name for the running kernel.
const kernelEngine = "kernel"

// engineFlag returns the engine --engine names, or --mode, its older
// spelling, if that is given instead; kernel reports --engine kernel.
func engineFlag(cmd *cobra.Command, name, mode string) (e waggle.Engine, kernel bool, err error) {
	byEngine, byMode := cmd.Flags().Changed("engine"), cmd.Flags().Changed("mode")
	switch {
	case byEngine && byMode:
		return 0, false, fmt.Errorf("--engine and --mode both given: --mode checked is --engine interp, --mode fast is --engine interp-fast")
	case byMode:
		e, err := parseMode(mode)
		return e, false, err
	}
	return parseEngine(name)
}

// parseEngine returns the engine an --engine value names: one of
// waggle's (auto, interp, interp-fast, jit), or kernel.
func parseEngine(name string) (e waggle.Engine, kernel bool, err error) {
	if name == kernelEngine {
		return waggle.EngineAuto, true, nil
	}
	e, err = waggle.ParseEngine(name)
	if err != nil {
		names := append([]string{waggle.EngineAuto.String()}, engineList()...)
		return 0, false, fmt.Errorf("--engine: unknown engine %q, want one of %s or %s", name, strings.Join(names, ", "), kernelEngine)
	}
	return e, false, nil
}

// modeName is the --mode name of an engine, for the JSON output's "mode":
// "checked" for the checked interpreter, "fast" for the others.
func modeName(e waggle.Engine) string {
	if e == waggle.EngineInterp {
		return "checked"
	}
	return "fast"
}

// parseMode returns the engine --mode names.
func parseMode(s string) (waggle.Engine, error) {
	switch s {
	case "checked":
		return waggle.EngineInterp, nil
	case "fast":
		return waggle.EngineInterpFast, nil
	}
	return 0, fmt.Errorf("--mode is %q, want checked or fast", s)
}

// errUnchecked refuses an engine that checks no memory access (--engine
// interp-fast or jit) for a program the verifier has not accepted, saying
// why it was not.
func errUnchecked(e waggle.Engine, why string) error {
	return fmt.Errorf("--engine %s: %s, and %s skips the memory checks, which is safe only for programs the verifier has accepted; an unverified program there can crash waggle or print its memory. Run it in checked mode (--engine interp, which --engine auto, the default, picks for it): it stops a bad access with an error naming the instruction", e, why, e)
}

// explainLimit adds the flag to change to a run's budget or deadline
// error.
func explainLimit(err error, ctx context.Context, timeout time.Duration) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, waggle.ErrBudget):
		return fmt.Errorf("--budget reached: %w", err)
	case errors.Is(err, waggle.ErrStopped) && errors.Is(ctx.Err(), context.DeadlineExceeded) && timeout > 0:
		return fmt.Errorf("--timeout %v reached: %w", timeout, err)
	}
	return err
}

// printTrace prints one executed instruction with r0-r5 and r10.
func printTrace(e *env, insns []isa.Instruction, pc int, regs *[11]uint64) {
	var next isa.Instruction
	if pc+1 < len(insns) {
		next = insns[pc+1]
	}
	var rs []string
	for i := range 10 {
		if regs[i] != 0 {
			rs = append(rs, fmt.Sprintf("r%d=%#x", i, regs[i]))
		}
	}
	fmt.Fprintf(e.stderr, "%5d: %-40s ; %s\n", pc, isa.Format(insns[pc], next), strings.Join(rs, " "))
}
