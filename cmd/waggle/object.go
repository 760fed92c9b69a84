package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/cilium/ebpf"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
	"github.com/waggle-bpf/waggle/loader"
	"github.com/waggle-bpf/waggle/progtype"
	"github.com/waggle-bpf/waggle/verifier"
)

// objectFlags are the flags of "waggle run" for ELF objects with program
// types: run one program of the object on packets, as BPF_PROG_TEST_RUN
// or a hook would.
type objectFlags struct {
	program, progType string
	pcapIn, pcapOut   string
	iface             string
	packets           int
	dataIn, dataOut   string
	ctxIn, ctxOut     string
	repeat            uint32
	cpus              int
	engine            waggle.Engine
	// ran names the engine that runs the program, for the output: the
	// collection's (waggle.Collection.Engine), or "kernel".
	ran string
	// run, when set, runs the program instead of its RunContext: a
	// BPF_PROG_TEST_RUN of the kernel's copy (--engine kernel). It sets
	// opts.DataOut (and fills opts.ContextOut) as RunContext does.
	run runFunc
	// --workers, and whether it was given; nworkers is the count
	// runObject settles on (packetWorkers).
	workers            int
	workersSet         bool
	nworkers           int
	unverified         bool
	asJSON, printTrace bool
	duration           time.Duration
	net                string
	// --map-init files, --map-dump (and the maps it names, all if none),
	// --events.
	mapInit  []string
	dumpMaps bool
	mapDump  []string
	events   bool

	// Set by runObject for the run functions: the events to print after
	// each run, and the dump to print with the results.
	ev   *eventPrinter
	dump func() (json.RawMessage, error)

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
	return f.program != "" || f.pcapIn != "" || f.iface != "" || f.dataIn != "" || f.progType != "" ||
		len(f.mapInit) > 0 || f.dumpMaps || f.events || f.workersSet
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
	Engine        string         `json:"engine"` // the engine that ran the packets
	Packets       int            `json:"packets"`
	Verdicts      map[string]int `json:"verdicts"`
	Written       int            `json:"written,omitempty"`
	Errors        int            `json:"errors,omitempty"`
	Seconds       float64        `json:"seconds"`
	PacketsPerSec float64        `json:"packets_per_second"`
	FirstError    string         `json:"first_error,omitempty"`
	Stopped       string         `json:"stopped,omitempty"`
	// InputError is why the capture could not be read to its end (the
	// results are those of the packets before).
	InputError string          `json:"input_error,omitempty"`
	Maps       json.RawMessage `json:"maps,omitempty"`
}

// runObject runs one program of obj, the object read from path.
func (e *env) runObject(path string, obj *loader.Object, f *objectFlags) error {
	m := f.engine
	if m != waggle.EngineInterp && m != waggle.EngineAuto && f.unverified {
		return errUnchecked(m, "--unverified runs the program without the verifier")
	}
	var err error
	budget := f.budget
	if budget == 0 {
		budget = math.MaxUint64
	}
	opts := &waggle.CollectionOptions{CPUs: f.cpus, Engine: m, Budget: budget, Unverified: f.unverified}
	if opts.Net, err = loadNet(f.net); err != nil {
		return err
	}
	if f.printTrace {
		opts.Trace = &lockedWriter{w: e.stderr} // workers run at once
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
	f.ran = coll.Engine().String()
	prog, err := pickProgram(coll, f.program)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Verify (and prepare) before the first packet: a rejected program
	// is said once, with its explanation.
	if err := prog.PrepareContext(f.context()); err != nil {
		if f.context().Err() != nil && f.timeout > 0 {
			return fmt.Errorf("%s: --timeout %v reached while verifying %s: %w", path, f.timeout, prog.Name(), err)
		}
		var ve *verifier.Error
		if errors.As(err, &ve) {
			fmt.Fprint(e.stderr, indent(ve.Explain()))
			return exitError{code: 1, msg: fmt.Sprintf("%s: %v (waggle verify %s --program %s tells more; --unverified runs it anyway, checked at run time)", path, err, path, prog.Name())}
		}
	}
	om := newObjectMaps(obj, coll, func(msg string) { fmt.Fprintln(e.stderr, "waggle: warning:", msg) })
	if err := om.init(f.mapInit); err != nil {
		return err
	}
	if f.dumpMaps {
		if err := om.checkDump(f.mapDump); err != nil {
			return err
		}
		f.dump = func() (json.RawMessage, error) { return om.dump(f.mapDump) }
	}
	if f.events {
		if f.ev, err = newEventPrinter(e, om, f.asJSON); err != nil {
			return err
		}
		defer f.ev.close()
	}
	if f.pcapIn != "" || f.iface != "" {
		if f.nworkers, err = packetWorkers(f, coll.CPUs()); err != nil {
			return err
		}
	} else if f.workersSet {
		return errors.New("--workers applies to runs over packets, --pcap or --iface")
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

// runFunc runs a program once (opts.Repeat times) on opts's inputs:
// waggle.Program.RunContext, or its kernel counterpart.
type runFunc func(ctx context.Context, opts *waggle.RunOptions) (uint32, error)

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
	run := f.run
	if run == nil {
		run = prog.RunContext
	}
	start := time.Now()
	ret, err := run(f.context(), opts)
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
	if f.ev != nil {
		f.ev.drain(1)
	}
	var dump json.RawMessage
	if f.dump != nil {
		if dump, err = f.dump(); err != nil {
			return err
		}
	}
	effects := netEffects(&res)
	if f.asJSON {
		m := map[string]any{
			"program": prog.Name(), "engine": f.ran, "retval": ret, "verdict": prog.VerdictName(ret),
			"duration_ns": per.Nanoseconds(), "data_out_len": len(opts.DataOut),
		}
		for k, v := range effects {
			m[k] = v
		}
		if dump != nil {
			m["maps"] = dump
		}
		return json.NewEncoder(e.stdout).Encode(m)
	}
	fmt.Fprintf(e.stdout, "Return value: %d (%s), duration (average): %v, engine: %s\n", ret, prog.VerdictName(ret), per, f.ran)
	if effects != nil {
		b, err := json.Marshal(effects)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Network: %s\n", b)
	}
	if dump != nil {
		e.printDump(dump)
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

// runPcap runs the program over every frame of a capture. A capture that
// breaks off (truncated, or a malformed record) ends the run: the results
// of the packets before are printed, then the error names the file and the
// packet.
func (e *env) runPcap(prog *waggle.Program, f *objectFlags) error {
	in, err := os.Open(f.pcapIn)
	if err != nil {
		return err
	}
	defer in.Close()
	size := int64(-1)
	if st, err := in.Stat(); err == nil && st.Mode().IsRegular() {
		size = st.Size()
	}
	src, err := capture.NewReader(in, size)
	if err != nil {
		return fmt.Errorf("%s: %w", f.pcapIn, err)
	}
	next := func(bool) ([]byte, time.Time, error) {
		p, err := src.Next()
		if err != nil {
			return nil, time.Time{}, err
		}
		if p.LinkType != capture.LinkTypeEthernet {
			return nil, time.Time{}, fmt.Errorf("packet %d: link type %s; programs here expect Ethernet frames", src.Packets(), capture.LinkTypeName(p.LinkType))
		}
		return p.Data, p.Timestamp, nil
	}
	write, closeOut, err := e.captureWriter(f)
	if err != nil {
		return err
	}
	sum, err := e.runPackets(prog, f, next, write)
	if cerr := closeOut(); sum != nil && cerr != nil {
		return cerr
	}
	if sum == nil {
		return err
	}
	if err != nil {
		err = fmt.Errorf("%s: %w", f.pcapIn, err)
		sum.InputError = err.Error()
	}
	if perr := e.printSummary(sum, f); err == nil {
		return perr
	}
	return err
}

func (e *env) printSummary(sum *packetSummary, f *objectFlags) error {
	if f.dump != nil {
		var err error
		if sum.Maps, err = f.dump(); err != nil {
			return err
		}
	}
	if f.asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(e.stdout, "%s (%s): %d packets in %.3fs, %.0f packets/s, engine: %s\n", sum.Program, sum.Type, sum.Packets, sum.Seconds, sum.PacketsPerSec, sum.Engine)
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
		if sum.Maps != nil {
			e.printDump(sum.Maps)
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
