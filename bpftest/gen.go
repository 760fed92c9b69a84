package bpftest

// Rebuild the test object in testdata. Only needed after changing its C
// source: go test needs neither clang nor root.
//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/convention.c -o testdata/convention.o
//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/legacy.c -o testdata/legacy.o
