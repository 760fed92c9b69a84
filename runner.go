package waggle

import (
	"context"
	"fmt"
	"runtime"

	"github.com/waggle-bpf/waggle/maps"
)

// Runner runs one program again and again on one goroutine: what
// Program.Run does, without what each Run pays to be safe for concurrent
// use and for Collection.Close. A Run takes a reference on the collection
// (two atomic read-modify-writes, about a quarter of a run of a small XDP
// program) and an execution context from a pool; a Runner takes both once,
// when it is made, and keeps them until Close. For packets that come one
// at a time (a read loop on a socket, a pcap replay that acts on each
// verdict before reading on); packets that are at hand together cost less
// per packet in a batch (RunBatch).
//
// A Runner is not safe for concurrent use: give each goroutine its own.
// Runs on it after Collection.Close fail with EBADF, as Program.Run's do,
// but the collection's maps stay mapped until the Runner is closed (or,
// if it is lost unclosed, until the garbage collector finds it
// unreachable), as they stay for a run in progress.
type Runner struct {
	p       *Program
	rn      *runner // nil once closed
	cleanup runtime.Cleanup
}

// NewRunner prepares the program (Prepare) and returns a Runner of it,
// which holds a reference on the collection until its Close. It fails if
// the program cannot be prepared or the collection is closed.
func (p *Program) NewRunner() (*Runner, error) {
	if err := p.Prepare(); err != nil {
		return nil, err
	}
	if !p.coll.acquire() {
		return nil, fmt.Errorf("program %s: %w", p.name, errCollectionClosed)
	}
	r := &Runner{p: p, rn: p.getRunner()}
	// A Runner lost unclosed lets go of the collection when it is
	// collected. (The cleanup holds the collection, not the Runner.)
	r.cleanup = runtime.AddCleanup(r, (*Collection).release, p.coll)
	return r, nil
}

// Run is Program.Run on the Runner's execution context.
func (r *Runner) Run(opts *RunOptions) (uint32, error) {
	return r.RunContext(context.Background(), opts)
}

// RunContext is Program.RunContext on the Runner's execution context.
func (r *Runner) RunContext(ctx context.Context, opts *RunOptions) (uint32, error) {
	if err := r.usable(); err != nil {
		return 0, err
	}
	if opts == nil {
		opts = &RunOptions{}
	}
	ret, _, err := r.p.runOn(ctx, r.rn, opts, false)
	return ret, err
}

// RunBatch is Program.RunBatch on the Runner's execution context: the
// batch runs on the calling goroutine, so opts.Workers must be 0 or 1.
// Without the collection's reference and the pool, a batch costs its
// runs and little else.
func (r *Runner) RunBatch(runs []BatchRun, opts *RunBatchOptions) (int, error) {
	return r.RunBatchContext(context.Background(), runs, opts)
}

// RunBatchContext is Program.RunBatchContext on the Runner's execution
// context, as RunBatch.
func (r *Runner) RunBatchContext(ctx context.Context, runs []BatchRun, opts *RunBatchOptions) (int, error) {
	p := r.p
	if err := r.usable(); err != nil {
		return 0, err
	}
	if opts == nil {
		opts = &RunBatchOptions{}
	}
	if opts.Workers < 0 || opts.Workers > 1 {
		return 0, fmt.Errorf("program %s: RunBatchOptions.Workers is %d: a Runner runs a batch on its goroutine (Program.RunBatch spreads one over workers): %w", p.name, opts.Workers, maps.EINVAL)
	}
	if err := p.checkCPU(opts.Flags, opts.CPU, "RunBatchOptions"); err != nil {
		return 0, err
	}
	if len(runs) == 0 {
		return 0, nil
	}
	return p.runBatchOn(ctx, r.rn, runs, opts)
}

// usable returns why the Runner cannot run, if it cannot.
func (r *Runner) usable() error {
	switch {
	case r.rn == nil:
		return fmt.Errorf("program %s: the Runner is closed: %w", r.p.name, maps.EBADF)
	case r.p.coll.refs.Load()&1 != 0:
		// (The Runner's reference keeps the maps: this is Run's answer
		// after Close, not a safety check.)
		return fmt.Errorf("program %s: %w", r.p.name, errCollectionClosed)
	}
	return nil
}

// Close gives back the Runner's execution context and its reference on
// the collection: the maps of a closed collection are unmapped when the
// last reference goes. Runs on a closed Runner fail with EBADF; Close
// again does nothing. It returns nil: the error is io.Closer's.
func (r *Runner) Close() error {
	if r.rn == nil {
		return nil
	}
	r.cleanup.Stop()
	r.p.runners.Put(r.rn)
	r.rn = nil
	r.p.coll.release()
	return nil
}
