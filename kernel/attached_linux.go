package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Attached is an object loaded into the kernel with one of its programs
// attached to a hook. Close detaches the program and releases the
// object, except what Pin pinned.
type Attached struct {
	// Program is the name of the attached program, Section its ELF
	// section.
	Program, Section string
	// Collection is the loaded object: its programs and maps.
	Collection *ebpf.Collection
	// Attachment is the program on its hook.
	*Attachment
}

// AttachFile loads the object at path into the kernel and attaches one of
// its programs (opts.Program, or the only one) to opts.Hook completed by
// the program's section name (Hook.Merge): "waggle attach". The program's
// type comes from its section, or from the hook when the section names
// none; a section whose type the hook does not take is an error. No map
// is pinned by the load (Attached.Pin pins them with the link).
//
// The hook is probed before anything is loaded (HookSupported): a hook
// the kernel lacks fails with an error wrapping ErrNotSupported that names
// the probe.
func AttachFile(path string, opts AttachOptions) (*Attached, error) {
	if err := Supported(); err != nil {
		return nil, err
	}
	a := &Attached{}
	var hook Hook
	prepare := func(spec *ebpf.CollectionSpec) error {
		name, ps, err := pickSpecProgram(spec, opts.Program)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		a.Program, a.Section = name, ps.SectionName
		secHook, secErr := ParseSection(ps.SectionName)
		if opts.Hook.Kind == HookNone && secErr != nil {
			return fmt.Errorf("program %s: %w; name the hook", name, secErr)
		}
		hook = opts.Hook.Merge(secHook)
		if err := hook.Check(); err != nil {
			return fmt.Errorf("program %s (section %s): %w", name, ps.SectionName, err)
		}
		if err := specForHook(spec, ps, hook); err != nil {
			return fmt.Errorf("program %s (section %s): %w", name, ps.SectionName, err)
		}
		if hook.Kind == HookTCX && !hook.TCLegacy {
			if err := probeTCX(); errors.Is(err, ErrNotSupported) {
				hook.TCLegacy = true // the fallback, which Attach takes too
			}
		}
		if err := HookSupported(hook); err != nil {
			return err
		}
		if opts.Prepare != nil {
			return opts.Prepare(spec)
		}
		return nil
	}
	coll, err := loadObject(path, prepare)
	if err != nil {
		return nil, err
	}
	a.Collection = coll
	prog := coll.Programs[a.Program]
	if prog == nil {
		coll.Close()
		return nil, fmt.Errorf("%s: cilium/ebpf loaded no program %s", path, a.Program)
	}
	if a.Attachment, err = Attach(prog, hook); err != nil {
		coll.Close()
		return nil, fmt.Errorf("%s: program %s: %w", path, a.Program, err)
	}
	return a, nil
}

// pickSpecProgram returns the named program, or the only one.
func pickSpecProgram(spec *ebpf.CollectionSpec, name string) (string, *ebpf.ProgramSpec, error) {
	names := make([]string, 0, len(spec.Programs))
	for n := range spec.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	if name != "" {
		if ps := spec.Programs[name]; ps != nil {
			return name, ps, nil
		}
		return "", nil, fmt.Errorf("no program %q; the object has %s", name, strings.Join(names, ", "))
	}
	if len(names) != 1 {
		return "", nil, fmt.Errorf("the object has %d programs (%s): choose one", len(names), strings.Join(names, ", "))
	}
	return names[0], spec.Programs[names[0]], nil
}

// specForHook gives ps the program type (and expected attach type, and
// attach target) the hook takes, where its section named none, and
// refuses a program of another type. Programs of the object without a
// type (tail-call targets in untyped sections) get the same. Maps are not
// pinned by the load.
func specForHook(spec *ebpf.CollectionSpec, ps *ebpf.ProgramSpec, h Hook) error {
	typ, at := h.ProgramType()
	switch {
	case ps.Type == ebpf.UnspecifiedProgram:
		ps.Type, ps.AttachType = typ, at
	case typ != ebpf.UnspecifiedProgram && ps.Type != typ:
		return fmt.Errorf("a %v program; the %v hook takes %v programs", ps.Type, h.Kind, typ)
	}
	switch h.Kind {
	case HookFentry, HookFexit, HookLSM:
		ps.AttachType, ps.AttachTo = at, h.Name
	case HookCgroup:
		if ps.Type != ebpf.CGroupSKB {
			ps.AttachType = at // the kernel checks it at attach
		}
	}
	for _, p := range spec.Programs {
		if p.Type == ebpf.UnspecifiedProgram {
			p.Type = ps.Type
		}
	}
	for _, m := range spec.Maps {
		m.Pinning = ebpf.PinNone
	}
	return nil
}

// Close detaches the program unless it is pinned, and releases the
// object (pinned maps stay).
func (a *Attached) Close() error {
	var errs []error
	if a.Attachment != nil {
		errs = append(errs, a.Attachment.Close())
	}
	if a.Collection != nil {
		a.Collection.Close()
	}
	return errors.Join(errs...)
}

// The layout Pin makes in its directory, which Detach reads back:
//
//	DIR/link              the bpf link (DIR/link_cpuN: perf_event's, one per CPU)
//	DIR/tc_IF_DIR_PRIO_H  instead of link for a clsact filter: its program,
//	                      pinned under a name that says where the filter is
//	                      (interface index, direction, priority, handle;
//	                      "_qdisc" after if the qdisc was made for it)
//	DIR/prog              the program
//	DIR/maps/NAME         each map of the object, by its name with dots
//	                      made underscores (".rodata" is "_rodata"): bpffs
//	                      refuses names with dots (EPERM)
const (
	pinLink = "link"
	pinProg = "prog"
	pinMaps = "maps"
)

// Pin pins the attachment and the object's program and maps under dir, a
// new (or empty) directory on a bpffs, so that the program stays attached
// and its maps readable after the process ends; Detach(dir) undoes it. It
// returns the paths pinned. A socket filter cannot be pinned: it lives as
// long as its socket.
func (a *Attached) Pin(dir string) ([]string, error) {
	if a.Attachment.Hook.Kind == HookSocket {
		return nil, errors.New("a socket filter cannot be pinned: it lives as long as its socket, which this process holds")
	}
	if err := mkPinDir(dir); err != nil {
		return nil, err
	}
	var pinned []string
	fail := func(err error) ([]string, error) {
		if _, derr := detach(dir, true); derr != nil {
			err = errors.Join(err, fmt.Errorf("undo: %w", derr))
		}
		return nil, err
	}
	pin := func(p interface{ Pin(string) error }, name string) error {
		path := filepath.Join(dir, name)
		if err := p.Pin(path); err != nil {
			return fmt.Errorf("pin %s: %w", path, err)
		}
		pinned = append(pinned, path)
		return nil
	}
	for i, l := range a.links {
		name := pinLink
		if a.Hook.Kind == HookPerfEvent {
			name = fmt.Sprintf("%s_cpu%d", pinLink, a.cpus[i])
		}
		if err := pin(l, name); err != nil {
			return fail(err)
		}
	}
	prog := a.Collection.Programs[a.Program]
	if a.tc != nil {
		// A second descriptor: cilium/ebpf moves a pinned object's pin
		// when asked to pin it again.
		clone, err := prog.Clone()
		if err != nil {
			return fail(err)
		}
		err = pin(clone, a.tc.pinName())
		clone.Close()
		if err != nil {
			return fail(err)
		}
		a.tc.pinned = true
	}
	if err := pin(prog, pinProg); err != nil {
		return fail(err)
	}
	if len(a.Collection.Maps) > 0 {
		if err := os.Mkdir(filepath.Join(dir, pinMaps), 0o700); err != nil {
			return fail(err)
		}
		names := make([]string, 0, len(a.Collection.Maps))
		for n := range a.Collection.Maps {
			names = append(names, n)
		}
		sort.Strings(names)
		seen := map[string]string{}
		for _, n := range names {
			file := MapPinName(n)
			if file == "" {
				return fail(fmt.Errorf("map %q: not a name a file can have", n))
			}
			if other, ok := seen[file]; ok {
				return fail(fmt.Errorf("maps %q and %q would both be pinned as %s", other, n, file))
			}
			seen[file] = n
			if err := pin(a.Collection.Maps[n], filepath.Join(pinMaps, file)); err != nil {
				return fail(err)
			}
		}
	}
	return pinned, nil
}

// CheckPinDir reports whether Attached.Pin can pin in dir: a directory on
// a bpffs that does not exist yet, or is empty. Callers check it before
// attaching, so that a bad directory leaves nothing attached even for a
// moment.
func CheckPinDir(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Dir(dir), &st); err != nil {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	if uint32(st.Type) != unix.BPF_FS_MAGIC {
		return fmt.Errorf("pin directory %s: %s is not on a bpffs (mount -t bpf bpf /sys/fs/bpf)", dir, filepath.Dir(dir))
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("pin directory %s: %w", dir, err)
	case len(ents) > 0:
		return fmt.Errorf("pin directory %s is not empty (waggle detach %s removes an attachment)", dir, dir)
	}
	return nil
}

// mkPinDir makes dir on a bpffs, or takes it if it exists and is empty.
func mkPinDir(dir string) error {
	if err := CheckPinDir(dir); err != nil {
		return err
	}
	err := os.Mkdir(dir, 0o700)
	if err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("pin directory %s: %w", dir, err)
	}
	return nil
}

// Detach undoes Pin: it detaches the links pinned in dir (BPF_LINK_DETACH
// where the link has it, so that no other holder keeps the program
// attached) and removes their pins, deletes a clsact filter, removes the
// program's and the maps' pins, and the directory. It returns the paths
// it removed. A directory holding anything Pin does not make is refused
// before anything is touched.
func Detach(dir string) ([]string, error) { return detach(dir, false) }

// detach is Detach; partial takes a directory Pin left half made, with no
// link in it yet.
func detach(dir string, partial bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("detach: %w", err)
	}
	var links, tcs, maps []string
	prog := ""
	for _, e := range ents {
		n := e.Name()
		switch {
		case n == pinLink || strings.HasPrefix(n, pinLink+"_cpu") && isDigits(n[len(pinLink)+4:]):
			links = append(links, n)
		case n == pinProg:
			prog = n
		case n == pinMaps && e.IsDir():
			ms, err := os.ReadDir(filepath.Join(dir, n))
			if err != nil {
				return nil, fmt.Errorf("detach: %w", err)
			}
			for _, m := range ms {
				if m.IsDir() {
					return nil, fmt.Errorf("detach %s: %s is a directory; waggle attach pins only maps there", dir, filepath.Join(dir, n, m.Name()))
				}
				maps = append(maps, filepath.Join(n, m.Name()))
			}
		default:
			if _, ok := parseTCPin(n); ok {
				tcs = append(tcs, n)
				continue
			}
			return nil, fmt.Errorf("detach %s: it holds %s, which waggle attach --pin does not make: not an attachment's directory", dir, n)
		}
	}
	if len(links)+len(tcs) == 0 && !partial {
		return nil, fmt.Errorf("detach %s: it holds no link, which waggle attach --pin makes: not an attachment's directory", dir)
	}
	var removed []string
	var errs []error
	unpin := func(rel string) {
		path := filepath.Join(dir, rel)
		if err := os.Remove(path); err != nil {
			errs = append(errs, err)
			return
		}
		removed = append(removed, path)
	}
	for _, n := range links {
		path := filepath.Join(dir, n)
		l, err := link.LoadPinnedLink(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("open the link %s: %w", path, err))
			continue
		}
		// perf_event links have no BPF_LINK_DETACH; removing the last
		// reference detaches them.
		if err := l.Detach(); err != nil && !errors.Is(err, ebpf.ErrNotSupported) && !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("detach the link %s: %w", path, err))
		}
		l.Close()
		unpin(n)
	}
	for _, n := range tcs {
		path := filepath.Join(dir, n)
		f, _ := parseTCPin(n)
		p, err := ebpf.LoadPinnedProgram(path, nil)
		if err != nil {
			errs = append(errs, fmt.Errorf("open the program %s: %w", path, err))
			continue
		}
		if info, err := p.Info(); err == nil {
			f.progID, _ = info.ID()
		}
		p.Close()
		if err := f.delete(); err != nil {
			errs = append(errs, err)
		}
		unpin(n)
	}
	if prog != "" {
		unpin(prog)
	}
	for _, m := range maps {
		unpin(m)
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("detach %s: %w", dir, errors.Join(errs...))
	}
	if _, err := os.Stat(filepath.Join(dir, pinMaps)); err == nil {
		if err := os.Remove(filepath.Join(dir, pinMaps)); err != nil {
			return removed, fmt.Errorf("detach %s: %w", dir, err)
		}
	}
	if err := os.Remove(dir); err != nil {
		return removed, fmt.Errorf("detach %s: %w", dir, err)
	}
	return removed, nil
}

func isDigits(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil && s != ""
}
