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
// capture and N, as per-CPU map values then do. The collector takes the
// batches back in the reader's order, so --out keeps the input's order and
// the first error is the first in packet order. A channel operation that
// wakes a goroutine costs more than a run of a small program is meant to;
// per batch it costs little (RATIONALE.md, cmd/waggle).
const (
	batchPackets = 64
	batchBytes   = 256 << 10
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
// errStop (or --packets, --duration or --timeout), over workers, and hands
// the forwarded packets to emit in the input's order. When next fails,
// the summary of the packets before comes back with the error.
func (e *env) runPackets(prog *waggle.Program, f *objectFlags, next nextFunc, emit func(time.Time, []byte) error) (*packetSummary, error) {
	n := max(f.nworkers, 1)
	ctx := f.context()
	start := time.Now()
	nbatches := 4 * n
	free := make(chan *batch, nbatches)
	for range nbatches {
		free <- &batch{}
	}
	done := make(chan *batch, nbatches)
	quit := make(chan struct{}) // closed when the collector gives up (emit failed)

	// The reader: its results are read after done is closed.
	var inputErr error
	var readerStopped bool // by --timeout
	work := make([]chan *batch, n)
	for i := range work {
		work[i] = make(chan *batch, 2)
	}
	go func() {
		defer func() {
			for _, w := range work {
				close(w)
			}
		}()
		var deadline time.Time
		if f.duration > 0 {
			deadline = time.Now().Add(f.duration)
		}
		seq, read := 0, 0
		for stop := false; !stop; {
			var b *batch
			select {
			case b = <-free:
			case <-quit:
				return
			}
			b.reset(seq, read)
			for len(b.slots) < batchPackets && len(b.data) < batchBytes {
				if f.packets > 0 && read == f.packets || !deadline.IsZero() && time.Now().After(deadline) {
					stop = true
					break
				}
				if ctx.Err() != nil {
					stop, readerStopped = true, true
					break
				}
				pkt, ts, err := next(len(b.slots) == 0)
				if errors.Is(err, errWouldBlock) {
					break
				}
				if errors.Is(err, io.EOF) || errors.Is(err, errStop) {
					stop = true
					break
				}
				if err != nil {
					stop, inputErr = true, err
					break
				}
				b.data = append(b.data, pkt...)
				b.slots = append(b.slots, slot{end: len(b.data), ts: ts})
				read++
			}
			if len(b.slots) == 0 {
				free <- b
				continue
			}
			select {
			case work[seq%n] <- b:
			case <-quit:
				return
			}
			seq++
		}
	}()

	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.packetWorker(prog, f, uint32(i), f.pcapOut != "", work[i], done)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()

	// The collector, in the reader's order.
	sum := &packetSummary{Program: prog.Name(), Type: prog.Type().String()}
	var verdicts verdictCounts
	var emitErr error
	skipped := false
	pending := make([]*batch, nbatches)
	want := 0
	for b := range done {
		if emitErr != nil {
			continue // draining, until the workers are done
		}
		pending[b.seq%nbatches] = b
		for b := pending[want%nbatches]; b != nil && b.seq == want; b = pending[want%nbatches] {
			pending[want%nbatches] = nil
			want++
			if skipped {
				free <- b
				continue
			}
			sum.Packets += b.ran
			sum.Errors += b.errors
			sum.Written += b.written
			if b.firstErr != nil && sum.FirstError == "" {
				sum.FirstError = b.firstErr.Error()
			}
			verdicts.merge(&b.verdicts)
			skipped = b.ran < len(b.slots)
			if f.pcapOut != "" {
				for i := range b.ran {
					s := &b.slots[i]
					if s.fwd {
						if err := emit(s.ts, b.out[s.outStart:s.outEnd]); err != nil {
							emitErr = err
							break
						}
					}
				}
			}
			free <- b
			if emitErr != nil {
				close(quit)
				break
			}
		}
	}
	if emitErr != nil {
		return nil, emitErr
	}
	sum.Verdicts = verdicts.names(prog)
	if skipped || readerStopped {
		sum.Stopped = fmt.Sprintf("--timeout %v reached after %d packets", f.timeout, sum.Packets)
	}
	sum.Seconds = time.Since(start).Seconds()
	if sum.Seconds > 0 {
		sum.PacketsPerSec = float64(sum.Packets) / sum.Seconds
	}
	return sum, inputErr
}

// packetWorker runs the batches of in on CPU slot cpu and sends them to
// done. Its run options and packet buffer are reused from run to run.
// With keepOut, it copies each forwarded packet into its batch for --out.
func (e *env) packetWorker(prog *waggle.Program, f *objectFlags, cpu uint32, keepOut bool, in <-chan *batch, done chan<- *batch) {
	ctx := f.context()
	stopped := ctx.Done()
	buf := make([]byte, runBuf)
	opts := &waggle.RunOptions{CPU: cpu, Flags: testRunOnCPU}
	for b := range in {
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
			opts.Data, opts.DataOut = b.data[off:s.end], buf
			off = s.end
			ret, err := prog.RunContext(ctx, opts)
			if f.ev != nil {
				f.ev.drain(b.first + i + 1)
			}
			if err != nil {
				if b.errors++; b.firstErr == nil {
					b.firstErr = fmt.Errorf("packet %d: %w", b.first+i+1, explainLimit(err, ctx, f.timeout))
				}
				continue
			}
			b.verdicts.add(ret, 1)
			if prog.Forwards(ret) {
				b.written++
				if keepOut {
					s.fwd, s.outStart = true, len(b.out)
					b.out = append(b.out, prog.Truncate(ret, opts.DataOut)...)
					s.outEnd = len(b.out)
				}
			}
		}
		done <- b
	}
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
