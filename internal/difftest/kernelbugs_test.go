package difftest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waggle-bpf/waggle/interp"
)

// kernelBugFiles returns the programs on which Linux 6.18 contradicts RFC
// 9669: the shared ones in testdata/kernel-bugs and those the differential
// test found, in internal/difftest/testdata/kernel-bugs. Each file's header
// explains the bug.
func kernelBugFiles(tb testing.TB) []string {
	tb.Helper()
	var files []string
	for _, dir := range []string{filepath.Join("..", "..", "testdata", "kernel-bugs"), filepath.Join("testdata", "kernel-bugs")} {
		m, err := filepath.Glob(filepath.Join(dir, "*.data"))
		if err != nil {
			tb.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 4 {
		tb.Fatalf("found only %d kernel-bug files: %v", len(files), files)
	}
	return files
}

func mustReadData(tb testing.TB, path string) *dataCase {
	tb.Helper()
	text, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := parseData(string(text))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if !c.HasResult {
		tb.Fatalf("%s: no -- result", path)
	}
	return c
}

// TestKernelBugs runs the known kernel-bug programs through the interpreter
// in both modes: waggle must give RFC 9669's answer (the file's -- result),
// not Linux's. TestKernelBugs_Linux logs what the kernel returns.
func TestKernelBugs(t *testing.T) {
	for _, path := range kernelBugFiles(t) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".data"), func(t *testing.T) {
			c := mustReadData(t, path)
			for _, mode := range []interp.Mode{interp.Checked, interp.Fast} {
				p, err := interp.Load(c.Insns, interp.Options{Mode: mode})
				if err != nil {
					t.Fatal(err)
				}
				got, err := p.RunMemory(append([]byte(nil), c.Mem...))
				if err != nil {
					t.Fatalf("%s: %v", mode, err)
				}
				if got != c.Result {
					t.Errorf("%s: r0 = %#x, RFC 9669 says %#x", mode, got, c.Result)
				}
			}
		})
	}
}
