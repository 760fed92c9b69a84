package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/progtype"
)

// objectFlags are the flags of "waggle run" for ELF objects with program
// types: run one program of the object on packets, as BPF_PROG_TEST_RUN
// or a hook would.
type objectFlags struct {
	program, progType  string
	pcapIn, pcapOut    string
	iface              string
	packets            int
	dataIn, dataOut    string
	ctxIn, ctxOut      string
	repeat             uint32
	cpus               int
	mode               string
	asJSON, printTrace bool
	duration           time.Duration
	net                string
	// ctx is the command's context, done at --timeout; budget is
	// --budget (0: no limit).
	ctx     context.Context
	budget  uint64
	timeout time.Duration
}

// context returns the command's context (its --timeout).
func (f *objectFlags) context() context.Context {
	if f.ctx == nil {
		return context.Background()
	}
	return f.ctx
}

// given reports whether a flag that only object runs have was set.
func (f *objectFlags) given() bool {
	return f.program != "" || f.pcapIn != "" || f.iface != "" || f.dataIn != "" || f.progType != ""
}

// loaderOptions are the options of reading the object: --type is the type
// of every program whose section names none.
func (f *objectFlags) loaderOptions() (loader.Options, error) {
	if f.progType == "" {
		return loader.Options{}, nil
	}
	t, ok := programTypes[f.progType]
	if !ok {
		return loader.Options{}, fmt.Errorf("--type %q: want one of %s", f.progType, strings.Join(programTypeNames(), ", "))
	}
	return loader.Options{DefaultType: t}, nil
}

// hasTypedPrograms reports whether the object has programs in sections
// that name a program type.
func hasTypedPrograms(obj *loader.Object) bool {
	for _, p := range obj.Programs {
		if p.Type != ebpf.UnspecifiedProgram {
			return true
		}
	}
	return false
}

// packetSummary is what a packet run prints (and --json encodes).
type packetSummary struct {
	Program       string         `json:"program"`
	Type          string         `json:"type"`
	Packets       int            `json:"packets"`
	Verdicts      map[string]int `json:"verdicts"`
	Written       int            `json:"written,omitempty"`
	Errors        int            `json:"errors,omitempty"`
	Seconds       float64        `json:"seconds"`
	PacketsPerSec float64        `json:"packets_per_second"`
	FirstError    string         `json:"first_error,omitempty"`
	Stopped       string         `json:"stopped,omitempty"`
}

// runObject runs one program of obj, the object read from path.
func (e *env) runObject(path string, obj *loader.Object, f *objectFlags) error {
	m, err := parseMode(f.mode)
	if err != nil {
		return err
	}
	budget := f.budget
	if budget == 0 {
		budget = math.MaxUint64
	}
	opts := &waggle.CollectionOptions{CPUs: f.cpus, Mode: m, Budget: budget}
	if opts.Net, err = loadNet(f.net); err != nil {
		return err
	}
	if f.printTrace {
		opts.Trace = e.stderr
	}
	if f.progType != "" {
		// The object was loaded with the type as its default
		// (loaderOptions); the program run takes it whatever its section
		// says. Its tail-call targets without a type of their own have it
		// already, as the default.
		t := programTypes[f.progType]
		for _, p := range obj.Programs {
			if p.Name == f.program || f.program == "" && len(obj.Programs) == 1 {
				p.Type = t
			}
		}
	}
	coll, err := waggle.NewCollectionFromObject(obj, opts)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer coll.Close()
	prog, err := pickProgram(coll, f.program)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	switch {
	case f.pcapIn != "" && f.iface != "":
		return errors.New("give --pcap or --iface, not both")
	case f.pcapIn != "":
		return e.runPcap(prog, f)
	case f.iface != "":
		return e.runIface(prog, f)
	}
	return e.runData(prog, f)
}

// pickProgram returns the named program, or the only one.
func pickProgram(coll *waggle.Collection, name string) (*waggle.Program, error) {
	if name != "" {
		if p, ok := coll.Programs[name]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("no program %q; the object has %s", name, programList(coll))
	}
	if len(coll.Programs) == 1 {
		for _, p := range coll.Programs {
			return p, nil
		}
	}
	return nil, fmt.Errorf("the object has %d programs (%s): choose one with --program", len(coll.Programs), programList(coll))
}

func programList(coll *waggle.Collection) string {
	var names []string
	for n := range coll.Programs {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// runData mirrors bpftool prog run: data_in and ctx_in from files, the
// return value and duration printed, data_out and ctx_out written.
func (e *env) runData(prog *waggle.Program, f *objectFlags) error {
	var data, ctx []byte
	var err error
	if f.dataIn != "" {
		if data, err = os.ReadFile(f.dataIn); err != nil {
			return err
		}
	}
	if f.ctxIn != "" {
		if ctx, err = os.ReadFile(f.ctxIn); err != nil {
			return err
		}
	}
	var res progtype.Output
	opts := &waggle.RunOptions{Data: data, DataOut: make([]byte, len(data)+4096), Repeat: f.repeat, Output: &res}
	if ctx != nil {
		opts.Context = ctx
	}
	var ctxOut []byte
	if f.ctxOut != "" {
		ctxOut = make([]byte, 4096)
		opts.ContextOut = ctxOut
	}
	start := time.Now()
	ret, err := prog.RunContext(f.context(), opts)
	elapsed := time.Since(start)
	if err != nil {
		return explainLimit(err, f.context(), f.timeout)
	}
	if f.dataOut != "" {
		if err := os.WriteFile(f.dataOut, opts.DataOut, 0o644); err != nil {
			return err
		}
	}
	if f.ctxOut != "" {
		if err := os.WriteFile(f.ctxOut, trimZeros(ctxOut), 0o644); err != nil {
			return err
		}
	}
	per := elapsed / time.Duration(max(f.repeat, 1))
	effects := netEffects(&res)
	if f.asJSON {
		m := map[string]any{
			"program": prog.Name(), "retval": ret, "verdict": prog.VerdictName(ret),
			"duration_ns": per.Nanoseconds(), "data_out_len": len(opts.DataOut),
		}
		for k, v := range effects {
			m[k] = v
		}
		return json.NewEncoder(e.stdout).Encode(m)
	}
	fmt.Fprintf(e.stdout, "Return value: %d (%s), duration (average): %v\n", ret, prog.VerdictName(ret), per)
	if effects != nil {
		b, err := json.Marshal(effects)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Network: %s\n", b)
	}
	return nil
}

// trimZeros drops the zero tail of a context buffer the kernel's layout
// did not fill.
func trimZeros(b []byte) []byte {
	n := len(b)
	for n > 0 && b[n-1] == 0 {
		n--
	}
	return b[:(n+7)&^7]
}

// runPcap runs the program over every frame of a capture.
func (e *env) runPcap(prog *waggle.Program, f *objectFlags) error {
	in, err := os.Open(f.pcapIn)
	if err != nil {
		return err
	}
	defer in.Close()
	src, err := newPacketReader(in)
	if err != nil {
		return fmt.Errorf("%s: %w", f.pcapIn, err)
	}
	if src.LinkType() != layers.LinkTypeEthernet {
		return fmt.Errorf("%s: link type %s; programs here expect Ethernet frames", f.pcapIn, src.LinkType())
	}
	write, closeOut, err := e.captureWriter(f)
	if err != nil {
		return err
	}
	defer closeOut()
	sum, err := e.runPackets(prog, f, src.ReadPacketData, write)
	if err != nil {
		return err
	}
	return e.printSummary(sum, f)
}

// packetReader reads pcap or pcapng files.
type packetReader interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	LinkType() layers.LinkType
}

func newPacketReader(r io.ReadSeeker) (packetReader, error) {
	var magic [4]byte
	if _, err := io.ReadFull(r, magic[:]); err != nil {
		return nil, fmt.Errorf("not a capture file: %w", err)
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	if magic == [4]byte{0x0a, 0x0d, 0x0d, 0x0a} {
		return pcapgo.NewNgReader(r, pcapgo.DefaultNgReaderOptions)
	}
	pr, err := pcapgo.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("not a pcap or pcapng file: %w", err)
	}
	return pr, nil
}

// runPackets runs prog on each packet next returns until io.EOF (or
// --packets or --duration), and hands forwarded packets to emit.
func (e *env) runPackets(prog *waggle.Program, f *objectFlags, next func() ([]byte, gopacket.CaptureInfo, error), emit func(gopacket.CaptureInfo, []byte) error) (*packetSummary, error) {
	sum := &packetSummary{Program: prog.Name(), Type: prog.Type().String(), Verdicts: map[string]int{}}
	buf := make([]byte, 65536+4096)
	var deadline time.Time
	if f.duration > 0 {
		deadline = time.Now().Add(f.duration)
	}
	start := time.Now()
	for f.packets == 0 || sum.Packets < f.packets {
		if !deadline.IsZero() && time.Now().After(deadline) {
			break
		}
		if err := f.context().Err(); err != nil {
			sum.Stopped = fmt.Sprintf("--timeout %v reached after %d packets", f.timeout, sum.Packets)
			break
		}
		pkt, ci, err := next()
		if errors.Is(err, io.EOF) || errors.Is(err, errStop) {
			break
		}
		if err != nil {
			return nil, err
		}
		sum.Packets++
		opts := &waggle.RunOptions{Data: pkt, DataOut: buf}
		ret, err := prog.RunContext(f.context(), opts)
		if err != nil {
			sum.Errors++
			if sum.FirstError == "" {
				sum.FirstError = fmt.Sprintf("packet %d: %v", sum.Packets, explainLimit(err, f.context(), f.timeout))
			}
			continue
		}
		sum.Verdicts[prog.VerdictName(ret)]++
		if prog.Forwards(ret) {
			if err := emit(ci, prog.Truncate(ret, opts.DataOut)); err != nil {
				return nil, err
			}
			sum.Written++
		}
	}
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.PacketsPerSec = float64(sum.Packets) / sum.Seconds
	}
	return sum, nil
}

var errStop = errors.New("stop")

func (e *env) printSummary(sum *packetSummary, f *objectFlags) error {
	if f.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%s (%s): %d packets in %.3fs, %.0f packets/s\n", sum.Program, sum.Type, sum.Packets, sum.Seconds, sum.PacketsPerSec)
		var names []string
		for n := range sum.Verdicts {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(e.stdout, "  %-16s %d\n", n, sum.Verdicts[n])
		}
		if f.pcapOut != "" {
			fmt.Fprintf(e.stdout, "  %d packets written to %s\n", sum.Written, f.pcapOut)
		}
		if sum.Errors > 0 {
			fmt.Fprintf(e.stdout, "  %d packets failed; the first: %s\n", sum.Errors, sum.FirstError)
		}
		if sum.Stopped != "" {
			fmt.Fprintf(e.stdout, "  stopped: %s\n", sum.Stopped)
		}
	}
	if sum.Errors > 0 || sum.Stopped != "" {
		return exitError{code: 1}
	}
	return nil
}

// programTypes are the --type names, as bpftool spells them.
var programTypes = map[string]ebpf.ProgramType{
	"xdp": ebpf.XDP, "tc": ebpf.SchedCLS, "classifier": ebpf.SchedCLS, "action": ebpf.SchedACT,
	"sched_cls": ebpf.SchedCLS, "sched_act": ebpf.SchedACT,
	"socket": ebpf.SocketFilter, "socket_filter": ebpf.SocketFilter, "cgroup_skb": ebpf.CGroupSKB,
	"kprobe": ebpf.Kprobe, "tracepoint": ebpf.TracePoint, "raw_tracepoint": ebpf.RawTracepoint,
	"perf_event": ebpf.PerfEvent, "cgroup_sock": ebpf.CGroupSock, "cgroup_sock_addr": ebpf.CGroupSockAddr,
}

func programTypeNames() []string {
	var names []string
	for n := range programTypes {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// captureWriter returns a function writing packets to --out (a no-op
// without it) and one closing the file.
func (e *env) captureWriter(f *objectFlags) (func(gopacket.CaptureInfo, []byte) error, func(), error) {
	if f.pcapOut == "" {
		return func(gopacket.CaptureInfo, []byte) error { return nil }, func() {}, nil
	}
	of, err := os.Create(f.pcapOut)
	if err != nil {
		return nil, nil, err
	}
	w := pcapgo.NewWriter(of)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		of.Close()
		return nil, nil, err
	}
	return func(ci gopacket.CaptureInfo, pkt []byte) error {
		ci.CaptureLength, ci.Length = len(pkt), len(pkt)
		return w.WritePacket(ci, pkt)
	}, func() { of.Close() }, nil
}
