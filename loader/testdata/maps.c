//go:build ignore

// Every kind of BTF map definition (.maps), with libbpf's declarative
// initialisation of a prog array and of maps of maps.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} percpu_hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} percpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 128);
	__type(key, __u64);
	__type(value, __u32);
} lru SEC(".maps");

struct lpm_key {
	__u32 prefixlen;
	__u32 addr;
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 32);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, __u32);
} lpm SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
};

struct inner inner0 SEC(".maps"), inner1 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner);
} outer_array SEC(".maps") = {
	.values = { [0] = &inner0, [1] = &inner1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [3] = &inner1 },
};

int drop(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int (void *));
} jumps SEC(".maps") = {
	.values = { [2] = (void *)&drop },
};

SEC("xdp")
int drop(struct xdp_md *ctx)
{
	return XDP_DROP;
}

SEC("xdp")
int use_maps(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 one = 1, *v;
	__u32 x = 7;

	v = bpf_map_lookup_elem(&hash, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&hash, &k, &one, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&array, &k);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(&percpu_hash, &k);
	if (v)
		*v += 1;
	v = bpf_map_lookup_elem(&percpu_array, &k);
	if (v)
		*v += 1;
	__u64 lk = ctx->ingress_ifindex;
	bpf_map_update_elem(&lru, &lk, &x, BPF_ANY);
	struct lpm_key key = {32, 0x0100007f};
	__u32 *m = bpf_map_lookup_elem(&lpm, &key);
	if (m && *m)
		return XDP_DROP;
	bpf_ringbuf_output(&events, &k, sizeof(k), 0);
	void *in = bpf_map_lookup_elem(&outer_array, &k);
	if (in) {
		__u32 *iv = bpf_map_lookup_elem(in, &k);
		if (iv)
			*iv += 1;
	}
	in = bpf_map_lookup_elem(&outer_hash, &k);
	if (in)
		bpf_map_lookup_elem(in, &k);
	bpf_tail_call(ctx, &jumps, 2);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
