//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// counter counts packets and bytes per IPv4 source address in a per-CPU
// hash, and passes every packet. See the counts from the command line:
//
//	waggle run examples/counter/counter.o --pcap examples/traffic/traffic.pcap --map-dump
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u8[4]); /* IPv4 source address */
	__type(value, struct counts);
} sources SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct counts *c, init = {};
	__u32 src;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	src = ip->saddr;
	c = bpf_map_lookup_elem(&sources, &src);
	if (!c) {
		bpf_map_update_elem(&sources, &src, &init, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&sources, &src);
		if (!c)
			return XDP_PASS;
	}
	c->packets++;
	c->bytes += data_end - data;
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
