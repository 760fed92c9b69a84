//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// filter is a socket filter that keeps IPv4 TCP segments to port 80 or 443
// (the whole packet) and drops everything else (returns 0), reading the
// headers with bpf_skb_load_bytes and the legacy packet-load instruction.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

unsigned long long load_byte(void *skb, unsigned long long off) asm("llvm.bpf.load.byte");
unsigned long long load_half(void *skb, unsigned long long off) asm("llvm.bpf.load.half");

SEC("socket")
int socket_http(struct __sk_buff *skb)
{
	struct iphdr ip;
	__u16 dport;

	if (load_half(skb, offsetof(struct ethhdr, h_proto)) != ETH_P_IP)
		return 0;
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return 0;
	if (ip.protocol != IPPROTO_TCP || ip.ihl < 5)
		return 0;
	if (load_byte(skb, ETH_HLEN + offsetof(struct iphdr, frag_off)) & 0x1f)
		return 0; /* not the first fragment */
	dport = load_half(skb, ETH_HLEN + ip.ihl * 4 + offsetof(struct tcphdr, dest));
	if (dport != 80 && dport != 443)
		return 0;
	return skb->len;
}

char _license[] SEC("license") = "GPL";
