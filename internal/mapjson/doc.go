// Package mapjson converts map elements between bytes and the JSON that
// `bpftool map dump -j` prints: each element's key and value as arrays of
// hex byte strings, and, when the map has BTF, a "formatted" object with
// the key and value typed (structs by field name, integers, enumerators by
// name, character arrays as strings), as bpftool's btf_dumper prints them.
// Per-CPU maps carry one value per CPU.
//
// The same JSON reads back into bytes, for setting map contents: what
// Format prints parses to the bytes it came from, and values may also be
// written by hand, typed or as hex. Errors name the map, the entry and the
// field that is wrong.
//
// The package depends only on cilium/ebpf's btf types, so the user-space
// runtime's CLI and the kernel backend print maps the same way.
package mapjson
