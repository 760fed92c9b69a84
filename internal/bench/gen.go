package bench

//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -ffile-prefix-map=$PWD=. -c testdata/suite.c -o testdata/suite.o
//go:generate clang-19 -O2 -g -target bpf -mcpu=v3 -Wall -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$PWD=. -c testdata/extra.c -o testdata/extra.o
