//go:build ignore

// samples/bpf style: struct bpf_map_def in SEC("maps"), 28 bytes with
// inner_map_idx and numa_node, as samples/bpf/bpf_load.c read them.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
	unsigned int inner_map_idx;
	unsigned int numa_node;
};

struct bpf_map_def SEC("maps") counts = {
	.type = BPF_MAP_TYPE_HASH,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 256,
};

struct bpf_map_def SEC("maps") stats = {
	.type = BPF_MAP_TYPE_PERCPU_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 4,
};

struct bpf_map_def SEC("maps") inner = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 1,
};

struct bpf_map_def SEC("maps") outer = {
	.type = BPF_MAP_TYPE_ARRAY_OF_MAPS,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u32),
	.max_entries = 2,
	.inner_map_idx = 2, /* inner */
};

static __attribute__((noinline)) int bump(__u32 k)
{
	__u64 one = 1, *v = bpf_map_lookup_elem(&counts, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&counts, &k, &one, BPF_ANY);
	return 0;
}

SEC("socket1")
int count_proto(struct __sk_buff *skb)
{
	__u32 k = skb->protocol;
	bump(k);
	__u32 z = 0;
	__u64 *s = bpf_map_lookup_elem(&stats, &z);
	if (s)
		*s += skb->len;
	void *in = bpf_map_lookup_elem(&outer, &z);
	if (in)
		bpf_map_lookup_elem(in, &z);
	return 0;
}

SEC("kprobe/do_unlinkat")
int on_unlink(struct pt_regs *ctx)
{
	bump(1000);
	return 0;
}

char _license[] SEC("license") = "GPL";
__u32 _version SEC("version") = 0xFFFFFFFE;
