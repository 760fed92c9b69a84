// Package checksum holds a bundled example: an eBPF program, written in C and
// built with clang, that computes the Internet checksum of its input memory.
// The object file is committed; clang is needed only to rebuild it.
package checksum

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -ffile-prefix-map=$PWD=. -c checksum.c -o checksum.o
