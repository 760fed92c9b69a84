// Package tcrewrite is a bundled example: a TC classifier that rewrites DNS packets to port 5353 and fixes their checksums.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package tcrewrite

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c rewrite.c -o rewrite.o
