package kselftest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

// Mode is the privilege a case is loaded with.
type Mode int

const (
	// Privileged is test_loader's privileged mode: root without
	// CAP_SYS_ADMIN (prog_tests/verifier.c drops it), so with CAP_BPF,
	// CAP_PERFMON and CAP_NET_ADMIN.
	Privileged Mode = iota
	// Unprivileged is test_loader's unprivileged mode: CAP_SYS_ADMIN,
	// CAP_NET_ADMIN, CAP_PERFMON and CAP_BPF dropped.
	Unprivileged
)

func (m Mode) String() string {
	if m == Unprivileged {
		return "unpriv"
	}
	return "priv"
}

// Expect is the verdict a case expects.
type Expect int

const (
	// Success expects the program to load (__success, or no tag).
	Success Expect = iota
	// Failure expects the verifier to reject the program (__failure).
	Failure
)

func (e Expect) String() string {
	if e == Failure {
		return "failure"
	}
	return "success"
}

// Program flags of BPF_PROG_LOAD that the tags name (include/uapi/linux/bpf.h).
const (
	FlagStrictAlignment  = 1 << 0 // BPF_F_STRICT_ALIGNMENT
	FlagAnyAlignment     = 1 << 1 // BPF_F_ANY_ALIGNMENT
	FlagTestRndHi32      = 1 << 2 // BPF_F_TEST_RND_HI32
	FlagTestStateFreq    = 1 << 3 // BPF_F_TEST_STATE_FREQ
	FlagSleepable        = 1 << 4 // BPF_F_SLEEPABLE
	FlagXDPHasFrags      = 1 << 5 // BPF_F_XDP_HAS_FRAGS
	FlagTestRegInvariant = 1 << 7 // BPF_F_TEST_REG_INVARIANTS
)

// TestingFlags are the flags test_loader adds to every program
// (testing_helpers.c testing_prog_flags), where the kernel knows them.
const TestingFlags = FlagTestRndHi32 | FlagTestRegInvariant

// flagNames are the flags __flag names (test_loader.c parse_test_spec).
var flagNames = map[string]uint32{
	"BPF_F_STRICT_ALIGNMENT":    FlagStrictAlignment,
	"BPF_F_ANY_ALIGNMENT":       FlagAnyAlignment,
	"BPF_F_TEST_RND_HI32":       FlagTestRndHi32,
	"BPF_F_TEST_STATE_FREQ":     FlagTestStateFreq,
	"BPF_F_SLEEPABLE":           FlagSleepable,
	"BPF_F_XDP_HAS_FRAGS":       FlagXDPHasFrags,
	"BPF_F_TEST_REG_INVARIANTS": FlagTestRegInvariant,
}

// Named return values of __retval (bpf_misc.h).
const (
	// PointerValue as a __retval accepts any return value.
	PointerValue = 0xcafe4a // POINTER_VALUE
	// TestDataLen is the length of the packet test_loader runs with.
	TestDataLen = 64 // TEST_DATA_LEN
)

// Msg is one expected message (__msg): a substring of the verifier log,
// or, when it holds "{{...}}" parts, a regular expression whose parts
// outside the braces are literal.
type Msg struct {
	// Pattern is the message as written in the source.
	Pattern string
	re      *regexp.Regexp
}

// IsRegexp reports whether the message is matched as a regular expression.
func (m Msg) IsRegexp() bool { return m.re != nil }

func (m Msg) String() string { return m.Pattern }

// newMsg compiles a pattern as test_loader.c compile_regex does: text
// outside "{{" "}}" is literal, text inside is an extended regular
// expression; lines are matched as with REG_NEWLINE.
func newMsg(pattern string) (Msg, error) {
	m := Msg{Pattern: pattern}
	if !strings.Contains(pattern, "{{") {
		return m, nil
	}
	var b strings.Builder
	b.WriteString("(?m)")
	rest := pattern
	for rest != "" {
		i := strings.Index(rest, "{{")
		if i < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		b.WriteString(regexp.QuoteMeta(rest[:i]))
		rest = rest[i+2:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return m, fmt.Errorf("message %q: open {{ but no closing }}", pattern)
		}
		b.WriteString("(?:" + rest[:j] + ")")
		rest = rest[j+2:]
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return m, fmt.Errorf("message %q: %w", pattern, err)
	}
	m.re = re
	return m, nil
}

// MatchMsgs checks msgs against a verifier log as test_loader.c
// validate_msgs does: each message must be found after the end of the
// previous one. It returns the index of the first message not found, or
// -1 when all are.
func MatchMsgs(log string, msgs []Msg) int {
	rest := log
	for i, m := range msgs {
		if m.re == nil {
			j := strings.Index(rest, m.Pattern)
			if j < 0 {
				return i
			}
			rest = rest[j+len(m.Pattern):]
			continue
		}
		loc := m.re.FindStringIndex(rest)
		if loc == nil {
			return i
		}
		rest = rest[loc[1]:]
	}
	return -1
}

// Case is one test of test_loader: a program of an object, in one mode,
// with its expected verdict.
type Case struct {
	// File is the source file, e.g. "verifier_and.c".
	File string
	// Object is the path of the compiled object.
	Object string
	// Program is the program's (function's) name.
	Program string
	// Section is the ELF section, e.g. "socket" or "cgroup/skb".
	Section string
	// Type and AttachType are what the section means (cilium/ebpf's
	// reading of libbpf's section names).
	Type       ebpf.ProgramType
	AttachType ebpf.AttachType
	// Mode is the privilege the case is loaded with.
	Mode Mode
	// Name is the case's name as test_loader prints it: the description
	// or the program name, with " @unpriv" in unprivileged mode.
	Name string
	// Description is __description's text.
	Description string
	// Expect is the expected verdict.
	Expect Expect
	// Msgs must appear in the verifier log, in order.
	Msgs []Msg
	// Xlated are the expected lines of the program after the verifier's
	// rewrites (__xlated); kept for reference, not checked.
	Xlated []Msg
	// Retval is the expected BPF_PROG_TEST_RUN result of an accepted
	// program (__retval), nil when the case is not run; PointerValue
	// accepts any.
	Retval *int32
	// Flags are BPF_PROG_LOAD's prog_flags: the section's, TestingFlags and
	// the __flag tags.
	Flags uint32
	// LogLevel is __log_level, 0 without one.
	LogLevel uint32
	// Auxiliary are the programs of the object loaded with this one
	// (__auxiliary, __auxiliary_unpriv for its mode).
	Auxiliary []string
	// BTFPath is __btf_path, the kernel BTF to relocate against.
	BTFPath string
	// Skip says why the case is not run anywhere, e.g. it is for another
	// architecture.
	Skip string

	// Insns is the bytecode of a test of the older verifier/*.c (whose
	// Object is ""): little-endian instructions as test_verifier loads
	// them, with the map loads (BPF_LD_MAP_FD) of Fixups to patch.
	Insns []byte
	// Fixups maps a map of test_verifier (see RawMap) to the instructions
	// that load its fd.
	Fixups map[string][]int
	// Index is the test's position among test_verifier's tests.
	Index int
	// ExpectProcessed is the expected count of processed instructions
	// (test_verifier's insn_processed), 0 when not given.
	ExpectProcessed int
}

// ID names a case uniquely: file, program (or test number) and mode.
func (c Case) ID() string {
	if c.Insns != nil {
		return fmt.Sprintf("%s/#%d@%s", c.File, c.Index, c.Mode)
	}
	return c.File + "/" + c.Program + "@" + c.Mode.String()
}

// WithoutPerfmon reports whether a privileged case is loaded without
// CAP_PERFMON too: prog_tests/verifier.c runs verifier_mtu.c so
// (test_verifier_mtu), where Linux then neither allows uninitialised
// stack reads nor pointer leaks.
func (c Case) WithoutPerfmon() bool {
	return c.Mode == Privileged && c.File == "verifier_mtu.c"
}

// File is one source file of the suite.
type File struct {
	// Name is the source file's name, e.g. "verifier_and.c".
	Name string
	// Object is the compiled object's path, "" when it did not compile.
	Object string
	// Err is why the file has no cases: the compiler's first error, or
	// cilium/ebpf's error reading the object.
	Err string
	// Programs counts the object's programs, tests and auxiliary ones.
	Programs int
	// Invalid maps programs whose tags test_loader cannot parse to the
	// reason; they are no cases.
	Invalid map[string]string
}

// Suite is the compiled selftests with their cases.
type Suite struct {
	// Dir holds the objects.
	Dir string
	// Files are the source files, sorted.
	Files []File
	// Raw is why the older verifier/*.c tests are missing, "" when their
	// cases are among Cases.
	Raw string
	// Cases are the test cases, by file, then in the object's order of
	// programs, privileged before unprivileged.
	Cases []Case
	// Cached reports that the objects came from an earlier build.
	Cached bool
	// BuildTook is how long compiling took when the objects were built.
	BuildTook string

	mu       sync.Mutex
	specs    map[string]*ebpf.CollectionSpec // by object path
	verdicts map[string]Verdict              // the kernel's, by case ID
	probe    sync.Once
	testing  uint32 // TestingFlags the kernel knows
}

// Build returns the suite: the objects from cacheRoot when a build with
// the same inputs finished there, else built; then the cases parsed from
// every object. logf, when not nil, reports progress.
func Build(ctx context.Context, src Source, cacheRoot string, logf func(format string, args ...any)) (*Suite, error) {
	o, err := buildObjects(ctx, src, cacheRoot, logf)
	if err != nil {
		return nil, err
	}
	s := &Suite{Dir: o.dir, Cached: o.cached, BuildTook: o.m.Took, specs: map[string]*ebpf.CollectionSpec{}}
	for _, name := range o.m.Sources {
		f := File{Name: name}
		if msg, ok := o.m.Failed[name]; ok {
			f.Err = msg
			s.Files = append(s.Files, f)
			continue
		}
		f.Object = filepath.Join(o.dir, strings.TrimSuffix(name, ".c")+".o")
		cases, err := s.parse(&f)
		if err != nil {
			f.Err = err.Error()
		}
		s.Files = append(s.Files, f)
		s.Cases = append(s.Cases, cases...)
	}
	if o.m.RawErr != "" {
		s.Raw = o.m.RawErr
		return s, nil
	}
	raw, err := rawCases(o.dir)
	if err != nil {
		s.Raw = err.Error()
		return s, nil
	}
	s.Cases = append(s.Cases, raw...)
	return s, nil
}

// Spec returns a copy of the collection spec of a case's object, for a
// verifier to load. Raw cases (Insns) have none.
func (s *Suite) Spec(c Case) (*ebpf.CollectionSpec, error) {
	if c.Object == "" {
		return nil, fmt.Errorf("%s: a raw test has no object", c.ID())
	}
	s.mu.Lock()
	spec := s.specs[c.Object]
	s.mu.Unlock()
	if spec == nil {
		var err error
		if spec, err = ebpf.LoadCollectionSpec(c.Object); err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.specs[c.Object] = spec
		s.mu.Unlock()
	}
	spec = spec.Copy()
	// libbpf rounds ring buffers up to a power-of-two number of pages
	// (adjust_ringbuf_sz); cilium/ebpf leaves them as declared. Both
	// verifiers get what libbpf would create.
	for _, ms := range spec.Maps {
		if ms.Type == ebpf.RingBuf || ms.Type == ebpf.UserRingbuf {
			ms.MaxEntries = ringbufSize(ms.MaxEntries)
		}
	}
	return spec, nil
}

// ringbufSize is libbpf's adjust_ringbuf_sz: the smallest power-of-two
// number of pages that holds n bytes.
func ringbufSize(n uint32) uint32 {
	page := uint32(os.Getpagesize())
	for mul := uint32(1); mul <= ^uint32(0)/page; mul <<= 1 {
		if mul*page >= n {
			return mul * page
		}
	}
	return n
}

// Select returns the cases of the named files (all when none are named).
func (s *Suite) Select(files ...string) []Case {
	if len(files) == 0 {
		return slices.Clone(s.Cases)
	}
	var out []Case
	for _, c := range s.Cases {
		if slices.Contains(files, c.File) {
			out = append(out, c)
		}
	}
	return out
}

// arch is test_loader's name of this architecture (__arch_*).
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "X86_64"
	case "arm64":
		return "ARM64"
	case "riscv64":
		return "RISCV64"
	}
	return "UNKNOWN"
}

// spec is test_loader.c's test_spec: what the tags of one program say.
type spec struct {
	description     string
	priv, unpriv    subspec
	modes           int // 1 priv, 2 unpriv
	auxiliary       bool
	flags           uint32
	logLevel        uint32
	btfPath         string
	archs           []string
	hasUnprivResult bool
	hasUnprivRetval bool
}

type subspec struct {
	failure bool
	msgs    []Msg
	xlated  []Msg
	retval  *int32
}

const (
	modePriv   = 1
	modeUnpriv = 2
)

// dynamic returns the text after "PFX<counter>=" (skip_dynamic_pfx).
func dynamic(s, pfx string) (string, bool) {
	rest, ok := strings.CutPrefix(s, pfx)
	if !ok {
		return "", false
	}
	_, msg, ok := strings.Cut(rest, "=")
	return msg, ok
}

// parseInt is test_loader.c parse_int: decimal, or hexadecimal after 0x,
// truncated to 32 bits.
func parseInt(s string) (int32, error) {
	var v int64
	var err error
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		v, err = strconv.ParseInt(h, 16, 64)
	} else {
		v, err = strconv.ParseInt(s, 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("bad number %q", s)
	}
	return int32(v), nil
}

func parseRetval(s string) (int32, error) {
	switch s {
	case "INT_MIN":
		return -1 << 31, nil
	case "POINTER_VALUE":
		return PointerValue, nil
	case "TEST_DATA_LEN":
		return TestDataLen, nil
	}
	return parseInt(s)
}

// parseTags reads a program's decl tags as test_loader.c parse_test_spec
// does, in the order of the BTF.
func parseTags(tags []string) (*spec, error) {
	sp := &spec{flags: TestingFlags}
	collectJit := false
	for _, t := range tags {
		s, ok := strings.CutPrefix(t, "comment:")
		if !ok {
			continue
		}
		var err error
		switch {
		case strings.HasPrefix(s, "test_description="):
			sp.description = strings.TrimPrefix(s, "test_description=")
		case s == "test_expect_failure":
			sp.priv.failure = true
			sp.modes |= modePriv
		case s == "test_expect_success":
			sp.priv.failure = false
			sp.modes |= modePriv
		case s == "test_expect_failure_unpriv":
			sp.unpriv.failure = true
			sp.modes |= modeUnpriv
			sp.hasUnprivResult = true
		case s == "test_expect_success_unpriv":
			sp.unpriv.failure = false
			sp.modes |= modeUnpriv
			sp.hasUnprivResult = true
		case s == "test_auxiliary":
			sp.auxiliary = true
			sp.modes |= modePriv
		case s == "test_auxiliary_unpriv":
			sp.auxiliary = true
			sp.modes |= modeUnpriv
		case strings.HasPrefix(s, "test_expect_msg="):
			m, _ := dynamic(s, "test_expect_msg=")
			err = push(&sp.priv.msgs, m)
			sp.modes |= modePriv
		case strings.HasPrefix(s, "test_expect_msg_unpriv="):
			m, _ := dynamic(s, "test_expect_msg_unpriv=")
			err = push(&sp.unpriv.msgs, m)
			sp.modes |= modeUnpriv
		case strings.HasPrefix(s, "test_jited="), strings.HasPrefix(s, "test_jited_unpriv="):
			if len(sp.archs) == 0 {
				return nil, errors.New("__jited used before __arch_*")
			}
			if collectJit {
				if strings.HasPrefix(s, "test_jited_unpriv=") {
					sp.modes |= modeUnpriv
				} else {
					sp.modes |= modePriv
				}
			}
		case strings.HasPrefix(s, "test_expect_xlated="):
			m, _ := dynamic(s, "test_expect_xlated=")
			if m != "..." {
				err = push(&sp.priv.xlated, m)
			}
			sp.modes |= modePriv
		case strings.HasPrefix(s, "test_expect_xlated_unpriv="):
			m, _ := dynamic(s, "test_expect_xlated_unpriv=")
			if m != "..." {
				err = push(&sp.unpriv.xlated, m)
			}
			sp.modes |= modeUnpriv
		case strings.HasPrefix(s, "test_retval="):
			var v int32
			v, err = parseRetval(strings.TrimPrefix(s, "test_retval="))
			sp.priv.retval = &v
			sp.modes |= modePriv
		case strings.HasPrefix(s, "test_retval_unpriv="):
			var v int32
			v, err = parseRetval(strings.TrimPrefix(s, "test_retval_unpriv="))
			sp.unpriv.retval = &v
			sp.modes |= modeUnpriv
			sp.hasUnprivRetval = true
		case strings.HasPrefix(s, "test_log_level="):
			var v int32
			v, err = parseInt(strings.TrimPrefix(s, "test_log_level="))
			sp.logLevel = uint32(v)
		case strings.HasPrefix(s, "test_prog_flags="):
			v := strings.TrimPrefix(s, "test_prog_flags=")
			clear := strings.HasPrefix(v, "!")
			v = strings.TrimPrefix(v, "!")
			f, ok := flagNames[v]
			if !ok {
				var n int32
				n, err = parseInt(v)
				f = uint32(n)
			}
			if clear {
				sp.flags &^= f
			} else {
				sp.flags |= f
			}
		case strings.HasPrefix(s, "test_arch="):
			a := strings.TrimPrefix(s, "test_arch=")
			if a != "X86_64" && a != "ARM64" && a != "RISCV64" {
				return nil, fmt.Errorf("bad arch spec %q", a)
			}
			sp.archs = append(sp.archs, a)
			collectJit = a == arch()
		case strings.HasPrefix(s, "test_btf_path="):
			sp.btfPath = strings.TrimPrefix(s, "test_btf_path=")
		}
		if err != nil {
			return nil, err
		}
	}
	if sp.modes == 0 {
		sp.modes = modePriv
	}
	if !sp.hasUnprivResult {
		sp.unpriv.failure = sp.priv.failure
	}
	if !sp.hasUnprivRetval {
		sp.unpriv.retval = sp.priv.retval
	}
	if len(sp.unpriv.msgs) == 0 {
		sp.unpriv.msgs = sp.priv.msgs
	}
	if len(sp.unpriv.xlated) == 0 {
		sp.unpriv.xlated = sp.priv.xlated
	}
	return sp, nil
}

func push(msgs *[]Msg, pattern string) error {
	m, err := newMsg(pattern)
	if err != nil {
		return err
	}
	*msgs = append(*msgs, m)
	return nil
}

// funcTags returns the decl tags of a program's BTF function.
func funcTags(cs *ebpf.CollectionSpec, ps *ebpf.ProgramSpec) ([]string, error) {
	if len(ps.Instructions) > 0 {
		if fn := btf.FuncMetadata(&ps.Instructions[0]); fn != nil && fn.Name == ps.Name {
			return fn.Tags, nil
		}
	}
	if cs.Types == nil {
		return nil, errors.New("object has no BTF")
	}
	var fn *btf.Func
	if err := cs.Types.TypeByName(ps.Name, &fn); err != nil {
		return nil, fmt.Errorf("no FUNC BTF type for %q: %w", ps.Name, err)
	}
	return fn.Tags, nil
}

// parse reads the cases of f's object.
func (s *Suite) parse(f *File) ([]Case, error) {
	cs, err := ebpf.LoadCollectionSpec(f.Object)
	if err != nil && strings.Contains(err.Error(), "'.struct_ops' section: not supported") {
		// cilium/ebpf does not read the struct_ops maps of .struct_ops;
		// the cases load single programs, which do not need them.
		if obj, rerr := hideStructOps(f.Object); rerr == nil {
			f.Object = obj
			cs, err = ebpf.LoadCollectionSpec(obj)
		}
	}
	if err != nil {
		return nil, err
	}
	s.specs[f.Object] = cs
	// The object's programs in ELF order: by section, then by offset.
	type entry struct {
		ps *ebpf.ProgramSpec
		sp *spec
	}
	var progs []entry
	for _, ps := range cs.Programs {
		progs = append(progs, entry{ps: ps})
	}
	slices.SortFunc(progs, func(a, b entry) int {
		return strings.Compare(a.ps.SectionName+"\x00"+a.ps.Name, b.ps.SectionName+"\x00"+b.ps.Name)
	})
	f.Programs = len(progs)
	for i := range progs {
		tags, err := funcTags(cs, progs[i].ps)
		if err == nil {
			progs[i].sp, err = parseTags(tags)
		}
		if err != nil {
			if f.Invalid == nil {
				f.Invalid = map[string]string{}
			}
			f.Invalid[progs[i].ps.Name] = err.Error()
		}
	}
	var cases []Case
	for _, e := range progs {
		sp := e.sp
		if sp == nil || sp.auxiliary {
			continue
		}
		for _, mode := range []Mode{Privileged, Unprivileged} {
			bit, sub := modePriv, sp.priv
			if mode == Unprivileged {
				bit, sub = modeUnpriv, sp.unpriv
			}
			if sp.modes&bit == 0 {
				continue
			}
			name := cmp.Or(sp.description, e.ps.Name)
			if mode == Unprivileged {
				name += " @unpriv"
			}
			c := Case{
				File: f.Name, Object: f.Object, Program: e.ps.Name, Section: e.ps.SectionName,
				Type: e.ps.Type, AttachType: e.ps.AttachType, Mode: mode,
				Name: name, Description: sp.description, Msgs: sub.msgs, Xlated: sub.xlated,
				Retval: sub.retval, Flags: e.ps.Flags | sp.flags, LogLevel: sp.logLevel, BTFPath: sp.btfPath,
			}
			if sub.failure {
				c.Expect = Failure
			}
			if len(sp.archs) > 0 && !slices.Contains(sp.archs, arch()) {
				c.Skip = "for " + strings.Join(sp.archs, ", ") + " only"
			}
			for _, a := range progs {
				if a.sp != nil && a.sp.auxiliary && a.sp.modes&bit != 0 {
					c.Auxiliary = append(c.Auxiliary, a.ps.Name)
				}
			}
			cases = append(cases, c)
		}
	}
	return cases, nil
}

// hideStructOps writes a copy of an object whose .struct_ops section (the
// initial values of its struct_ops maps) has another name, which
// cilium/ebpf ignores, beside it, and returns the copy's path.
func hideStructOps(obj string) (string, error) {
	out := strings.TrimSuffix(obj, ".o") + ".nostructops.o"
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	// Written aside and renamed: another test process may do the same.
	f, err := os.CreateTemp(filepath.Dir(obj), filepath.Base(out)+".*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	cmd := exec.Command("llvm-objcopy-19", "--rename-section", ".struct_ops=.waggle.ignored.struct_ops", obj, tmp)
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("llvm-objcopy-19: %w: %s", err, b)
	}
	return out, os.Rename(tmp, out)
}
