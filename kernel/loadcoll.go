package kernel

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/loader"
)

// PinMaps says which maps LoadCollection pins under CollectionOptions.PinPath.
type PinMaps int

const (
	// PinAllMaps pins every map of the object, global data sections
	// included, so that the maps outlive the process and a later load (or
	// `waggle map dump`) finds them.
	PinAllMaps PinMaps = iota
	// PinMapsByName pins only the maps the object asks to pin: BTF maps
	// with __uint(pinning, LIBBPF_PIN_BY_NAME) and iproute2 bpf_elf_map
	// definitions whose pinning is PIN_OBJECT_NS or PIN_GLOBAL_NS.
	PinMapsByName
)

// String returns "all" or "by-name".
func (p PinMaps) String() string {
	switch p {
	case PinAllMaps:
		return "all"
	case PinMapsByName:
		return "by-name"
	}
	return fmt.Sprintf("PinMaps(%d)", int(p))
}

// CollectionOptions configure LoadCollection. The zero value loads every
// program whose type is known and pins nothing.
type CollectionOptions struct {
	// Loader are the options of waggle's loader, which reads and
	// normalises the object: program type overrides by program or
	// section name (ProgramType, AttachType), the type of programs whose
	// section names none (DefaultType), the layout of legacy map
	// definitions (MapDef).
	Loader loader.Options

	// Programs names the programs to load (function names); nil loads them
	// all. The programs their prog arrays hold (tail-call targets the
	// object binds) are loaded with them.
	Programs []string

	// PinPath is a directory on a bpffs mount. When set, maps are pinned
	// (as PinMaps says) under PinPath/maps/NAME and every loaded program
	// under PinPath/progs/NAME, so that they outlive the process; a map
	// already pinned there is reused instead of created (its contents
	// kept), and must match the object's definition. A program pin is
	// replaced. Names are the object's, with '.' (which bpffs refuses)
	// written '_': .rodata is pinned as _rodata.
	PinPath string
	// PinMaps says which maps are pinned under PinPath.
	PinMaps PinMaps

	// LogLevel asks the kernel's verifier for its log of every program
	// (LoadedProgram.Log): ebpf.LogLevelBranch, LogLevelInstruction,
	// LogLevelStats, or'ed. Zero asks for none, but a program the kernel
	// refuses is loaded again with LogLevelBranch for the log of its
	// refusal, as cilium/ebpf does.
	LogLevel ebpf.LogLevel
	// LogSize is the verifier log buffer's starting size in bytes (it
	// grows as needed); 0 is cilium/ebpf's default.
	LogSize uint32

	// KernelTypes are the types CO-RE relocations are resolved against;
	// nil uses the running kernel's (/sys/kernel/btf/vmlinux).
	KernelTypes *btf.Spec

	// CrossCheck runs waggle's verifier (for the running kernel, target
	// host) on every program the kernel accepts as well, so that a
	// disagreement either way is seen (LoadedProgram.Waggle). A program
	// the kernel refuses is always checked (ProgramError.Waggle).
	CrossCheck bool

	// Partial keeps what loaded when the kernel refuses some programs:
	// the refusals are in LoadedCollection.Refused and LoadCollection
	// returns no error for them. Otherwise one refusal fails the load
	// (a *LoadError listing every refusal) and nothing stays loaded.
	Partial bool
}

// LoadedCollection is an object file loaded into the running kernel through
// waggle's loader and cilium/ebpf: its maps created (or reused from pins),
// its programs verified by Linux and its prog arrays and maps of maps
// filled as the object declares them. The programs and maps are live until
// Close, and after it those pinned under CollectionOptions.PinPath.
type LoadedCollection struct {
	// Collection holds the live programs and maps by name, as
	// cilium/ebpf names them (a program by its function, a map by its
	// symbol, a data section by its section name).
	Collection *ebpf.Collection
	// Programs are the programs loaded, in the object's order.
	Programs []*LoadedProgram
	// Maps are the maps created or reused, in the object's order.
	Maps []*LoadedMap
	// Skipped are the object's programs not loaded, and why (no program
	// type, a program waggle's loader cannot link). Programs left out by
	// CollectionOptions.Programs are not listed.
	Skipped []SkippedProgram
	// Refused are the programs the kernel refused, with
	// CollectionOptions.Partial (without it they fail the load).
	Refused []*ProgramError
	// Notes say what else the load did or did not do: the loader's
	// normalisation of the object, pins asked for but not made, bindings
	// to programs that were not loaded.
	Notes []string
	// Object is the object as waggle's loader read it.
	Object *loader.Object
}

// Program returns the loaded program called name, or nil.
func (c *LoadedCollection) Program(name string) *LoadedProgram {
	for _, p := range c.Programs {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Map returns the map called name, or nil.
func (c *LoadedCollection) Map(name string) *LoadedMap {
	for _, m := range c.Maps {
		if m.Name == name {
			return m
		}
	}
	return nil
}

// Close closes every program and map. Pinned ones stay in the kernel
// until their pins are removed.
func (c *LoadedCollection) Close() error {
	if c == nil || c.Collection == nil {
		return nil
	}
	c.Collection.Close()
	c.Collection = nil
	return nil
}

// LoadedProgram is one program of a LoadedCollection.
type LoadedProgram struct {
	// Name is the program's function name; Section its ELF section.
	Name, Section string
	// Type and AttachType are what it was loaded as; TypeFrom says where
	// the type came from (the section name, an option, the programs that
	// tail-call it, the default).
	Type       ebpf.ProgramType
	AttachType ebpf.AttachType
	TypeFrom   loader.TypeSource
	// Program is the live program (also in LoadedCollection.Collection).
	Program *ebpf.Program
	// Spec is the program as it was handed to cilium/ebpf: its
	// instructions carry their source lines (asm.Instruction.Source).
	Spec *ebpf.ProgramSpec
	// Pin is where it is pinned, or "".
	Pin string
	// Log is the verifier's log when CollectionOptions.LogLevel asked for one.
	Log string
	// Waggle is waggle's verdict on the program, with
	// CollectionOptions.CrossCheck; nil otherwise.
	Waggle *Verdict
}

// LoadedMap is one map of a LoadedCollection.
type LoadedMap struct {
	// Name is the map's name in the object.
	Name string
	// Map is the live map (also in LoadedCollection.Collection).
	Map *ebpf.Map
	// Pin is where it is pinned, or "".
	Pin string
	// Reused is set when the map was already pinned there and the load
	// took it instead of creating one.
	Reused bool
}

// SkippedProgram is a program of the object that LoadCollection did not
// load.
type SkippedProgram struct {
	Name, Section string
	// Reason is why: the loader's error, or a type that is missing.
	Reason error
}

// Verdict is waggle's verifier's verdict on a program, for comparison with
// the kernel's.
type Verdict struct {
	// Accepted is true when waggle's verifier accepts the program.
	Accepted bool
	// Err is the rejection (a *verifier.Error when it is one), or why
	// waggle could not give a verdict (Unknown is then set).
	Err error
	// Unknown is set when waggle gave no verdict: the object needs a
	// map or program type waggle's runtime lacks, for instance.
	Unknown bool
	// Insn and Line locate the rejection (waggle's instruction index, its
	// source line), -1 and "" when unknown.
	Insn int
	Line string
	// Processed counts the instructions waggle's verifier processed.
	Processed int
}

// String says "accepts", "rejects (...)" or "gives no verdict (...)".
func (v *Verdict) String() string {
	switch {
	case v == nil:
		return "not asked"
	case v.Unknown:
		return fmt.Sprintf("gives no verdict (%v)", v.Err)
	case v.Accepted:
		return "accepts"
	}
	return fmt.Sprintf("rejects (%v)", v.Err)
}

// Disagrees reports whether waggle's verdict differs from the kernel's
// (kernelAccepted): both gave one, and not the same.
func (v *Verdict) Disagrees(kernelAccepted bool) bool {
	return v != nil && !v.Unknown && v.Accepted != kernelAccepted
}

// ProgramError is the kernel's refusal of one program: the verifier's log,
// the instruction it stopped at and that instruction's C source line (BTF
// line info), and waggle's verdict on the same program.
//
// Error is one line; "%+v" adds waggle's verdict and the verifier's log.
type ProgramError struct {
	Program, Section string
	Type             ebpf.ProgramType
	// Insn is the index (in 8-byte slots, as the log counts) of the last
	// instruction the verifier's log shows before the error, -1 when the
	// log shows none.
	Insn int
	// Line is Insn's source line, "file:line: text", or "" when the
	// object has no line info for it.
	Line string
	// Log is the verifier's log, one line per element (empty when the
	// refusal came before the verifier, e.g. a CO-RE relocation that
	// does not apply).
	Log []string
	// Err is cilium/ebpf's error (a *ebpf.VerifierError for a verifier
	// rejection).
	Err error
	// Kernel is set when the refusal is the kernel's (BPF_PROG_LOAD
	// failed); otherwise cilium/ebpf refused to load the program (a CO-RE
	// relocation or a .kconfig value it cannot resolve, a byte order
	// that is not the machine's).
	Kernel bool
	// Probe, when set, is why the kernel's feature probe for the
	// program's type failed: the kernel lacks the program type (or
	// refuses it to this process), which explains the refusal.
	Probe string
	// Waggle is waggle's verifier's verdict on the program.
	Waggle *Verdict
}

func (e *ProgramError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "program %s", e.Program)
	if e.Section != "" {
		fmt.Fprintf(&b, " (section %s)", e.Section)
	}
	if e.Kernel {
		b.WriteString(": the kernel refuses it")
	} else {
		b.WriteString(": cilium/ebpf cannot load it")
	}
	if e.Insn >= 0 {
		fmt.Fprintf(&b, " at instruction %d", e.Insn)
	}
	if e.Line != "" {
		fmt.Fprintf(&b, " [%s]", e.Line)
	}
	fmt.Fprintf(&b, ": %s", firstLine(e.Err))
	if e.Probe != "" {
		fmt.Fprintf(&b, " (probe: %s)", e.Probe)
	}
	if e.Kernel && e.Waggle.Disagrees(false) {
		b.WriteString("; waggle's verifier accepts it")
	}
	return b.String()
}

// Unwrap returns cilium/ebpf's error.
func (e *ProgramError) Unwrap() error { return e.Err }

// Format prints Error for %v and %s; %+v adds both verdicts and the
// verifier's log.
func (e *ProgramError) Format(f fmt.State, verb rune) {
	if verb != 'v' || !f.Flag('+') {
		fmt.Fprint(f, e.Error())
		return
	}
	fmt.Fprintln(f, e.Error())
	if e.Kernel {
		fmt.Fprintln(f, "  kernel: rejects")
	} else {
		fmt.Fprintln(f, "  kernel: not asked (cilium/ebpf refused first)")
	}
	if e.Waggle != nil {
		fmt.Fprintf(f, "  waggle: %s\n", e.Waggle)
	}
	if len(e.Log) > 0 {
		fmt.Fprintln(f, "  verifier log:")
		for _, l := range e.Log {
			fmt.Fprintf(f, "    %s\n", l)
		}
	}
}

// LoadError is LoadCollection's error when the kernel refuses programs of
// the object: every refusal, not only the first.
type LoadError struct {
	Path    string
	Refused []*ProgramError
}

func (e *LoadError) Error() string {
	if len(e.Refused) == 1 {
		return fmt.Sprintf("%s: %v", e.Path, e.Refused[0])
	}
	names := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		names[i] = r.Program
	}
	return fmt.Sprintf("%s: the kernel refuses %d programs (%s); first: %v", e.Path, len(e.Refused), strings.Join(names, ", "), e.Refused[0])
}

// Format prints Error for %v and %s; %+v prints each refusal with %+v
// (both verdicts and the verifier's log).
func (e *LoadError) Format(f fmt.State, verb rune) {
	if verb != 'v' || !f.Flag('+') {
		fmt.Fprint(f, e.Error())
		return
	}
	for _, r := range e.Refused {
		fmt.Fprintf(f, "%s: %+v", e.Path, r)
	}
}

// Unwrap returns the refusals.
func (e *LoadError) Unwrap() []error {
	out := make([]error, len(e.Refused))
	for i, r := range e.Refused {
		out[i] = r
	}
	return out
}

// firstLine is the first line of err's message.
func firstLine(err error) string {
	if err == nil {
		return ""
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// plan is what LoadCollection hands cilium/ebpf: the CollectionSpec made
// from waggle's reading of the object, and what it loads itself around
// cilium/ebpf.
type plan struct {
	// spec has the object's maps and the programs to load, with the types
	// waggle's loader gave them. Its maps' Contents hold no references to
	// programs or maps (those are bindings) and no map asks cilium/ebpf to
	// pin it.
	spec *ebpf.CollectionSpec
	// programs are the programs to load, in the object's order.
	programs []*loader.Program
	// maps are the map names, in the object's order.
	maps []string
	// skipped are the object's programs not loaded, and why.
	skipped []SkippedProgram
	// bindings are the prog array and map of maps elements to store.
	bindings []binding
	// byName are the maps the object asks to pin.
	byName map[string]bool
}

// binding is an element of a prog array (program) or map of maps (inner)
// that refers to another object of the collection.
type binding struct {
	mapName        string
	key            uint32
	program, inner string
}

// newPlan converts waggle's reading of an object into the CollectionSpec
// cilium/ebpf loads. The CollectionSpec is cilium/ebpf's own parse of the
// normalised object (obj.Spec), so instructions, BTF, line and function
// info and CO-RE relocations are cilium/ebpf's; what waggle's loader knows
// better replaces it:
//
//   - program types and attach types: section names libbpf does not know
//     take the type of the programs whose prog arrays hold them, options
//     override them;
//   - legacy map definitions (samples/bpf's bpf_map_def, iproute2's
//     bpf_elf_map): their tails, which cilium/ebpf refuses when not zero,
//     are read and cleared, and maps of maps get their inner map;
//   - references between objects (libbpf's `.values`, iproute2's
//     inner_idx and "ID/KEY" tail-call sections) become bindings that
//     LoadCollection stores once programs and maps exist;
//   - a lddw of a global variable points at the symbol's offset plus the
//     addend, as libbpf computes it (cilium/ebpf drops the addend).
//
// A program waggle's loader cannot link is skipped with the loader's error,
// as is a program with no type.
func newPlan(obj *loader.Object, opts *CollectionOptions) (*plan, error) {
	if obj.Spec == nil {
		return nil, errors.New("the object has no CollectionSpec (loader.Object.Spec)")
	}
	spec := obj.Spec.Copy()
	pl := &plan{spec: spec, byName: map[string]bool{}}

	// Maps: the loader's reading of legacy definitions.
	for _, d := range obj.MapDefs {
		ms := obj.Maps[d.Map]
		if _, ok := spec.Maps[ms.Name]; !ok {
			continue
		}
		cp := ms.Copy()
		if d.Format == loader.MapDefIproute2 && d.Pinning != 0 {
			pl.byName[ms.Name] = true
		}
		spec.Maps[ms.Name] = cp
	}
	for _, ms := range obj.Maps {
		sm, ok := spec.Maps[ms.Name]
		if !ok {
			continue
		}
		pl.maps = append(pl.maps, ms.Name)
		if sm.InnerMap == nil && ms.InnerMap != nil {
			sm.InnerMap = ms.InnerMap.Copy()
		}
	}
	for name, ms := range spec.Maps {
		if !slices.Contains(pl.maps, name) {
			pl.maps = append(pl.maps, name) // not in the loader's list: keep it anyway
		}
		if ms.Pinning == ebpf.PinByName {
			pl.byName[name] = true
		}
		ms.Pinning = ebpf.PinNone
		// References to programs and maps are bindings, stored by
		// LoadCollection itself.
		ms.Contents = slices.DeleteFunc(ms.Contents, func(kv ebpf.MapKV) bool {
			_, ok := kv.Value.(string)
			return ok
		})
	}
	for _, b := range obj.Bindings {
		bd := binding{mapName: obj.Maps[b.Map].Name, key: b.Key}
		if b.Program >= 0 {
			bd.program = obj.Programs[b.Program].Name
		} else {
			bd.inner = obj.Maps[b.Inner].Name
		}
		pl.bindings = append(pl.bindings, bd)
	}

	// Programs: which to load.
	want, err := selectPrograms(obj, opts.Programs)
	if err != nil {
		return nil, err
	}
	for _, p := range obj.Programs {
		ps := spec.Programs[p.Name]
		delete(spec.Programs, p.Name)
		if !want[p.Name] {
			continue
		}
		var reason error
		switch {
		case ps == nil:
			reason = errors.New("cilium/ebpf's reading of the object has no such program")
		case p.Err != nil:
			reason = fmt.Errorf("waggle's loader cannot link it: %w", p.Err)
		case p.Type == ebpf.UnspecifiedProgram:
			reason = fmt.Errorf("section %q names no program type: give one (--type %s=TYPE)", p.Section, p.Section)
		}
		if reason == nil {
			reason = patchDataOffsets(obj, p, ps)
		}
		if reason != nil {
			if opts.Programs != nil && slices.Contains(opts.Programs, p.Name) {
				return nil, fmt.Errorf("program %s: %w", p.Name, reason)
			}
			pl.skipped = append(pl.skipped, SkippedProgram{Name: p.Name, Section: p.Section, Reason: reason})
			continue
		}
		ps.Type, ps.AttachType, ps.Flags = p.Type, p.AttachType, p.Flags
		spec.Programs[p.Name] = ps
		pl.programs = append(pl.programs, p)
	}
	// Programs cilium/ebpf reads but waggle's loader does not list (none
	// are known) are not loaded.
	for name := range spec.Programs {
		if !slices.ContainsFunc(pl.programs, func(p *loader.Program) bool { return p.Name == name }) {
			delete(spec.Programs, name)
		}
	}
	return pl, nil
}

// selectPrograms returns the programs to load: names, or all when names is
// nil, and the programs the selected ones' prog arrays hold (the object's
// bindings), transitively.
func selectPrograms(obj *loader.Object, names []string) (map[string]bool, error) {
	want := map[string]bool{}
	if names == nil {
		for _, p := range obj.Programs {
			want[p.Name] = true
		}
		return want, nil
	}
	for _, n := range names {
		if obj.Program(n) == nil {
			all := make([]string, len(obj.Programs))
			for i, p := range obj.Programs {
				all[i] = p.Name
			}
			return nil, fmt.Errorf("no program %q (the object has %s)", n, strings.Join(all, ", "))
		}
		want[n] = true
	}
	for grew := true; grew; {
		grew = false
		for _, b := range obj.Bindings {
			if b.Program < 0 || want[obj.Programs[b.Program].Name] {
				continue
			}
			for n := range want {
				if usesMap(obj.Program(n), b.Map) {
					want[obj.Programs[b.Program].Name] = true
					grew = true
					break
				}
			}
		}
	}
	return want, nil
}

// usesMap reports whether p loads the address of map i.
func usesMap(p *loader.Program, i int) bool {
	for k, ins := range p.Insns {
		if ins.IsLoadImm64() && ins.Src == isa.PseudoMapIdx && int(ins.Imm) == i && (k == 0 || !p.Insns[k-1].IsLoadImm64()) {
			return true
		}
	}
	return false
}

// patchDataOffsets makes every lddw of a global variable in ps point where
// waggle's loader points it: the symbol's offset plus the addend, as libbpf
// computes it. cilium/ebpf v0.22.0 drops the addend of a reference to an
// STT_OBJECT symbol, which GCC's BPF back end (and RELA objects generally)
// carry there. The loader's program and cilium/ebpf's share their
// functions (the loader links cilium/ebpf's stream first), which is how
// slots are matched; a mismatch is an error, never a guess.
func patchDataOffsets(obj *loader.Object, p *loader.Program, ps *ebpf.ProgramSpec) error {
	start := make(map[string]int, len(p.Funcs))
	for _, f := range p.Funcs {
		start[f.Name] = f.Start
	}
	fn, base, pc := p.Name, 0, 0
	if s, ok := start[fn]; ok {
		base = s
	}
	off := 0 // slots into the current function
	for i := range ps.Instructions {
		ins := &ps.Instructions[i]
		if sym := ins.Symbol(); sym != "" {
			s, ok := start[sym]
			if !ok {
				return fmt.Errorf("function %s of cilium/ebpf's program is not in waggle's", sym)
			}
			fn, base, off = sym, s, 0
		}
		pc = base + off
		off += int(ins.Width())
		ref := ins.Reference()
		if !ins.IsLoadFromMap() || ins.Src != asm.PseudoMapValue || ref == "" {
			continue
		}
		ms, ok := obj.Spec.Maps[ref]
		if !ok || ms.Type != ebpf.Array || ms.MaxEntries != 1 || !isDataSection(ref) {
			continue
		}
		if pc+1 >= len(p.Insns) {
			return fmt.Errorf("function %s: slot %d is past waggle's program (%d slots)", fn, pc, len(p.Insns))
		}
		w := p.Insns[pc]
		if !w.IsLoadImm64() || w.Src != isa.PseudoMapIdxValue || int(w.Imm) >= len(obj.Maps) || w.Imm < 0 || obj.Maps[w.Imm].Name != ref {
			return fmt.Errorf("function %s: slot %d loads from %s in cilium/ebpf's program, not in waggle's (%s)", fn, pc, ref, isa.Format(w, p.Insns[pc+1]))
		}
		want := uint32(p.Insns[pc+1].Imm)
		if uint32(uint64(ins.Constant)>>32) != want {
			ins.Constant = int64(uint64(want)<<32 | uint64(uint32(ins.Constant)))
		}
	}
	return nil
}

// isDataSection reports whether name is a global data section's map
// (cilium/ebpf's naming: .data, .rodata, .bss and their suffixed forms).
func isDataSection(name string) bool {
	return name == ".bss" || strings.HasPrefix(name, ".data") || strings.HasPrefix(name, ".rodata")
}

// ProgramPinPath is where LoadCollection pins the program called name
// under the pin path dir: dir/progs/NAME, '.' written '_'.
func ProgramPinPath(dir, name string) string { return filepath.Join(dir, "progs", pinName(name)) }

// MapPinPath is where LoadCollection pins (and looks for, to reuse) the
// map called name under the pin path dir: dir/maps/NAME, '.' written '_'
// (.rodata is dir/maps/_rodata).
func MapPinPath(dir, name string) string { return filepath.Join(dir, "maps", pinName(name)) }

// pinName is the bpffs file name of an object's map or program: bpffs
// refuses '.' in names (kernel/bpf/inode.c, bpf_lookup), so it becomes '_',
// as libbpf does for its pin paths.
func pinName(name string) string {
	return strings.ReplaceAll(name, ".", "_")
}
