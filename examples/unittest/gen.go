// Package unittest is a bundled example: unit tests of a TC program in
// Cilium's pktgen/setup/check convention, which `waggle test` runs.
// The object file is committed next to its C source; clang is needed only
// to rebuild it (go generate).
package unittest

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c ttl_test.c -o ttl_test.o
