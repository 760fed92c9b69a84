package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/kernel"
	"github.com/waggle-bpf/waggle/loader"
)

// loadProgram is one loaded program, as waggle load prints it.
type loadProgram struct {
	Name          string `json:"name"`
	Section       string `json:"section"`
	Type          string `json:"type"`
	TypeFrom      string `json:"type_from"`
	ID            uint32 `json:"id"`
	Tag           string `json:"tag"`
	XlatedBytes   int    `json:"bytes_xlated"`
	JitedBytes    uint32 `json:"bytes_jited"`
	VerifiedInsns uint32 `json:"verified_insns"`
	Pin           string `json:"pinned,omitempty"`
	Waggle        string `json:"waggle,omitempty"`
	Disagree      bool   `json:"verdicts_differ,omitempty"`
	Log           string `json:"log,omitempty"` // --log-level
}

// loadMap is one map of the loaded object.
type loadMap struct {
	Name       string `json:"name"`
	Type       string `json:"type"`
	ID         uint32 `json:"id"`
	KeySize    uint32 `json:"bytes_key"`
	ValueSize  uint32 `json:"bytes_value"`
	MaxEntries uint32 `json:"max_entries"`
	Flags      uint32 `json:"flags"`
	Pin        string `json:"pinned,omitempty"`
	Reused     bool   `json:"reused,omitempty"`
}

// loadRefusal is a program the kernel (or cilium/ebpf) refused.
type loadRefusal struct {
	Program string   `json:"program"`
	Section string   `json:"section"`
	By      string   `json:"refused_by"` // "kernel" or "cilium/ebpf"
	Insn    *int     `json:"insn,omitempty"`
	Line    string   `json:"line,omitempty"`
	Error   string   `json:"error"`
	Probe   string   `json:"probe,omitempty"`
	Waggle  string   `json:"waggle,omitempty"`
	Log     []string `json:"log,omitempty"`
}

// loadResult is what waggle load prints for one object (--json: one
// object per line).
type loadResult struct {
	Object   string        `json:"object"`
	Pinned   string        `json:"pin_path,omitempty"`
	Programs []loadProgram `json:"programs"`
	Maps     []loadMap     `json:"maps"`
	Skipped  []loadSkip    `json:"skipped,omitempty"`
	Refused  []loadRefusal `json:"refused,omitempty"`
	Notes    []string      `json:"notes,omitempty"`
}

type loadSkip struct {
	Name    string `json:"name"`
	Section string `json:"section"`
	Reason  string `json:"reason"`
}

func (e *env) loadCmd() *cobra.Command {
	var (
		programs, types []string
		pin, pinMaps    string
		logLevel        uint32
		compare, asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "load OBJ",
		Short: "Load an object's programs and maps into the running kernel (root)",
		Long: `Load the programs and maps of a clang-built object into the running Linux
kernel, as libbpf or tc would, and print what was loaded: for each program
its type, kernel id, tag, translated and JIT-compiled sizes and the number of
instructions the verifier processed; for each map its id, type and sizes.

The object is read by waggle's loader, which also takes objects cilium/ebpf
refuses (legacy "maps" sections, iproute2's bpf_elf_map, old clang's
zero-size and untyped symbols, RELA relocations, objects with only .text),
then loaded through cilium/ebpf, which resolves CO-RE relocations against the
kernel's BTF. A program whose section names no type (iproute2's "ingress",
Open vSwitch's "tail-3") takes the type of the programs whose prog arrays
hold it, or the one --type gives: --type SEC=TYPE for a section or program,
--type TYPE for every program without one.

Without --pin, the programs and maps are released when waggle exits: this
only checks that the kernel accepts the object. With --pin DIR (a directory
on a bpf filesystem, e.g. /sys/fs/bpf/NAME) every program is pinned at
DIR/progs/NAME and every map at DIR/maps/NAME ('.' written '_': .rodata is
DIR/maps/_rodata), so they outlive the command for waggle attach and waggle
map dump. A map already pinned there is reused, contents and all (a second
load shares the first one's maps), and must have the object's definition;
program pins are replaced. --pin-maps by-name pins only the maps the object
asks to pin (LIBBPF_PIN_BY_NAME, iproute2's pinning).

A program the kernel refuses is reported with the verifier's log, the
instruction it stopped at and that instruction's C source line; waggle's
verifier judges every program too (--compare), and where its verdict and
the kernel's differ both are shown. Exits 1 if any program was refused.`,
		Example: `  waggle load examples/counter/counter.o
  waggle load examples/counter/counter.o --pin /sys/fs/bpf/counter
  waggle load iproute2_prog.o --type ingress=tc --json
  waggle load prog.o --program xdp_main --log-level 1`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &kernel.CollectionOptions{Programs: programs, PinPath: pin, CrossCheck: compare, LogLevel: ebpf.LogLevel(logLevel)}
			var err error
			if opts.Loader, err = typeOptions(types); err != nil {
				return err
			}
			switch pinMaps {
			case "all":
				opts.PinMaps = kernel.PinAllMaps
			case "by-name":
				opts.PinMaps = kernel.PinMapsByName
			default:
				return fmt.Errorf("--pin-maps %q: want all or by-name", pinMaps)
			}
			if cmd.Flags().Changed("pin-maps") && pin == "" {
				return errors.New("--pin-maps needs --pin DIR")
			}
			if err := kernel.Supported(); err != nil {
				return fmt.Errorf("waggle load needs to load programs into the kernel (root, or CAP_BPF and CAP_NET_ADMIN): %w", err)
			}
			path := args[0]
			c, err := kernel.LoadCollection(path, opts)
			var le *kernel.LoadError
			switch {
			case errors.As(err, &le):
				res := loadResult{Object: path}
				for _, r := range le.Refused {
					res.Refused = append(res.Refused, refusal(r))
				}
				if asJSON {
					if err := json.NewEncoder(e.stdout).Encode(res); err != nil {
						return err
					}
				} else {
					fmt.Fprintf(e.stderr, "%+v", le)
				}
				return exitError{code: 1, msg: fmt.Sprintf("%s: the kernel refused %d program(s); nothing was loaded", path, len(le.Refused))}
			case err != nil:
				return err
			}
			defer c.Close()
			res, err := describeLoad(path, pin, c)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(e.stdout).Encode(res)
			}
			printLoad(e.stdout, res)
			if len(res.Programs) == 0 {
				return exitError{code: 1, msg: path + ": no program loaded"}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&programs, "program", nil, "load only this program (function name), and the tail-call targets its prog arrays hold; repeatable")
	fl.StringArrayVar(&types, "type", nil, "program type of a section or program (SEC=TYPE), or of every program whose section names none (TYPE); repeatable; types: "+strings.Join(programTypeNames(), ", "))
	fl.StringVar(&pin, "pin", "", "pin programs and maps under `DIR` (on a bpf filesystem) so they outlive the command; reuse the maps pinned there")
	fl.StringVar(&pinMaps, "pin-maps", "all", "with --pin, the maps to pin: all, or by-name (those the object asks to pin)")
	fl.Uint32Var(&logLevel, "log-level", 0, "ask the kernel's verifier for its log of every program: 1 (branches), 2 (every instruction), +4 (statistics); a refusal always prints its log")
	fl.BoolVar(&compare, "compare", true, "judge every program with waggle's verifier too (for this kernel) and show where the verdicts differ")
	fl.BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

// typeOptions turns --type values into loader options: SEC=TYPE overrides
// a section's (or program's) type, TYPE is the type of untyped programs.
func typeOptions(types []string) (loader.Options, error) {
	var o loader.Options
	for _, v := range types {
		sec, name, ok := strings.Cut(v, "=")
		if !ok {
			sec, name = "", v
		}
		t, known := programTypes[name]
		if !known {
			return o, fmt.Errorf("--type %q: unknown type %q; want one of %s", v, name, strings.Join(programTypeNames(), ", "))
		}
		if !ok {
			o.DefaultType = t
			continue
		}
		if sec == "" {
			return o, fmt.Errorf("--type %q: no section or program before '='", v)
		}
		if o.ProgramType == nil {
			o.ProgramType = map[string]ebpf.ProgramType{}
		}
		o.ProgramType[sec] = t
	}
	return o, nil
}

// describeLoad reads what the kernel says of each loaded program and map.
func describeLoad(path, pin string, c *kernel.LoadedCollection) (*loadResult, error) {
	res := &loadResult{Object: path, Pinned: pin, Programs: []loadProgram{}, Maps: []loadMap{}, Notes: c.Notes}
	for _, p := range c.Programs {
		info, err := p.Program.Info()
		if err != nil {
			return nil, fmt.Errorf("program %s: %w", p.Name, err)
		}
		lp := loadProgram{Name: p.Name, Section: p.Section, Type: progTypeName(p.Type), TypeFrom: p.TypeFrom.String(), Tag: info.Tag, Pin: p.Pin}
		if id, ok := info.ID(); ok {
			lp.ID = uint32(id)
		}
		lp.XlatedBytes, _ = info.TranslatedSize()
		lp.JitedBytes, _ = info.JitedSize()
		lp.VerifiedInsns, _ = info.VerifiedInstructions()
		if p.Waggle != nil {
			lp.Waggle, lp.Disagree = p.Waggle.String(), p.Waggle.Disagrees(true)
		}
		lp.Log = p.Log
		res.Programs = append(res.Programs, lp)
	}
	for _, m := range c.Maps {
		info, err := m.Map.Info()
		if err != nil {
			return nil, fmt.Errorf("map %s: %w", m.Name, err)
		}
		lm := loadMap{Name: m.Name, Type: typeName(info.Type), KeySize: info.KeySize, ValueSize: info.ValueSize,
			MaxEntries: info.MaxEntries, Flags: info.Flags, Pin: m.Pin, Reused: m.Reused}
		if id, ok := info.ID(); ok {
			lm.ID = uint32(id)
		}
		res.Maps = append(res.Maps, lm)
	}
	for _, s := range c.Skipped {
		res.Skipped = append(res.Skipped, loadSkip{Name: s.Name, Section: s.Section, Reason: s.Reason.Error()})
	}
	for _, r := range c.Refused {
		res.Refused = append(res.Refused, refusal(r))
	}
	return res, nil
}

func refusal(r *kernel.ProgramError) loadRefusal {
	out := loadRefusal{Program: r.Program, Section: r.Section, By: "kernel", Line: r.Line, Error: r.Err.Error(), Probe: r.Probe, Log: r.Log}
	if !r.Kernel {
		out.By = "cilium/ebpf"
	}
	if r.Insn >= 0 {
		insn := r.Insn
		out.Insn = &insn
	}
	if r.Waggle != nil {
		out.Waggle = r.Waggle.String()
	}
	return out
}

// printLoad prints a load's result as text.
func printLoad(w io.Writer, res *loadResult) {
	fmt.Fprintf(w, "%s: %d program(s), %d map(s) loaded", res.Object, len(res.Programs), len(res.Maps))
	if res.Pinned == "" {
		fmt.Fprintln(w, " (released when waggle exits: --pin DIR keeps them)")
	} else {
		fmt.Fprintf(w, ", pinned under %s\n", res.Pinned)
	}
	for _, p := range res.Programs {
		fmt.Fprintf(w, "prog %s: %s (section %s), id %d, tag %s, xlated %dB, jited %dB, verified %d insns",
			p.Name, p.Type, p.Section, p.ID, p.Tag, p.XlatedBytes, p.JitedBytes, p.VerifiedInsns)
		if p.Pin != "" {
			fmt.Fprintf(w, ", pinned %s", p.Pin)
		}
		fmt.Fprintln(w)
		if p.Disagree {
			fmt.Fprintf(w, "  verdicts differ: the kernel accepts it, waggle's verifier %s\n", p.Waggle)
		}
		if p.Log != "" {
			fmt.Fprintf(w, "  verifier log:\n%s", indent(p.Log))
		}
	}
	for _, m := range res.Maps {
		fmt.Fprintf(w, "map %s: %s, id %d, key %dB, value %dB, max_entries %d", m.Name, m.Type, m.ID, m.KeySize, m.ValueSize, m.MaxEntries)
		switch {
		case m.Reused:
			fmt.Fprintf(w, ", reused from %s", m.Pin)
		case m.Pin != "":
			fmt.Fprintf(w, ", pinned %s", m.Pin)
		}
		fmt.Fprintln(w)
	}
	for _, s := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: %s\n", s.Name, s.Reason)
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// progTypeName is a program type as bpftool names it (what --type takes), or
// cilium/ebpf's name lowercased for the types --type does not take.
func progTypeName(t ebpf.ProgramType) string {
	switch t {
	case ebpf.XDP:
		return "xdp"
	case ebpf.SchedCLS:
		return "sched_cls"
	case ebpf.SchedACT:
		return "sched_act"
	case ebpf.SocketFilter:
		return "socket_filter"
	case ebpf.CGroupSKB:
		return "cgroup_skb"
	case ebpf.Kprobe:
		return "kprobe"
	case ebpf.TracePoint:
		return "tracepoint"
	case ebpf.RawTracepoint:
		return "raw_tracepoint"
	case ebpf.PerfEvent:
		return "perf_event"
	case ebpf.CGroupSock:
		return "cgroup_sock"
	case ebpf.CGroupSockAddr:
		return "cgroup_sock_addr"
	}
	return strings.ToLower(t.String())
}
