package kselftest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/waggle-bpf/waggle/kernel"
	"golang.org/x/sys/unix"
)

// Capabilities test_loader drops (include/uapi/linux/capability.h).
const (
	capNetAdmin = 12 // CAP_NET_ADMIN
	capSysAdmin = 21 // CAP_SYS_ADMIN
	capPerfmon  = 38 // CAP_PERFMON
	capBPF      = 39 // CAP_BPF
)

// logBufSize is test_loader's log buffer (TEST_LOADER_LOG_BUF_SZ).
const logBufSize = 2 << 20

// dropped are the capabilities a case is loaded without: prog_tests/
// verifier.c runs every test without CAP_SYS_ADMIN, test_verifier_mtu
// also without CAP_PERFMON, and test_loader's unprivileged mode drops
// CAP_NET_ADMIN, CAP_PERFMON and CAP_BPF besides.
func dropped(c Case) []int {
	switch {
	case c.Mode == Unprivileged:
		return []int{capSysAdmin, capNetAdmin, capPerfmon, capBPF}
	case c.WithoutPerfmon():
		return []int{capSysAdmin, capPerfmon}
	}
	return []int{capSysAdmin}
}

// unprivDisabled returns kernel.unprivileged_bpf_disabled, "" when it is 0.
func unprivDisabled() string {
	b, err := os.ReadFile("/proc/sys/kernel/unprivileged_bpf_disabled")
	if err != nil {
		return "kernel.unprivileged_bpf_disabled: " + err.Error()
	}
	if v := strings.TrimSpace(string(b)); v != "0" {
		return "unprivileged BPF is disabled (kernel.unprivileged_bpf_disabled=" + v + ")"
	}
	return ""
}

// testingFlags probes which of TestingFlags the kernel knows, as
// testing_prog_flags does.
func (s *Suite) testingFlags() uint32 {
	s.probe.Do(func() {
		for _, f := range []uint32{FlagTestRndHi32, FlagTestRegInvariant} {
			p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
				Type: ebpf.SocketFilter, License: "GPL", Flags: f,
				Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
			})
			if err == nil {
				s.testing |= f
				p.Close()
			}
		}
	})
	return s.testing
}

// Kernel loads the case into the running kernel as test_loader does: the
// object's maps, the case's program and the auxiliary programs of its
// mode, with the case's flags (TestingFlags where the kernel knows them)
// and log level, without the capabilities the mode drops. A rejection that
// happened at log level 0 is loaded again at level 1 for the log, as
// libbpf does. An accepted program's Processed and Time come from the
// verifier's statistics (log level 4, which only appends to the log). It
// needs root. The verdict is remembered: asking again for the same case
// (by ID) returns it without loading the program again.
func (s *Suite) Kernel(c Case) Verdict {
	s.mu.Lock()
	v, ok := s.verdicts[c.ID()]
	s.mu.Unlock()
	if ok {
		return v
	}
	v = s.kernel(c)
	s.mu.Lock()
	if s.verdicts == nil {
		s.verdicts = map[string]Verdict{}
	}
	s.verdicts[c.ID()] = v
	s.mu.Unlock()
	return v
}

// kernel is Kernel without the memory.
func (s *Suite) kernel(c Case) Verdict {
	if c.Skip != "" {
		return Verdict{Skip: c.Skip}
	}
	if c.Mode == Unprivileged {
		if why := unprivDisabled(); why != "" {
			return Verdict{Skip: why}
		}
	}
	if c.Insns != nil {
		v := s.kernelRaw(c)
		v.Stats()
		return v
	}
	var opts ebpf.CollectionOptions
	if c.BTFPath != "" {
		types, err := btf.LoadSpec(c.BTFPath)
		if err != nil {
			return Verdict{Skip: fmt.Sprintf("__btf_path %s: %v", c.BTFPath, err)}
		}
		opts.Programs.KernelTypes = types
	}
	level := c.LogLevel | uint32(ebpf.LogLevelStats)
	v := s.load(c, opts, level)
	if v.Err == nil && v.Skip == "" && !v.Accepted && c.LogLevel&3 == 0 {
		if again := s.load(c, opts, level|uint32(ebpf.LogLevelBranch)); again.Err == nil && again.Skip == "" && !again.Accepted {
			v.Log = again.Log
		}
	}
	v.Stats()
	return v
}

// load loads the case once at a log level.
func (s *Suite) load(c Case, opts ebpf.CollectionOptions, level uint32) Verdict {
	v := s.loadOnce(c, opts, level, false)
	if v.Err != nil && strings.Contains(v.Err.Error(), "load BTF") {
		// The kernel refuses the object's BTF (clang-19 leaves the
		// parameters of naked functions unnamed, which Linux rejects
		// for global functions); libbpf then loads without it.
		if again := s.loadOnce(c, opts, level, true); again.Err == nil {
			again.NoBTF = true
			return again
		}
	}
	return v
}

// loadOnce loads the case once at a log level, without the programs'
// BTF (func and line info) when noBTF is set.
func (s *Suite) loadOnce(c Case, opts ebpf.CollectionOptions, level uint32, noBTF bool) Verdict {
	spec, err := s.Spec(c)
	if err != nil {
		return Verdict{Err: err}
	}
	keep := append([]string{c.Program}, c.Auxiliary...)
	for name := range spec.Programs {
		if !slices.Contains(keep, name) {
			delete(spec.Programs, name)
		}
	}
	if spec.Programs[c.Program] == nil {
		return Verdict{Err: fmt.Errorf("%s: no program %s", c.Object, c.Program)}
	}
	if why := reencoded(spec); why != "" {
		return Verdict{Skip: why}
	}
	// Initial prog array slots of programs not loaded stay empty.
	for _, ms := range spec.Maps {
		ms.Contents = slices.DeleteFunc(ms.Contents, func(kv ebpf.MapKV) bool {
			name, ok := kv.Value.(string)
			return ok && ms.Type == ebpf.ProgramArray && spec.Programs[name] == nil
		})
	}
	if noBTF {
		stripBTF(spec)
	}
	flags := c.Flags &^ (TestingFlags &^ s.testingFlags())
	// Auxiliary programs keep their section's flags, as in prepare_case.
	spec.Programs[c.Program].Flags = flags
	opts.Programs.LogLevel = ebpf.LogLevel(level)
	opts.Programs.LogSizeStart = logBufSize

	var coll *ebpf.Collection
	err = withoutCaps(dropped(c), func() error {
		var err error
		coll, err = ebpf.NewCollectionWithOptions(spec, opts)
		return err
	})
	if err != nil {
		var ve *ebpf.VerifierError
		switch {
		case strings.Contains(err.Error(), "load program: "):
			// The program was refused, with or without a log (cilium/ebpf
			// returns a plain error for EPERM with an empty log).
			var v Verdict
			if errors.As(err, &ve) {
				v.Log = strings.Join(ve.Log, "\n") + "\n"
			}
			var errno unix.Errno
			if errors.As(err, &errno) {
				v.Errno = errno
			}
			if c.Mode == Privileged && errno == unix.EPERM && v.logReason() == "" {
				// Refused before the verifier looked at it: this
				// kernel does not allow the program type or attach
				// point (here, tracing, LSM and iterators).
				return Verdict{Skip: "the kernel refuses the program before verifying it (EPERM, empty log)"}
			}
			return v
		case errors.Is(err, ebpf.ErrNotSupported):
			return Verdict{Skip: err.Error()}
		case strings.HasPrefix(err.Error(), "map "):
			// A map this kernel cannot create (a type it lacks, a size
			// it refuses): no verdict of the verifier.
			return Verdict{Skip: err.Error()}
		}
		return Verdict{Err: err}
	}
	defer coll.Close()
	p := coll.Programs[c.Program]
	v := Verdict{Accepted: true, Log: p.VerifierLog}
	v.Stats()
	if v.Processed == 0 {
		if info, err := p.Info(); err == nil {
			if n, ok := info.VerifiedInstructions(); ok {
				v.Processed = int(n)
			}
		}
	}
	return v
}

// withoutCaps runs fn on this goroutine's thread with the capabilities
// caps removed from its effective set (capabilities are per thread in
// Linux), then restores them. If they cannot be restored, the thread is
// left locked, so that Go ends it with the goroutine.
func withoutCaps(caps []int, fn func() error) error {
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var old [2]unix.CapUserData
	if err := unix.Capget(&hdr, &old[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("capget: %w", err)
	}
	set := old
	for _, c := range caps {
		set[c/32].Effective &^= 1 << (c % 32)
	}
	if err := unix.Capset(&hdr, &set[0]); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("capset: %w", err)
	}
	err := fn()
	if rerr := unix.Capset(&hdr, &old[0]); rerr != nil {
		// The thread keeps the reduced set and dies with the goroutine.
		return errors.Join(err, fmt.Errorf("capset restoring capabilities: %w", rerr))
	}
	runtime.UnlockOSThread()
	return err
}

// stripBTF removes the programs' func and line info, as libbpf loads
// programs when the kernel refuses the object's BTF.
func stripBTF(spec *ebpf.CollectionSpec) {
	for _, ps := range spec.Programs {
		for i, ins := range ps.Instructions {
			ps.Instructions[i] = btf.WithFuncMetadata(ins, nil).WithSource(nil)
		}
	}
}

// reencoded names an instruction that cilium/ebpf v0.22.0 would change
// when it encodes the program for the kernel: it keeps the offset of ALU
// instructions only for sdiv, smod and movsx, and zeroes the others
// (addr_space_cast's, or a reserved field a test sets on purpose).
func reencoded(spec *ebpf.CollectionSpec) string {
	for _, ps := range spec.Programs {
		iter := ps.Instructions.Iterate()
		for iter.Next() {
			if ins := iter.Ins; ins.OpCode.Class().IsALU() && ins.Offset != 0 {
				return fmt.Sprintf("%s: instruction %d (%v) has an ALU offset %d that cilium/ebpf drops when it loads the program",
					ps.Name, iter.Offset, ins, ins.Offset)
			}
		}
	}
	return ""
}

// errENOTSUPP is the kernel's ENOTSUPP (524), which test_verifier takes
// for a feature this kernel lacks.
const errENOTSUPP = unix.Errno(524)

// kernelRaw loads a raw case as test_verifier.c do_test_single does: the
// maps of its fixups created and their fds patched into the bytecode,
// which reaches the kernel byte for byte (waggle's kernel package, not
// cilium/ebpf).
func (s *Suite) kernelRaw(c Case) Verdict {
	if err := kernel.ProgramTypeSupported(kernel.ProgType(c.Type)); err != nil {
		return Verdict{Skip: err.Error()}
	}
	code := slices.Clone(c.Insns)
	flags := c.Flags &^ (TestingFlags &^ s.testingFlags())
	var v Verdict
	err := withoutCaps(dropped(c), func() error {
		for name, idxs := range c.Fixups {
			spec, val, ok := RawMap(name)
			if !ok {
				v = Verdict{Skip: "no map for fixup_" + name}
				return nil
			}
			m, err := ebpf.NewMap(spec)
			if err != nil {
				// test_verifier skips a test whose map this kernel
				// cannot create.
				v = Verdict{Skip: fmt.Sprintf("fixup_%s: %v", name, err)}
				return nil
			}
			defer m.Close()
			if val != nil {
				if err := m.Put(uint32(0), val); err != nil {
					return fmt.Errorf("fixup_%s: %w", name, err)
				}
			}
			for _, i := range idxs {
				if i < 0 || (i+1)*8 > len(code) {
					return fmt.Errorf("fixup_%s: instruction %d outside the program of %d", name, i, len(code)/8)
				}
				binary.LittleEndian.PutUint32(code[i*8+4:], uint32(m.FD()))
			}
		}
		p, err := kernel.LoadBytes(code, kernel.LoadOptions{
			Type: kernel.ProgType(c.Type), ExpectedAttachType: uint32(c.AttachType),
			Flags: flags, LogLevel: c.LogLevel, LogSize: logBufSize,
		})
		var ve *kernel.VerifierError
		switch {
		case err == nil:
			v = Verdict{Accepted: true, Log: p.VerifierLog()}
			p.Close()
		case errors.As(err, &ve) && ve.Errno == errENOTSUPP:
			v = Verdict{Skip: "the program uses a feature this kernel lacks (ENOTSUPP)"}
		case errors.As(err, &ve):
			v = Verdict{Log: ve.Log, Errno: ve.Errno}
		case errors.Is(err, kernel.ErrNotSupported) && c.Mode == Privileged:
			v = Verdict{Skip: "the kernel refuses the program before verifying it: " + err.Error()}
		case errors.Is(err, kernel.ErrNotSupported):
			v = Verdict{Errno: unix.EPERM}
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return Verdict{Err: err}
	}
	return v
}
