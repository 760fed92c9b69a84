package difftest

import (
	"path/filepath"
	"testing"

	"github.com/waggle-bpf/waggle/internal/conformance"
	"github.com/waggle-bpf/waggle/isa"
)

// kernelBugFiles returns the programs on which Linux 6.18 contradicts RFC
// 9669, in testdata/kernel-bugs: the two known from the start and those the
// differential test found. Each file's header explains the bug. That the
// interpreter gives the RFC's answer on them is tested with the rest of the
// conformance data (internal/conformance); TestKernelBugs_Linux shows what
// the kernel does.
func kernelBugFiles(tb testing.TB) []string {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "testdata", "kernel-bugs", "*.data"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(files) < 4 {
		tb.Fatalf("found only %d kernel-bug files: %v", len(files), files)
	}
	return files
}

// bugCase is one kernel-bug program with its input and RFC 9669's answer.
type bugCase struct {
	Insns  []isa.Instruction
	Mem    []byte
	Result uint64
}

func mustReadData(tb testing.TB, path string) bugCase {
	tb.Helper()
	t, err := conformance.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if !t.HasResult {
		tb.Fatalf("%s: no -- result", path)
	}
	prog, err := conformance.Assemble(t)
	if err != nil {
		tb.Fatal(err)
	}
	return bugCase{Insns: prog, Mem: t.Mem, Result: t.Result}
}
