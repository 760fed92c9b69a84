//go:build ignore

// bpf-to-bpf calls: global and static functions in .text, a static function
// in a program section, a program that calls a function of its own section,
// and bpf_loop callbacks (function pointers).
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

static __attribute__((noinline)) int twice(int x)
{
	return x * 2;
}

__attribute__((noinline)) int add3(int a, int b, int c)
{
	return twice(a) + b + c;
}

static __attribute__((noinline)) int square(int x)
{
	return x * x;
}

struct loop_ctx {
	int sum;
};

static int step(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	c->sum += square(i);
	return 0;
}

static int step2(__u32 i, void *data)
{
	struct loop_ctx *c = data;
	c->sum += twice(i);
	return i > 3;
}

static __attribute__((noinline, section("xdp"))) int local_helper(struct xdp_md *ctx)
{
	return ctx->data_end - ctx->data > 64;
}

SEC("xdp")
int calls(struct xdp_md *ctx)
{
	int r = add3(ctx->ingress_ifindex, 2, 3);
	if (local_helper(ctx))
		r += 1;
	return r & 3;
}

SEC("xdp")
int loops(struct xdp_md *ctx)
{
	struct loop_ctx c = {0};
	bpf_loop(8, step, &c, 0);
	bpf_loop(8, step2, &c, 0);
	return c.sum & 3;
}

SEC("tc")
__attribute__((noinline)) int tc_twice(struct __sk_buff *skb)
{
	return twice(skb->len) & 1;
}

SEC("tc")
int tc_main(struct __sk_buff *skb)
{
	return tc_twice(skb) + 1;
}

char LICENSE[] SEC("license") = "GPL";
