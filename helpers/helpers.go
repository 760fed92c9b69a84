package helpers

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"

	"github.com/waggle-bpf/waggle/maps"
)

// Env is what a helper sees of the run that called it. Engines implement it,
// so pointer arguments are validated the same way whichever engine runs.
type Env interface {
	// Memory returns the n bytes of program-visible memory at addr, or an
	// error if the run does not own all of them (or, with write, may not
	// write them). The slice aliases the program's memory.
	Memory(addr, n uint64, write bool) ([]byte, error)
	// State returns the state of the run in progress. Never nil.
	State() *State
	// Call runs a callback of the running program (bpf_loop,
	// bpf_for_each_map_elem, ...) with r1-r5 set to args and returns its r0.
	// fn is the value the program loaded with a BPF_PSEUDO_FUNC lddw.
	Call(fn uint64, args [5]uint64) (uint64, error)
	// Scratch returns n bytes (at most ScratchSize) of memory the program
	// may read, and their address, for a helper to hand the program data it
	// has no place for (the key bpf_for_each_map_elem passes to its
	// callback). It stays valid until the helper returns; each call depth
	// has its own, so callbacks that call the helper again do not clobber
	// it.
	Scratch(n uint64) (addr uint64, b []byte, err error)
}

// ScratchSize is the most Env.Scratch hands out: the largest map key.
const ScratchSize = 512

// MaxTailCalls is the kernel's MAX_TAIL_CALL_CNT: a run may chain at most
// this many tail calls.
const MaxTailCalls = 33

// State is what one run of a program shares with its helpers. Whoever runs
// the program (the hook, Program.Run) fills it in; engines hand it to
// helpers through Env.State.
type State struct {
	// CPU is the worker slot the program runs on: the index of per-CPU map
	// values and what bpf_get_smp_processor_id returns.
	CPU int
	// Maps is the maps the running program references (its lddw
	// instructions' and the inner maps of the map-in-maps among them),
	// the only ones whose handles helpers accept, as Linux's verifier
	// accepts only those map pointers. A tail call switches it to the
	// target's. nil: no map handle resolves.
	Maps *maps.Set
	// Section is the run's read-side section (rcu_read_lock): helpers
	// that look maps up enter it, so that trie nodes the program got
	// pointers to are not reused before the run ends. Release ends it.
	Section maps.Section
	// Hook is the program type's state for this run (the packet of an XDP
	// or TC program, the task of a tracing program), for helpers that need
	// it; see package progtype.
	Hook any
	// Trace receives bpf_trace_printk output; nil discards it.
	Trace io.Writer
	// Rand is the state of bpf_get_prandom_u32; a zero value is seeded on
	// first use.
	Rand uint64
	// Syncookie is the secret of the SYN cookie helpers
	// (bpf_tcp_raw_gen_syncookie_ipv4 and the others): the Collection's.
	// nil uses one drawn at random once per process.
	Syncookie *SyncookieSecret
	// TailCall is set by bpf_tail_call to the program to continue with; the
	// engine replaces the running program with it when the helper returns,
	// and clears it.
	TailCall any
	// TailCalls counts the tail calls taken in this run.
	TailCalls int

	// Records are the ring buffer records this run reserved and has not
	// yet submitted or discarded: the only ring buffer memory the program
	// may reach (checked engines allow exactly these bytes), and the only
	// addresses bpf_ringbuf_submit and bpf_ringbuf_discard accept.
	Records []Record
	// Locks is the table bpf_spin_lock takes its locks in; nil makes the
	// helper fail. Every run that may share a map value must share it.
	Locks *maps.SpinLocks
	// CheckLock validates the address a program passes to bpf_spin_lock:
	// Linux allows only the bpf_spin_lock field of a map value. nil
	// accepts any 4-byte aligned address the program may write.
	CheckLock func(addr uint64) error
	// Held is the address of the bpf_spin_lock the run holds, 0 for none.
	// Engines refuse helper calls other than bpf_spin_unlock while it is
	// set, and a final exit with it set (as Linux's verifier does).
	Held uint64
	// Stop is the run's stop flag (the engine seam's Args.Stop): helpers that wait
	// (bpf_spin_lock) give up when it is set. nil for none.
	Stop *atomic.Bool
}

// Record is a ring buffer record a run reserved: Size bytes of sample at
// Addr in Ring.
type Record struct {
	Ring       maps.RingBuffer
	Addr, Size uint64
}

// Release gives back what a run still holds when it ends, whichever way it
// ended: it unlocks the spin lock, discards the ring buffer records and
// ends the read-side section, and reports whether there was a lock or a
// record to give back. Whoever runs programs calls it after every run, so
// that a failed run never leaves a lock held (a hang for the next run), a
// record busy (a ring buffer that stops) or a trie's freed nodes waiting.
func (s *State) Release() bool {
	s.Section.Exit()
	return s.ReleaseHeld()
}

// ReleaseHeld is Release but for the Section, which stays entered: for
// runs that follow one another in one read-side section, as the kernel's
// XDP runs a NAPI poll's packets in one RCU section.
func (s *State) ReleaseHeld() bool {
	released := s.Held != 0 || len(s.Records) != 0
	if s.Held != 0 {
		if s.Locks != nil {
			s.Locks.Unlock(s.Held)
		}
		s.Held = 0
	}
	for _, r := range s.Records {
		r.Ring.Discard(r.Addr, maps.RingBufNoWakeup)
	}
	clear(s.Records)
	s.Records = s.Records[:0]
	return released
}

// PacketLoader is implemented by a State.Hook whose programs may use the
// legacy packet loads (LD_ABS and LD_IND): LoadPacket returns the n bytes
// such a load at offset off reads, as Linux's bpf_skb_load_helper_*
// (net/core/filter.c) finds them in the packet as it is now, the negative
// SKF_NET_OFF and SKF_LL_OFF areas included, or false where Linux fails
// the load (and the program returns 0).
type PacketLoader interface {
	LoadPacket(off int32, n int) ([]byte, bool)
}

// Func implements one helper: args holds r1-r5 at the call, the result is
// r0. A non-nil error aborts the run; it is for faults the kernel would
// never let happen (a bad pointer in an unverified program), not for errno
// results, which helpers return in r0 as Linux does.
type Func func(env Env, args *[5]uint64) (uint64, error)

// Table maps helper ids (Linux numbering, include/uapi/linux/bpf.h) to their
// implementations.
type Table map[int32]Func

// ErrUnknown is returned (wrapped) when a program calls a helper id the table
// does not have.
var ErrUnknown = errors.New("unknown helper")

// Lookup returns the helper with the given id.
func (t Table) Lookup(id int32) (Func, error) {
	if f, ok := t[id]; ok && f != nil {
		return f, nil
	}
	return nil, fmt.Errorf("helper %d: %w", id, ErrUnknown)
}

// Name returns the kernel's name of helper id, without "bpf_"
// ("map_lookup_elem"), or "" for an id Linux does not define.
func Name(id int32) string {
	if id <= 0 || int(id) >= len(names) {
		return ""
	}
	return names[id]
}

// ID returns the id of the helper with the given name (with or without
// "bpf_"), or false.
func ID(name string) (int32, bool) {
	name = strings.TrimPrefix(name, "bpf_")
	for i, n := range names {
		if n == name && i > 0 {
			return int32(i), true
		}
	}
	return 0, false
}
