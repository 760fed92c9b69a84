// SPDX-License-Identifier: GPL-2.0
//
// hammer updates shared maps from many runs at once: a hash and an LRU hash
// keyed by the packet's first byte, a per-CPU counter, and a ring buffer
// record per run. The hammer test runs it on many goroutines while Go reads
// the maps.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} hash SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} lru SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 16);
} events SEC(".maps");

SEC("xdp")
int hammer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 *p = data;
	__u32 key, zero = 0;
	__u64 one = 1, *v;

	if ((void *)(p + 1) > data_end)
		return XDP_ABORTED;
	key = *p;

	v = bpf_map_lookup_elem(&hash, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	else if (bpf_map_update_elem(&hash, &key, &one, BPF_NOEXIST))
		if ((v = bpf_map_lookup_elem(&hash, &key)))
			__sync_fetch_and_add(v, 1);

	bpf_map_update_elem(&lru, &key, &one, BPF_ANY);

	v = bpf_map_lookup_elem(&percpu, &zero);
	if (v)
		*v += 1; /* per CPU: no other run touches this slot */
	else
		bpf_map_update_elem(&percpu, &zero, &one, BPF_NOEXIST);

	bpf_ringbuf_output(&events, &key, sizeof(key), 0);
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
