// SPDX-License-Identifier: Apache-2.0
//
// Loop-heavy XDP programs for BenchmarkInterp. They read nothing from the
// context, so the very same bytes run in the interpreter and, through
// BPF_PROG_TEST_RUN, in the kernel's JIT. Rebuild with `go generate ./interp`.

typedef unsigned char __u8;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(s) __attribute__((section(s), used))

// entry: the cost of entering and leaving a run.
SEC("xdp")
int entry(void *ctx)
{
	return 2; // XDP_PASS
}

// lcg: 64-bit multiply, shifts and xor in a counted loop.
SEC("xdp")
int lcg(void *ctx)
{
	__u64 x = 88172645463325252ULL, sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 10000; i++) {
		x = x * 6364136223846793005ULL + 1442695040888963407ULL;
		sum ^= x >> 33;
	}
	return sum & 1;
}

// memsum: 32-bit loads and stores on the stack with variable offsets, in
// nested bounded loops.
SEC("xdp")
int memsum(void *ctx)
{
	__u32 buf[64];
	__u32 x = 1, sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 64; i++) {
		x = x * 1103515245 + 12345;
		buf[i] = x;
	}
#pragma clang loop unroll(disable)
	for (__u32 r = 0; r < 16; r++) {
#pragma clang loop unroll(disable)
		for (__u32 i = 0; i < 64; i++)
			sum += buf[(i + r) & 63] ^ r;
	}
	return sum & 3;
}

// fib32: 32-bit arithmetic (alu32) and a data-dependent branch.
SEC("xdp")
int fib32(void *ctx)
{
	__u32 a = 0, b = 1, odd = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 5000; i++) {
		__u32 t = a + b;
		a = b;
		b = t;
		if (t & 1)
			odd++;
	}
	return odd & 3;
}

char _license[] SEC("license") = "GPL";
