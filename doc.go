// Package waggle runs eBPF programs in user space: it loads clang-built
// objects (or a *ebpf.CollectionSpec from cilium/ebpf, as bpf2go makes)
// into a Collection of Programs and Maps with the same shape as
// cilium/ebpf's, so code that tests programs with BPF_PROG_TEST_RUN runs
// them here unchanged, without root and without Linux.
//
//	coll, err := waggle.LoadCollection("xdp.o", nil)
//	...
//	ret, err := coll.Programs["xdp_prog"].Run(&waggle.RunOptions{Data: packet, DataOut: out})
//
// Programs keep Linux's semantics: XDP and TC return codes, adjust_head and
// adjust_tail reflected in DataOut, maps with the kernel's update flags and
// errno results, per-CPU values per worker, tail calls through prog arrays.
// Until waggle's verifier lands, programs run in the interpreter's checked
// mode, which confines every memory access to the memory the run owns.
package waggle
