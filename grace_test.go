package waggle_test

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/grace/grace.c -o testdata/grace/grace.o

// TestGrace_LPM runs grace.c's reader on 4 goroutines (CPU slots 0-3):
// it looks an address up in a trie, spends a thousand bpf_loop calls and
// reads the value again, while Go inserts, replaces and deletes prefixes.
// Every run must read the same value twice, naming a prefix of its
// address: a run holds what it looked up until it ends, as an RCU
// read-side section holds it in Linux. Run it with -race too.
func TestGrace_LPM(t *testing.T) {
	const workers = 4
	coll, err := waggle.LoadCollection("testdata/grace/grace.o", &waggle.CollectionOptions{CPUs: workers})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	trie := coll.Maps["prefixes"]
	key := func(plen, addr uint32) []byte {
		return binary.BigEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, plen), addr)
	}
	prefix := func(r *rand.Rand) (uint32, uint32) {
		plen := uint32(8 + r.IntN(25))
		return plen, (0x0a000000 | r.Uint32()&0x000f000f) &^ (1<<(32-plen) - 1)
	}
	runs := 3000
	if testing.Short() {
		runs = 300
	}
	// Prefixes to find from the start: on a loaded machine the readers
	// may be done before the writer has run at all.
	seed := rand.New(rand.NewPCG(3, 3))
	for range 64 {
		plen, p := prefix(seed)
		if err := trie.Update(key(plen, p), uint64(plen)<<32|uint64(p), waggle.UpdateAny); err != nil && !errors.Is(err, maps.ENOSPC) {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		r := rand.New(rand.NewPCG(1, 1))
		for !stop.Load() {
			plen, p := prefix(r)
			if r.IntN(2) == 0 {
				err := trie.Update(key(plen, p), uint64(plen)<<32|uint64(p), waggle.UpdateAny)
				if err != nil && !errors.Is(err, maps.ENOSPC) {
					t.Error(err)
					return
				}
			} else {
				_ = trie.Delete(key(plen, p))
			}
		}
	}()
	var hits atomic.Int64
	var readers sync.WaitGroup
	for w := range workers {
		readers.Add(1)
		go func() {
			defer readers.Done()
			r := rand.New(rand.NewPCG(uint64(w), 2))
			in := smallFrame()
			for range runs {
				binary.BigEndian.PutUint32(in[14:], 0x0a000000|r.Uint32()&0x000f000f)
				ret, err := coll.Programs["reader"].Run(&waggle.RunOptions{Data: in, CPU: uint32(w), Flags: 1})
				switch {
				case err != nil:
					t.Error(err)
					return
				case ret == 3:
					t.Errorf("address %#x: the value the run looked up changed, or names no prefix of it", binary.BigEndian.Uint32(in[14:]))
					return
				case ret == 2:
					hits.Add(1)
				}
			}
		}()
	}
	readers.Wait()
	stop.Store(true)
	writer.Wait()
	if hits.Load() == 0 {
		t.Fatal("no lookup found a prefix")
	}
	t.Logf("%d of %d runs found a prefix", hits.Load(), workers*runs)
}
