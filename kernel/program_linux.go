//go:build linux

package kernel

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/waggle-bpf/waggle/isa"
)

const (
	defaultLogSize = 1 << 20
	maxLogSize     = 1<<30 - 1 // the kernel caps log_size at UINT_MAX >> 2
)

// Program is a program loaded into the kernel. It holds a file descriptor;
// Close releases it (a cleanup closes it if the Program is garbage
// collected first, but do not rely on that).
type Program struct {
	fd      int
	typ     ProgType
	log     string
	cleanup runtime.Cleanup
	mu      sync.Mutex
}

// Load loads prog into the kernel with BPF_PROG_LOAD, byte for byte as
// isa.Encode writes it: offsets and reserved fields reach the verifier
// unchanged. A verifier rejection is a *VerifierError carrying the log.
// Lack of privilege is reported as an error wrapping ErrNotSupported.
func Load(prog []isa.Instruction, opts LoadOptions) (*Program, error) {
	return LoadBytes(isa.Encode(prog), opts)
}

// LoadBytes is Load for little-endian bytecode.
func LoadBytes(code []byte, opts LoadOptions) (*Program, error) {
	if len(code) == 0 || len(code)%isa.InstructionSize != 0 {
		return nil, fmt.Errorf("load program: bytecode is %d bytes, need a positive multiple of %d", len(code), isa.InstructionSize)
	}
	code = append([]byte(nil), code...) // on the heap, and ours
	license := opts.License
	if license == "" {
		license = "GPL"
	}
	attr := progLoadAttr{
		progType:           uint32(opts.Type),
		insnCnt:            uint32(len(code) / isa.InstructionSize),
		insns:              bytesPtr(code),
		license:            bytesPtr(append([]byte(license), 0)),
		progFlags:          opts.Flags,
		expectedAttachType: opts.ExpectedAttachType,
	}
	copy(attr.progName[:unix.BPF_OBJ_NAME_LEN-1], opts.Name)
	if b := opts.BTF; b != nil {
		attr.progBTFFD = uint32(b.FD)
		if b.FuncInfoRecSize != 0 && len(b.FuncInfo) > 0 {
			attr.funcInfoRecSize, attr.funcInfo = b.FuncInfoRecSize, bytesPtr(b.FuncInfo)
			attr.funcInfoCnt = uint32(len(b.FuncInfo)) / b.FuncInfoRecSize
		}
		if b.LineInfoRecSize != 0 && len(b.LineInfo) > 0 {
			attr.lineInfoRecSize, attr.lineInfo = b.LineInfoRecSize, bytesPtr(b.LineInfo)
			attr.lineInfoCnt = uint32(len(b.LineInfo)) / b.LineInfoRecSize
		}
	}
	if opts.Cost != nil {
		// The thread's CPU clock measures this load alone only if the
		// goroutine stays on the thread.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}

	logSize := opts.LogSize
	if logSize <= 0 {
		logSize = defaultLogSize
	}
	var logBuf []byte
	level := opts.LogLevel
	for {
		if level != 0 {
			if len(logBuf) < logSize {
				logBuf = make([]byte, logSize)
			}
			attr.logLevel, attr.logSize, attr.logBuf = level, uint32(len(logBuf)), bytesPtr(logBuf)
		} else {
			attr.logLevel, attr.logSize, attr.logBuf = 0, 0, ptr{}
		}
		attr.logTrueSize = 0
		fd, err := loadCall(&attr, opts.Cost)
		if err == nil {
			p := &Program{fd: int(fd), typ: opts.Type}
			if level != 0 {
				p.log = cString(logBuf)
			}
			p.cleanup = runtime.AddCleanup(p, closeFD, int(fd))
			return p, nil
		}
		errno, _ := err.(unix.Errno)
		switch {
		case errno == unix.ENOSPC && level != 0 && len(logBuf) < maxLogSize:
			// The log did not fit: grow the buffer to what the kernel says it
			// needs (log_true_size, 6.4+) or double it.
			logSize = grow(len(logBuf), int(attr.logTrueSize))
			continue
		case errno == unix.EPERM || errno == unix.ENOSYS:
			return nil, fmt.Errorf("%w: load %s program: %v (needs CAP_BPF and, for networking types, CAP_NET_ADMIN: run as root)", ErrNotSupported, opts.Type, errno)
		case level == 0:
			// Failed without a log: load again with one, so the error says
			// why.
			level = 1
			continue
		}
		verr := &VerifierError{Errno: errno, Log: cString(logBuf)}
		if int(attr.logTrueSize) > len(logBuf) {
			verr.Truncated = true
		}
		return nil, verr
	}
}

// sysRetry issues a bpf command that the kernel may interrupt: the verifier
// gives up with EAGAIN when a signal is pending (and the Go runtime sends
// signals to preempt goroutines), test runs with EINTR.
func sysRetry[T any](cmd int, attr *T) (uintptr, error) {
	for {
		r, err := bpf(cmd, attr)
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return r, err
	}
}

// loadCall is sysRetry for BPF_PROG_LOAD, adding the calls' cost to cost
// when it is not nil.
func loadCall(attr *progLoadAttr, cost *LoadCost) (uintptr, error) {
	if cost == nil {
		return sysRetry(unix.BPF_PROG_LOAD, attr)
	}
	for {
		var c0, c1 unix.Timespec
		cpuErr := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c0)
		w0 := time.Now()
		r, err := bpf(unix.BPF_PROG_LOAD, attr)
		wall := time.Since(w0)
		if cpuErr == nil {
			cpuErr = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &c1)
		}
		if cpuErr == nil {
			cost.CPU += time.Duration(c1.Nano() - c0.Nano())
		}
		cost.Wall += wall
		cost.Calls++
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return r, err
	}
}

func grow(have, want int) int {
	n := 2 * have
	if want > have {
		n = want + 1
	}
	return min(n, maxLogSize)
}

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}

func closeFD(fd int) { unix.Close(fd) }

// FD returns the program's file descriptor, or -1 after Close.
func (p *Program) FD() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.fd
}

// Type returns the program type it was loaded as.
func (p *Program) Type() ProgType { return p.typ }

// VerifierLog returns the verifier's log of a successful load, if
// LoadOptions.LogLevel asked for one.
func (p *Program) VerifierLog() string { return p.log }

// Close releases the program's file descriptor. Closing twice is harmless.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil
	}
	p.cleanup.Stop()
	err := unix.Close(p.fd)
	p.fd = -1
	if err != nil {
		return fmt.Errorf("close program: %w", err)
	}
	return nil
}

// ErrClosed is returned by methods of a closed Program.
var ErrClosed = errors.New("program is closed")

// Run runs the program once (or opts.Repeat times) with BPF_PROG_TEST_RUN.
func (p *Program) Run(opts *RunOptions) (RunResult, error) {
	p.mu.Lock()
	fd := p.fd
	p.mu.Unlock()
	if fd < 0 {
		return RunResult{}, fmt.Errorf("test run: %w", ErrClosed)
	}
	out := opts.DataOut
	if out == nil && len(opts.Data) > 0 {
		out = make([]byte, len(opts.Data)+256)
	}
	attr := testRunAttr{
		progFD:      uint32(fd),
		dataSizeIn:  uint32(len(opts.Data)),
		dataSizeOut: uint32(len(out)),
		dataIn:      bytesPtr(opts.Data),
		dataOut:     bytesPtr(out),
		repeat:      opts.Repeat,
		ctxSizeIn:   uint32(len(opts.Context)),
		ctxSizeOut:  uint32(len(opts.ContextOut)),
		ctxIn:       bytesPtr(opts.Context),
		ctxOut:      bytesPtr(opts.ContextOut),
		flags:       opts.Flags,
		cpu:         opts.CPU,
	}
	_, err := sysRetry(unix.BPF_PROG_TEST_RUN, &attr)
	runtime.KeepAlive(p)
	if err != nil {
		switch err {
		case unix.ENOSPC:
			return RunResult{}, fmt.Errorf("test run: %w (output needs %d bytes of data and %d of ctx, buffers have %d and %d)",
				err, attr.dataSizeOut, attr.ctxSizeOut, len(out), len(opts.ContextOut))
		case unix.EPERM:
			return RunResult{}, fmt.Errorf("%w: test run: %v (run as root)", ErrNotSupported, err)
		}
		return RunResult{}, fmt.Errorf("test run %s program: %w", p.typ, err)
	}
	res := RunResult{
		Retval:   attr.retval,
		Duration: time.Duration(attr.duration),
	}
	if n := int(attr.dataSizeOut); n <= len(out) {
		res.Data = out[:n]
	}
	if n := int(attr.ctxSizeOut); n <= len(opts.ContextOut) {
		res.Context = opts.ContextOut[:n]
	}
	return res, nil
}

// Xlated returns the program as the kernel runs it after verification:
// ctx accesses rewritten, zero-extensions inserted, dead code removed,
// helper calls resolved. Comparing it with the loaded program shows what
// the verifier changed.
func (p *Program) Xlated() ([]isa.Instruction, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fd < 0 {
		return nil, fmt.Errorf("program info: %w", ErrClosed)
	}
	var info progInfo
	attr := infoAttr{fd: uint32(p.fd), infoLen: uint32(sizeofProgInfo), info: structPtr(&info)}
	if _, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, &attr); err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	if info.xlatedProgLen == 0 {
		return nil, fmt.Errorf("program info: the kernel shows no translated instructions (needs CAP_SYS_ADMIN or kernel.kptr_restrict)")
	}
	buf := make([]byte, info.xlatedProgLen)
	info = progInfo{xlatedProgLen: uint32(len(buf)), xlatedProgInsns: bytesPtr(buf)}
	attr = infoAttr{fd: uint32(p.fd), infoLen: uint32(sizeofProgInfo), info: structPtr(&info)}
	if _, err := bpf(unix.BPF_OBJ_GET_INFO_BY_FD, &attr); err != nil {
		return nil, fmt.Errorf("program info: %w", err)
	}
	runtime.KeepAlive(buf)
	return isa.Decode(buf[:min(len(buf), int(info.xlatedProgLen))])
}

var (
	supportedOnce sync.Once
	supportedErr  error
)

// Supported reports whether this process can load an XDP program and run it
// with BPF_PROG_TEST_RUN. The answer is probed once, by doing exactly that,
// and cached. The error wraps ErrNotSupported and says what is missing.
func Supported() error {
	supportedOnce.Do(func() { supportedErr = probe() })
	return supportedErr
}

func probe() error {
	prog := []isa.Instruction{
		{Op: isa.Opcode(isa.ClassALU64) | isa.Opcode(isa.ALUMov), Dst: isa.R0, Imm: 2}, // r0 = XDP_PASS
		{Op: isa.OpExit},
	}
	p, err := Load(prog, LoadOptions{Type: XDP})
	if err != nil {
		if errors.Is(err, ErrNotSupported) {
			return err
		}
		return fmt.Errorf("%w: probe: %v", ErrNotSupported, err)
	}
	defer p.Close()
	res, err := p.Run(&RunOptions{Data: make([]byte, 14)})
	if err != nil {
		if errors.Is(err, ErrNotSupported) {
			return err
		}
		return fmt.Errorf("%w: probe: %v", ErrNotSupported, err)
	}
	if res.Retval != 2 {
		return fmt.Errorf("%w: probe: test run returned %d, want 2", ErrNotSupported, res.Retval)
	}
	return nil
}
