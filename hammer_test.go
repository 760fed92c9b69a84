package waggle_test

import (
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waggle-bpf/waggle"
	"github.com/waggle-bpf/waggle/maps"
)

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/hammer/hammer.c -o testdata/hammer/hammer.o
//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/buggy/buggy.c -o testdata/buggy/buggy.o

// TestHammer runs one program on 8 goroutines at once (each its own CPU
// slot) updating a shared hash, an LRU hash, a per-CPU hash and a ring
// buffer, while Go reads the ring buffer and iterates the maps. Run it with
// -race. Afterwards every update must be accounted for.
func TestHammer(t *testing.T) {
	const workers, runs, keys = 8, 2000, 64
	coll, err := waggle.LoadCollection("testdata/hammer/hammer.o", &waggle.CollectionOptions{CPUs: workers})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	if err := coll.Maps["percpu"].Put(uint32(0), make([]uint64, workers)); err != nil {
		t.Fatal(err)
	}
	rd, err := maps.NewRingBufReader(coll.Maps["events"].Underlying())
	if err != nil {
		t.Fatal(err)
	}
	var received [keys]atomic.Int64
	var readerDone sync.WaitGroup
	readerDone.Add(1)
	go func() {
		defer readerDone.Done()
		for {
			rec, err := rd.Read()
			if err != nil {
				return
			}
			received[binary.NativeEndian.Uint32(rec.RawSample)].Add(1)
		}
	}()
	stop := make(chan struct{})
	var browsers sync.WaitGroup
	browsers.Add(1)
	go func() { // Go-side readers of the maps the programs update
		defer browsers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, name := range []string{"hash", "lru"} {
				var k uint32
				var v uint64
				it := coll.Maps[name].Iterate()
				for it.Next(&k, &v) {
				}
				if err := it.Err(); err != nil {
					t.Error(err)
					return
				}
			}
			var per []uint64
			if err := coll.Maps["percpu"].Lookup(uint32(0), &per); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	prog := coll.Programs["hammer"]
	var wg sync.WaitGroup
	sent := [keys]atomic.Int64{}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := make([]byte, 64)
			for i := range runs {
				key := (w*31 + i) % keys
				pkt[0] = byte(key)
				ret, err := prog.Run(&waggle.RunOptions{Data: pkt, CPU: uint32(w), Flags: 1 /* BPF_F_TEST_RUN_ON_CPU */})
				if err != nil || ret != 2 {
					t.Errorf("worker %d run %d: %d, %v", w, i, ret, err)
					return
				}
				sent[key].Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	browsers.Wait()
	// Let the reader drain, then stop it.
	deadline := time.Now().Add(5 * time.Second)
	rb := coll.Maps["events"].Underlying().(maps.RingBuffer)
	for time.Now().Before(deadline) {
		total := int64(rb.Dropped())
		for k := range keys {
			total += received[k].Load()
		}
		if total == workers*runs {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	rd.Close()
	readerDone.Wait()

	var hashTotal, ringTotal uint64
	for k := range keys {
		var v uint64
		err := coll.Maps["hash"].Lookup(uint32(k), &v)
		if err != nil && !errors.Is(err, waggle.ErrKeyNotExist) {
			t.Fatal(err)
		}
		if int64(v) != sent[k].Load() {
			t.Errorf("hash[%d] = %d, %d runs had that key", k, v, sent[k].Load())
		}
		hashTotal += v
		ringTotal += uint64(received[k].Load())
	}
	if hashTotal != workers*runs {
		t.Errorf("hash counts %d runs, %d ran", hashTotal, workers*runs)
	}
	if got := ringTotal + rb.Dropped(); got != workers*runs {
		t.Errorf("ring buffer: %d records + %d dropped, %d runs", ringTotal, rb.Dropped(), workers*runs)
	}
	var per []uint64
	if err := coll.Maps["percpu"].Lookup(uint32(0), &per); err != nil {
		t.Fatal(err)
	}
	for cpu, v := range per {
		if v != runs {
			t.Errorf("percpu[0] on CPU %d = %d, want %d", cpu, v, runs)
		}
	}
	n := 0
	for range coll.Maps["lru"].All() {
		n++
	}
	if n == 0 || n > 16 {
		t.Errorf("LRU holds %d entries, want 1-16", n)
	}
	t.Logf("%d runs on %d goroutines: %d ring buffer records, %d dropped, LRU %d entries", workers*runs, workers, ringTotal, rb.Dropped(), n)
}
