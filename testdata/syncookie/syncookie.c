// SPDX-License-Identifier: GPL-2.0
//
// syncookie calls the socket-less SYN cookie helpers on the packet's
// headers: bpf_tcp_raw_gen_syncookie_ipv4/6 with the TCP header length
// cfg.th_len (TH_LEN_DOFF: the header's own, doff*4), into out[0]; then,
// if that gave a cookie, it turns the SYN into the ACK that answers it
// (seq + 1, ack = cookie + 1, flags ACK) and checks it with
// bpf_tcp_raw_check_syncookie_ipv4/6 into out[1], and the same ACK with
// ack + 0x10000 (a forgery) into out[2]. The packet is Ethernet, then
// IPv4 (20 bytes) or IPv6 (40 bytes), then TCP, and at least 60 bytes
// from the TCP header on.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TH_LEN_DOFF 0xff

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} cfg SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __s64);
} out SEC(".maps");

static __always_inline void put(__u32 k, __s64 v)
{
	bpf_map_update_elem(&out, &k, &v, BPF_ANY);
}

SEC("xdp")
int cookie(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct tcphdr *th;
	void *ip = eth + 1;
	__u32 zero = 0, *c, len;
	__s64 r;
	int v6;

	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		v6 = 0;
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		v6 = 1;
	else
		return XDP_ABORTED;
	th = ip + (v6 ? sizeof(struct ipv6hdr) : sizeof(struct iphdr));
	if ((void *)th + 60 > end)
		return XDP_ABORTED;
	c = bpf_map_lookup_elem(&cfg, &zero);
	if (!c)
		return XDP_ABORTED;
	len = *c == TH_LEN_DOFF ? th->doff * 4 : *c;
	if (len > 60)
		return XDP_ABORTED;
	if (v6)
		r = bpf_tcp_raw_gen_syncookie_ipv6(ip, th, len);
	else
		r = bpf_tcp_raw_gen_syncookie_ipv4(ip, th, len);
	put(0, r);
	if (r < 0)
		return XDP_PASS;
	th->seq = bpf_htonl(bpf_ntohl(th->seq) + 1);
	th->ack_seq = bpf_htonl((__u32)r + 1);
	th->syn = 0;
	th->ack = 1;
	put(1, v6 ? bpf_tcp_raw_check_syncookie_ipv6(ip, th) : bpf_tcp_raw_check_syncookie_ipv4(ip, th));
	th->ack_seq = bpf_htonl((__u32)r + 1 + 0x10000);
	put(2, v6 ? bpf_tcp_raw_check_syncookie_ipv6(ip, th) : bpf_tcp_raw_check_syncookie_ipv4(ip, th));
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
