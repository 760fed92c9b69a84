// Package sockfilter is a bundled example: a socket filter that keeps TCP segments to ports 80 and 443, reading headers relative to the network header.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package sockfilter

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c filter.c -o filter.o
