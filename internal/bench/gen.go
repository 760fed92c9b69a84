package bench

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -ffile-prefix-map=$PWD=. -c testdata/suite.c -o testdata/suite.o
