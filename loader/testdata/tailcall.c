//go:build ignore

// A tail-call dispatcher: a prog array filled declaratively, entered from a
// socket filter. Built for -mcpu=v2.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

int small(struct __sk_buff *skb);
int large(struct __sk_buff *skb);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(__u32));
	__array(values, int (void *));
} dispatch SEC(".maps") = {
	.values = {
		[0] = (void *)&small,
		[5] = (void *)&large,
	},
};

SEC("socket")
int small(struct __sk_buff *skb)
{
	return 1;
}

SEC("socket")
int large(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("socket")
int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &dispatch, skb->len > 100 ? 5 : 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
