//go:build !linux

package kselftest

// Kernel has no kernel to load the case into outside Linux.
func (s *Suite) Kernel(c Case) Verdict {
	return Verdict{Skip: "the kernel's verifier needs Linux"}
}
