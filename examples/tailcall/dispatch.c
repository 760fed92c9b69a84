//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// dispatch parses the IPv4 protocol and tail-calls a program per protocol
// through a prog array: TCP and UDP are counted and passed, ICMP is dropped.
// A protocol without a program falls through to XDP_PASS.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

int xdp_tcp(struct xdp_md *ctx);
int xdp_udp(struct xdp_md *ctx);
int xdp_icmp(struct xdp_md *ctx);

/* The prog array is filled by the loader from this declaration, as libbpf
 * and cilium/ebpf do. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__array(values, int(struct xdp_md *));
} protocols SEC(".maps") = {
	.values = {
		[IPPROTO_ICMP] = (void *)&xdp_icmp,
		[IPPROTO_TCP] = (void *)&xdp_tcp,
		[IPPROTO_UDP] = (void *)&xdp_udp,
	},
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u64);
} seen SEC(".maps");

static __always_inline __u32 protocol_of(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return 0;
	return ip->protocol;
}

static __always_inline void count(__u32 proto)
{
	__u64 *n = bpf_map_lookup_elem(&seen, &proto);

	if (n)
		__sync_fetch_and_add(n, 1);
}

SEC("xdp")
int xdp_dispatch(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &protocols, protocol_of(ctx));
	return XDP_PASS;
}

SEC("xdp")
int xdp_tcp(struct xdp_md *ctx)
{
	count(IPPROTO_TCP);
	return XDP_PASS;
}

SEC("xdp")
int xdp_udp(struct xdp_md *ctx)
{
	count(IPPROTO_UDP);
	return XDP_PASS;
}

SEC("xdp")
int xdp_icmp(struct xdp_md *ctx)
{
	count(IPPROTO_ICMP);
	return XDP_DROP;
}

char _license[] SEC("license") = "GPL";
