//go:build ignore

// SPDX-License-Identifier: GPL-2.0
//
// reject is refused by Linux's verifier: xdp_peek reads the packet's first
// byte without checking that the packet has one. xdp_ok does the same
// after the check, and loads.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_peek(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	return data[0] == 0xff ? XDP_DROP : XDP_PASS; /* no bounds check */
}

SEC("xdp")
int xdp_ok(struct xdp_md *ctx)
{
	unsigned char *data = (void *)(long)ctx->data;
	unsigned char *end = (void *)(long)ctx->data_end;
	if (data + 1 > end)
		return XDP_PASS;
	return data[0] == 0xff ? XDP_DROP : XDP_PASS;
}

char _license[] SEC("license") = "GPL";
