package scalar

import (
	"math/rand/v2"
	"testing"
)

// TestTnum_Next checks Next against enumeration on small tnums.
func TestTnum_Next(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 2000 {
		mask := r.Uint64() & 0x3ff
		a := Tnum{Value: r.Uint64() & 0x3ff &^ mask, Mask: mask}
		z := r.Uint64() & 0x7ff
		want, found := uint64(0), false
		for x := z + 1; x < 0x800; x++ {
			if a.Contains(x) {
				want, found = x, true
				break
			}
		}
		got, ok := a.Next(z)
		if ok != found || ok && got != want {
			t.Fatalf("%v.Next(%#x) = %#x, %v; want %#x, %v", a, z, got, ok, want, found)
		}
	}
	if _, ok := TnumUnknown().Next(^uint64(0)); ok {
		t.Error("a number above the largest")
	}
	if got, ok := (Tnum{1 << 63, 0}).Next(5); !ok || got != 1<<63 {
		t.Errorf("Next below a constant = %#x, %v", got, ok)
	}
}
