package interp

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -c testdata/bench/bench.c -o testdata/bench/bench.o
