package maps

import (
	"runtime"
	"sync/atomic"
	"time"
)

// Grace periods, as RCU gives them to the kernel's maps. In Linux a BPF
// program runs inside an RCU read-side critical section, and the maps
// whose lookups hand out pointers to memory an update frees either reuse
// that memory only after a grace period (every section that began before
// the free has ended), or reuse it at once and say so:
//
//	LPM trie nodes          kfree_rcu (lpm_trie.c; bpf_mem_cache_free_rcu
//	                        since 6.13): after a grace period
//	devmap entries          call_rcu (devmap.c): after a grace period
//	hash elements           pcpu_freelist_push (preallocated) or
//	                        bpf_mem_cache_free (BPF_F_NO_PREALLOC): reused
//	                        at once; readers restart on a nulls mismatch
//	LRU hash elements       bpf_lru_push_free: reused at once
//
// waggle's tries do what Linux's do (lpm.go); hash maps, as Linux's, reuse
// at once, so that a value pointer held past a concurrent delete may show
// another key's value. devmaps differ: their slots are rewritten in place
// and devmap hash elements reused at once (doc.go lists it).
//
// The mechanism is epoch-based reclamation with per-CPU reader counts, in
// the manner of SRCU. A map with grace periods has an epoch E and, per
// stripe of worker slots, two reader counts, one per parity of E. A
// reader (a Section) enters by loading E, incrementing its stripe's count
// of E's parity and checking that E has not moved; if it has, it undoes
// the increment and tries again. It stays counted until the section ends.
// A writer tags what it frees, after unlinking it, with E. The epoch goes
// from e to e+1 only when no stripe counts a reader of the parity of e-1,
// so a reader that entered at e is gone once E reaches e+2, and memory
// tagged t may be reused once E >= t+2: every reader that could have
// reached it entered at t or earlier, and has left. (Sketch: a reader
// validated at e incremented its count while E was e; the advance from
// e+1 to e+2 reads every count of e's parity after that, and waits for
// zero.) Go's atomics are sequentially consistent, which the argument
// needs: the writer's unlink and its load of E, the reader's increment
// and its second load of E, are each ordered.
//
// Readers pay two atomic adds and two loads per section, however many
// lookups it makes; writers advance the epoch only when the oldest freed
// memory is not yet reusable, which scans the stripes once or twice.

// graceStripes bounds a map's reader stripes (64 bytes each).
const graceStripes = 64

// grace is the epoch and reader counts of one map.
type grace struct {
	epoch   atomic.Uint64
	stripes []graceStripe
}

// graceStripe counts the readers of some worker slots, by epoch parity,
// on a cache line of its own.
type graceStripe struct {
	readers [2]atomic.Int64
	_       [48]byte
}

// newGrace returns the epoch state of a map with cpus worker slots.
func newGrace(cpus int) grace {
	return grace{stripes: make([]graceStripe, min(max(cpus, 1), graceStripes))}
}

// enter counts a reader on worker slot cpu, and returns the count to
// decrement when it leaves.
func (g *grace) enter(cpu int) *atomic.Int64 {
	s := &g.stripes[uint(cpu)%uint(len(g.stripes))]
	for {
		e := g.epoch.Load()
		c := &s.readers[e&1]
		c.Add(1)
		if g.epoch.Load() == e {
			return c
		}
		c.Add(-1)
	}
}

// now is the tag of memory unlinked before the call.
func (g *grace) now() uint64 { return g.epoch.Load() }

// reusable reports whether memory tagged t may be reused, without trying
// to advance the epoch.
func (g *grace) reusable(t uint64) bool { return g.epoch.Load() >= t+2 }

// passed reports whether memory tagged t may be reused, advancing the
// epoch as far as the readers allow.
func (g *grace) passed(t uint64) bool {
	for {
		e := g.epoch.Load()
		if e >= t+2 {
			return true
		}
		if !g.advance(e) {
			return false
		}
	}
}

// advance moves the epoch on from e if no reader of the parity of e-1 is
// left, and reports whether the epoch is past e now (by this call or
// another's).
func (g *grace) advance(e uint64) bool {
	old := (e + 1) & 1
	for i := range g.stripes {
		if g.stripes[i].readers[old].Load() != 0 {
			return false
		}
	}
	g.epoch.CompareAndSwap(e, e+1)
	return true
}

// graceWait bounds how long a Go-side update waits for a grace period
// before it reuses a node early (lpmTrie.update): far longer than a
// reader's goroutine stays descheduled on a loaded machine, far shorter
// than forever, which is how long a section that never ends would keep it.
const graceWait = time.Second

// wait waits until memory tagged t may be reused, as synchronize_rcu does,
// for Go-side updates (never inside a section), at most limit (graceWait,
// but for tests); it reports whether the grace period passed. It yields,
// then sleeps, so that the readers' goroutines get to finish.
func (g *grace) wait(t uint64, limit time.Duration) bool {
	var start time.Time
	for i := 0; !g.passed(t); i++ {
		if i < 64 {
			runtime.Gosched()
			continue
		}
		if i == 64 {
			start = time.Now()
		} else if time.Since(start) > limit {
			return false
		}
		time.Sleep(min(time.Duration(i-63)*10*time.Microsecond, time.Millisecond))
	}
	return true
}

// graced is implemented by maps with grace periods.
type graced interface {
	graceState() *grace
}

// Section is a read-side critical section (rcu_read_lock) over the maps
// that reuse freed memory only after a grace period: LPM tries. A pointer
// a lookup in such a map returns while the section holds the map (Enter)
// stays the value it was, whatever concurrent updates and deletes do,
// until Exit: a delete frees the node, and no update reuses it before
// then. In Linux a program's run is such a section; in waggle each run
// has one (helpers.State.Section), which map helpers enter before they
// look a map up and which ends with the run. Outside a section a lookup's
// pointer may come to show another prefix's value as soon as the prefix
// is deleted.
//
// A Section must end: a map that a section holds cannot reuse what was
// freed since. A trie has room for max(max_entries, 64) nodes waiting out
// their grace periods; past that, a Go-side update waits for the readers
// (up to a second, then it reuses early until they have moved on) and a
// program's update reuses early. The zero value is ready to use; one
// goroutine uses a Section at a time.
type Section struct {
	held []heldMap
}

type heldMap struct {
	g     *grace
	count *atomic.Int64
}

// Enter makes s hold m, counted on worker slot cpu (which spreads the
// counts of concurrent sections). Entering a map s holds, or a map
// without grace periods, does nothing.
func (s *Section) Enter(m Map, cpu int) {
	if gm, ok := m.(graced); ok {
		s.enter(gm.graceState(), cpu)
	}
}

// EnterEntry is Enter for a map of a Set, whose Entry knows whether it
// has grace periods.
func (s *Section) EnterEntry(e *Entry, cpu int) {
	if e.g != nil {
		s.enter(e.g, cpu)
	}
}

// enter makes s hold the map whose grace periods are g.
func (s *Section) enter(g *grace, cpu int) {
	for i := range s.held {
		if s.held[i].g == g {
			return
		}
	}
	s.held = append(s.held, heldMap{g: g, count: g.enter(cpu)})
}

// Exit ends the section: the maps it held may reuse what was freed while
// it held them.
func (s *Section) Exit() {
	for i := range s.held {
		s.held[i].count.Add(-1)
		s.held[i] = heldMap{}
	}
	s.held = s.held[:0]
}

// Held reports whether s holds any map.
func (s *Section) Held() bool { return len(s.held) != 0 }
