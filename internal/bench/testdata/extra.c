// SPDX-License-Identifier: Apache-2.0
//
// The rest of the programs `waggle bench` measures: those that need the
// kernel's headers (packet parsing, bpf_loop, may_goto) or large map
// values, beside suite.c's self-contained ones. Each is an XDP program
// the kernel verifier accepts, so the very same bytes run in waggle and,
// through BPF_PROG_TEST_RUN, in the kernel's JIT. The packets the
// packet programs read and the map entries the firewall looks up come
// from internal/bench (extra.go), the same in waggle and in the kernel.
// Rebuild with `go generate ./internal/bench`.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// sieve: the sieve of Eratosthenes over 2048 numbers, one bit each on the
// stack; returns the count of primes below 2048 (309) modulo 4.
#define SIEVE_N 2048

SEC("xdp")
int sieve(struct xdp_md *ctx)
{
	__u64 bits[SIEVE_N / 64];
	__u32 count = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < SIEVE_N / 64; i++)
		bits[i] = 0;
#pragma clang loop unroll(disable)
	for (__u32 i = 2; i * i < SIEVE_N; i++) {
		if (bits[i >> 6] & (1ULL << (i & 63)))
			continue;
#pragma clang loop unroll(disable)
		for (__u32 j = i * i; j < SIEVE_N; j += i)
			bits[(j >> 6) & (SIEVE_N / 64 - 1)] |= 1ULL << (j & 63);
	}
#pragma clang loop unroll(disable)
	for (__u32 i = 2; i < SIEVE_N; i++)
		if (!(bits[i >> 6] & (1ULL << (i & 63))))
			count++;
	return count & 3;
}

// memcpy_1m: copies 1 MiB from one value of the array map "big" to the
// other, in 1024 chunks of 1 KiB, each an unrolled run of 128 8-byte loads
// and stores. A 1 MiB value is within the kernel's limit for an array's
// value (KMALLOC_MAX_SIZE); chunking keeps what the kernel verifier walks
// (every iteration of a bounded loop) far below its million instructions.
#define BIG (1 << 20)
#define CHUNK 1024

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__uint(value_size, BIG);
} big SEC(".maps");

SEC("xdp")
int memcpy_1m(struct xdp_md *ctx)
{
	__u32 k0 = 0, k1 = 1;
	__u64 *src = bpf_map_lookup_elem(&big, &k0);
	__u64 *dst = bpf_map_lookup_elem(&big, &k1);

	if (!src || !dst)
		return 0;
#pragma clang loop unroll(disable)
	for (__u32 c = 0; c < BIG / CHUNK; c++) {
		__u64 *s = src + c * (CHUNK / 8), *d = dst + c * (CHUNK / 8);

#pragma clang loop unroll(full)
		for (__u32 i = 0; i < CHUNK / 8; i++)
			d[i] = s[i];
	}
	return 2 + (dst[BIG / 8 - 1] == src[BIG / 8 - 1]);
}

// switch64: a switch of 64 cases, each doing something different so that
// clang keeps the branches (eBPF has no indirect jump, so no jump table).
#define C(n, stmt) \
	case n:    \
		stmt;  \
		break;

SEC("xdp")
int switch64(struct xdp_md *ctx)
{
	__u32 x = 1, sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 2000; i++) {
		x = x * 1103515245 + 12345;
		switch ((x >> 16) & 63) {
		C(0, sum += 3) C(1, sum ^= 5) C(2, sum += x) C(3, sum -= 7)
		C(4, sum <<= 1) C(5, sum >>= 1) C(6, sum += 11) C(7, sum ^= x)
		C(8, sum += 13) C(9, sum |= 1) C(10, sum &= ~1u) C(11, sum += 17)
		C(12, sum -= x) C(13, sum += 19) C(14, sum ^= 23) C(15, sum += 29)
		C(16, sum += 31) C(17, sum ^= 37) C(18, sum += x >> 3) C(19, sum -= 41)
		C(20, sum <<= 2) C(21, sum >>= 2) C(22, sum += 43) C(23, sum ^= x >> 5)
		C(24, sum += 47) C(25, sum |= 2) C(26, sum &= ~2u) C(27, sum += 53)
		C(28, sum -= x >> 7) C(29, sum += 59) C(30, sum ^= 61) C(31, sum += 67)
		C(32, sum += 71) C(33, sum ^= 73) C(34, sum += x >> 9) C(35, sum -= 79)
		C(36, sum <<= 3) C(37, sum >>= 3) C(38, sum += 83) C(39, sum ^= x >> 11)
		C(40, sum += 89) C(41, sum |= 4) C(42, sum &= ~4u) C(43, sum += 97)
		C(44, sum -= x >> 13) C(45, sum += 101) C(46, sum ^= 103) C(47, sum += 107)
		C(48, sum += 109) C(49, sum ^= 113) C(50, sum += x >> 15) C(51, sum -= 127)
		C(52, sum *= 3) C(53, sum >>= 4) C(54, sum += 131) C(55, sum ^= x >> 17)
		C(56, sum += 137) C(57, sum |= 8) C(58, sum &= ~8u) C(59, sum += 139)
		C(60, sum -= x >> 19) C(61, sum += 149) C(62, sum ^= 151)
		default: sum += 157; break;
		}
	}
	return sum & 3;
}

// checksum: the Internet checksum (RFC 1071) of the packet, 16 bits at a
// time, up to 1500 bytes; returns XDP_PASS if the folded sum is nonzero.
SEC("xdp")
int checksum(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u64 sum = 0;

#pragma clang loop unroll(disable)
	for (__u32 i = 0; i < 1500 / 2; i++) {
		__u16 *p = data + 2 * i;

		if ((void *)(p + 1) > end)
			break;
		sum += *p;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum ? XDP_PASS : XDP_DROP;
}

// xdp_firewall: parses Ethernet, at most one VLAN tag (802.1Q or 802.1ad),
// IPv4 or IPv6 and the TCP or UDP ports, then looks the source address up
// in the hash map "blocklist". A rule blocks every port (port 0) or one
// destination port; a packet it blocks is dropped and counted in the rule's
// slot of the per-CPU array "hits".
struct vlan {
	__be16 tci;
	__be16 proto;
};

struct src_key {
	__u8 family; // 4 or 6
	__u8 pad[3];
	__u8 addr[16]; // an IPv4 address in its first 4 bytes
};

struct rule {
	__u32 id; // the rule's slot in hits
	__u16 port; // host order; 0 for every port
	__u8 proto; // IPPROTO_TCP, IPPROTO_UDP, or 0 for both
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct src_key);
	__type(value, struct rule);
} blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("xdp")
int xdp_firewall(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct src_key key = {};
	void *l4;
	__u16 proto;
	__u8 l4proto;

	if ((void *)(eth + 1) > end)
		return XDP_DROP;
	proto = eth->h_proto;
	l4 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan *v = l4;

		if ((void *)(v + 1) > end)
			return XDP_DROP;
		proto = v->proto;
		l4 = v + 1;
	}
	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l4;

		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return XDP_DROP;
		key.family = 4;
		__builtin_memcpy(key.addr, &ip->saddr, 4);
		l4proto = ip->protocol;
		l4 += ip->ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l4;

		if ((void *)(ip6 + 1) > end)
			return XDP_DROP;
		key.family = 6;
		__builtin_memcpy(key.addr, &ip6->saddr, 16);
		l4proto = ip6->nexthdr;
		l4 = ip6 + 1;
	} else {
		return XDP_PASS;
	}

	__u16 dport = 0;
	if (l4proto == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > end)
			return XDP_DROP;
		dport = bpf_ntohs(tcp->dest);
	} else if (l4proto == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > end)
			return XDP_DROP;
		dport = bpf_ntohs(udp->dest);
	}

	struct rule *r = bpf_map_lookup_elem(&blocklist, &key);
	if (!r || (r->port && r->port != dport) || (r->proto && r->proto != l4proto))
		return XDP_PASS;
	__u32 id = r->id;
	__u64 *n = bpf_map_lookup_elem(&hits, &id);
	if (n)
		*n += 1;
	return XDP_DROP;
}

// bpf_loop: 1000 calls of a callback that mixes its index into a hash
// (FNV-1a over the index's four bytes).
struct fnv {
	__u32 h;
};

static long fnv_step(__u64 index, void *ctx)
{
	struct fnv *f = ctx;
	__u32 h = f->h;

	h = (h ^ (index & 0xff)) * 16777619;
	h = (h ^ ((index >> 8) & 0xff)) * 16777619;
	h = (h ^ ((index >> 16) & 0xff)) * 16777619;
	h = (h ^ ((index >> 24) & 0xff)) * 16777619;
	f->h = h;
	return 0;
}

SEC("xdp")
int bpf_loop_(struct xdp_md *ctx)
{
	struct fnv f = {.h = 2166136261u};

	bpf_loop(1000, fnv_step, &f, 0);
	return f.h & 3;
}

// can_loop: a loop whose bound the verifier cannot know (64 rounds per
// byte of the packet: 4096 for the suite's 64-byte packet), so only
// may_goto lets it through: can_loop is libbpf's (bpf_experimental.h),
// with clang 19's may_goto mnemonic.
#define can_loop                                            \
	({                                                  \
		__label__ spent, more;                      \
		int ok_ = 1;                                \
		asm volatile goto("may_goto %l[spent]" :::: spent); \
		goto more;                                  \
	spent:                                              \
		ok_ = 0;                                    \
	more:                                               \
		ok_;                                        \
	})

SEC("xdp")
int can_loop_(struct xdp_md *ctx)
{
	__u64 n = (__u64)(ctx->data_end - ctx->data) * 64;
	__u64 x = 88172645463325252ULL, sum = 0;

	for (__u64 i = 0; i < n && can_loop; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		sum += x >> 60;
	}
	return sum & 3;
}

char _license[] SEC("license") = "GPL";
