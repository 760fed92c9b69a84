//go:build ignore

// iproute2/tc style: struct bpf_elf_map in SEC("maps") (36 bytes, with id,
// pinning, inner_id and inner_idx), a map of maps tied by ids, and tail calls
// declared by section names "ID/KEY" (iproute2's __section_tail).
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
	__u32 inner_id;
	__u32 inner_idx;
};

#define PIN_OBJECT_NS 1
#define PIN_GLOBAL_NS 2
#define __stringify(x) #x
#define __section_tail(ID, KEY) SEC(__stringify(ID) "/" __stringify(KEY))

struct bpf_elf_map SEC("maps") jmp_tc = {
	.type = BPF_MAP_TYPE_PROG_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 2,
	.id = 1,
	.pinning = PIN_GLOBAL_NS,
};

struct bpf_elf_map SEC("maps") map_sh = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
	.pinning = PIN_OBJECT_NS,
};

struct bpf_elf_map SEC("maps") map_inner = {
	.type = BPF_MAP_TYPE_ARRAY,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 1,
	.id = 42,
	.inner_idx = 1,
};

struct bpf_elf_map SEC("maps") map_outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.size_key = sizeof(__u32),
	.size_value = sizeof(__u32),
	.max_elem = 2,
	.inner_id = 42,
};

__section_tail(1, 0)
int cls_case1(struct __sk_buff *skb)
{
	__u32 k = 0, *v = bpf_map_lookup_elem(&map_sh, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	return TC_ACT_OK;
}

__section_tail(1, 1)
int cls_case2(struct __sk_buff *skb)
{
	__u32 k = 1;
	void *in = bpf_map_lookup_elem(&map_outer, &k);
	if (in) {
		k = 0;
		__u32 *v = bpf_map_lookup_elem(in, &k);
		if (v)
			return *v;
	}
	return TC_ACT_SHOT;
}

SEC("classifier")
int cls_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jmp_tc, skb->hash & 1);
	return TC_ACT_OK;
}

SEC("ingress")
int ing(struct __sk_buff *skb)
{
	return skb->mark ? TC_ACT_SHOT : TC_ACT_OK;
}

char __license[] SEC("license") = "GPL";
