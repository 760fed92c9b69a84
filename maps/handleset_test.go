package maps

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// Test_handleSet runs random adds and removes against a Go map: the set
// answers as the map does, through growth and deleted slots, and refuses
// the words that are not handles.
func Test_handleSet(t *testing.T) {
	var s handleSet
	model := map[uint64]bool{}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		h := 0x7f0000000000 + uint64(rng.IntN(600))*4096 // addresses alike in their low bits
		if rng.IntN(3) == 0 {
			s.remove(h)
			delete(model, h)
		} else {
			s.add(h)
			model[h] = true
		}
		if i%97 == 0 {
			for c := uint64(0); c < 600; c++ {
				h := 0x7f0000000000 + c*4096
				if s.has(h) != model[h] {
					t.Fatalf("op %d: has(%#x) = %v, want %v", i, h, s.has(h), model[h])
				}
			}
			if s.n != len(model) {
				t.Fatalf("op %d: %d handles, want %d", i, s.n, len(model))
			}
		}
	}
	for _, h := range []uint64{handleEmpty, handleDeleted} {
		s.add(h)
		if s.has(h) {
			t.Errorf("has(%d) after add: the word is not a handle", h)
		}
	}
	s.clear()
	for h := range model {
		if s.has(h) {
			t.Fatalf("has(%#x) after clear", h)
		}
	}
}

// Test_handleSetConcurrent has a writer add and remove handles, growing
// the table, while readers look up handles that stay in the set all along:
// a reader never misses one. Run it with -race.
func Test_handleSetConcurrent(t *testing.T) {
	var s handleSet
	var mu sync.Mutex // the writers' lock, as innerRefs.mu
	const stable = 8
	for i := range stable {
		s.add(uint64(0x1000 + i*8))
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var missed atomic.Int64
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				for i := range stable {
					if !s.has(uint64(0x1000 + i*8)) {
						missed.Add(1)
					}
				}
			}
		})
	}
	for round := range 200 {
		mu.Lock()
		for i := range 64 {
			s.add(uint64(0x100000 + (round*64+i)*8))
		}
		for i := range 64 {
			s.remove(uint64(0x100000 + (round*64+i)*8))
		}
		mu.Unlock()
	}
	stop.Store(true)
	wg.Wait()
	if n := missed.Load(); n != 0 {
		t.Fatalf("readers missed a handle in the set %d times", n)
	}
}
