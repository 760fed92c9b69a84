// SPDX-License-Identifier: GPL-2.0
//
// pastend reads the packet after a bounds check: in_bounds reads the last
// byte the check proved, past_end the byte after it, which the kernel's
// verifier refuses ("invalid access to packet" / "offset is outside of the
// packet"). The checked interpreter's packet region ends at data_end, so on
// a packet that ends where the check does, past_end faults at run time.
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int in_bounds(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	return data[ETH_HLEN - 1] & 1 ? XDP_PASS : XDP_TX;
}

SEC("xdp")
int past_end(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	return data[ETH_HLEN] & 1 ? XDP_PASS : XDP_TX; /* one byte too far */
}

SEC("tc")
int tc_past_end(struct __sk_buff *skb)
{
	unsigned char *data = (void *)(long)skb->data;
	unsigned char *data_end = (void *)(long)skb->data_end;

	if (data + ETH_HLEN > data_end)
		return TC_ACT_SHOT;
	return data[ETH_HLEN] & 1 ? TC_ACT_OK : TC_ACT_SHOT; /* one byte too far */
}

char _license[] SEC("license") = "GPL";
