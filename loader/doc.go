// Package loader owns the step from a compiled eBPF object to programs waggle
// can run: it turns an ELF file, or the *ebpf.CollectionSpec that
// github.com/cilium/ebpf (and bpf2go) produce, into an Object whose programs
// are fully linked []isa.Instruction and whose maps are *ebpf.MapSpec values.
//
// # What the loader resolves and what it leaves to the runtime
//
// The loader links: each Program holds its entry function first, then every
// bpf-to-bpf subprogram it reaches, with local calls ("call pc+N") and
// function-pointer loads (PseudoFunc lddw, the callbacks of bpf_loop and
// friends) pointing at them. It does not create maps or pick addresses.
// A lddw that refers to a map becomes
//
//	lddw dst, map_idx(i)          src = isa.PseudoMapIdx,      imm = i, second imm = 0
//
// (a second imm other than 0 is kept, for the verifier to refuse as the
// kernel does)
// and a reference into global data (.data, .rodata, .bss, .data.*,
// .rodata.*, .kconfig) becomes
//
//	lddw dst, map_value(i, off)   src = isa.PseudoMapIdxValue, imm = i, second imm = off
//
// where i indexes Object.Maps. The runtime creates the maps in that order and
// patches the handles, as the kernel does for BPF_PSEUDO_MAP_IDX with an
// fd_array.
//
// # Parsing
//
// ELF objects are parsed by cilium/ebpf (shared/DESIGN.md, decision 2).
// Objects it refuses but the kernel runs (legacy "maps" sections written by
// old clang with zero-size symbols, static functions old clang left without
// a type, RELA relocation sections) are normalised in memory first, and an
// object whose only code is .text has its functions exposed as programs;
// see RATIONALE.md, "loader". A program that cannot be linked (a relocation
// that cannot be applied, a reference to a map or variable the object
// declares extern for another object to define) carries its error in
// Program.Err, naming the symbol, and does not fail the others, as the
// kernel loads each program on its own. Kernel symbols (__ksym) and the
// symbols of inline assembly are Program.Externs, left 0. Instruction bytes that no
// relocation touches are taken from the ELF section itself, never from
// cilium/ebpf's encoder, which drops the offset field of ALU instructions.
//
// Malformed input gives an error naming what is wrong, never a panic.
package loader
