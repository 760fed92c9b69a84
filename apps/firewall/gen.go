package firewall

//go:generate sh -c "clang-19 -O2 -g -target bpf -mcpu=v3 -I/usr/include/x86_64-linux-gnu -ffile-prefix-map=$DOLLAR(pwd)=. -c bpf/firewall.c -o bpf/firewall.o"
