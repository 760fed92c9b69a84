package conformance

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that any file gives a test or an error, and any test an
// assembled program or an error, never a panic.
func FuzzParse(f *testing.F) {
	for _, dir := range []string{suiteDir, negativeDir, bugsDir} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.data"))
		for _, file := range files {
			if b, err := os.ReadFile(file); err == nil {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		test, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		if !test.HasResult && !test.HasError {
			t.Fatal("Parse accepted a file without -- result or -- error")
		}
		_, _ = Assemble(test)
	})
}
