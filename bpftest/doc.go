// Package bpftest runs BPF unit tests written in Cilium's pktgen/setup/check
// convention, in user space (waggle's runtime, no privileges) or in the
// kernel (BPF_PROG_TEST_RUN), so that the unit tests of a datapath run in
// plain CI, without root, and can be compared with the kernel's verdicts.
//
// # The convention
//
// A test NAME is up to three programs of one object, in sections
// "<type>/test/NAME/pktgen", ".../setup" and ".../check", where type is tc
// or xdp; only check is required:
//
//   - pktgen runs on a zeroed buffer of PacketSize bytes and writes the test
//     packet (usually trimming the buffer to it);
//   - setup runs on that packet, usually by tail-calling into the code under
//     test, and returns the verdict;
//   - check runs on setup's packet with setup's 32-bit return value in
//     front of it (host byte order), asserts, writes a protobuf SuiteResult
//     (Cilium's bpf/tests/bpftest/trf.proto) into element 0 of the array
//     ResultMap, and returns a Status: 100 error, 101 pass, 102 fail, 103
//     skip.
//
// tc stages get and return a ContextSize-byte __sk_buff, carried from stage
// to stage; XDP stages get no context. A SuiteResult holds one record per
// TEST() block (a name, a status, log messages) and messages written outside
// them. Each record is a Case; a check without records is a Case itself.
//
// The tests of one object run in name order in one loaded instance, so map
// contents carry over from test to test; element 0 of ResultMap and MetaMap
// is zeroed before each test.
//
// # Loading as Cilium loads
//
// Programs in "*/tail" sections are tail calls. Each is placed in the prog
// array and slot that its BTF decl tag names,
// __attribute__((btf_decl_tag("tail:cilium_calls/5"))), and left out when no
// test or entry point reaches it through a tail call (Object.Tails,
// Object.Dropped). Prog arrays declared with contents are filled from their
// declarations, as cilium/ebpf and libbpf fill them.
//
// # Older releases
//
// Cilium's tests before 1.19 numbered statuses 0 (error) to 3 (skip):
// Options.LegacyStatus reads them so. Until 1.17 tail calls sat in
// sections "ID/KEY", placed at slot KEY of the prog array whose iproute2
// definition (struct bpf_elf_map in a "maps" section) has that id; Open
// places them so, and gives the programs whose section names no type the
// tests' type. From 1.13 to 1.17 configuration was read as the address of
// a variable that Cilium's loader turned into its value:
// Object.InlineGlobalData does that. The tests of releases from 2022 to
// 2025 run this way (TestCiliumReleases).
//
// # Engines
//
// Interp runs the object in a waggle.Collection; Kernel loads it with
// cilium/ebpf and runs it with BPF_PROG_TEST_RUN (root). Both sit behind the
// Engine interface, so a test suite runs unchanged in both and their Cases
// can be compared one by one.
//
// examples/unittest holds a small test in this convention with unittest.h, a
// header that writes the results without Cilium's headers; `waggle test`
// runs objects from the command line.
package bpftest
