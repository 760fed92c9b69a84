// Package blocklist is a bundled example: an XDP program that drops IPv4 packets from the prefixes of an LPM-trie blocklist.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package blocklist

//go:generate sh -c "clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$DOLLAR(pwd)=. -c blocklist.c -o blocklist.o"
