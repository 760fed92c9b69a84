//go:build linux

package inspect

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/isa"
	"github.com/waggle-bpf/waggle/kernel"
)

// OpenProgram opens the program ref names. The caller closes it.
func OpenProgram(ref Ref) (*ebpf.Program, error) {
	if ref.Path != "" {
		p, err := ebpf.LoadPinnedProgram(ref.Path, &ebpf.LoadPinOptions{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("program pinned at %s: %w", ref.Path, err)
		}
		return p, nil
	}
	p, err := ebpf.NewProgramFromID(ebpf.ProgramID(ref.ID))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("program id %d: no such program", ref.ID)
		}
		return nil, fmt.Errorf("program id %d: %w", ref.ID, privileged(err))
	}
	return p, nil
}

// Programs describes every program loaded in the kernel, by id.
func Programs() ([]Program, error) {
	var out []Program
	var id ebpf.ProgramID
	for {
		next, err := ebpf.ProgramGetNextID(id)
		if errors.Is(err, os.ErrNotExist) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("next program after id %d: %w", id, privileged(err))
		}
		id = next
		p, err := ebpf.NewProgramFromID(id)
		if errors.Is(err, os.ErrNotExist) {
			continue // unloaded since
		}
		if err != nil {
			return out, fmt.Errorf("program id %d: %w", id, err)
		}
		d, err := DescribeProgram(p)
		p.Close()
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
}

// ShowProgram describes the program ref names.
func ShowProgram(ref Ref) (Program, error) {
	p, err := OpenProgram(ref)
	if err != nil {
		return Program{}, err
	}
	defer p.Close()
	return DescribeProgram(p)
}

// DescribeProgram says what bpftool prog show says about p.
func DescribeProgram(p *ebpf.Program) (Program, error) {
	info, err := p.Info()
	if err != nil {
		return Program{}, fmt.Errorf("program info: %w", err)
	}
	id, _ := info.ID()
	d := Program{ID: uint32(id), Type: ProgTypeName(uint32(info.Type)), Name: info.Name, Tag: info.Tag}
	if d.GPLCompatible, err = kernel.ProgramGPLCompatible(p.FD()); err != nil {
		return Program{}, fmt.Errorf("program id %d: %w", id, err)
	}
	if st, err := p.Stats(); err == nil {
		d.RunTimeNs, d.RunCnt, d.RecursionMisses = uint64(st.Runtime), st.RunCount, st.RecursionMisses
	}
	if lt, ok := info.LoadTime(); ok {
		d.LoadedAt = bootTime().Add(lt).Unix()
	}
	d.UID, _ = info.CreatedByUID()
	if n, err := info.TranslatedSize(); err == nil {
		d.BytesXlated = uint32(n)
	}
	if n, err := info.JitedSize(); err == nil {
		d.Jited, d.BytesJited = true, n
	}
	d.BytesMemlock, _ = info.Memlock()
	if ids, ok := info.MapIDs(); ok {
		for _, m := range ids {
			d.MapIDs = append(d.MapIDs, uint32(m))
		}
	}
	if b, ok := info.BTFID(); ok {
		d.BTFID = uint32(b)
	}
	d.VerifiedInsns, _ = info.VerifiedInstructions()
	return d, nil
}

// bootTime is when the machine booted, on the wall clock: load times are
// CLOCK_BOOTTIME nanoseconds.
func bootTime() time.Time {
	var real, boot unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME, &real) != nil || unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot) != nil {
		return time.Unix(0, 0)
	}
	return time.Unix(real.Unix()).Add(-time.Duration(boot.Nano()))
}

// Xlated is a program's translated code, formatted.
type Xlated struct {
	Program Program
	Insns   []XlatedInsn
}

// DumpXlated reads and formats the translated code of the program ref
// names.
func DumpXlated(ref Ref) (Xlated, error) {
	p, err := OpenProgram(ref)
	if err != nil {
		return Xlated{}, err
	}
	defer p.Close()
	desc, err := DescribeProgram(p)
	if err != nil {
		return Xlated{}, err
	}
	raw, err := kernel.ProgramXlatedBytes(p.FD())
	if err != nil {
		return Xlated{}, fmt.Errorf("program %s: %w", ref, err)
	}
	insns, err := isa.Decode(raw)
	if err != nil {
		return Xlated{}, fmt.Errorf("program %s: translated code: %w", ref, err)
	}
	info, err := p.Info()
	if err != nil {
		return Xlated{}, fmt.Errorf("program %s: %w", ref, err)
	}
	a := Annotations{Lines: map[int]SourceLine{}, Funcs: map[int]*btf.Func{}, MapName: mapNames()}
	if lines, err := info.LineInfos(); err == nil {
		for _, l := range lines {
			a.Lines[int(l.Offset)] = sourceLine(l.Line)
		}
	}
	if funcs, err := info.FuncInfos(); err == nil {
		for _, f := range funcs {
			a.Funcs[int(f.Offset)] = f.Func
		}
	}
	if ks, err := loadKallsyms(); err == nil {
		a.Symbol, a.CallBase = ks.exact, ks.callBase
	}
	return Xlated{Program: desc, Insns: FormatXlated(insns, a)}, nil
}

func sourceLine(l *btf.Line) SourceLine {
	return SourceLine{File: l.FileName(), Line: strings.TrimSpace(l.Line()), Number: l.LineNumber(), Column: l.LineColumn()}
}

// mapNames names maps by id, asking the kernel once per id.
func mapNames() func(uint32) string {
	cache := map[uint32]string{}
	return func(id uint32) string {
		if n, ok := cache[id]; ok {
			return n
		}
		name := ""
		if m, err := ebpf.NewMapFromID(ebpf.MapID(id)); err == nil {
			if info, err := m.Info(); err == nil {
				name = info.Name
			}
			m.Close()
		}
		cache[id] = name
		return name
	}
}

// Jited is a program's machine code, disassembled.
type Jited struct {
	Program Program
	Funcs   []JitedFunc
}

// DumpJited reads and disassembles the machine code of the program ref
// names. Only x86-64 code is disassembled: it is what the kernel's JIT
// produces on the machines waggle's tests run on.
func DumpJited(ref Ref, arch string) (Jited, error) {
	if arch != "amd64" {
		return Jited{}, fmt.Errorf("%w: disassembling %s machine code (only amd64's)", ErrNotSupported, arch)
	}
	p, err := OpenProgram(ref)
	if err != nil {
		return Jited{}, err
	}
	defer p.Close()
	desc, err := DescribeProgram(p)
	if err != nil {
		return Jited{}, err
	}
	info, err := p.Info()
	if err != nil {
		return Jited{}, fmt.Errorf("program %s: %w", ref, err)
	}
	code, ok := info.JitedInsns()
	if !ok {
		return Jited{}, fmt.Errorf("program %s: the kernel shows no machine code (JIT disabled, or kernel.kptr_restrict hides it)", ref)
	}
	in := JitedInput{Code: code, Lines: map[uint64]SourceLine{}}
	in.FuncLens, _ = info.JitedFuncLens()
	if addrs, ok := info.JitedKsymAddrs(); ok {
		for _, a := range addrs {
			in.Addrs = append(in.Addrs, uint64(a))
		}
	}
	if funcs, err := info.FuncInfos(); err == nil {
		for _, f := range funcs {
			in.Names = append(in.Names, f.Func.Name)
			in.Protos = append(in.Protos, FuncPrototype(f.Func))
		}
	}
	if len(in.Names) == 0 {
		in.Names = []string{desc.Name}
	}
	if jl, ok := info.JitedLineInfos(); ok {
		if lines, err := info.LineInfos(); err == nil && len(lines) == len(jl) {
			for i, l := range lines {
				if _, dup := in.Lines[jl[i]]; !dup {
					in.Lines[jl[i]] = sourceLine(l.Line)
				}
			}
		}
	}
	if ks, err := loadKallsyms(); err == nil {
		in.Symbol = ks.exact
	}
	funcs, err := DisasmJited(in)
	if err != nil {
		return Jited{}, fmt.Errorf("program %s: %w", ref, err)
	}
	return Jited{Program: desc, Funcs: funcs}, nil
}

// kallsyms is /proc/kallsyms: the kernel's function symbols by address.
// Addresses read as zero without CAP_SYSLOG (kernel.kptr_restrict); then
// loading fails. The names sit in one buffer, not a string each: the
// kernel has over a hundred thousand of them and a dump resolves a few.
type kallsyms struct {
	syms     []ksym // by address
	names    []byte
	callBase uint64 // __bpf_call_base
}

type ksym struct {
	addr       uint64
	start, end uint32 // the name in names
}

func loadKallsyms() (*kallsyms, error) {
	f, err := os.Open("/proc/kallsyms")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ks := &kallsyms{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "ffffffff81000000 T _stext" or "... t name\t[module]"
		line := sc.Bytes()
		sp := bytes.IndexByte(line, ' ')
		if sp < 0 || len(line) < sp+4 {
			continue
		}
		switch line[sp+1] {
		case 't', 'T', 'w', 'W': // functions only: calls go to them
		default:
			continue
		}
		addr, err := strconv.ParseUint(string(line[:sp]), 16, 64)
		if err != nil || addr == 0 {
			continue
		}
		name := line[sp+3:]
		if tab := bytes.IndexByte(name, '\t'); tab >= 0 {
			name = name[:tab]
		}
		if ks.callBase == 0 && string(name) == "__bpf_call_base" {
			ks.callBase = addr
		}
		start := uint32(len(ks.names))
		ks.names = append(ks.names, name...)
		ks.syms = append(ks.syms, ksym{addr, start, uint32(len(ks.names))})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("/proc/kallsyms: %w", err)
	}
	if len(ks.syms) == 0 {
		return nil, errors.New("/proc/kallsyms: no addresses (kernel.kptr_restrict)")
	}
	sort.Slice(ks.syms, func(i, j int) bool { return ks.syms[i].addr < ks.syms[j].addr })
	return ks, nil
}

// exact returns the symbol at addr, or "".
func (ks *kallsyms) exact(addr uint64) string {
	i := sort.Search(len(ks.syms), func(i int) bool { return ks.syms[i].addr >= addr })
	if i < len(ks.syms) && ks.syms[i].addr == addr {
		return string(ks.names[ks.syms[i].start:ks.syms[i].end])
	}
	return ""
}

// privileged adds the fix to a permission error: reading the kernel's
// objects takes CAP_SYS_ADMIN.
func privileged(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w (listing and opening the kernel's eBPF objects needs CAP_SYS_ADMIN: run as root)", err)
	}
	return err
}
