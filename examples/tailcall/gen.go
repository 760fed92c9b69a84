// Package tailcall is a bundled example: an XDP dispatcher that tail-calls one program per IPv4 protocol.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package tailcall

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c dispatch.c -o dispatch.o
