//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// ttl_test holds unit tests, in Cilium's pktgen/setup/check convention, of
// tc_ttl: a TC program that forwards IPv4 packets with their TTL
// decremented (and the header checksum updated) and drops those whose TTL
// has run out. Run them with
//
//	waggle test examples/unittest/ttl_test.o
//
// Each test is up to three programs in sections tc/test/<name>/<stage>:
// pktgen writes the test packet into a zeroed buffer, setup runs the code
// under test on it (here by a tail call), check gets setup's verdict in
// front of the packet and writes its findings with unittest.h.
#include <stddef.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "unittest.h"

char LICENSE[] SEC("license") = "GPL";

// The code under test. The test loader places it in slot 0 of calls, as
// its decl tag says, as Cilium's loader places its tail calls.
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} calls SEC(".maps");

#define TTL_SLOT 0

__attribute__((btf_decl_tag("tail:calls/0")))
SEC("tc/tail")
int tc_ttl(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u16 *word, old;
	__u32 sum;

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	if (ip->ttl <= 1)
		return TC_ACT_SHOT;
	// RFC 1624: HC' = ~(~HC + ~m + m'), on the 16-bit word holding the TTL.
	word = (__u16 *)&ip->ttl;
	old = *word;
	ip->ttl--;
	sum = (__u16)~ip->check + (__u16)~old + *word;
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum;
	skb->mark = 0x77;
	return TC_ACT_OK;
}

// The test packet: Ethernet, IPv4 (10.0.0.1 -> 10.0.0.2), UDP 1000 -> 53,
// 4 bytes of payload.
#define PKT_LEN (sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr) + 4)

struct packet {
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;
	__u8 payload[4];
} __attribute__((packed));

static __always_inline __u16 ip_checksum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

// build_packet writes the test packet with the given TTL and trims the
// buffer to it.
static __always_inline int build_packet(struct __sk_buff *skb, __u8 ttl)
{
	struct packet p = {
		.eth = {
			.h_dest = {0x02, 0, 0, 0, 0, 0x02},
			.h_source = {0x02, 0, 0, 0, 0, 0x01},
			.h_proto = bpf_htons(ETH_P_IP),
		},
		.ip = {
			.version = 4,
			.ihl = 5,
			.tot_len = bpf_htons(PKT_LEN - sizeof(struct ethhdr)),
			.ttl = ttl,
			.protocol = IPPROTO_UDP,
			.saddr = bpf_htonl(0x0a000001),
			.daddr = bpf_htonl(0x0a000002),
		},
		.udp = {
			.source = bpf_htons(1000),
			.dest = bpf_htons(53),
			.len = bpf_htons(sizeof(struct udphdr) + 4),
		},
		.payload = {'t', 'e', 's', 't'},
	};

	struct iphdr ip = p.ip; // aligned, for the checksum

	p.ip.check = ip_checksum(&ip);
	if (bpf_skb_store_bytes(skb, 0, &p, sizeof(p), 0))
		return TEST_ERROR;
	if (bpf_skb_change_tail(skb, sizeof(p), 0))
		return TEST_ERROR;
	return 0;
}

// Test ttl_forward: a packet with TTL 64 leaves with TTL 63, a valid
// checksum and the mark set. Its check has one case per property.

SEC("tc/test/ttl_forward/pktgen")
int ttl_forward_pktgen(struct __sk_buff *skb)
{
	return build_packet(skb, 64);
}

SEC("tc/test/ttl_forward/setup")
int ttl_forward_setup(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, TTL_SLOT);
	return TEST_ERROR; // the tail call failed
}

SEC("tc/test/ttl_forward/check")
int ttl_forward_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 *verdict = data;
	struct iphdr *ip = data + sizeof(__u32) + sizeof(struct ethhdr);

	UT_INIT();
	if ((void *)(ip + 1) > data_end) {
		UT_LOG("the packet is %d bytes, too short", skb->len);
		return TEST_FAIL;
	}
	UT_BEGIN("verdict");
	UT_ASSERT(*verdict == TC_ACT_OK, "verdict %d, want TC_ACT_OK", *verdict);
	UT_ASSERT(skb->mark == 0x77, "mark %#x, want 0x77", skb->mark);
	UT_END();
	UT_BEGIN("ttl");
	UT_ASSERT(ip->ttl == 63, "TTL %d, want 63", ip->ttl);
	UT_END();
	UT_BEGIN("checksum");
	UT_ASSERT(ip_checksum(ip) == 0, "the header sums to %x, want 0", ip_checksum(ip));
	UT_END();
	return UT_DONE();
}

// Test ttl_expired: a packet with TTL 1 is dropped. Its check writes no
// record: its return value is the result.

SEC("tc/test/ttl_expired/pktgen")
int ttl_expired_pktgen(struct __sk_buff *skb)
{
	return build_packet(skb, 1);
}

SEC("tc/test/ttl_expired/setup")
int ttl_expired_setup(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &calls, TTL_SLOT);
	return TEST_ERROR;
}

SEC("tc/test/ttl_expired/check")
int ttl_expired_check(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u32 *verdict = data;

	UT_INIT();
	if ((void *)(verdict + 1) > data_end)
		return TEST_FAIL;
	UT_ASSERT(*verdict == TC_ACT_SHOT, "verdict %d, want TC_ACT_SHOT", *verdict);
	return UT_DONE();
}
