// Package maps owns eBPF maps in user space: every map type waggle runs,
// with Linux's semantics (update flags, errno results, max_entries,
// preallocation, value alignment), storage off the Go heap so native code
// can hold pointers into it, and safety for programs on many goroutines at
// once alongside Go-side access.
//
// A Map has two faces. The Go side (Lookup, Update, Delete, NextKey, batch
// operations) copies keys and values in and out, as the bpf syscall does.
// The program side (the Elem methods helpers call) works on raw key bytes
// and hands out the addresses of values in place, as the kernel's helpers
// do, for the CPU (worker slot) the program runs on.
package maps
