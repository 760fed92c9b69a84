// Package events is a bundled example: an XDP program that emits a ring-buffer record per IPv4 packet.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package events

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c events.c -o events.o
