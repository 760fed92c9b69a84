// SPDX-License-Identifier: Apache-2.0
//
// The programs `waggle bench` measures on every engine and in the kernel:
// the interpreter's loop benchmarks (interp/testdata/bench/bench.c), the
// classic eBPF VM benchmarks (prime, memcpy, strcmp, log2, switch, as
// uBPF's and rbpf's suites have them) and helper-heavy ones (array and
// hash map lookups). Each is an XDP program that reads nothing from its
// context, so the very same bytes run in waggle and, through
// BPF_PROG_TEST_RUN, in the kernel's JIT. The suite's programs that need
// the kernel's headers, packets or map entries are in extra.c. Rebuild
// with `go generate ./internal/bench`.

#include "../../../interp/testdata/bench/bench.c"

#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;

// prime: trial division, so mostly div and mod.
SEC("xdp")
int prime(void *ctx)
{
	__u32 count = 0;

#pragma clang loop unroll(disable)
	for (__u32 n = 2; n < 400; n++) {
		__u32 is = 1;
#pragma clang loop unroll(disable)
		for (__u32 d = 2; d * d <= n && d < 20; d++) {
			if (n % d == 0) {
				is = 0;
				break;
			}
		}
		count += is;
	}
	return count & 3;
}

// memcpy: byte copies between stack buffers.
SEC("xdp")
int memcpy_(void *ctx)
{
	__u8 a[128], b[128];
	__u32 sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 128; i++)
		a[i] = i * 7;
#pragma clang loop unroll(disable)
	for (__u32 r = 0; r < 8; r++) {
#pragma clang loop unroll(disable)
		for (__u32 i = 0; i < 128; i++)
			b[(i + r) & 127] = a[i];
		sum += b[r];
	}
	return sum & 3;
}

// strcmp: byte loads and an early-exit compare, over strings on the
// stack that differ late.
SEC("xdp")
int strcmp_(void *ctx)
{
	char s[64], t[64];
	__u32 diff = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 63; i++) {
		s[i] = 'a' + (i % 26);
		t[i] = 'a' + (i % 26);
	}
	s[63] = t[63] = 0;
	t[60] = 'Z';
#pragma clang loop unroll(disable)
	for (__u32 r = 0; r < 16; r++) {
		__u32 i = 0;
#pragma clang loop unroll(disable)
		for (; i < 64; i++) {
			if (s[i] != t[i] || s[i] == 0)
				break;
		}
		diff += i;
	}
	return diff & 3;
}

// log2: shifts and compares, a branch per bit.
SEC("xdp")
int log2_(void *ctx)
{
	__u64 x = 0x123456789abcdefULL, sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 1000; i++) {
		__u64 v = x, r = 0;
		if (v >> 32) { v >>= 32; r += 32; }
		if (v >> 16) { v >>= 16; r += 16; }
		if (v >> 8) { v >>= 8; r += 8; }
		if (v >> 4) { v >>= 4; r += 4; }
		if (v >> 2) { v >>= 2; r += 2; }
		if (v >> 1) { r += 1; }
		sum += r;
		x = x * 6364136223846793005ULL + 1;
	}
	return sum & 3;
}

// switch: a switch of 16 cases, which clang turns into a tree of
// compares (eBPF has no indirect jump).
SEC("xdp")
int switch_(void *ctx)
{
	__u32 x = 1, sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 2000; i++) {
		x = x * 1103515245 + 12345;
		switch ((x >> 16) & 15) {
		case 0: sum += 3; break;
		case 1: sum ^= 5; break;
		case 2: sum += x; break;
		case 3: sum -= 7; break;
		case 4: sum <<= 1; break;
		case 5: sum >>= 1; break;
		case 6: sum += 11; break;
		case 7: sum ^= x; break;
		case 8: sum += 13; break;
		case 9: sum |= 1; break;
		case 10: sum &= ~1u; break;
		case 11: sum += 17; break;
		case 12: sum -= x; break;
		case 13: sum += 19; break;
		case 14: sum ^= 23; break;
		default: sum += 29; break;
		}
	}
	return sum & 3;
}

struct {
	__uint(type, 2 /* BPF_MAP_TYPE_ARRAY */);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

struct {
	__uint(type, 1 /* BPF_MAP_TYPE_HASH */);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

// array_lookup: bpf_map_lookup_elem on an array, 100 times.
SEC("xdp")
int array_lookup(void *ctx)
{
	__u64 sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 100; i++) {
		__u32 k = i & 15;
		__u64 *v = bpf_map_lookup_elem(&array, &k);
		if (v)
			sum += *v + 1;
	}
	return sum & 3;
}

// hash_lookup: bpf_map_lookup_elem on a hash (empty: every lookup
// misses after hashing the key), 100 times.
SEC("xdp")
int hash_lookup(void *ctx)
{
	__u64 sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 100; i++) {
		__u32 k = i & 15;
		__u64 *v = bpf_map_lookup_elem(&hash, &k);
		if (v)
			sum += *v;
		else
			sum++;
	}
	return sum & 3;
}
