//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// loop uses bpf_loop to scan the payload of UDP packets for a marker byte
// sequence ("WAGGLE") and drops the packets that carry it; it counts the
// payload bytes it scanned in a global. The marker is a const volatile
// global, set before the run as libbpf's skeletons set .rodata:
//
//	waggle run examples/loop/loop.o --pcap examples/traffic/traffic.pcap \
//		--map-init examples/loop/marker.json --map-dump
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_SCAN 256

__u64 scanned = 0;
const volatile char marker[6] = "WAGGLE";

struct scan {
	struct xdp_md *ctx;
	__u32 off;   /* payload offset from data */
	__u32 found;
};

static long scan_one(__u32 i, struct scan *s)
{
	void *data = (void *)(long)s->ctx->data;
	void *data_end = (void *)(long)s->ctx->data_end;
	__u8 *p = data + s->off + i;

	if (s->off > 1500 || i > MAX_SCAN)
		return 1;
	if ((void *)(p + sizeof(marker)) > data_end)
		return 1;
	__sync_fetch_and_add(&scanned, 1);
	if (p[0] == marker[0] && p[1] == marker[1] && p[2] == marker[2] &&
	    p[3] == marker[3] && p[4] == marker[4] && p[5] == marker[5]) {
		s->found = 1;
		return 1;
	}
	return 0;
}

SEC("xdp")
int xdp_marker(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct scan s = { .ctx = ctx };

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	s.off = (void *)(udp + 1) - data;
	bpf_loop(MAX_SCAN, scan_one, &s, 0);
	return s.found ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
