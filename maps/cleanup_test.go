package maps

import (
	"runtime"
	"testing"
	"time"
)

// TestCleanup: a map dropped without Close is unmapped by its cleanup, and
// Close stops the cleanup (no double unmap).
func TestCleanup(t *testing.T) {
	freed := make(chan struct{})
	func() {
		m, err := New(Spec{Type: Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		runtime.AddCleanup(m.(*arrayMap), func(ch chan struct{}) { close(ch) }, freed)
	}()
	for i := 0; i < 100; i++ {
		runtime.GC()
		select {
		case <-freed:
			return
		default:
			time.Sleep(time.Millisecond)
		}
	}
	t.Fatal("an unreachable map was never cleaned up")
}

func TestCleanupAfterClose(t *testing.T) {
	for range 100 {
		m, err := New(Spec{Type: Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Close(); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.GC()
}
