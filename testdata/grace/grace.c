// SPDX-License-Identifier: GPL-2.0
//
// grace looks an address up in an LPM trie, spends a while, and reads the
// value again: the value names its prefix (prefix length << 32 | address),
// and it must still name a prefix of the address, the same one, however
// the trie changed meanwhile. In Linux the run is an RCU read-side section
// and the trie frees nodes after a grace period; waggle's runs hold their
// tries the same way.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct key {
	__u32 prefixlen;
	__u32 addr; // network order
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 64);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct key);
	__type(value, __u64);
} prefixes SEC(".maps");

static long spend(__u32 i, void *ctx)
{
	return 0;
}

// matches reports whether v names a prefix of addr (host order).
static __always_inline int matches(__u64 v, __u32 addr)
{
	__u32 plen = v >> 32, p = v;

	if (plen == 0 || plen > 32)
		return 0;
	return ((addr ^ p) >> (32 - plen)) == 0;
}

SEC("xdp")
int reader(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct key k = {.prefixlen = 32};
	__u64 *v, first;
	__u32 addr;

	if (data + 18 > end)
		return 0;
	k.addr = *(__u32 *)(data + 14);
	addr = __builtin_bswap32(k.addr);
	v = bpf_map_lookup_elem(&prefixes, &k);
	if (!v)
		return 1;
	first = *v;
	bpf_loop(1000, spend, 0, 0);
	if (*v != first || !matches(first, addr))
		return 3;
	return 2;
}

char _license[] SEC("license") = "GPL";
