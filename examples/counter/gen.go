// Package counter is a bundled example: an XDP program that counts packets and bytes per IPv4 source in a per-CPU hash.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package counter

//go:generate sh -c "clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$DOLLAR(pwd)=. -c counter.c -o counter.o"
