// SPDX-License-Identifier: GPL-2.0
//
// tstamp sets the packet's time with bpf_skb_set_tstamp on the clock
// cb[0] names and the time in cb[1] (seconds, so that 0 is possible) and
// cb[2] (nanoseconds), and returns the helper's answer in cb[0] and the
// tstamp_type it reads back in cb[1]; tstamp goes back in ctx_out.
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int set_tstamp(struct __sk_buff *skb)
{
	__u64 t = (__u64)skb->cb[1] * 1000000000ULL + skb->cb[2];
	long ret = bpf_skb_set_tstamp(skb, t, skb->cb[0]);

	skb->cb[0] = ret;
	skb->cb[1] = skb->tstamp_type;
	skb->cb[2] = skb->tstamp >> 32;
	skb->cb[3] = skb->tstamp;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
