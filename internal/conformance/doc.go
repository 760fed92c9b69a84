// Package conformance owns the reading of the eBPF conformance suite's test
// files (*.data, testdata/conformance/README.md §1 and §5): their sections,
// the program (assembled from "-- asm" with asm.ParseConformance, or taken
// from "-- raw"), the input memory and the expected result or error.
//
// It runs nothing: engines and the differential tests take a Test from here
// and run its program. testdata/conformance holds the suite (tests/, 313
// programs) and the upstream runner's negative inputs (negative/), and
// testdata/kernel-bugs the cases where Linux contradicts RFC 9669, in the
// same format.
package conformance
