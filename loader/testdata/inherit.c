//go:build ignore

// Program types through tail calls. entry (SEC "xdp") tail-calls, through
// the declaratively filled prog array level1, tail_a in section "tail-1",
// which libbpf does not know; tail_a tail-calls tail_b ("tail-2") through
// level2. Both take entry's type, as a loader that fills a prog array gives
// its targets the array owner's type. orphan ("tail-9") is in a prog array
// only lonely_caller (section "lonely_sec"), an untyped program, refers to: neither gets a type. torn
// ("tail-3") is in prog arrays of an XDP and a socket filter program:
// it gets neither type.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int tail_a(struct xdp_md *ctx);
int tail_b(struct xdp_md *ctx);
int orphan(struct xdp_md *ctx);
int torn(void *ctx);

#define PROG_ARRAY(NAME, ...)                          \
	struct {                                       \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY); \
		__uint(max_entries, 4);                \
		__uint(key_size, sizeof(__u32));       \
		__array(values, int(void *));          \
	} NAME SEC(".maps") = { .values = { __VA_ARGS__ } }

PROG_ARRAY(level1, [0] = (void *)&tail_a, [1] = (void *)&torn);
PROG_ARRAY(level2, [0] = (void *)&tail_b);
PROG_ARRAY(lonely, [0] = (void *)&orphan);
PROG_ARRAY(sockets, [0] = (void *)&torn);

SEC("xdp")
int entry(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &level1, ctx->rx_queue_index & 1);
	return XDP_PASS;
}

SEC("tail-1")
int tail_a(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &level2, 0);
	return XDP_ABORTED;
}

SEC("tail-2")
int tail_b(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("tail-9")
int orphan(struct xdp_md *ctx)
{
	return XDP_TX;
}

SEC("lonely_sec")
int lonely_caller(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, &lonely, 0);
	return XDP_PASS;
}

SEC("tail-3")
int torn(void *ctx)
{
	return 0;
}

SEC("socket")
int sock(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &sockets, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
