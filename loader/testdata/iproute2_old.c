//go:build ignore

// The first iproute2 form: the 28-byte struct bpf_elf_map (id and pinning,
// no inner_id/inner_idx), with a tail call declared as section "2/0".
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct bpf_elf_map {
	__u32 type;
	__u32 size_key;
	__u32 size_value;
	__u32 max_elem;
	__u32 flags;
	__u32 id;
	__u32 pinning;
};

struct bpf_elf_map SEC("maps") jmp = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
	.id = 2,
	.pinning = 2,
};

SEC("2/0")
int target(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

SEC("classifier")
int entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp, 0);
	return TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
