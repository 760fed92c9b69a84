// Package conformance owns waggle's use of the eBPF conformance suite:
// reading its test files (*.data, testdata/conformance/README.md §1 and §5)
// into their sections, the program (assembled from "-- asm" with
// asm.ParseConformance, or taken from "-- raw"), the input memory and the
// expected result or error; and running them on engines.
//
// conformance.go reads the files; runner.go runs them.
// testdata/conformance holds the suite (tests/, 313 programs) and the
// upstream runner's negative inputs (negative/), and testdata/kernel-bugs
// the cases where Linux contradicts RFC 9669, in the same format.
package conformance
