//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// rewrite is a TC classifier that redirects DNS: it rewrites the
// destination port of IPv4 UDP packets from 53 to 5353 and sets the IP TTL
// to 64, fixing the UDP and IP checksums with the kernel's incremental
// checksum helpers. Every packet is let through (TC_ACT_OK); rewritten
// packets get skb->mark 0x53.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IP_OFF ETH_HLEN
#define TTL_OFF (IP_OFF + offsetof(struct iphdr, ttl))
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define UDP_OFF (IP_OFF + sizeof(struct iphdr))
#define DPORT_OFF (UDP_OFF + offsetof(struct udphdr, dest))
#define UDP_CSUM_OFF (UDP_OFF + offsetof(struct udphdr, check))

SEC("tc")
int tc_rewrite(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__be16 new_port = bpf_htons(5353), old_port;
	__u16 old_ttl, new_ttl;

	if ((void *)(udp + 1) > data_end)
		return TC_ACT_OK;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	if (udp->dest != bpf_htons(53))
		return TC_ACT_OK;

	old_port = udp->dest;
	old_ttl = bpf_htons(ip->ttl << 8 | ip->protocol);
	new_ttl = bpf_htons(64 << 8 | ip->protocol);

	/* The port is covered by the UDP checksum only. */
	bpf_l4_csum_replace(skb, UDP_CSUM_OFF, old_port, new_port, sizeof(new_port));
	bpf_skb_store_bytes(skb, DPORT_OFF, &new_port, sizeof(new_port), 0);

	/* The TTL is covered by the IP header checksum only. */
	bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_ttl, new_ttl, 2);
	bpf_skb_store_bytes(skb, TTL_OFF, &new_ttl, 1, 0);

	skb->mark = 0x53;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
