//go:build ignore

// Functions without a section attribute, as PREVAIL's tests
// (vbpf/ebpf-samples) and the kernel's test_verifier-style objects are
// built: everything is in .text, and the program to run is named when it
// runs. drop_big calls is_big, a function that is a program too.
#include <linux/bpf.h>

__attribute__((noinline)) int is_big(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data > 100;
}

int drop_big(struct xdp_md *ctx)
{
	return is_big(ctx) ? XDP_DROP : XDP_PASS;
}

int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
