package interp

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -ffile-prefix-map=$PWD=. -c testdata/bench/bench.c -o testdata/bench/bench.o
