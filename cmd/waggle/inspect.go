package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/spf13/cobra"

	"github.com/waggle-bpf/waggle/internal/inspect"
	"github.com/waggle-bpf/waggle/internal/mapjson"
)

// The inspecting commands show what is loaded in the running kernel, as
// bpftool's verbs do, with the same JSON field names under --json.

// printJSON writes v indented, as the other commands' --json does.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func (e *env) progCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prog",
		Short: "Inspect the programs loaded in the kernel (bpftool prog)",
		Long: `Inspect the programs loaded in the running kernel, as bpftool prog does.
A program is named by its id or by the path of its pin in a bpffs
("id N" and "pinned PATH" also work). Needs CAP_SYS_ADMIN (root).`,
	}
	cmd.PersistentFlags().BoolVarP(&asJSON, "json", "j", false, "print JSON (bpftool -j's field names)")
	list := listCommand(e, "List every program: id, type, name, tag, sizes, maps", &asJSON, inspect.Programs, e.printProgram)
	show := showCommand(e, "Show one program", &asJSON, inspect.ShowProgram, e.printProgram)
	var linum, opcodes bool
	xlated := &cobra.Command{
		Use:   "xlated ID|PIN",
		Short: "Print the program as the kernel runs it after verification, in waggle's syntax",
		Long: `Print the program's translated instructions (after the verifier's rewrites:
context accesses, inlined map lookups, helper calls resolved) in waggle's
assembly syntax, each after its opcode as bpftool prints it. Maps are shown
by id and name ("r1 = map[id:12] ll ; stats"), helper calls by the kernel
function they call, source lines (";") and function prototypes from the
program's BTF; --linum adds each line's file, line and column.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			ref, err := inspect.ParseRef(args...)
			if err != nil {
				return err
			}
			x, err := inspect.DumpXlated(ref)
			if err != nil {
				return err
			}
			if asJSON {
				return e.printJSON(x.Insns)
			}
			e.printXlated(x, linum, opcodes)
			return nil
		},
	}
	xlated.Flags().BoolVar(&linum, "linum", false, "show each source line's file, line number and column")
	xlated.Flags().BoolVar(&opcodes, "opcodes", false, "show each instruction's bytes")
	jited := &cobra.Command{
		Use:   "jited ID|PIN",
		Short: "Disassemble the program's machine code (x86-64, AT&T syntax)",
		Long: `Disassemble the machine code the kernel's JIT produced for the program with
golang.org/x/arch's x86asm, in AT&T syntax as bpftool (through libbfd)
prints it: a function at a time (the main program, then its subprograms,
named from BTF), calls resolved to kernel symbols, source lines from the
program's line info. Only x86-64 code is disassembled.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			ref, err := inspect.ParseRef(args...)
			if err != nil {
				return err
			}
			j, err := inspect.DumpJited(ref, runtime.GOARCH)
			if err != nil {
				return err
			}
			if asJSON {
				return e.printJSON(j.Funcs)
			}
			e.printJited(j, linum, opcodes)
			return nil
		},
	}
	jited.Flags().BoolVar(&linum, "linum", false, "show each source line's file, line number and column")
	jited.Flags().BoolVar(&opcodes, "opcodes", false, "show each instruction's bytes")
	dump := &cobra.Command{Use: "dump", Short: "Dump a program's translated or machine code"}
	dump.AddCommand(xlated, jited)
	cmd.AddCommand(list, show, dump)
	return cmd
}

// printProgram prints a program as bpftool prog show does.
func (e *env) printProgram(p inspect.Program) {
	w := e.stdout
	fmt.Fprintf(w, "%d: %s  ", p.ID, p.Type)
	if p.Name != "" {
		fmt.Fprintf(w, "name %s  ", p.Name)
	}
	fmt.Fprintf(w, "tag %s", p.Tag)
	if p.GPLCompatible {
		fmt.Fprint(w, "  gpl")
	}
	if p.RunCnt > 0 || p.RunTimeNs > 0 {
		fmt.Fprintf(w, "  run_time_ns %d run_cnt %d", p.RunTimeNs, p.RunCnt)
	}
	if p.RecursionMisses > 0 {
		fmt.Fprintf(w, "  recursion_misses %d", p.RecursionMisses)
	}
	fmt.Fprintf(w, "\n\tloaded_at %s  uid %d\n", time.Unix(p.LoadedAt, 0).Format("2006-01-02T15:04:05-0700"), p.UID)
	fmt.Fprintf(w, "\txlated %dB  ", p.BytesXlated)
	if p.Jited {
		fmt.Fprintf(w, "jited %dB  ", p.BytesJited)
	} else {
		fmt.Fprint(w, "not jited  ")
	}
	fmt.Fprintf(w, "memlock %dB", p.BytesMemlock)
	if len(p.MapIDs) > 0 {
		ids := make([]string, len(p.MapIDs))
		for i, id := range p.MapIDs {
			ids[i] = fmt.Sprint(id)
		}
		fmt.Fprintf(w, "  map_ids %s", strings.Join(ids, ","))
	}
	fmt.Fprintln(w)
	if p.BTFID != 0 {
		fmt.Fprintf(w, "\tbtf_id %d\n", p.BTFID)
	}
}

func lineText(src, file string, num, col uint32, linum bool) string {
	s := "; " + src
	if linum {
		s += fmt.Sprintf(" [file:%s line_num:%d line_col:%d]", file, num, col)
	}
	return s
}

func (e *env) printXlated(x inspect.Xlated, linum, opcodes bool) {
	w := e.stdout
	for i, ins := range x.Insns {
		if ins.Proto != "" {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "%s:\n", ins.Proto)
		}
		if ins.HasLine {
			fmt.Fprintln(w, lineText(ins.Src, ins.File, ins.LineNum, ins.LineCol, linum))
		}
		fmt.Fprintf(w, "%4d: %s\n", ins.PC, ins.Disasm)
		if opcodes {
			fmt.Fprintf(w, "       %s\n", ins.Opcodes)
		}
	}
}

func (e *env) printJited(j inspect.Jited, linum, opcodes bool) {
	w := e.stdout
	for i, f := range j.Funcs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if f.Proto != "" {
			fmt.Fprintf(w, "%s:\n", f.Proto)
		}
		name := f.Symbol
		if name == "" {
			name = f.Name
		}
		fmt.Fprintf(w, "%s:\n", name)
		for _, ins := range f.Insns {
			if ins.HasLine {
				fmt.Fprintln(w, lineText(ins.Src, ins.File, ins.LineNum, ins.LineCol, linum))
			}
			fmt.Fprintf(w, "%4x:\t%s\n", ins.Offset, ins.Disasm)
			if opcodes {
				fmt.Fprintf(w, "\t%s\n", ins.Bytes)
			}
		}
	}
}

func (e *env) mapCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "map",
		Short: "Inspect and change the maps in the kernel (bpftool map)",
		Long: `Inspect and change the maps in the running kernel, as bpftool map does. A
map is named by its id or by the path of its pin in a bpffs ("id N" and
"pinned PATH" also work). Needs CAP_SYS_ADMIN (root).

Elements print from the map's BTF when it has one (structs by field,
integers, enums by name, character arrays as strings), as hex bytes
otherwise; per-CPU maps print each CPU's value. A KEY or VALUE is one
argument: hex bytes as bpftool takes them ("0a 00 00 01", "0x0a 0x0 0x0
0x1") when they are exactly the key's (value's) size, JSON otherwise:
typed as the map's BTF says (5, {"prefixlen": 32, "addr": [10, 0, 0, 1]})
or bpftool's ["0x0a", ...]. A per-CPU map's VALUE of one CPU's size is
every CPU's; {"values": [{"cpu": 0, "value": V}, ...]} sets them one by
one. The value of a prog array or map of maps is a program or map: its
id or pin.`,
	}
	cmd.PersistentFlags().BoolVarP(&asJSON, "json", "j", false, "print JSON (bpftool -j's field names and entry layout)")
	list := listCommand(e, "List every map: id, type, name, sizes", &asJSON, inspect.Maps, e.printMap)
	show := showCommand(e, "Show one map", &asJSON, inspect.ShowMap, e.printMap)
	dump := &cobra.Command{
		Use:   "dump ID|PIN",
		Short: "Print every element",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			h, err := e.openMap(args, false)
			if err != nil {
				return err
			}
			defer h.Close()
			entries, err := h.Dump()
			if err != nil {
				return err
			}
			return e.printEntries(h.Format, entries, asJSON)
		},
	}
	lookup := &cobra.Command{
		Use:   "lookup ID|PIN KEY",
		Short: "Print the element with KEY",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(_ *cobra.Command, args []string) error {
			h, err := e.openMap(args[:len(args)-1], false)
			if err != nil {
				return err
			}
			defer h.Close()
			key, err := inspect.ParseKey(h.Format, args[len(args)-1])
			if err != nil {
				return err
			}
			entry, err := h.Lookup(key)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				return fmt.Errorf("map %s: no element with key %s", h.Format.Name, spacedBytes(key))
			}
			if err != nil {
				return err
			}
			if asJSON {
				raw, err := inspect.EntryJSON(h.Format, entry)
				if err != nil {
					return err
				}
				e.stdout.Write(indentJSON(raw))
				return nil
			}
			return e.printEntryText(h.Format, entry)
		},
	}
	var flagName string
	update := &cobra.Command{
		Use:   "update ID|PIN KEY VALUE",
		Short: "Set the element with KEY to VALUE",
		Args:  cobra.RangeArgs(3, 4),
		RunE: func(_ *cobra.Command, args []string) error {
			var flags ebpf.MapUpdateFlags
			switch flagName {
			case "any":
				flags = ebpf.UpdateAny
			case "noexist":
				flags = ebpf.UpdateNoExist
			case "exist":
				flags = ebpf.UpdateExist
			default:
				return fmt.Errorf("--flags %q: want any, noexist or exist", flagName)
			}
			h, err := e.openMap(args[:len(args)-2], true)
			if err != nil {
				return err
			}
			defer h.Close()
			key, err := inspect.ParseKey(h.Format, args[len(args)-2])
			if err != nil {
				return err
			}
			valueArg := args[len(args)-1]
			if h.HoldsObjects() {
				obj, err := inspect.ParseRef(valueArg)
				if err != nil {
					return fmt.Errorf("map %s holds programs or maps: VALUE: %w", h.Format.Name, err)
				}
				err = h.UpdateObject(key, obj, flags)
				return e.mapResult(err, asJSON)
			}
			var base []byte
			if cur, err := h.Lookup(key); err == nil {
				base = cur.Value // typed input changes only the fields it names
			}
			value, err := inspect.ParseValue(h.Format, valueArg, base)
			if err != nil {
				return err
			}
			return e.mapResult(h.Update(key, value, flags), asJSON)
		},
	}
	update.Flags().StringVar(&flagName, "flags", "any", "any (create or replace), noexist (create only) or exist (replace only)")
	del := &cobra.Command{
		Use:   "delete ID|PIN KEY",
		Short: "Remove the element with KEY",
		Args:  cobra.RangeArgs(2, 3),
		RunE: func(_ *cobra.Command, args []string) error {
			h, err := e.openMap(args[:len(args)-1], true)
			if err != nil {
				return err
			}
			defer h.Close()
			key, err := inspect.ParseKey(h.Format, args[len(args)-1])
			if err != nil {
				return err
			}
			err = h.Delete(key)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				err = fmt.Errorf("map %s: no element with key %s", h.Format.Name, spacedBytes(key))
			}
			return e.mapResult(err, asJSON)
		},
	}
	pin := &cobra.Command{
		Use:   "pin ID PATH",
		Short: "Pin the map at PATH in a bpffs, so it outlives its programs",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			ref, err := inspect.ParseRef(args[:1]...)
			if err != nil {
				return err
			}
			return e.mapResult(inspect.PinMap(ref, args[1]), asJSON)
		},
	}
	cmd.AddCommand(list, show, dump, lookup, update, del, pin)
	return cmd
}

func (e *env) openMap(refArgs []string, write bool) (*inspect.MapHandle, error) {
	ref, err := inspect.ParseRef(refArgs...)
	if err != nil {
		return nil, err
	}
	h, err := inspect.OpenMapHandle(ref, write)
	if err != nil {
		return nil, err
	}
	if h.BTFWarning != "" {
		fmt.Fprintf(e.stderr, "waggle: %s; elements print as hex\n", h.BTFWarning)
	}
	return h, nil
}

// mapResult ends a command that prints nothing but its error (bpftool -j
// prints null).
func (e *env) mapResult(err error, asJSON bool) error {
	if err != nil {
		return err
	}
	if asJSON {
		fmt.Fprintln(e.stdout, "null")
	}
	return nil
}

func spacedBytes(b []byte) string {
	var s strings.Builder
	for i, c := range b {
		if i > 0 {
			s.WriteByte(' ')
		}
		fmt.Fprintf(&s, "%02x", c)
	}
	return s.String()
}

// printMap prints a map as bpftool map show does.
func (e *env) printMap(m inspect.Map) {
	w := e.stdout
	fmt.Fprintf(w, "%d: %s  ", m.ID, m.Type)
	if m.Name != "" {
		fmt.Fprintf(w, "name %s  ", m.Name)
	}
	fmt.Fprintf(w, "flags 0x%x\n", m.Flags)
	fmt.Fprintf(w, "\tkey %dB  value %dB  max_entries %d  memlock %dB", m.BytesKey, m.BytesValue, m.MaxEntries, m.BytesMemlock)
	if m.Frozen != 0 {
		fmt.Fprint(w, "  frozen")
	}
	fmt.Fprintln(w)
	if m.BTFID != 0 {
		fmt.Fprintf(w, "\tbtf_id %d\n", m.BTFID)
	}
}

// printEntries prints a dump: bpftool's JSON array of entries, or, as
// text, each entry (formatted from BTF, or as hex) and the count.
func (e *env) printEntries(m *mapjson.Map, entries []inspect.Entry, asJSON bool) error {
	if asJSON {
		b := []byte{'['}
		for i, en := range entries {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = m.AppendEntry(b, en.Key, en.Value); err != nil {
				return err
			}
		}
		b = append(b, ']')
		e.stdout.Write(indentJSON(b))
		return nil
	}
	for _, en := range entries {
		if err := e.printEntryText(m, en); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Found %d element%s\n", len(entries), plural(len(entries)))
	return nil
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// printEntryText prints an element formatted from BTF (bpftool prints
// such maps' elements as JSON in text mode too), or as hex.
func (e *env) printEntryText(m *mapjson.Map, en inspect.Entry) error {
	f, err := inspect.Formatted(m, en)
	if err != nil {
		return err
	}
	if f == nil {
		fmt.Fprint(e.stdout, inspect.EntryText(m, en))
		return nil
	}
	var b bytes.Buffer
	layout(&b, f, "")
	b.WriteByte('\n')
	e.stdout.Write(b.Bytes())
	return nil
}

func (e *env) linkCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "link",
		Short: "Inspect the links in the kernel (bpftool link)",
	}
	cmd.PersistentFlags().BoolVarP(&asJSON, "json", "j", false, "print JSON (bpftool -j's field names)")
	list := listCommand(e, "List every link: id, type, program and attach target", &asJSON, inspect.Links, func(l inspect.Link) {
		fmt.Fprintf(e.stdout, "%d: %s  prog %d\n", l.ID, l.Type, l.ProgID)
		if l.Target != "" {
			fmt.Fprintf(e.stdout, "\t%s\n", l.Target)
		}
	})
	cmd.AddCommand(list)
	return cmd
}

func (e *env) featureCmd() *cobra.Command {
	var asJSON, noHelpers bool
	cmd := &cobra.Command{
		Use:   "feature",
		Short: "Probe the kernel's eBPF features (bpftool feature)",
	}
	probe := &cobra.Command{
		Use:   "probe",
		Short: "List the program types, map types and helpers the running kernel offers",
		Long: `Probe the running kernel, as bpftool feature probe kernel does: which program
types load, which map types can be created, which helpers each available
program type may call, and a few instruction-set features. Each answer loads
a small program or creates a small map (cilium/ebpf's features package); the
helper matrix (every program type times every helper) is most of the time,
--no-helpers skips it. The time taken goes to stderr.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			f := inspect.ProbeFeatures(!noHelpers)
			if err := f.Err(); err != nil {
				return err
			}
			fmt.Fprintf(e.stderr, "waggle: %d probes in %v\n", f.Probes, f.Elapsed.Round(time.Millisecond))
			if asJSON {
				raw, err := f.MarshalJSON()
				if err != nil {
					return err
				}
				e.stdout.Write(indentJSON(raw))
				return nil
			}
			e.printFeatures(f)
			return nil
		},
	}
	probe.Flags().BoolVarP(&asJSON, "json", "j", false, "print JSON (bpftool -j's layout)")
	probe.Flags().BoolVar(&noHelpers, "no-helpers", false, "skip the helpers per program type")
	cmd.AddCommand(probe)
	return cmd
}

func (e *env) printFeatures(f *inspect.Features) {
	w := e.stdout
	avail := func(p inspect.Probe) string {
		switch {
		case p.Available:
			return "is available"
		case p.Err != "":
			return "could not be probed: " + p.Err
		}
		return "is NOT available"
	}
	fmt.Fprintln(w, "Scanning system configuration...")
	for _, sc := range f.Sysctls {
		if sc.Err != "" {
			fmt.Fprintf(w, "%s could not be read: %s\n", sc.Name, sc.Err)
			continue
		}
		fmt.Fprintln(w, sysctlText(sc))
	}
	if f.ConfigSource == "" {
		fmt.Fprintln(w, "the kernel's build configuration could not be found")
	}
	for _, c := range f.Config {
		if c.Set {
			fmt.Fprintf(w, "%s is set to %s\n", c.Name, c.Value)
		} else {
			fmt.Fprintf(w, "%s is not set\n", c.Name)
		}
	}
	fmt.Fprintln(w, "\nScanning system call availability...")
	if f.BPFSyscall {
		fmt.Fprintln(w, "bpf() syscall is available")
	} else {
		fmt.Fprintln(w, "bpf() syscall is NOT available")
	}
	fmt.Fprintln(w, "\nScanning eBPF program types...")
	for _, p := range f.ProgramTypes {
		fmt.Fprintf(w, "eBPF program_type %s %s\n", p.Name, avail(p))
	}
	fmt.Fprintln(w, "\nScanning eBPF map types...")
	for _, p := range f.MapTypes {
		fmt.Fprintf(w, "eBPF map_type %s %s\n", p.Name, avail(p))
	}
	if len(f.Helpers) > 0 {
		fmt.Fprintln(w, "\nScanning eBPF helper functions...")
		for _, h := range f.Helpers {
			if h.Err != "" {
				fmt.Fprintf(w, "eBPF helpers for program type %s could not be probed: %s\n", h.ProgType, h.Err)
				continue
			}
			fmt.Fprintf(w, "eBPF helpers supported for program type %s:\n", h.ProgType)
			for _, n := range h.Helpers {
				fmt.Fprintf(w, "\t- %s\n", n)
			}
		}
	}
	fmt.Fprintln(w, "\nScanning miscellaneous eBPF features...")
	for _, p := range f.Misc {
		fmt.Fprintf(w, "%s %s\n", miscNames[p.Name], avail(p))
	}
}

// sysctlText is bpftool's phrase for a bpf sysctl's value.
func sysctlText(sc inspect.Sysctl) string {
	phrases := map[string][]string{
		"unprivileged_bpf_disabled": {"bpf() syscall for unprivileged users is enabled",
			"bpf() syscall restricted to privileged users (without recovery)",
			"bpf() syscall restricted to privileged users (admin can change)"},
		"bpf_jit_enable": {"JIT compiler is disabled", "JIT compiler is enabled",
			"JIT compiler is enabled with debugging traces in kernel logs"},
		"bpf_jit_harden": {"JIT compiler hardening is disabled",
			"JIT compiler hardening is enabled for unprivileged users",
			"JIT compiler hardening is enabled for all users"},
		"bpf_jit_kallsyms": {"JIT compiler kallsyms exports are disabled",
			"JIT compiler kallsyms exports are enabled for root"},
	}
	if sc.Name == "bpf_jit_limit" {
		return fmt.Sprintf("Global memory limit for JIT compiler for unprivileged users is %d bytes", sc.Value)
	}
	if p := phrases[sc.Name]; sc.Value >= 0 && sc.Value < int64(len(p)) {
		return p[sc.Value]
	}
	return fmt.Sprintf("%s has the unknown value %d", sc.Name, sc.Value)
}

// miscNames are bpftool's phrases for the miscellaneous features.
var miscNames = map[string]string{
	"large_insn_limit": "Large program size limit",
	"bounded_loops":    "Bounded loop support",
	"v2_isa_extension": "ISA extension v2",
	"v3_isa_extension": "ISA extension v3",
	"v4_isa_extension": "ISA extension v4",
}

func (e *env) btfCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "btf",
		Short: "Dump BTF type information (bpftool btf)",
	}
	var (
		kernelBTF, asJSON bool
		typeNames         []string
		format            string
		btfID             uint32
	)
	dump := &cobra.Command{
		Use:   "dump [OBJ | --kernel | --id N]",
		Short: "Print the BTF types of an object file or of the kernel",
		Long: `Print the BTF types of a clang-built object file, with --kernel those of
the running kernel (/sys/kernel/btf/vmlinux), or with --id those of a BTF
object loaded in the kernel (a program's or map's btf_id). --format raw (the default)
prints each type with its id as bpftool btf dump does; c prints C
declarations, each after the types it needs; json is bpftool -j's layout
(--json is the same). The kernel has tens of thousands of types: --type
NAME (repeatable) selects the types of that name, and --format c prints them
with their dependencies, which is the useful form:

  waggle btf dump --kernel --type xdp_md --format c`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if asJSON {
				format = "json"
			}
			switch format {
			case "raw", "c", "json":
			default:
				return fmt.Errorf("--format %q: want raw, c or json", format)
			}
			var spec *btf.Spec
			var err error
			given := 0
			for _, g := range []bool{kernelBTF, len(args) == 1, btfID != 0} {
				if g {
					given++
				}
			}
			switch {
			case given != 1:
				return errors.New("give one of an object file, --kernel or --id")
			case btfID != 0:
				if spec, err = inspect.LoadBTFByID(btfID); err != nil {
					return err
				}
			case kernelBTF:
				if spec, err = btf.LoadKernelSpec(); err != nil {
					return fmt.Errorf("kernel BTF: %w", err)
				}
			default:
				if spec, err = btf.LoadSpec(args[0]); err != nil {
					return fmt.Errorf("%s: %w", args[0], err)
				}
			}
			types, err := inspect.SelectTypes(spec, typeNames)
			if err != nil {
				return err
			}
			switch format {
			case "c":
				if len(typeNames) == 0 {
					types = inspect.TypeDefinitions(types)
				}
				return inspect.WriteC(e.stdout, types)
			case "json":
				return e.printJSON(struct {
					Types []inspect.RawType `json:"types"`
				}{inspect.RawTypes(spec, types)})
			}
			return inspect.WriteRaw(e.stdout, inspect.RawTypes(spec, types))
		},
	}
	dump.Flags().BoolVar(&kernelBTF, "kernel", false, "the running kernel's BTF")
	dump.Flags().Uint32Var(&btfID, "id", 0, "the BTF object with this id in the kernel")
	dump.Flags().StringArrayVar(&typeNames, "type", nil, "only the types of this name (repeatable)")
	dump.Flags().StringVar(&format, "format", "raw", "raw, c or json")
	dump.Flags().BoolVarP(&asJSON, "json", "j", false, "the same as --format json")
	cmd.AddCommand(dump)
	return cmd
}

// listCommand is the "list" verb of prog, map and link: every object list
// returns, as a JSON array (empty rather than null) or printed one by one.
func listCommand[T any](e *env, short string, asJSON *bool, list func() ([]T, error), print func(T)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			all, err := list()
			if err != nil {
				return err
			}
			if *asJSON {
				if all == nil {
					all = []T{}
				}
				return e.printJSON(all)
			}
			for _, x := range all {
				print(x)
			}
			return nil
		},
	}
}

// showCommand is the "show ID|PIN" verb of prog and map.
func showCommand[T any](e *env, short string, asJSON *bool, show func(inspect.Ref) (T, error), print func(T)) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID|PIN",
		Short: short,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(_ *cobra.Command, args []string) error {
			ref, err := inspect.ParseRef(args...)
			if err != nil {
				return err
			}
			x, err := show(ref)
			if err != nil {
				return err
			}
			if *asJSON {
				return e.printJSON(x)
			}
			print(x)
			return nil
		},
	}
}
