//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// blocklist is an XDP DDoS dropper: it drops IPv4 packets whose source
// address falls in a prefix of the blocklist LPM trie, and counts verdicts
// per CPU. Fill the blocklist from the command line:
//
//	waggle run examples/blocklist/blocklist.o --pcap examples/traffic/traffic.pcap \
//		--map-init examples/blocklist/blocklist.json --map-dump
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct lpm_key {
	__u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 1024);
	__type(key, struct lpm_key);
	__type(value, __u64); /* packets dropped by this prefix */
} blocklist SEC(".maps");

enum stat { STAT_PASS, STAT_DROP, STAT_NOT_IPV4, STAT_MAX };

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_MAX);
	__type(key, enum stat);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void count(enum stat stat)
{
	__u64 *n = bpf_map_lookup_elem(&stats, &stat);

	if (n)
		*n += 1;
}

SEC("xdp")
int xdp_blocklist(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct lpm_key key;
	__u64 *hits;

	if ((void *)(eth + 1) > data_end)
		return XDP_DROP;
	if (eth->h_proto != bpf_htons(ETH_P_IP)) {
		count(STAT_NOT_IPV4);
		return XDP_PASS;
	}
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > data_end)
		return XDP_DROP;

	key.prefixlen = 32;
	__builtin_memcpy(key.addr, &ip->saddr, sizeof(key.addr));
	hits = bpf_map_lookup_elem(&blocklist, &key);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		count(STAT_DROP);
		return XDP_DROP;
	}
	count(STAT_PASS);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
