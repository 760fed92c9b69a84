// SPDX-License-Identifier: GPL-2.0
//
// forge holds programs that pass map helpers a map handle they made up:
// the address of a map they reference plus a distance the packet carries
// (bytes 14 to 21, host order). With distance 0 each works on its own map;
// with the distance to another map of the object, which it does not
// reference, Linux's verifier refuses the program (the argument is no
// longer a map pointer), and waggle must fail the run naming the
// instruction and leave that map as it was.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define HASH(name)                                 \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_HASH);   \
		__uint(max_entries, 4);            \
		__type(key, __u32);                \
		__type(value, __u64);              \
	} name SEC(".maps")

HASH(hash_own);
HASH(hash_victim);
HASH(tc_caller_map);
HASH(tc_callee_map);

#define QUEUE(name)                                \
	struct {                                   \
		__uint(type, BPF_MAP_TYPE_QUEUE);  \
		__uint(max_entries, 4);            \
		__type(value, __u64);              \
	} name SEC(".maps")

QUEUE(queue_own);
QUEUE(queue_victim);

#define RINGBUF(name)                                \
	struct {                                     \
		__uint(type, BPF_MAP_TYPE_RINGBUF);  \
		__uint(max_entries, 4096);           \
	} name SEC(".maps")

RINGBUF(rb_own);
RINGBUF(rb_victim);

#define PERF(name)                                          \
	struct {                                            \
		__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY); \
		__uint(key_size, sizeof(__u32));            \
		__uint(value_size, sizeof(__u32));          \
	} name SEC(".maps")

PERF(perf_own);
PERF(perf_victim);

#define PROGS(name)                                   \
	struct {                                      \
		__uint(type, BPF_MAP_TYPE_PROG_ARRAY); \
		__uint(max_entries, 1);               \
		__type(key, __u32);                   \
		__type(value, __u32);                 \
	} name SEC(".maps")

PROGS(jt_own);
PROGS(jt_victim);
PROGS(jt_tc);

#define DEVMAP(name)                              \
	struct {                                  \
		__uint(type, BPF_MAP_TYPE_DEVMAP); \
		__uint(max_entries, 1);           \
		__type(key, __u32);               \
		__type(value, __u32);             \
	} name SEC(".maps")

DEVMAP(dev_own);
DEVMAP(dev_victim);

#define PCPU(name)                                      \
	struct {                                        \
		__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); \
		__uint(max_entries, 1);                 \
		__type(key, __u32);                     \
		__type(value, __u64);                   \
	} name SEC(".maps")

PCPU(pcpu_own);
PCPU(pcpu_victim);

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner in_own SEC(".maps"), in_other SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 1);
	__type(key, __u32);
	__array(values, struct inner);
} outer_own SEC(".maps") = {.values = {&in_own}}, outer_other SEC(".maps") = {.values = {&in_other}};

// delta is the distance the packet carries.
static __always_inline __u64 delta(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;

	if (data + 22 > end)
		return 0;
	return *(__u64 *)(data + 14);
}

#define FORGE(m) ((void *)((char *)(m) + delta(ctx)))

SEC("xdp")
int forge_lookup(struct xdp_md *ctx)
{
	__u32 k = 0;

	return bpf_map_lookup_elem(FORGE(&hash_own), &k) ? 2 : 1;
}

SEC("xdp")
int forge_update(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 v = 0x666;

	return bpf_map_update_elem(FORGE(&hash_own), &k, &v, BPF_ANY) ? 1 : 2;
}

SEC("xdp")
int forge_delete(struct xdp_md *ctx)
{
	__u32 k = 0;

	return bpf_map_delete_elem(FORGE(&hash_own), &k) ? 1 : 2;
}

SEC("xdp")
int forge_push(struct xdp_md *ctx)
{
	__u64 v = 0x666;

	return bpf_map_push_elem(FORGE(&queue_own), &v, 0) ? 1 : 2;
}

SEC("xdp")
int forge_pop(struct xdp_md *ctx)
{
	__u64 v;

	return bpf_map_pop_elem(FORGE(&queue_own), &v) ? 1 : 2;
}

SEC("xdp")
int forge_peek(struct xdp_md *ctx)
{
	__u64 v;

	return bpf_map_peek_elem(FORGE(&queue_own), &v) ? 1 : 2;
}

SEC("xdp")
int forge_ringbuf_output(struct xdp_md *ctx)
{
	__u64 v = 0x666;

	return bpf_ringbuf_output(FORGE(&rb_own), &v, sizeof(v), 0) ? 1 : 2;
}

SEC("xdp")
int forge_ringbuf_reserve(struct xdp_md *ctx)
{
	__u64 *p = bpf_ringbuf_reserve(FORGE(&rb_own), sizeof(*p), 0);

	if (!p)
		return 1;
	*p = 0x666;
	bpf_ringbuf_submit(p, 0);
	return 2;
}

SEC("xdp")
int forge_ringbuf_query(struct xdp_md *ctx)
{
	return bpf_ringbuf_query(FORGE(&rb_own), BPF_RB_RING_SIZE) == 4096 ? 2 : 1;
}

SEC("xdp")
int forge_perf_output(struct xdp_md *ctx)
{
	__u64 v = 0x666;

	return bpf_perf_event_output(ctx, FORGE(&perf_own), BPF_F_CURRENT_CPU, &v, sizeof(v)) ? 1 : 2;
}

SEC("xdp")
int forge_tail_call(struct xdp_md *ctx)
{
	bpf_tail_call(ctx, FORGE(&jt_own), 0);
	return 1;
}

SEC("xdp")
int landing_own(struct xdp_md *ctx)
{
	return 2;
}

SEC("xdp")
int landing_victim(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 v = 0x666;

	bpf_map_update_elem(&hash_victim, &k, &v, BPF_ANY);
	return 3;
}

static long overwrite(void *map, __u32 *key, __u64 *value, void *ctx)
{
	*value = 0x666;
	return 0;
}

SEC("xdp")
int forge_for_each(struct xdp_md *ctx)
{
	return bpf_for_each_map_elem(FORGE(&hash_own), overwrite, 0, 0) == 1 ? 2 : 1;
}

SEC("xdp")
int forge_redirect_map(struct xdp_md *ctx)
{
	return bpf_redirect_map(FORGE(&dev_own), 0, 0);
}

SEC("xdp")
int forge_lookup_percpu(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_percpu_elem(FORGE(&pcpu_own), &k, 0);

	if (!v)
		return 1;
	*v = 0x666;
	return 2;
}

// forge_inner updates the inner map it finds in outer_own, through its
// handle plus the distance: 0 is allowed (a program may use the inner maps
// of the map-in-maps it references); the distance to in_other, which only
// outer_other holds, is not.
SEC("xdp")
int forge_inner(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 v = 0x666;
	void *in = bpf_map_lookup_elem(&outer_own, &k);

	if (!in)
		return 1;
	return bpf_map_update_elem(FORGE(in), &k, &v, BPF_ANY) ? 1 : 2;
}

// tc_caller references tc_caller_map and tail-calls tc_callee, which
// updates its own map, tc_caller_map's distance away with the distance
// the packet gives: after a tail call, helpers accept the target's maps,
// not the caller's.
SEC("xdp")
int tc_caller(struct xdp_md *ctx)
{
	__u32 k = 0;

	if (!bpf_map_lookup_elem(&tc_caller_map, &k))
		return 1;
	bpf_tail_call(ctx, &jt_tc, 0);
	return 1;
}

SEC("xdp")
int tc_callee(struct xdp_md *ctx)
{
	__u32 k = 0;
	__u64 v = 0x666;

	return bpf_map_update_elem(FORGE(&tc_callee_map), &k, &v, BPF_ANY) ? 1 : 2;
}

char _license[] SEC("license") = "GPL";
