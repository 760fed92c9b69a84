package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/loader"
)

// LoadCollection loads the ELF object at path into the running kernel. It
// reads the object with waggle's loader, which normalises what
// cilium/ebpf refuses (legacy and iproute2 map definitions, zero-size
// symbols, RELA, untyped sections, objects with only .text) and types
// programs whose sections name no type, and hands cilium/ebpf the
// resulting CollectionSpec: cilium/ebpf creates the maps and loads each
// program, resolving CO-RE relocations against the kernel's BTF. Then the
// object's prog arrays and maps of maps are filled and, with a PinPath,
// maps and programs pinned.
//
// A program the kernel refuses fails the load with a *LoadError whose
// *ProgramError values carry the verifier's log, the instruction it
// stopped at and its source line, and waggle's verifier's verdict on the
// same program; with opts.Partial the others stay loaded. Without root
// the error wraps ErrNotSupported. opts may be nil.
func LoadCollection(path string, opts *CollectionOptions) (*LoadedCollection, error) {
	if opts == nil {
		opts = &CollectionOptions{}
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	obj, err := loader.LoadFile(path, opts.Loader)
	if err != nil {
		return nil, err
	}
	c, err := LoadObject(obj, opts)
	if err != nil {
		var le *LoadError
		if errors.As(err, &le) {
			le.Path = path
			return nil, le
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// LoadObject is LoadCollection for an object waggle's loader has read
// (loader.Load, LoadFile or FromSpec; its Spec must be set). opts.Loader
// is not used: the object's programs have their types already.
func LoadObject(obj *loader.Object, opts *CollectionOptions) (*LoadedCollection, error) {
	if opts == nil {
		opts = &CollectionOptions{}
	}
	if err := Supported(); err != nil {
		return nil, err
	}
	pl, err := newPlan(obj, opts)
	if err != nil {
		return nil, err
	}
	out := &LoadedCollection{Object: obj, Skipped: pl.skipped}
	out.Notes = append(out.Notes, obj.Normalised...)

	// Pinned maps to reuse.
	pinned := func(name string) bool {
		return opts.PinPath != "" && (opts.PinMaps == PinAllMaps || pl.byName[name])
	}
	if opts.PinPath != "" {
		if err := checkBPFFS(opts.PinPath); err != nil {
			return nil, err
		}
	}
	repl := map[string]*ebpf.Map{}
	defer func() {
		for _, m := range repl {
			m.Close()
		}
	}()
	for _, name := range pl.maps {
		if !pinned(name) {
			if pl.byName[name] {
				out.Notes = append(out.Notes, fmt.Sprintf("map %s asks to be pinned by name; not pinned: no pin path", name))
			}
			continue
		}
		path := MapPinPath(opts.PinPath, name)
		m, err := ebpf.LoadPinnedMap(path, nil)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, fmt.Errorf("map %s: open the pinned map %s: %w", name, path, err)
		}
		repl[name] = m
	}

	// Maps first (cilium/ebpf creates them, fills their contents and
	// freezes .rodata), then each program on its own, so that every
	// refusal is reported with its program.
	mapsOnly := &ebpf.CollectionSpec{Maps: pl.spec.Maps, Variables: pl.spec.Variables, Types: pl.spec.Types, ByteOrder: pl.spec.ByteOrder}
	coll, err := ebpf.NewCollectionWithOptions(mapsOnly, ebpf.CollectionOptions{MapReplacements: repl})
	if err != nil {
		if errors.Is(err, ebpf.ErrMapIncompatible) {
			return nil, fmt.Errorf("a map pinned under %s does not match the object's definition (remove the pin, or pin elsewhere): %w", filepath.Join(opts.PinPath, "maps"), err)
		}
		return nil, fmt.Errorf("create maps: %w", err)
	}
	out.Collection = coll
	ok := false
	defer func() {
		if !ok {
			coll.Close()
		}
	}()
	for name := range repl {
		if err := sameConstants(pl.spec.Maps[name], coll.Maps[name]); err != nil {
			return nil, fmt.Errorf("map %s pinned at %s: %w (remove the pin, or pin elsewhere)", name, MapPinPath(opts.PinPath, name), err)
		}
	}

	popts := ebpf.ProgramOptions{LogLevel: opts.LogLevel, LogSizeStart: opts.LogSize, KernelTypes: opts.KernelTypes}
	for _, p := range pl.programs {
		ps := pl.spec.Programs[p.Name]
		prog, err := loadProgram(ps, coll, popts)
		if err != nil {
			out.Refused = append(out.Refused, programError(p, ps, err))
			continue
		}
		coll.Programs[p.Name] = prog
		out.Programs = append(out.Programs, &LoadedProgram{
			Name: p.Name, Section: p.Section, Type: p.Type, AttachType: p.AttachType, TypeFrom: p.TypeFrom,
			Program: prog, Spec: ps, Log: prog.VerifierLog,
		})
	}

	// Waggle's verdicts: on every refusal, and on every program with
	// CrossCheck.
	var ask []string
	for _, r := range out.Refused {
		ask = append(ask, r.Program)
	}
	if opts.CrossCheck {
		for _, p := range out.Programs {
			ask = append(ask, p.Name)
		}
	}
	if len(ask) > 0 {
		v := waggleVerdicts(obj, ask)
		for _, r := range out.Refused {
			r.Waggle = v[r.Program]
		}
		for _, p := range out.Programs {
			p.Waggle = v[p.Name]
		}
	}
	if len(out.Refused) > 0 && !opts.Partial {
		return nil, &LoadError{Refused: out.Refused}
	}

	// Prog arrays and maps of maps.
	for _, b := range pl.bindings {
		m := coll.Maps[b.mapName]
		if m == nil {
			return nil, fmt.Errorf("map %s: not created", b.mapName)
		}
		var v any
		switch {
		case b.program != "":
			prog := coll.Programs[b.program]
			if prog == nil {
				if slices.ContainsFunc(pl.programs, func(p *loader.Program) bool { return p.Name == b.program }) || opts.Programs == nil {
					out.Notes = append(out.Notes, fmt.Sprintf("map %s: slot %d stays empty: program %s is not loaded", b.mapName, b.key, b.program))
				}
				continue
			}
			v = prog
		default:
			inner := coll.Maps[b.inner]
			if inner == nil {
				return nil, fmt.Errorf("map %s: slot %d: inner map %s not created", b.mapName, b.key, b.inner)
			}
			v = inner
		}
		if err := m.Put(b.key, v); err != nil {
			return nil, fmt.Errorf("map %s: store slot %d: %w", b.mapName, b.key, err)
		}
	}

	// The maps, in the object's order, and the pins.
	var made []string // pins this load made, removed if a later one fails
	defer func() {
		if !ok {
			for _, p := range made {
				os.Remove(p)
			}
		}
	}()
	for _, name := range pl.maps {
		m := coll.Maps[name]
		if m == nil {
			continue
		}
		lm := &LoadedMap{Name: name, Map: m}
		if pinned(name) {
			lm.Pin = MapPinPath(opts.PinPath, name)
			if _, lm.Reused = repl[name]; !lm.Reused {
				if err := pinAt(lm.Pin, m.Pin); err != nil {
					return nil, fmt.Errorf("map %s: %w", name, err)
				}
				made = append(made, lm.Pin)
			}
		}
		out.Maps = append(out.Maps, lm)
	}
	if opts.PinPath != "" {
		for _, p := range out.Programs {
			p.Pin = ProgramPinPath(opts.PinPath, p.Name)
			if err := os.Remove(p.Pin); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("program %s: replace the pin %s: %w", p.Name, p.Pin, err)
			}
			if err := pinAt(p.Pin, p.Program.Pin); err != nil {
				return nil, fmt.Errorf("program %s: %w", p.Name, err)
			}
			made = append(made, p.Pin)
		}
	}
	ok = true
	return out, nil
}

// loadProgram loads one program with its map references bound to coll's
// maps, as cilium/ebpf's collection loader does.
func loadProgram(ps *ebpf.ProgramSpec, coll *ebpf.Collection, opts ebpf.ProgramOptions) (*ebpf.Program, error) {
	ps = ps.Copy()
	for i := range ps.Instructions {
		ins := &ps.Instructions[i]
		if !ins.IsLoadFromMap() || ins.Reference() == "" || int32(ins.Constant) > 0 {
			continue
		}
		m := coll.Maps[ins.Reference()]
		if m == nil {
			return nil, fmt.Errorf("instruction %d refers to map %s, which the object does not define", i, ins.Reference())
		}
		if err := ins.AssociateMap(m); err != nil {
			return nil, fmt.Errorf("map %s: %w", ins.Reference(), err)
		}
	}
	return ebpf.NewProgramWithOptions(ps, opts)
}

// insnLine matches an instruction in a verifier log: "12: (bf) r1 = r6".
var insnLine = regexp.MustCompile(`^([0-9]+): \([0-9a-f]{2}\)`)

// programError describes the kernel's refusal of p: its log, the
// instruction the log stops at and that instruction's source line.
func programError(p *loader.Program, ps *ebpf.ProgramSpec, err error) *ProgramError {
	pe := &ProgramError{Program: p.Name, Section: p.Section, Type: p.Type, Insn: -1, Err: err}
	var ve *ebpf.VerifierError
	var errno unix.Errno
	if errors.As(err, &ve) {
		pe.Log = ve.Log
	}
	pe.Kernel = ve != nil || errors.As(err, &errno)
	if perr := ProgramTypeSupported(ProgType(p.Type)); perr != nil {
		pe.Probe = firstLine(perr)
	}
	for i := len(pe.Log) - 1; i >= 0; i-- {
		if m := insnLine.FindStringSubmatch(pe.Log[i]); m != nil {
			pe.Insn, _ = strconv.Atoi(m[1])
			break
		}
	}
	if pe.Insn >= 0 {
		pe.Line = sourceAt(ps.Instructions, pe.Insn)
	}
	return pe
}

// sourceAt returns the source line of the instruction at slot pc: the
// line info of the last instruction at or before it that has one.
func sourceAt(insns asm.Instructions, pc int) string {
	var src fmt.Stringer
	slot, found := 0, false
	for i := range insns {
		if s := insns[i].Source(); s != nil {
			src = s
		}
		w := int(insns[i].Width())
		if pc < slot+w {
			found = true
			break
		}
		slot += w
	}
	if !found || src == nil {
		return ""
	}
	if l, ok := src.(*btf.Line); ok {
		return fmt.Sprintf("%s:%d: %s", l.FileName(), l.LineNumber(), strings.TrimSpace(l.Line()))
	}
	return strings.TrimSpace(src.String())
}

// sameConstants checks that a reused, frozen .rodata map holds what the
// object's does: the programs were compiled against those constants.
func sameConstants(spec *ebpf.MapSpec, m *ebpf.Map) error {
	if spec == nil || m == nil || !strings.HasPrefix(spec.Name, ".rodata") || len(spec.Contents) != 1 {
		return nil
	}
	want, ok := spec.Contents[0].Value.([]byte)
	if !ok {
		return nil
	}
	var got []byte
	if err := m.Lookup(uint32(0), &got); err != nil {
		return fmt.Errorf("read its constants: %w", err)
	}
	if !bytes.Equal(got[:min(len(got), len(want))], want) {
		return errors.New("its constants differ from the object's")
	}
	return nil
}

// pinAt creates path's directory and pins there.
func pinAt(path string, pin func(string) error) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	if err := pin(path); err != nil {
		return fmt.Errorf("pin at %s: %w", path, err)
	}
	return nil
}

// bpffsMagic is BPF_FS_MAGIC (include/uapi/linux/magic.h).
const bpffsMagic = 0xcafe4a11

// checkBPFFS fails unless dir (or, when it does not exist yet, its nearest
// existing parent) is on a bpffs mount.
func checkBPFFS(dir string) error {
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		var st unix.Statfs_t
		err := unix.Statfs(d, &st)
		if errors.Is(err, unix.ENOENT) && d != filepath.Dir(d) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pin path %s: %w", dir, err)
		}
		if uint32(st.Type) != bpffsMagic {
			return fmt.Errorf("pin path %s is not on a bpf filesystem (mount one: mount -t bpf bpf %s)", dir, d)
		}
		return nil
	}
}
