package kernel

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/waggle-bpf/waggle/loader"
)

// BenchmarkNewPlan measures the spec conversion of one object: the copy of
// cilium/ebpf's spec and what waggle's loader puts into it.
func BenchmarkNewPlan(b *testing.B) {
	obj := mustLoadObject(b, "../examples/unittest/ttl_test.o", loader.Options{})
	for b.Loop() {
		if _, err := newPlan(obj, &CollectionOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzNewPlan: whatever object waggle's loader reads, converting it for
// cilium/ebpf gives a plan or an error, never a panic.
func FuzzNewPlan(f *testing.F) {
	for _, glob := range []string{"../loader/testdata/*.o", "../examples/*/*.o", "testdata/*.o"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		obj, err := loader.Load(bytes.NewReader(b), loader.Options{})
		if err != nil {
			return
		}
		names := make([]string, 0, 1)
		if len(obj.Programs) > 0 {
			names = append(names, obj.Programs[0].Name)
		}
		for _, opts := range []*CollectionOptions{{}, {Programs: names}} {
			if pl, err := newPlan(obj, opts); err == nil && len(pl.spec.Programs) != len(pl.programs) {
				t.Fatalf("%d programs in the spec, %d planned", len(pl.spec.Programs), len(pl.programs))
			}
		}
	})
}
