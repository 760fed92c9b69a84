// Package inspect reads what is loaded in the running kernel, as bpftool
// shows it: programs (their info, translated and JIT-compiled code), maps
// (their info and elements, formatted from BTF), links (their attach
// targets), BTF (of an object or of the kernel, as C or raw types) and the
// kernel's eBPF features (program types, map types, helpers per program
// type).
//
// Every result is a plain struct with JSON tags named as bpftool's JSON
// output names them, so `waggle ... --json` and `bpftool -j ...` can be
// compared field by field; the text forms live with the command (cmd/waggle).
//
// Kernel access goes through github.com/cilium/ebpf (object ids, info,
// map iteration, pins, links, feature probes), except two fields of
// bpf_prog_info and bpf_map_info that it does not expose (the
// program's gpl_compatible bit and raw translated instructions, the map's
// BTF key and value type ids), which are read with BPF_OBJ_GET_INFO_BY_FD
// here. The formatting (instruction text, x86 disassembly, BTF as C, hex
// and JSON element input) is OS-independent; everything that needs the
// kernel is built only on Linux and fails with ErrNotSupported elsewhere.
package inspect
