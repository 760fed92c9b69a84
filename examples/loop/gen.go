// Package loop is a bundled example: an XDP program that scans UDP payloads for a marker with bpf_loop.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package loop

//go:generate sh -c "clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$DOLLAR(pwd)=. -c loop.c -o loop.o"
