// SPDX-License-Identifier: GPL-2.0
//
// percpu reads other CPUs' values with bpf_map_lookup_percpu_elem from a
// per-CPU array and a per-CPU hash the test fills, and writes what it
// found into out.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} pcarray SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} pchash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} out SEC(".maps");

static __always_inline void put(__u32 slot, __u64 v)
{
	bpf_map_update_elem(&out, &slot, &v, BPF_ANY);
}

static __always_inline __u64 get(void *map, __u32 key, __u32 cpu)
{
	__u64 *p = bpf_map_lookup_percpu_elem(map, &key, cpu);

	return p ? *p : 0xdead;
}

SEC("xdp")
int percpu(struct xdp_md *ctx)
{
	put(0, get(&pcarray, 0, 0));
	put(1, get(&pcarray, 0, 1));
	put(2, get(&pcarray, 1, 1));
	put(3, get(&pcarray, 2, 0));      /* past the end */
	put(4, get(&pcarray, 0, 100000)); /* no such CPU */
	put(5, get(&pchash, 7, 0));
	put(6, get(&pchash, 7, 1));
	put(7, get(&pchash, 8, 0));       /* absent */
	put(8, get(&pchash, 7, 100000));
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
