package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/internal/capture"
)

// A packet run spreads packets over workers, each running the program on
// its own CPU slot, in batches:
//
//	         free batches ◄───────────────────────────────────────┐
//	              │                                               │
//	reader ── batch k ──► worker k mod N ── batch k, results ──► collector
//	(next)   (≤ batchPackets              (RunOptions.CPU =      (in order of k:
//	          packets, copied)             its slot)              verdicts, --out)
//
// The reader copies each packet into a batch and hands batch k to worker
// k mod N, so which packets run on which CPU slot depends only on the
// capture and N, and so do per-CPU map values. The collector takes the
// batches back in the reader's order, so --out keeps the input's order and
// the first error is the first in packet order. A channel operation that
// wakes a goroutine costs more than a run of a small program is meant to;
// per batch it costs little (RATIONALE.md, cmd/waggle).
//
// Starting more workers costs milliseconds of CPU time (threads, and the
// caches of the scheduler's other Ps, filled with fresh pages), as much as
// running a thousand packets: the first serialBatches batches run on the
// first worker alone, and a capture that holds no more runs as with one.
const (
	batchPackets  = 64
	batchBytes    = 256 << 10
	serialBatches = 16
	// runBuf is the packet buffer of a run: the largest packet an
	// AF_PACKET socket reads, plus room to grow. (Program types take at
	// most a page of linear data, as in Linux.)
	runBuf = 65536 + 4096
)

// testRunOnCPU is BPF_F_TEST_RUN_ON_CPU, which RunOptions.CPU needs.
const testRunOnCPU = 1 << 0

// errWouldBlock is what a packet source returns when asked not to wait
// and no packet is there yet: the reader hands out the batch it has.
var errWouldBlock = errors.New("no packet waiting")

// errStop ends a source that has a stop condition of its own (--duration
// on a live interface).
var errStop = errors.New("stop")

// nextFunc returns the next packet (its bytes are valid until the next
// call) and its capture time; io.EOF or errStop after the last. With wait
// false it may return errWouldBlock instead of waiting for a packet.
type nextFunc func(wait bool) ([]byte, time.Time, error)

// slot is one packet of a batch.
type slot struct {
	end int       // the end of its bytes in batch.data
	ts  time.Time // its capture time
	// Set by the worker when the packet is forwarded and --out is given:
	// its bytes after the run, in batch.out.
	fwd              bool
	outStart, outEnd int
}

// batch is a run of consecutive packets, and their results.
type batch struct {
	seq   int    // its position among the batches
	first int    // the packets before it
	data  []byte // the packets' bytes, back to back
	slots []slot

	// Results, set by the worker.
	ran      int // packets run; those after were skipped (the run's context ended)
	verdicts verdictCounts
	errors   int
	firstErr error // the first failure, naming its packet
	written  int   // packets forwarded
	out      []byte
}

// reset empties b for batch seq, which follows first packets.
func (b *batch) reset(seq, first int) {
	b.seq, b.first = seq, first
	b.data, b.slots, b.out = b.data[:0], b.slots[:0], b.out[:0]
	b.ran, b.errors, b.firstErr, b.written = 0, 0, nil, 0
	b.verdicts.reset()
}

// verdictCounts counts return values: the small ones (every XDP and TC
// action) in an array, the rest in a map.
type verdictCounts struct {
	small [8]int
	other map[uint32]int
}

func (v *verdictCounts) add(ret uint32, n int) {
	if ret < uint32(len(v.small)) {
		v.small[ret] += n
		return
	}
	if v.other == nil {
		v.other = map[uint32]int{}
	}
	v.other[ret] += n
}

func (v *verdictCounts) merge(w *verdictCounts) {
	for r, n := range w.small {
		if n != 0 {
			v.add(uint32(r), n)
		}
	}
	for r, n := range w.other {
		v.add(r, n)
	}
}

func (v *verdictCounts) reset() {
	v.small = [8]int{}
	clear(v.other)
}

// names returns the counts by verdict name.
func (v *verdictCounts) names(prog *waggle.Program) map[string]int {
	m := map[string]int{}
	for r, n := range v.small {
		if n != 0 {
			m[prog.VerdictName(uint32(r))] += n
		}
	}
	for r, n := range v.other {
		m[prog.VerdictName(r)] += n
	}
	return m
}

// packetWorkers returns how many workers run the packets of a capture or
// an interface: --workers, or one per core the Go scheduler uses, at most
// the collection's CPU slots, and one with --events (records are
// attributed to the packet that wrote them, which needs one packet at a
// time).
func packetWorkers(f *objectFlags, cpus int) (int, error) {
	if !f.workersSet {
		if f.events {
			return 1, nil
		}
		return max(1, min(runtime.GOMAXPROCS(0), cpus)), nil
	}
	switch {
	case f.workers < 1:
		return 0, fmt.Errorf("--workers %d: want at least 1", f.workers)
	case f.workers > cpus:
		return 0, fmt.Errorf("--workers %d: the collection has %d CPU slots, one per worker (raise --cpus)", f.workers, cpus)
	case f.workers > 1 && f.events:
		return 0, fmt.Errorf("--workers %d: --events attributes each record to the packet that wrote it, which needs one worker", f.workers)
	}
	return f.workers, nil
}

// runPackets runs prog on each packet next returns until io.EOF or
// errStop (or --packets, --duration or --timeout), over f.nworkers
// workers, and hands the forwarded packets to emit in the input's order.
// When next fails, the summary of the packets before comes back with the
// error.
func (e *env) runPackets(prog *waggle.Program, f *objectFlags, next nextFunc, emit func(time.Time, []byte) error) (*packetSummary, error) {
	start := time.Now()
	r := &packetReader{f: f, next: next}
	if f.duration > 0 {
		r.deadline = start.Add(f.duration)
	}
	c := &packetCollector{prog: prog, keepOut: f.pcapOut != "", emit: emit,
		sum: &packetSummary{Program: prog.Name(), Type: prog.Type().String(), Engine: f.ran}}
	// The first worker runs in this goroutine, alone for the first
	// serialBatches batches (all of them with one worker): no hand-offs.
	w, b := newPacketWorker(prog, f, 0, c.keepOut), &batch{}
	stop := false
	var err error
	for !stop && err == nil && (f.nworkers <= 1 || r.seq < serialBatches) {
		stop = r.fill(b)
		if len(b.slots) > 0 {
			w.run(b)
			err = c.collect(b)
		}
	}
	if !stop && err == nil {
		err = runParallel(r, c, f.nworkers, func(cpu int) *packetWorker { return newPacketWorker(prog, f, cpu, c.keepOut) })
	}
	if err != nil {
		return nil, err
	}
	sum := c.sum
	sum.Verdicts = c.verdicts.names(prog)
	if c.skipped || r.stopped {
		sum.Stopped = fmt.Sprintf("--timeout %v reached after %d packets", f.timeout, sum.Packets)
	}
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.PacketsPerSec = float64(sum.Packets) / sum.Seconds
	}
	return sum, r.err
}

// runParallel runs the batches r fills from now on, on n workers, one
// goroutine each, batch k on worker k mod n, and collects them in order in
// this goroutine. When the collector fails (emit), the reader stops and
// the workers finish what they hold.
func runParallel(r *packetReader, c *packetCollector, n int, newWorker func(cpu int) *packetWorker) error {
	next := r.seq // the first batch to collect
	nbatches := 4 * n
	free := make(chan *batch, nbatches)
	for range nbatches {
		free <- &batch{}
	}
	done := make(chan *batch, nbatches)
	quit := make(chan struct{}) // closed when the collector gives up
	work := make([]chan *batch, n)
	for i := range work {
		work[i] = make(chan *batch, 2)
	}

	// The reader. r's results are read after done is closed.
	go func() {
		defer func() {
			for _, w := range work {
				close(w)
			}
		}()
		for stop := false; !stop; {
			var b *batch
			select {
			case b = <-free:
			case <-quit:
				return
			}
			stop = r.fill(b)
			if len(b.slots) == 0 {
				free <- b
				continue
			}
			select {
			case work[b.seq%n] <- b:
			case <-quit:
				return
			}
		}
	}()

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := newWorker(i)
			for b := range work[i] {
				w.run(b)
				done <- b
			}
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	// The collector, in the reader's order: batch k waits in pending
	// until those before it are collected. At most nbatches are out, all
	// from k on, so k mod nbatches is free.
	pending := make([]*batch, nbatches)
	var err error
	for b := range done {
		if err != nil {
			continue // draining, until the workers are done
		}
		pending[b.seq%nbatches] = b
		for b := pending[next%nbatches]; b != nil && b.seq == next; b = pending[next%nbatches] {
			pending[next%nbatches] = nil
			next++
			err = c.collect(b)
			free <- b
			if err != nil {
				close(quit)
				break
			}
		}
	}
	return err
}

// packetReader fills batches from a packet source.
type packetReader struct {
	f        *objectFlags
	next     nextFunc
	deadline time.Time // --duration, if given
	seq      int       // batches filled
	read     int       // packets read
	stopped  bool      // by the run's context (--timeout)
	err      error     // why the source could not be read to its end
}

// fill resets b and fills it with the next packets, up to batchPackets or
// batchBytes, and reports whether the source is done (its end, an error,
// --packets, --duration, --timeout). Only the first packet of a batch is
// waited for: a live source hands out what it has.
func (r *packetReader) fill(b *batch) (stop bool) {
	b.reset(r.seq, r.read)
	ctx := r.f.context()
	for len(b.slots) < batchPackets && len(b.data) < batchBytes {
		if r.f.packets > 0 && r.read == r.f.packets || !r.deadline.IsZero() && time.Now().After(r.deadline) {
			stop = true
			break
		}
		if ctx.Err() != nil {
			stop, r.stopped = true, true
			break
		}
		pkt, ts, err := r.next(len(b.slots) == 0)
		if errors.Is(err, errWouldBlock) {
			break
		}
		if errors.Is(err, io.EOF) || errors.Is(err, errStop) {
			stop, r.stopped = true, ctx.Err() != nil
			break
		}
		if err != nil {
			stop, r.err = true, err
			break
		}
		b.data = append(b.data, pkt...)
		b.slots = append(b.slots, slot{end: len(b.data), ts: ts})
		r.read++
	}
	if len(b.slots) > 0 {
		r.seq++
	}
	return stop
}

// packetWorker runs the program on the packets of batches, on one CPU
// slot, with run options and a packet buffer reused from run to run.
type packetWorker struct {
	prog    *waggle.Program
	runOne  runFunc // f.run, or prog.RunContext
	f       *objectFlags
	keepOut bool // copy each forwarded packet into its batch, for --out
	opts    waggle.RunOptions
	buf     []byte
}

func newPacketWorker(prog *waggle.Program, f *objectFlags, cpu int, keepOut bool) *packetWorker {
	w := &packetWorker{prog: prog, runOne: f.run, f: f, keepOut: keepOut, buf: make([]byte, runBuf),
		opts: waggle.RunOptions{CPU: uint32(cpu), Flags: testRunOnCPU}}
	if w.runOne == nil {
		w.runOne = prog.RunContext
	}
	return w
}

// run runs the packets of b and sets its results. Once the run's context
// is done (--timeout), the packets left are not run.
func (w *packetWorker) run(b *batch) {
	ctx := w.f.context()
	stopped := ctx.Done()
	prog, opts := w.prog, &w.opts
	off := 0
	b.ran = len(b.slots)
	for i := range b.slots {
		select {
		case <-stopped:
			b.ran = i
		default:
		}
		if b.ran < len(b.slots) {
			break
		}
		s := &b.slots[i]
		opts.Data, opts.DataOut = b.data[off:s.end], w.buf
		off = s.end
		ret, err := w.runOne(ctx, opts)
		if w.f.ev != nil {
			w.f.ev.drain(b.first + i + 1)
		}
		if err != nil {
			if b.errors++; b.firstErr == nil {
				b.firstErr = fmt.Errorf("packet %d: %w", b.first+i+1, explainLimit(err, ctx, w.f.timeout))
			}
			continue
		}
		b.verdicts.add(ret, 1)
		if prog.Forwards(ret) {
			b.written++
			if w.keepOut {
				s.fwd, s.outStart = true, len(b.out)
				b.out = append(b.out, prog.Truncate(ret, opts.DataOut)...)
				s.outEnd = len(b.out)
			}
		}
	}
}

// packetCollector sums the results of batches taken in the reader's order
// and writes their forwarded packets.
type packetCollector struct {
	prog     *waggle.Program
	keepOut  bool
	emit     func(time.Time, []byte) error
	sum      *packetSummary
	verdicts verdictCounts
	skipped  bool // a batch was cut short by --timeout: the rest are ignored
}

func (c *packetCollector) collect(b *batch) error {
	if c.skipped {
		return nil
	}
	sum := c.sum
	sum.Packets += b.ran
	sum.Errors += b.errors
	sum.Written += b.written
	if b.firstErr != nil && sum.FirstError == "" {
		sum.FirstError = b.firstErr.Error()
	}
	c.verdicts.merge(&b.verdicts)
	c.skipped = b.ran < len(b.slots)
	if c.keepOut {
		for i := range b.ran {
			if s := &b.slots[i]; s.fwd {
				if err := c.emit(s.ts, b.out[s.outStart:s.outEnd]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// captureWriter returns a function writing packets to --out (a no-op
// without it) and one flushing and closing the file.
func (e *env) captureWriter(f *objectFlags) (func(time.Time, []byte) error, func() error, error) {
	if f.pcapOut == "" {
		return func(time.Time, []byte) error { return nil }, func() error { return nil }, nil
	}
	of, err := os.Create(f.pcapOut)
	if err != nil {
		return nil, nil, err
	}
	w, err := capture.NewWriter(of, capture.LinkTypeEthernet, capture.Nanoseconds)
	if err != nil {
		of.Close()
		return nil, nil, fmt.Errorf("--out %s: %w", f.pcapOut, err)
	}
	write := func(ts time.Time, pkt []byte) error {
		if err := w.WritePacket(ts, len(pkt), pkt); err != nil {
			return fmt.Errorf("--out %s: %w", f.pcapOut, err)
		}
		return nil
	}
	closeOut := func() error {
		err := w.Flush()
		if cerr := of.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("--out %s: %w", f.pcapOut, err)
		}
		return nil
	}
	return write, closeOut, nil
}

// lockedWriter serializes the writes of several workers (bpf_trace_printk
// writes one line per call).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}
