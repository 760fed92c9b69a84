//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// filter is a socket filter that keeps IPv4 TCP segments to port 80 or 443
// (the whole packet) and drops everything else (returns 0). It reads the
// headers relative to the network header with bpf_skb_load_bytes_relative,
// so it works wherever the socket buffer's data starts: at the Ethernet
// header on a packet socket, at the IP header on an inet socket or in
// BPF_PROG_TEST_RUN.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

SEC("socket")
int socket_http(struct __sk_buff *skb)
{
	struct iphdr ip;
	__be16 dport;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes_relative(skb, 0, &ip, sizeof(ip), BPF_HDR_START_NET) < 0)
		return 0;
	if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
		return 0;
	if (ip.frag_off & bpf_htons(0x1fff))
		return 0; /* not the first fragment */
	if (bpf_skb_load_bytes_relative(skb, ip.ihl * 4 + offsetof(struct tcphdr, dest),
					&dport, sizeof(dport), BPF_HDR_START_NET) < 0)
		return 0;
	if (dport != bpf_htons(80) && dport != bpf_htons(443))
		return 0;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
