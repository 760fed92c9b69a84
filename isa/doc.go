// Package isa owns the eBPF instruction set of RFC 9669: opcodes, the 8-byte
// instruction slot, encoding and decoding, validation of reserved fields, the
// textual form llvm-objdump prints, and the arithmetic semantics every engine
// and the verifier share.
//
// A program is a []Instruction indexed by slot, exactly as the kernel indexes
// it: the 64-bit immediate load (lddw) takes two slots, and jump offsets,
// error messages and verifier logs all speak these indices.
//
// Bit layout of one slot (RFC 9669 §3, little-endian host):
//
//	 7       0 15   12 11    8 31            16 63                    32
//	+---------+-------+-------+----------------+------------------------+
//	| opcode  |  src  |  dst  |     offset     |       immediate        |
//	+---------+-------+-------+----------------+------------------------+
//	  1 byte   4 bits  4 bits     int16 LE              int32 LE
//
// isa imports no other waggle package.
package isa
