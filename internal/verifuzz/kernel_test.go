package verifuzz

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/waggle-bpf/waggle/internal/fuzzgen"
	"github.com/waggle-bpf/waggle/kernel"
)

// envUint reads a knob of the tests from the environment.
func envUint(tb testing.TB, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.ParseUint(s, 0, 64)
	if err != nil {
		tb.Fatalf("%s=%q: %v", name, s, err)
	}
	return v
}

// TestKernelVerdicts generates programs, loads each into the kernel, and
// runs those it accepts in the kernel and in the checked interpreter on
// every input, requiring the same return value, packet and maps and no
// escape. It logs the acceptance rate, the kernel's rejection messages and
// the throughput. Knobs:
//
//	WAGGLE_VFUZZ_N     programs (default 20000, 2000 with -short)
//	WAGGLE_VFUZZ_SEED  first seed (default 0)
func TestKernelVerdicts(t *testing.T) {
	if err := kernel.Supported(); err != nil {
		t.Skipf("needs the kernel to judge programs: %v", err)
	}
	def := uint64(20_000)
	if testing.Short() {
		def = 2_000
	}
	n := envUint(t, "WAGGLE_VFUZZ_N", def)
	seed := envUint(t, "WAGGLE_VFUZZ_SEED", 0)
	rep, err := Verdicts(context.Background(), seed, n, nil, Options{Config: fuzzgen.PtrConfig{MayGoto: true}})
	if rep != nil {
		t.Logf("\n%s", rep.Summary(40))
		t.Logf("variants:\n%s", rep.VariantSummary())
	}
	if err != nil {
		t.Fatal(err)
	}
}
