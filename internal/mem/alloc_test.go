package mem

import (
	"sync"
	"testing"
)

func TestAlloc(t *testing.T) {
	ps := PageSize()
	for _, n := range []int{1, ps - 1, ps, ps + 1, 64 << 20} {
		b, err := Alloc(n)
		if err != nil {
			t.Fatalf("Alloc(%d): %v", n, err)
		}
		if len(b) != n || cap(b)%ps != 0 || cap(b) < n {
			t.Errorf("Alloc(%d): len %d cap %d", n, len(b), cap(b))
		}
		if Addr(b)%uint64(ps) != 0 {
			t.Errorf("Alloc(%d) at %#x, not page aligned", n, Addr(b))
		}
		if b[0] != 0 || b[n-1] != 0 {
			t.Errorf("Alloc(%d) not zeroed", n)
		}
		Store64(Addr(b), 42)
		b[n-1] = 7
		if Load64(Addr(b)) != 42 && n >= 8 {
			t.Errorf("store lost")
		}
		if err := Free(b); err != nil {
			t.Errorf("Free: %v", err)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := Alloc(n); err == nil {
			t.Errorf("Alloc(%d) succeeded", n)
		}
	}
	if err := Free(nil); err != nil {
		t.Errorf("Free(nil): %v", err)
	}
}

func TestWords(t *testing.T) {
	b, err := Alloc(64)
	if err != nil {
		t.Fatal(err)
	}
	defer Free(b)
	a := Addr(b)
	AtomicStore32(a, 5)
	AtomicStore64(a+8, 1<<40)
	if AtomicLoad32(a) != 5 || AtomicLoad64(a+8) != 1<<40 {
		t.Error("atomic load/store")
	}
	if !CompareAndSwap32(a, 5, 6) || CompareAndSwap32(a, 5, 7) || AtomicLoad32(a) != 6 {
		t.Error("CompareAndSwap32")
	}
	if !CompareAndSwap64(a+8, 1<<40, 3) || CompareAndSwap64(a+8, 1<<40, 4) || AtomicLoad64(a+8) != 3 {
		t.Error("CompareAndSwap64")
	}
	w := Uint32s(b)
	if len(w) != 16 || w[0] != 6 {
		t.Errorf("Uint32s: %d words, first %d", len(w), w[0])
	}
	if Uint32s(b[1:]) != nil || Uint32s(b[:3]) != nil {
		t.Error("Uint32s accepted a misaligned or short slice")
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				for {
					old := AtomicLoad64(a + 16)
					if CompareAndSwap64(a+16, old, old+1) {
						break
					}
				}
			}
		}()
	}
	wg.Wait()
	if AtomicLoad64(a+16) != 4000 {
		t.Errorf("concurrent CAS counted %d", AtomicLoad64(a+16))
	}
}
