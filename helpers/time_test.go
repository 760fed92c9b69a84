package helpers

import "testing"

func TestKtime(t *testing.T) {
	for name, f := range map[string]Func{"ktime_get_ns": KtimeGetNs, "ktime_get_boot_ns": KtimeGetBootNs} {
		a, _ := f(nil, nil)
		b, _ := f(nil, nil)
		if a == 0 || b < a {
			t.Errorf("%s: readings %d then %d: want nonzero and monotonic", name, a, b)
		}
	}
	if _, err := Time().Lookup(IDKtimeGetNs); err != nil {
		t.Error(err)
	}
	if _, err := Time().Lookup(1); err == nil {
		t.Error("helper 1 is not a time helper")
	}
}

// BenchmarkKtimeGetNs is the cost of bpf_ktime_get_ns's clock reading.
func BenchmarkKtimeGetNs(b *testing.B) {
	for b.Loop() {
		KtimeGetNs(nil, nil)
	}
}
