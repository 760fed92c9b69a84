package main

//go:generate clang-19 -O2 -target bpf -mcpu=v3 -ffreestanding -c testdata/plugin.c -o testdata/plugin.o
