// XDP packet parsing with the bounds checks the verifier demands: Ethernet,
// IPv4 with options, UDP; a per-protocol counter in an array map and a
// blocklist in a hash map.
#include "common.h"

struct ethhdr {
	__u8 h_dest[6];
	__u8 h_source[6];
	__u16 h_proto;
} __attribute__((packed));

struct iphdr {
	__u8 ihl_version;
	__u8 tos;
	__u16 tot_len;
	__u16 id;
	__u16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__u32 saddr;
	__u32 daddr;
};

struct udphdr {
	__u16 source;
	__u16 dest;
	__u16 len;
	__u16 check;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} proto_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} blocked SEC(".maps");

SEC("xdp")
int xdp_parse(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return XDP_PASS;
	if (eth->h_proto != __builtin_bswap16(0x0800))
		return XDP_PASS;

	struct iphdr *ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	__u32 ihl = (ip->ihl_version & 0xf) * 4;
	if (ihl < sizeof(*ip))
		return XDP_DROP;

	__u32 key = ip->protocol;
	__u64 *count = bpf_map_lookup_elem(&proto_count, &key);
	if (count)
		__sync_fetch_and_add(count, 1);

	__u32 src = ip->saddr;
	__u32 *hits = bpf_map_lookup_elem(&blocked, &src);
	if (hits) {
		__sync_fetch_and_add(hits, 1);
		return XDP_DROP;
	}

	if (ip->protocol == 17) {
		struct udphdr *udp = (void *)ip + ihl;
		if ((void *)(udp + 1) > end)
			return XDP_DROP;
		if (udp->dest == __builtin_bswap16(53) && udp->len < __builtin_bswap16(12))
			return XDP_DROP;
	}
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
